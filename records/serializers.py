"""Shapes of the record endpoints.

Records are written through ``records.validation`` (one set of rules for JSON, forms and bulk
lines) and read through ``records.representation`` (one encoder for single records and
streams); the serializers here check PATCH bodies and describe the shapes in the OpenAPI
schema.
"""

from __future__ import annotations

from rest_framework import serializers

from models_api.api.serializer_fields import JSONObjectField, JSONValueField
from models_api.api.serializers import StrictModelSerializer
from records import services
from records.models import ModelRecord


class RecordSerializer(serializers.Serializer):
    """A record as every record endpoint and stream line gives it."""

    id = serializers.UUIDField()
    timestamp = serializers.DateTimeField()
    collection_date = serializers.DateField()
    model_id = serializers.UUIDField()
    model_name = serializers.CharField()
    model_data = JSONValueField(allow_null=True)
    dataset_id = serializers.UUIDField()
    dataset_name = serializers.CharField()
    experiment_id = serializers.UUIDField()
    experiment_name = serializers.CharField()
    season_id = serializers.UUIDField()
    season_name = serializers.CharField()
    site_id = serializers.UUIDField()
    site_name = serializers.CharField()
    record_file = serializers.CharField(
        allow_null=True, help_text="Storage key of the file, or null."
    )
    record_info = JSONObjectField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Record"


class RecordInputSerializer(serializers.Serializer):
    """A record to add (JSON body, or the fields of a multipart form with JSON text values)."""

    timestamp = serializers.DateTimeField(help_text="ISO 8601; without a zone it is UTC.")
    model_data = JSONValueField(
        allow_null=True, help_text="Any JSON value, null included (JSON text in a form)."
    )
    experiment_name = serializers.CharField(max_length=255)
    season_name = serializers.CharField(max_length=255, help_text="A season of that experiment.")
    site_name = serializers.CharField(max_length=255)
    collection_date = serializers.DateField(
        required=False, help_text="Default: the timestamp's UTC date."
    )
    dataset_name = serializers.CharField(
        max_length=255,
        required=False,
        help_text="Default: '<model_name> Dataset <collection_date>'; created if missing.",
    )
    record_info = JSONObjectField(required=False)

    class Meta:
        ref_name = "RecordInput"


class RecordFormSerializer(RecordInputSerializer):
    record_file = serializers.FileField(required=False, help_text="An optional file.")

    class Meta:
        ref_name = "RecordForm"


class IngestResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    skipped_existing = serializers.IntegerField()

    class Meta:
        ref_name = "IngestResult"


class RecordUpdateSerializer(StrictModelSerializer):
    model_data = JSONValueField(required=False, allow_null=True)
    record_info = JSONObjectField(required=False)

    class Meta:
        model = ModelRecord
        fields = ["model_data", "record_info"]

    def update(self, instance: ModelRecord, validated_data: dict) -> ModelRecord:
        return services.update_record(instance, **validated_data)
