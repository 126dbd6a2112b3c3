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

import datetime
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connections, router, transaction
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from models_api import services as catalogue
from models_api.exceptions import Conflict, InvalidInput
from models_api.ids import new_id
from models_api.models import Dataset, Experiment, MLModel, Season, Site
from records import storage
from records.models import ModelRecord
from records.validation import RecordInput, RecordInvalid, parse_record

#: Bad lines listed in a bulk answer; the detail gives the total.
MAX_LISTED_LINE_ERRORS = 100
#: Rows per INSERT on SQLite (its bound-parameter limit).
SQLITE_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class References:
    """The rows a record points at; ``dataset_id`` is None while the dataset does not exist."""

    experiment_id: uuid.UUID
    season_id: uuid.UUID
    site_id: uuid.UUID
    dataset_name: str
    dataset_id: uuid.UUID | None


class ReferenceResolver:
    """Resolves the names of one request to ids, querying each distinct name once."""

    def __init__(self, model: MLModel) -> None:
        self.model = model
        self._experiments: dict[str, uuid.UUID | None] = {}
        self._seasons: dict[tuple[uuid.UUID, str], uuid.UUID | None] = {}
        self._sites: dict[str, uuid.UUID | None] = {}
        self._datasets: dict[str, uuid.UUID | None] = {}

    @staticmethod
    def _lookup(cache: dict, key: Any, model: type, **where: Any) -> uuid.UUID | None:
        if key not in cache:
            cache[key] = model.objects.filter(**where).values_list("id", flat=True).first()
        return cache[key]

    def dataset_name(self, record: RecordInput) -> str:
        return record.dataset_name or f"{self.model.model_name} Dataset {record.collection_date}"

    def resolve(self, record: RecordInput) -> References:
        errors: dict[str, list[str]] = {}
        experiment_id = self._lookup(
            self._experiments, record.experiment_name, Experiment,
            experiment_name=record.experiment_name,
        )
        season_id = None
        if experiment_id is None:
            errors["experiment_name"] = [f"No experiment is named '{record.experiment_name}'."]
        else:
            season_id = self._lookup(
                self._seasons, (experiment_id, record.season_name), Season,
                experiment_id=experiment_id, season_name=record.season_name,
            )
            if season_id is None:
                errors["season_name"] = [
                    f"No season is named '{record.season_name}' "
                    f"in experiment '{record.experiment_name}'."
                ]
        site_id = self._lookup(self._sites, record.site_name, Site, site_name=record.site_name)
        if site_id is None:
            errors["site_name"] = [f"No site is named '{record.site_name}'."]
        if errors:
            raise RecordInvalid(errors)
        dataset_name = self.dataset_name(record)
        dataset_id = self._lookup(self._datasets, dataset_name, Dataset, dataset_name=dataset_name)
        return References(experiment_id, season_id, site_id, dataset_name, dataset_id)


def _existing_record_id(model: MLModel, record: RecordInput, refs: References) -> uuid.UUID | None:
    if refs.dataset_id is None:
        return None
    return (
        ModelRecord.objects.filter(
            model=model,
            timestamp=record.timestamp,
            collection_date=record.collection_date,
            dataset_id=refs.dataset_id,
            experiment_id=refs.experiment_id,
            season_id=refs.season_id,
            site_id=refs.site_id,
        )
        .values_list("id", flat=True)
        .first()
    )


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


def _link_all(model: MLModel, rows: Iterable[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]) -> None:
    """Links for records given as (experiment_id, site_id, dataset_id) triples."""
    model_experiments, model_datasets, dataset_experiments, site_experiments = (
        set(), set(), set(), set()
    )
    for experiment_id, site_id, dataset_id in rows:
        model_experiments.add((model.id, experiment_id))
        model_datasets.add((model.id, dataset_id))
        dataset_experiments.add((dataset_id, experiment_id))
        site_experiments.add((site_id, experiment_id))
    catalogue.link(
        model_experiments=model_experiments,
        model_datasets=model_datasets,
        dataset_experiments=dataset_experiments,
        site_experiments=site_experiments,
    )


