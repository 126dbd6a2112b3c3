"""Writing records: one at a time (with its file) or in bulk, and updating and deleting them.

The rules of the contract that cross several rows live here:

- the experiment, the season (within it) and the site must exist; the dataset is created when
  it does not; the model, dataset and site are linked to the experiment and the dataset to the
  model;
- a record is unique on (model, timestamp, collection_date, dataset, experiment, season, site):
  a repeat answers 409 with the existing id (bulk: it is skipped and counted);
- a file and its row live and die together: no row without its file (storing fails: 503, no
  row), no file without its row (the row fails: the file is removed; a deleted row's file is
  removed once the deletion has committed).
"""

from __future__ import annotations

import contextlib
import datetime
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connections, router, transaction
from django.db.models import JSONField

from models_api import services as catalogue
from models_api.api.errors import Conflict, ReferenceDeleted, ReferenceMissing
from models_api.api.ids import new_id
from models_api.api.names import NAME_MAX_LENGTH
from models_api.api.prepared import prepared_cursor
from models_api.models import Dataset, Experiment, MLModel, Season, Site
from records import postgres, storage
from records.models import ModelRecord, json_for_save
from records.validation import RecordInput


@dataclass(frozen=True, slots=True)
class References:
    """The rows a record points at; ``dataset_id`` is None while the dataset does not exist."""

    experiment_id: uuid.UUID
    season_id: uuid.UUID
    site_id: uuid.UUID
    dataset_name: str
    dataset_id: uuid.UUID | None


def _table(model: type) -> str:
    return model._meta.db_table


#: The ids of a record's experiment, season and site (the four :func:`_name_params`).
_NAME_IDS = f"""
    (SELECT id FROM {_table(Experiment)} WHERE experiment_name = %s),
    (SELECT s.id FROM {_table(Season)} s
        JOIN {_table(Experiment)} e ON e.id = s.experiment_id
        WHERE e.experiment_name = %s AND s.season_name = %s),
    (SELECT id FROM {_table(Site)} WHERE site_name = %s)"""

_RESOLVE_SQL = f"""
SELECT {_NAME_IDS},
    (SELECT id FROM {_table(Dataset)} WHERE dataset_name = %s)
"""

#: The same and the name of the model with the id given, no row when there is none. The
#: default dataset name is made here as :meth:`ReferenceResolver.dataset_name` makes it.
_RESOLVE_WITH_MODEL_SQL = f"""
SELECT {_NAME_IDS},
    (SELECT id FROM {_table(Dataset)}
        WHERE dataset_name = COALESCE(%s, m.model_name || ' Dataset ' || %s)),
    m.model_name
FROM (SELECT model_name FROM {_table(MLModel)} WHERE id = %s) m
"""


def _name_params(record: RecordInput) -> list[str]:
    return [record.experiment_name, record.experiment_name, record.season_name, record.site_name]


def _as_uuid(value: Any) -> uuid.UUID | None:
    """A UUID column's value (SQLite gives 32 hexadecimal characters)."""
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(value)


