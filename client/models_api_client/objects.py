"""The service's objects as typed, read-only Python objects.

Each is a frozen dataclass whose fields are exactly the contract's (in its order, with
``created_at`` and ``updated_at`` last): ids are :class:`uuid.UUID`, times aware
:class:`datetime.datetime` in UTC, dates :class:`datetime.date`, JSON fields plain Python
values. ``to_dict()`` gives the JSON-shaped dict the service sent (ids and times as text);
``from_json()`` reads one.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Self

__all__ = [
    "Dataset",
    "Experiment",
    "IngestResult",
    "Model",
    "Record",
    "Run",
    "Season",
    "Site",
]


def parse_datetime(text: str) -> datetime.datetime:
    """An ISO 8601 time as an aware datetime in UTC (a time without a zone is UTC)."""
    value = datetime.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def format_datetime(value: datetime.datetime) -> str:
    """The service's form: UTC with ``Z``, microseconds only when not zero."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return f"{text}Z"


def _parse_date(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


_PARSERS: dict[str, Callable[[Any], Any] | None] = {
    "uuid": uuid.UUID,
    "datetime": parse_datetime,
    "date": _parse_date,
    "value": None,
}


def _dump(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime.datetime):
        return format_datetime(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


_FIELDS: dict[type, list[tuple[str, Callable[[Any], Any] | None]]] = {}


def _fields_of(cls: type) -> list[tuple[str, Callable[[Any], Any] | None]]:
    """Each field's name and parser, read once from its annotation (ids, times and dates
    are parsed; text and JSON values are kept as they are)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = []
        for field in dataclasses.fields(cls):
            annotation = str(field.type)
            if "UUID" in annotation:
                kind = "uuid"
            elif "datetime.datetime" in annotation:
                kind = "datetime"
            elif "datetime.date" in annotation:
                kind = "date"
            else:
                kind = "value"
            fields.append((field.name, _PARSERS[kind]))
        _FIELDS[cls] = fields
    return fields


class _Object:
    """What every object shares: reading from JSON and giving JSON back. (JSON fields are
    left out of the hash, since they may be dicts.)"""

    __slots__ = ()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """The object from its JSON form (the service's answer); unknown keys are ignored,
        missing ones are None."""
        values = {}
        for name, parse in _fields_of(cls):
            value = data.get(name)
            values[name] = value if parse is None or value is None else parse(value)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-shaped dict, as the service writes it (ids and times as text)."""
        return {name: _dump(getattr(self, name)) for name, _ in _fields_of(type(self))}


@dataclasses.dataclass(frozen=True, slots=True)
class Model(_Object):
    """A machine-learning model."""

    id: uuid.UUID
    model_name: str
    model_url: str | None
    model_info: dict[str, Any] = dataclasses.field(hash=False)
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Run(_Object):
    """One run of a model."""

    id: uuid.UUID
    model_id: uuid.UUID
    model_run_info: dict[str, Any] = dataclasses.field(hash=False)
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Dataset(_Object):
    """A dataset (a record may create its own)."""

    id: uuid.UUID
    dataset_name: str
    dataset_info: dict[str, Any] = dataclasses.field(hash=False)
    collection_date: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Experiment(_Object):
    """An experiment."""

    id: uuid.UUID
    experiment_name: str
    experiment_info: dict[str, Any] = dataclasses.field(hash=False)
    experiment_start_date: datetime.date | None
    experiment_end_date: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Season(_Object):
    """A season, within its experiment."""

    id: uuid.UUID
    season_name: str
    season_info: dict[str, Any] = dataclasses.field(hash=False)
    season_start_date: datetime.date | None
    season_end_date: datetime.date | None
    experiment_id: uuid.UUID
    experiment_name: str
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Site(_Object):
    """A site."""

    id: uuid.UUID
    site_name: str
    site_city: str | None
    site_state: str | None
    site_country: str | None
    site_info: dict[str, Any] = dataclasses.field(hash=False)
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Record(_Object):
    """A model record: one timestamped prediction of a model, with an optional stored file
    (``record_file`` is its storage key; ``client.records.download`` fetches it)."""

    id: uuid.UUID
    timestamp: datetime.datetime
    collection_date: datetime.date
    model_id: uuid.UUID
    model_name: str
    model_data: Any = dataclasses.field(hash=False)
    dataset_id: uuid.UUID
    dataset_name: str
    experiment_id: uuid.UUID
    experiment_name: str
    season_id: uuid.UUID
    season_name: str
    site_id: uuid.UUID
    site_name: str
    record_file: str | None
    record_info: dict[str, Any] = dataclasses.field(hash=False)
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    """What a bulk ingest did: records written, and records skipped because they existed
    (or repeated an earlier one)."""

    created: int = 0
    skipped_existing: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(
            self.created + other.created, self.skipped_existing + other.skipped_existing
        )

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IngestResult:
        return cls(int(data["created"]), int(data["skipped_existing"]))

    def to_dict(self) -> dict[str, int]:
        return {"created": self.created, "skipped_existing": self.skipped_existing}
