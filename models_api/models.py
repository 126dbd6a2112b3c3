"""The catalogue: models, their runs and datasets, and the experiments, seasons and sites that
records are tied to.

Names are unique through named ``UniqueConstraint``s (the API answers 409 with the existing id
when one is hit). Links between objects are plain many-to-many tables; the services in
``models_api.services`` keep them in step when records and datasets are added.
"""

from __future__ import annotations

import uuid

from django.db import connections, models, router

from models_api.api.ids import new_id
from models_api.api.prepared import prepared_cursor


class TimestampedModel(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Experiment(TimestampedModel):
    experiment_name = models.CharField(max_length=255)
    experiment_info = models.JSONField(default=dict, blank=True)
    experiment_start_date = models.DateField(null=True, blank=True)
    experiment_end_date = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["experiment_name"]
        constraints = [
            models.UniqueConstraint(fields=["experiment_name"], name="experiment_name_unique"),
        ]

    def __str__(self) -> str:
        return self.experiment_name


class SeasonManager(models.Manager):
    def get_queryset(self) -> models.QuerySet:
        # A season is shown with its experiment ("Season 1A (Experiment A)") in every admin
        # list and filter: read both in one query.
        return super().get_queryset().select_related("experiment")


class Season(TimestampedModel):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="seasons")
    season_name = models.CharField(max_length=255)
    season_info = models.JSONField(default=dict, blank=True)
    season_start_date = models.DateField(null=True, blank=True)
    season_end_date = models.DateField(null=True, blank=True)

    objects = SeasonManager()

    class Meta:
        ordering = ["season_name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "season_name"], name="season_name_unique_in_experiment"
            ),
        ]
        indexes = [models.Index(fields=["season_name", "id"], name="season_name_idx")]

    def __str__(self) -> str:
        return f"{self.season_name} ({self.experiment.experiment_name})"


class Site(TimestampedModel):
    site_name = models.CharField(max_length=255)
    # Nullable on purpose: the API accepts and returns null for "not given" (DJ001).
    site_city = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    site_state = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    site_country = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    site_info = models.JSONField(default=dict, blank=True)
    experiments = models.ManyToManyField(Experiment, related_name="sites", blank=True)

    class Meta:
        ordering = ["site_name"]
        constraints = [models.UniqueConstraint(fields=["site_name"], name="site_name_unique")]

    def __str__(self) -> str:
        return self.site_name


class Dataset(TimestampedModel):
    dataset_name = models.CharField(max_length=255)
    dataset_info = models.JSONField(default=dict, blank=True)
    collection_date = models.DateField(null=True, blank=True)
    experiments = models.ManyToManyField(Experiment, related_name="datasets", blank=True)

    class Meta:
        ordering = ["dataset_name"]
        constraints = [
            models.UniqueConstraint(fields=["dataset_name"], name="dataset_name_unique"),
        ]

    def __str__(self) -> str:
        return self.dataset_name


class MLModelManager(models.Manager):
    def get_named(self, pk: uuid.UUID) -> MLModel:
        """The model with ``pk``, only its id and name loaded (what the record streams and bulk
        ingest use), read with one plain query on a prepared-statement cursor: the ORM's
        ``get()`` costs more Python than a short stream's own database work. A single-record
        POST reads its model with the record's names instead
        (``records.services.ReferenceResolver.with_model``). ``DoesNotExist`` when there is
        none."""
        connection = connections[router.db_for_read(self.model)]
        quote = connection.ops.quote_name
        with prepared_cursor(connection) as cursor:
            cursor.execute(
                f"SELECT {quote('model_name')} FROM {quote(self.model._meta.db_table)} "
                f"WHERE {quote('id')} = %s",
                [self.model._meta.pk.get_db_prep_value(pk, connection)],
            )
            row = cursor.fetchone()
        if row is None:
            raise self.model.DoesNotExist(f"No model has the id '{pk}'.")
        return self.model.from_db(connection.alias, ["id", "model_name"], (pk, row[0]))


class MLModel(TimestampedModel):
    """A machine-learning model (named ``MLModel`` so that it never reads as Django's Model)."""

    model_name = models.CharField(max_length=255)
    # Nullable on purpose: the API accepts and returns null for "no URL" (DJ001).
    model_url = models.CharField(max_length=2048, null=True, blank=True)  # noqa: DJ001
    model_info = models.JSONField(default=dict, blank=True)
    experiments = models.ManyToManyField(Experiment, related_name="models", blank=True)
    datasets = models.ManyToManyField(Dataset, related_name="models", blank=True)

    objects = MLModelManager()

    class Meta:
        verbose_name = "model"
        verbose_name_plural = "models"
        ordering = ["model_name"]
        constraints = [models.UniqueConstraint(fields=["model_name"], name="model_name_unique")]

    def __str__(self) -> str:
        return self.model_name


class ModelRun(TimestampedModel):
    model = models.ForeignKey(MLModel, on_delete=models.CASCADE, related_name="runs")
    model_run_info = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "run"
        verbose_name_plural = "runs"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["model", "created_at", "id"], name="run_model_created_idx")]

    def __str__(self) -> str:
        return f"Run {self.id} of {self.model_id}"