def add_record(
    *, model: MLModel, record: RecordInput, upload: UploadedFile | None = None
) -> ModelRecord:
    """Add one record (and its file); 400 for unknown references, 409 for a repeat."""
    refs = ReferenceResolver(model).resolve(record)
    existing = _existing_record_id(model, record, refs)
    if existing is not None:
        raise _duplicate(existing)

    record_id = new_id()
    key = None
    if upload is not None:
        key = storage.store_file(
            storage.record_file_key(model_id=model.id, record_id=record_id, client_name=upload.name),
            upload,
        )
    try:
        with transaction.atomic():
            dataset_id = refs.dataset_id or _dataset_id(refs.dataset_name, record.collection_date)
            created = ModelRecord.objects.create(
                id=record_id,
                model=model,
                timestamp=record.timestamp,
                collection_date=record.collection_date,
                dataset_id=dataset_id,
                experiment_id=refs.experiment_id,
                season_id=refs.season_id,
                site_id=refs.site_id,
                model_data=record.model_data,
                record_info=record.record_info,
                record_file=key,
            )
            _link_all(model, [(refs.experiment_id, refs.site_id, dataset_id)])
    except IntegrityError:
        if key:
            storage.delete_files([key])
        existing = _existing_record_id(model, record, ReferenceResolver(model).resolve(record))
        if existing is not None:
            raise _duplicate(existing) from None
        raise
    except BaseException:
        if key:
            storage.delete_files([key])
        raise
    return created


def update_record(record: ModelRecord, **fields: Any) -> ModelRecord:
    """Replace ``model_data`` and/or ``record_info``."""
    for name, value in fields.items():
        setattr(record, name, value)
    record.save(update_fields=[*fields, "updated_at"])
    return record


def delete_record(record: ModelRecord) -> None:
    """Delete the row; its file goes once the deletion has committed."""
    delete_records(ModelRecord.objects.filter(pk=record.pk))


# --- Bulk ingest ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IngestResult:
    created: int
    skipped_existing: int


@dataclass(frozen=True, slots=True)
class _Row:
    timestamp: datetime.datetime
    collection_date: datetime.date
    refs: References
    model_data: bytes  # JSON text: compact in memory, and what COPY sends anyway
    record_info: bytes


def _read_lines(model: MLModel, lines: Iterable[tuple[int, bytes]]) -> tuple[list[_Row], int]:
    """Check every line; return the rows to insert and the count of repeats within the body.

    Raises ValidationError (nothing written) naming each bad line by its number.
    """
    resolver = ReferenceResolver(model)
    rows: list[_Row] = []
    seen: set[tuple] = set()
    repeats = 0
    errors: dict[str, list[str]] = {}
    bad_lines = 0
    for number, line in lines:
        if not line.strip():
            continue
        try:
            record = parse_record(orjson.loads(line))
            refs = resolver.resolve(record)
        except orjson.JSONDecodeError as error:
            messages = [f"The line is not valid JSON: {error.msg}."]
        except RecordInvalid as invalid:
            messages = invalid.lines()
        else:
            key = (record.timestamp, record.collection_date, refs.dataset_name,
                   refs.experiment_id, refs.season_id, refs.site_id)
            if key in seen:
                repeats += 1
                continue
            seen.add(key)
            rows.append(
                _Row(
                    record.timestamp,
                    record.collection_date,
                    refs,
                    orjson.dumps(record.model_data),
                    orjson.dumps(record.record_info),
                )
            )
            continue
        bad_lines += 1
        if len(errors) < MAX_LISTED_LINE_ERRORS:
            errors[str(number)] = messages
    if bad_lines:
        listed = "" if bad_lines <= MAX_LISTED_LINE_ERRORS else f" (the first {MAX_LISTED_LINE_ERRORS} are listed)"
        noun = "line is" if bad_lines == 1 else "lines are"
        raise InvalidInput(f"{bad_lines} {noun} invalid{listed}; nothing was written.", errors=errors)
    if not rows and not repeats:
        raise ValidationError("The body holds no records.")
    return rows, repeats


