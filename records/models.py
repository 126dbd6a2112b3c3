"""Model records: the timestamped outputs of a model, each tied to a dataset, an experiment, a
season and a site.

Names are never copied onto a record: they are read from the referenced rows, so renaming a
site renames it everywhere. Deleting a model deletes its records (and, through
``records.signals``, their files); experiments, seasons, sites and datasets that records use
are protected.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from models_api.api.ids import new_id
from models_api.models import Dataset, Experiment, MLModel, Season, Site


def json_for_save(value: Any) -> Any:
    """``value`` as a JSON column that cannot be NULL must be given it: Django saves None as SQL
    NULL, so the JSON ``null`` that ``model_data`` may be goes as ``Value(None, JSONField())``."""
    return models.Value(None, output_field=models.JSONField()) if value is None else value


#: The columns that make a record unique: posting the same one twice answers 409.
UNIQUE_KEY = ("model", "timestamp", "collection_date", "dataset", "experiment", "season", "site")


class RecordQuerySet(models.QuerySet):
    def for_model(self, model: MLModel) -> RecordQuerySet:
        return self.filter(model=model)

    def in_stream_order(self) -> RecordQuerySet:
        return self.order_by("timestamp", "id")


class ModelRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    # The model's own index is the leading column of the stream index below.
    model = models.ForeignKey(
        MLModel, on_delete=models.CASCADE, related_name="records", db_index=False
    )
    timestamp = models.DateTimeField()
    collection_date = models.DateField()
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="records")
    experiment = models.ForeignKey(Experiment, on_delete=models.PROTECT, related_name="records")
    season = models.ForeignKey(Season, on_delete=models.PROTECT, related_name="records")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="records")
    model_data = models.JSONField()
    #: The key of the record's file in the configured storage, or null.
    #: NULL means "no file" (queries use ``record_file=None``), so null=True is intended.
    record_file = models.CharField(max_length=1024, null=True, blank=True)  # noqa: DJ001
    record_info = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RecordQuerySet.as_manager()

    class Meta:
        verbose_name = "record"
        verbose_name_plural = "records"
        constraints = [
            models.UniqueConstraint(fields=UNIQUE_KEY, name="record_unique_key"),
        ]
        indexes = [
            # Serves every stream: one model's records in (timestamp, id) order, and windows.
            models.Index(fields=["model", "timestamp", "id"], name="record_stream_idx"),
        ]

    def __str__(self) -> str:
        return f"Record {self.id} ({self.timestamp:%Y-%m-%d %H:%M:%S})"


#: The table's columns in their order, as bulk writes name them.
RECORD_COLUMNS = tuple(field.column for field in ModelRecord._meta.concrete_fields)