class ReferenceResolver:
    """Resolves the names of one request to ids: one query for a record whose names have not
    been seen yet in this request, none for a record whose names all have."""

    def __init__(self, model: MLModel) -> None:
        self.model = model
        self._experiments: dict[str, uuid.UUID | None] = {}
        self._seasons: dict[tuple[str, str], uuid.UUID | None] = {}
        self._sites: dict[str, uuid.UUID | None] = {}
        self._datasets: dict[str, uuid.UUID | None] = {}

    def dataset_name(self, record: RecordInput) -> str:
        return record.dataset_name or f"{self.model.model_name} Dataset {record.collection_date}"

    def cached(self, record: RecordInput) -> References | None:
        """The references of ``record`` if every name was resolved before, else None."""
        dataset_name = self.dataset_name(record)
        try:
            ids = (
                self._experiments[record.experiment_name],
                self._seasons[(record.experiment_name, record.season_name)],
                self._sites[record.site_name],
                self._datasets[dataset_name],
            )
        except KeyError:
            return None
        if None in ids:
            return None
        return References(*ids[:3], dataset_name, ids[3])

    @classmethod
    def with_model(cls, model_id: uuid.UUID, record: RecordInput) -> ReferenceResolver:
        """A resolver for the model ``model_id``, read with the names of ``record`` in one
        query: a single-record POST's, which would otherwise spend a round trip on the model
        alone. ``MLModel.DoesNotExist`` when no model has the id."""
        connection = connections[router.db_for_read(MLModel)]
        with prepared_cursor(connection) as cursor:
            cursor.execute(_RESOLVE_WITH_MODEL_SQL, [
                *_name_params(record), record.dataset_name or None, str(record.collection_date),
                MLModel._meta.pk.get_db_prep_value(model_id, connection),
            ])
            row = cursor.fetchone()
        if row is None:
            raise MLModel.DoesNotExist(f"No model has the id '{model_id}'.")
        *ids, model_name = row
        model = MLModel.from_db(connection.alias, ["id", "model_name"], (model_id, model_name))
        resolver = cls(model)
        resolver._remember(record, resolver.dataset_name(record), ids)
        return resolver

    def _fetch(self, record: RecordInput, dataset_name: str) -> None:
        """Look the four names up in one query.

        Plain SQL, as :meth:`with_model`'s: composing the same statement with the ORM (four
        subqueries) costs a single-record POST more CPU than everything else it does.
        """
        with prepared_cursor(connections[router.db_for_read(Experiment)]) as cursor:
            cursor.execute(_RESOLVE_SQL, [*_name_params(record), dataset_name])
            self._remember(record, dataset_name, cursor.fetchone())

    def _remember(self, record: RecordInput, dataset_name: str, ids: Sequence[Any]) -> None:
        experiment_id, season_id, site_id, dataset_id = (_as_uuid(value) for value in ids)
        self._experiments[record.experiment_name] = experiment_id
        self._seasons[(record.experiment_name, record.season_name)] = season_id
        self._sites[record.site_name] = site_id
        self._datasets[dataset_name] = dataset_id

    def resolve(self, record: RecordInput, *, create_dataset: bool = False) -> References:
        """The references of ``record``; ``ReferenceMissing`` naming any that is missing.

        With ``create_dataset`` a missing dataset is created (inside the caller's transaction).
        """
        dataset_name = self.dataset_name(record)
        cached = self.cached(record)
        if cached is not None:
            return cached
        self._fetch(record, dataset_name)
        experiment_id = self._experiments[record.experiment_name]
        season_id = self._seasons[(record.experiment_name, record.season_name)]
        site_id = self._sites[record.site_name]
        errors: dict[str, list[str]] = {}
        if experiment_id is None:
            errors["experiment_name"] = [f"No experiment is named '{record.experiment_name}'."]
        elif season_id is None:
            errors["season_name"] = [
                f"No season is named '{record.season_name}' "
                f"in experiment '{record.experiment_name}'."
            ]
        if site_id is None:
            errors["site_name"] = [f"No site is named '{record.site_name}'."]
        if len(dataset_name) > NAME_MAX_LENGTH:  # only a default can be: given names are checked
            errors["dataset_name"] = [
                f"The default dataset name would be longer than {NAME_MAX_LENGTH} characters "
                "(the model's name is long); give a dataset_name."
            ]
        if errors:
            raise ReferenceMissing(errors)
        dataset_id = self._datasets[dataset_name]
        if dataset_id is None and create_dataset:
            dataset_id = self._datasets[dataset_name] = _dataset_id(
                dataset_name, record.collection_date
            )
        return References(experiment_id, season_id, site_id, dataset_name, dataset_id)


def _existing_record_id(model: MLModel, record: RecordInput, refs: References) -> uuid.UUID | None:
    """The id of the record with the same unique key, if there is one.

    Only (model, timestamp), the leading columns of the unique index, go to the database:
    given every key column, the planner sometimes prefers a foreign-key index on a
    low-cardinality column (a site) and scans thousands of rows. The few records of that
    instant are compared here.
    """
    if refs.dataset_id is None:
        return None
    key = (
        record.collection_date,
        refs.dataset_id,
        refs.experiment_id,
        refs.season_id,
        refs.site_id,
    )
    candidates = ModelRecord.objects.filter(model=model, timestamp=record.timestamp).values_list(
        "id", "collection_date", "dataset_id", "experiment_id", "season_id", "site_id"
    )
    for record_id, *columns in candidates:
        if tuple(columns) == key:
            return record_id
    return None


def _duplicate(existing_id: uuid.UUID) -> Conflict:
    return Conflict(
        "This record already exists (same model, timestamp, collection date, dataset, "
        "experiment, season and site).",
        existing_id=existing_id,
    )


def _dataset_id(name: str, collection_date: datetime.date) -> uuid.UUID:
    dataset, _ = Dataset.objects.get_or_create(
        dataset_name=name, defaults={"collection_date": collection_date}
    )
    return dataset.id


def link_statements(
    model: MLModel, rows: Iterable[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]
) -> list[tuple[str, list[Any]]]:
    """The catalogue's link statements for records given as (experiment_id, site_id,
    dataset_id) triples: model and dataset and site to the experiment, dataset to the model."""
    model_experiments, model_datasets, dataset_experiments, site_experiments = (
        set(), set(), set(), set()
    )
    for experiment_id, site_id, dataset_id in rows:
        model_experiments.add((model.id, experiment_id))
        model_datasets.add((model.id, dataset_id))
        dataset_experiments.add((dataset_id, experiment_id))
        site_experiments.add((site_id, experiment_id))
    return catalogue.link_statements(
        model_experiments=model_experiments,
        model_datasets=model_datasets,
        dataset_experiments=dataset_experiments,
        site_experiments=site_experiments,
    )


