"""Writes to the catalogue, shared by the API, the admin and the management commands.

Uniqueness is the database's job (named ``UniqueConstraint``s): a write that clashes raises
:class:`~models_api.api.errors.Conflict` naming the existing row, which is race-free where a
check-then-insert would not be.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connections, router, transaction
from django.db.models import PROTECT, Model

from models_api.api.errors import Conflict
from models_api.api.names import with_article
from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site


def save_unique(
    instance: Model,
    *,
    name_field: str,
    scope: dict[str, Any] | None = None,
    update_fields: list[str] | None = None,
) -> None:
    """Save ``instance``; if its name is taken (within ``scope``), raise ``Conflict``.

    With ``update_fields`` only those columns are written, so that concurrent updates of
    other fields are not overwritten with stale values (last write wins per field sent).
    """
    if update_fields is not None:
        update_fields = [*update_fields, "updated_at"]
    try:
        with transaction.atomic():
            instance.save(update_fields=update_fields)
            if update_fields is not None:
                # Show what is stored: fields not sent may have changed meanwhile.
                instance.refresh_from_db()
    except IntegrityError:
        name = getattr(instance, name_field)
        existing = (
            type(instance)
            ._default_manager.filter(**{name_field: name}, **(scope or {}))
            .exclude(pk=instance.pk)
            .values_list("pk", flat=True)
            .first()
        )
        if existing is None:
            raise
        label = with_article(instance._meta.verbose_name).capitalize()
        raise Conflict(f"{label} named '{name}' already exists.", existing_id=existing) from None


def _apply(instance: Model, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        setattr(instance, name, value)


def is_referenced(instance: Model) -> bool:
    """Whether rows that protect ``instance`` from deletion (records) point at it.

    Asked with one ``EXISTS`` per protecting relation: Django's own ``ProtectedError`` would
    load every protecting row, millions of records for a busy experiment.
    """
    for relation in instance._meta.related_objects:
        if relation.on_delete is PROTECT:
            manager = relation.related_model._base_manager
            if manager.filter(**{relation.field.name: instance}).exists():
                return True
    return False


def delete_unless_referenced(instance: Model) -> None:
    with transaction.atomic():
        if is_referenced(instance):
            label = instance._meta.verbose_name
            raise Conflict(
                f"This {label} is used by records; delete those records first.",
                existing_id=instance.pk,
            )
        instance.delete()


# --- Experiments, seasons, sites -----------------------------------------------------------


def create_experiment(
    *,
    experiment_name: str,
    experiment_info: dict | None = None,
    experiment_start_date: datetime.date | None = None,
    experiment_end_date: datetime.date | None = None,
) -> Experiment:
    experiment = Experiment(
        experiment_name=experiment_name,
        experiment_info=experiment_info or {},
        experiment_start_date=experiment_start_date,
        experiment_end_date=experiment_end_date,
    )
    save_unique(experiment, name_field="experiment_name")
    return experiment


def update_experiment(experiment: Experiment, **fields: Any) -> Experiment:
    _apply(experiment, fields)
    save_unique(experiment, name_field="experiment_name", update_fields=list(fields))
    return experiment


def delete_experiment(experiment: Experiment) -> None:
    """Delete an experiment with its seasons and links; 409 while records use it."""
    delete_unless_referenced(experiment)


def create_season(
    *,
    experiment: Experiment,
    season_name: str,
    season_info: dict | None = None,
    season_start_date: datetime.date | None = None,
    season_end_date: datetime.date | None = None,
) -> Season:
    season = Season(
        experiment=experiment,
        season_name=season_name,
        season_info=season_info or {},
        season_start_date=season_start_date,
        season_end_date=season_end_date,
    )
    save_unique(season, name_field="season_name", scope={"experiment": experiment})
    return season


def update_season(season: Season, **fields: Any) -> Season:
    _apply(season, fields)
    save_unique(
        season,
        name_field="season_name",
        scope={"experiment": season.experiment},
        update_fields=list(fields),
    )
    return season


def create_site(
    *,
    site_name: str,
    site_city: str | None = None,
    site_state: str | None = None,
    site_country: str | None = None,
    site_info: dict | None = None,
) -> Site:
    site = Site(
        site_name=site_name,
        site_city=site_city,
        site_state=site_state,
        site_country=site_country,
        site_info=site_info or {},
    )
    save_unique(site, name_field="site_name")
    return site


def update_site(site: Site, **fields: Any) -> Site:
    _apply(site, fields)
    save_unique(site, name_field="site_name", update_fields=list(fields))
    return site


# --- Models, runs, datasets ----------------------------------------------------------------


@transaction.atomic
def create_model(
    *,
    model_name: str,
    model_url: str | None = None,
    model_info: dict | None = None,
    experiment: Experiment | None = None,
) -> MLModel:
    model = MLModel(model_name=model_name, model_url=model_url, model_info=model_info or {})
    save_unique(model, name_field="model_name")
    if experiment is not None:
        model.experiments.add(experiment)
    return model


@transaction.atomic
def update_model(model: MLModel, *, experiment: Experiment | None = None, **fields: Any) -> MLModel:
    """Replace the fields sent; ``experiment`` adds a link (existing links stay)."""
    if fields:
        _apply(model, fields)
        save_unique(model, name_field="model_name", update_fields=list(fields))
    if experiment is not None:
        model.experiments.add(experiment)
    return model


def create_run(*, model: MLModel, model_run_info: dict | None = None) -> ModelRun:
    return ModelRun.objects.create(model=model, model_run_info=model_run_info or {})


@transaction.atomic
def create_dataset(
    *,
    model: MLModel,
    dataset_name: str,
    dataset_info: dict | None = None,
    collection_date: datetime.date | None = None,
    experiment: Experiment | None = None,
) -> Dataset:
    """Create a dataset linked to ``model`` (and to ``experiment``, which the model joins too)."""
    dataset = Dataset(
        dataset_name=dataset_name,
        dataset_info=dataset_info or {},
        collection_date=collection_date,
    )
    save_unique(dataset, name_field="dataset_name")
    model.datasets.add(dataset)
    if experiment is not None:
        dataset.experiments.add(experiment)
        model.experiments.add(experiment)
    return dataset


def link_statements(
    *,
    model_experiments: Iterable[tuple[Any, Any]] = (),
    model_datasets: Iterable[tuple[Any, Any]] = (),
    dataset_experiments: Iterable[tuple[Any, Any]] = (),
    site_experiments: Iterable[tuple[Any, Any]] = (),
) -> list[tuple[str, list[Any]]]:
    """The statements (SQL and parameters) that add the links, pairs of ids, not there yet.

    Plain ``INSERT ... ON CONFLICT DO NOTHING``, which both databases run. They are returned
    rather than run: adding a record links four pairs, and the records app runs them in the
    same round trip as the record's own INSERT on PostgreSQL (``records.postgres``), where a
    round trip per kind would be most of the cost of a single-record POST.
    """
    kinds = [
        (MLModel.experiments.through, "mlmodel_id", "experiment_id", model_experiments),
        (MLModel.datasets.through, "mlmodel_id", "dataset_id", model_datasets),
        (Dataset.experiments.through, "dataset_id", "experiment_id", dataset_experiments),
        (Site.experiments.through, "site_id", "experiment_id", site_experiments),
    ]
    connection = connections[router.db_for_write(MLModel)]
    statements = []
    for through, left, right, pairs in kinds:
        pairs = sorted(set(pairs))  # sorted: concurrent writers take row locks in one order
        if not pairs:
            continue
        prepare = [through._meta.get_field(column).get_db_prep_value for column in (left, right)]
        rows = ", ".join(["(%s, %s)"] * len(pairs))
        statements.append((
            f"INSERT INTO {through._meta.db_table} ({left}, {right}) VALUES {rows} "
            "ON CONFLICT DO NOTHING",
            [
                prep(value, connection)
                for pair in pairs
                for prep, value in zip(prepare, pair, strict=True)
            ],
        ))
    return statements
