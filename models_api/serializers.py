"""Request and response shapes of the catalogue endpoints.

Writes go through ``models_api.services`` (the serializers' ``create``/``update`` only hand the
validated fields over), so that the admin, the commands and the API share one path.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from models_api import services
from models_api.api.serializer_fields import (
    JSONObjectField,
    NameField,
    NameRelatedField,
    TextField,
    URLField,
)
from models_api.api.serializers import StrictModelSerializer
from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site


def check_date_range(attrs: dict, instance: Any, start: str, end: str) -> None:
    first = attrs.get(start, getattr(instance, start, None))
    last = attrs.get(end, getattr(instance, end, None))
    if first and last and last < first:
        raise serializers.ValidationError({end: [f"Must not be before {start} ({first})."]})


def experiment_by_name(**kwargs: Any) -> NameRelatedField:
    return NameRelatedField(
        queryset=Experiment.objects.all(), slug_field="experiment_name", **kwargs
    )


class ExperimentSerializer(StrictModelSerializer):
    experiment_name = NameField()
    experiment_info = JSONObjectField(required=False)

    class Meta:
        model = Experiment
        fields = [
            "id",
            "experiment_name",
            "experiment_info",
            "experiment_start_date",
            "experiment_end_date",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict) -> dict:
        check_date_range(attrs, self.instance, "experiment_start_date", "experiment_end_date")
        return attrs

    def create(self, validated_data: dict) -> Experiment:
        return services.create_experiment(**validated_data)

    def update(self, instance: Experiment, validated_data: dict) -> Experiment:
        return services.update_experiment(instance, **validated_data)


class SeasonSerializer(StrictModelSerializer):
    season_name = NameField()
    season_info = JSONObjectField(required=False)
    experiment_id = serializers.UUIDField(read_only=True)
    experiment_name = experiment_by_name(source="experiment")

    class Meta:
        model = Season
        fields = [
            "id",
            "season_name",
            "season_info",
            "season_start_date",
            "season_end_date",
            "experiment_id",
            "experiment_name",
            "created_at",
            "updated_at",
        ]

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None and "experiment" in attrs:
            if attrs["experiment"] != self.instance.experiment:
                raise serializers.ValidationError(
                    {"experiment_name": ["A season cannot move to another experiment."]}
                )
        check_date_range(attrs, self.instance, "season_start_date", "season_end_date")
        return attrs

    def create(self, validated_data: dict) -> Season:
        return services.create_season(**validated_data)

    def update(self, instance: Season, validated_data: dict) -> Season:
        validated_data.pop("experiment", None)
        return services.update_season(instance, **validated_data)


class SiteSerializer(StrictModelSerializer):
    site_name = NameField()
    site_city = TextField(max_length=255, required=False, allow_null=True)
    site_state = TextField(max_length=255, required=False, allow_null=True)
    site_country = TextField(max_length=255, required=False, allow_null=True)
    site_info = JSONObjectField(required=False)

    class Meta:
        model = Site
        fields = [
            "id",
            "site_name",
            "site_city",
            "site_state",
            "site_country",
            "site_info",
            "created_at",
            "updated_at",
        ]

    def create(self, validated_data: dict) -> Site:
        return services.create_site(**validated_data)

    def update(self, instance: Site, validated_data: dict) -> Site:
        return services.update_site(instance, **validated_data)


class MLModelSerializer(StrictModelSerializer):
    model_name = NameField()
    model_url = URLField(required=False, allow_null=True)
    model_info = JSONObjectField(required=False)
    experiment_name = experiment_by_name(source="experiment", write_only=True, required=False)

    class Meta:
        model = MLModel
        fields = [
            "id",
            "model_name",
            "model_url",
            "model_info",
            "experiment_name",
            "created_at",
            "updated_at",
        ]

    def create(self, validated_data: dict) -> MLModel:
        return services.create_model(**validated_data)

    def update(self, instance: MLModel, validated_data: dict) -> MLModel:
        return services.update_model(instance, **validated_data)


class ModelRunSerializer(StrictModelSerializer):
    model_id = serializers.UUIDField(read_only=True)
    model_run_info = JSONObjectField(required=False)

    class Meta:
        model = ModelRun
        fields = ["id", "model_id", "model_run_info", "created_at", "updated_at"]

    def create(self, validated_data: dict) -> ModelRun:
        return services.create_run(**validated_data)


class DatasetSerializer(StrictModelSerializer):
    dataset_name = NameField()
    dataset_info = JSONObjectField(required=False)
    collection_date = serializers.DateField(required=False, allow_null=True)
    experiment_name = experiment_by_name(source="experiment", write_only=True, required=False)

    class Meta:
        model = Dataset
        fields = [
            "id",
            "dataset_name",
            "dataset_info",
            "collection_date",
            "experiment_name",
            "created_at",
            "updated_at",
        ]

    def create(self, validated_data: dict) -> Dataset:
        return services.create_dataset(**validated_data)