def link_references(
    model: MLModel, rows: Iterable[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]
) -> None:
    """Add the links of records given as in :func:`link_statements` (inside the caller's
    transaction)."""
    with connections[router.db_for_write(ModelRecord)].cursor() as cursor:
        for sql, params in link_statements(model, rows):
            cursor.execute(sql, params)


def _insert_linked(model: MLModel, record: ModelRecord) -> bool:
    """INSERT the record's row unless its unique key exists, and link its references; whether
    it was inserted.

    ``ON CONFLICT DO NOTHING RETURNING``, where ``save()`` would need a savepoint to survive
    the unique violation of a repeat. On PostgreSQL the links and the row are one statement,
    so one round trip that needs no transaction of its own; elsewhere the caller's
    transaction holds the statements together. A repeat links too: its links exist already,
    unless a curator removed one, which the repeat then restores.
    """
    connection = connections[router.db_for_write(ModelRecord)]
    fields = ModelRecord._meta.concrete_fields
    quote = connection.ops.quote_name
    values = [
        field.get_db_prep_save(
            json_for_save(value) if isinstance(field, JSONField) else value, connection
        )
        for field, value in ((field, field.pre_save(record, True)) for field in fields)
    ]
    insert = (
        f"INSERT INTO {quote(ModelRecord._meta.db_table)} "
        f"({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT DO NOTHING RETURNING {quote(ModelRecord._meta.pk.column)}",
        values,
    )
    links = link_statements(model, [(record.experiment_id, record.site_id, record.dataset_id)])
    if connection.vendor == "postgresql":
        return bool(postgres.insert_with_links(connection, links, insert))
    with connection.cursor() as cursor:
        for sql, params in [*links, insert]:
            cursor.execute(sql, params)
        return bool(cursor.fetchall())


def add_record(
    *,
    model: MLModel,
    record: RecordInput,
    upload: UploadedFile | None = None,
    resolver: ReferenceResolver | None = None,
) -> tuple[ModelRecord, References]:
    """Add one record (and its file); 400 for unknown references, 409 for a repeat.

    ``resolver``: the model's, if it has read the record's names already
    (:meth:`ReferenceResolver.with_model`). Returns the new row and its references (whose
    names the answer shows).
    """
    resolver = resolver or ReferenceResolver(model)
    refs = resolver.resolve(record)
    if upload is not None:
        # Check for a repeat before storing a file that would only be deleted again.
        existing = _existing_record_id(model, record, refs)
        if existing is not None:
            raise _duplicate(existing)

    created = ModelRecord(
        id=new_id(),
        model=model,
        timestamp=record.timestamp,
        collection_date=record.collection_date,
        experiment_id=refs.experiment_id,
        season_id=refs.season_id,
        site_id=refs.site_id,
        model_data=record.model_data,
        record_info=record.record_info,
    )
    if upload is not None:
        created.record_file = storage.store_file(
            storage.record_file_key(
                model_id=model.id, record_id=created.id, client_name=upload.name
            ),
            upload,
        )
    # One statement needs no transaction; creating the dataset first, or linking with
    # separate statements (SQLite), does.
    one_statement = (
        refs.dataset_id is not None
        and connections[router.db_for_write(ModelRecord)].vendor == "postgresql"
    )
    try:
        with contextlib.nullcontext() if one_statement else transaction.atomic():
            created.dataset_id = refs.dataset_id or _dataset_id(
                refs.dataset_name, record.collection_date
            )
            inserted = _insert_linked(model, created)
    except BaseException as error:
        if created.record_file:
            storage.delete_files([created.record_file])
        if isinstance(error, IntegrityError):
            raise ReferenceDeleted() from None
        raise
    if not inserted:
        if created.record_file:
            storage.delete_files([created.record_file])
        existing = _existing_record_id(model, record, resolver.resolve(record))
        raise _duplicate(existing)
    return created, refs


def update_record(record: ModelRecord, **fields: Any) -> ModelRecord:
    """Replace ``model_data`` and/or ``record_info``."""
    for name, value in fields.items():
        setattr(record, name, json_for_save(value))
    record.save(update_fields=[*fields, "updated_at"])
    for name, value in fields.items():  # the values, not what saved them
        setattr(record, name, value)
    return record


def delete_record(record: ModelRecord) -> None:
    """Delete the row; its file goes once the deletion has committed."""
    delete_records(ModelRecord.objects.filter(pk=record.pk))


def delete_records(queryset) -> None:
    """Delete many records; their files go once the deletion has committed."""
    with transaction.atomic():
        keys = list(queryset.exclude(record_file=None).values_list("record_file", flat=True))
        queryset.delete()
        if keys:
            transaction.on_commit(lambda: storage.delete_files(keys))