def _create_missing_datasets(rows: list[_Row]) -> dict[str, uuid.UUID]:
    """Ids of the datasets the rows name, creating those that do not exist yet."""
    ids = {row.refs.dataset_name: row.refs.dataset_id for row in rows if row.refs.dataset_id}
    missing: dict[str, datetime.date] = {}
    for row in rows:
        if row.refs.dataset_id is None:
            missing.setdefault(row.refs.dataset_name, row.collection_date)
    if missing:
        Dataset.objects.bulk_create(
            [Dataset(dataset_name=name, collection_date=date) for name, date in missing.items()],
            ignore_conflicts=True,
        )
        ids.update(
            Dataset.objects.filter(dataset_name__in=list(missing)).values_list("dataset_name", "id")
        )
    return ids


_COLUMNS = (
    "id", "model_id", "timestamp", "collection_date", "dataset_id", "experiment_id",
    "season_id", "site_id", "model_data", "record_file", "record_info", "created_at",
    "updated_at",
)


def _insert_postgres(connection, rows: Iterable[tuple]) -> int:
    """COPY the rows into a scratch table, then insert those that are new; the count inserted."""
    columns = ", ".join(_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE records_ingest "
            "(LIKE records_modelrecord INCLUDING DEFAULTS) ON COMMIT DROP"
        )
        with cursor.cursor.copy(f"COPY records_ingest ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO records_modelrecord ({columns}) SELECT {columns} FROM records_ingest "
            "ON CONFLICT ON CONSTRAINT record_unique_key DO NOTHING"
        )
        created = cursor.rowcount
        cursor.execute("DROP TABLE records_ingest")  # at once: the caller's transaction may go on
        return created


def _insert_orm(model: MLModel, rows: list[tuple]) -> int:
    """Batched inserts that skip existing records; the count inserted.

    Counting before and after is exact here: SQLite's IMMEDIATE transactions hold the write
    lock from the first statement, so no other writer can add rows in between.
    """
    before = ModelRecord.objects.filter(model=model).count()
    ModelRecord.objects.bulk_create(
        (
            ModelRecord(**dict(zip(_COLUMNS, row, strict=True)))
            for row in rows
        ),
        batch_size=SQLITE_BATCH_SIZE,
        ignore_conflicts=True,
    )
    return ModelRecord.objects.filter(model=model).count() - before


def ingest_records(*, model: MLModel, lines: Iterable[tuple[int, bytes]]) -> IngestResult:
    """Add many records atomically: all lines are checked first, and any bad line means
    nothing is written. Records that exist already, or repeat an earlier line, are skipped."""
    rows, repeats = _read_lines(model, lines)
    connection = connections[router.db_for_write(ModelRecord)]
    now = timezone.now()
    with transaction.atomic():
        dataset_ids = _create_missing_datasets(rows)
        if connection.vendor == "postgresql":
            values = (
                (new_id(), model.id, row.timestamp, row.collection_date,
                 dataset_ids[row.refs.dataset_name], row.refs.experiment_id, row.refs.season_id,
                 row.refs.site_id, row.model_data.decode(), None, row.record_info.decode(), now, now)
                for row in rows
            )
            created = _insert_postgres(connection, values)
        else:
            values = [
                (new_id(), model.id, row.timestamp, row.collection_date,
                 dataset_ids[row.refs.dataset_name], row.refs.experiment_id, row.refs.season_id,
                 row.refs.site_id, orjson.loads(row.model_data), None,
                 orjson.loads(row.record_info), now, now)
                for row in rows
            ]
            created = _insert_orm(model, values)
        _link_all(
            model,
            {(row.refs.experiment_id, row.refs.site_id, dataset_ids[row.refs.dataset_name]) for row in rows},
        )
    return IngestResult(created=created, skipped_existing=len(rows) + repeats - created)


def delete_records(queryset) -> None:
    """Delete many records; their files go once the deletion has committed."""
    with transaction.atomic():
        keys = list(queryset.exclude(record_file=None).values_list("record_file", flat=True))
        queryset.delete()
        if keys:
            transaction.on_commit(lambda: storage.delete_files(keys))
