"""Checking one record as a client sends it (a JSON object, a multipart form, or one line of a
bulk NDJSON body), without a DRF serializer.

A bulk request carries up to 100,000 lines; a serializer per line would cost more than the
insert itself. These plain functions are a few microseconds per line and are the only rules
there are: the single-record endpoint uses them too, so a field is accepted or refused the same
way whichever form it arrives in.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.uploadedfile import UploadedFile

from models_api.api.errors import InvalidInput, TooLarge
from models_api.api.json_values import check_json_value, parse_json_text
from models_api.api.names import clean_name

INPUT_FIELDS = frozenset(
    {
        "timestamp",
        "collection_date",
        "model_data",
        "dataset_name",
        "experiment_name",
        "season_name",
        "site_name",
        "record_info",
    }
)
REQUIRED_FIELDS = ("timestamp", "model_data", "experiment_name", "season_name", "site_name")
#: Required, and any JSON value: null included.
_MAY_BE_NULL = frozenset({"model_data"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: A date, or a date and time (seconds and a fraction optional), with an optional zone.
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?"
    r"(?:Z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
UTC = datetime.UTC


class RecordInput(NamedTuple):
    """One record's checked input fields (a named tuple: bulk ingest makes one per line)."""

    timestamp: datetime.datetime
    collection_date: datetime.date
    model_data: Any
    experiment_name: str
    season_name: str
    site_name: str
    dataset_name: str | None
    record_info: dict

    def without_values(self) -> RecordInput:
        """The record without its JSON values, once the ingest holds them as text (positional:
        ``_replace`` costs twice as much, once a line)."""
        timestamp, collection_date, _, experiment, season, site, dataset, _ = self
        return RecordInput(timestamp, collection_date, None, experiment, season, site, dataset, {})


def parse_timestamp(value: Any) -> datetime.datetime:
    """An ISO 8601 timestamp as an aware UTC datetime; one without a zone is taken as UTC.

    The text must match the ISO 8601 shape first: Python 3.11's ``fromisoformat`` skips one
    stray character before the zone (``10:00:00xZ``), which would accept garbage.
    """
    if not isinstance(value, str):
        raise ValueError("Give the timestamp as ISO 8601 text, such as 2024-06-01T10:00:00Z.")
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(
            f"'{value[:64]}' is not an ISO 8601 timestamp such as 2024-06-01T10:00:00Z."
        )
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"'{value[:64]}' is not an ISO 8601 timestamp such as 2024-06-01T10:00:00Z."
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError("The timestamp is out of range once converted to UTC.") from None


def parse_date(value: Any) -> datetime.date:
    if not isinstance(value, str) or not _DATE.match(value):
        raise ValueError("Give the date as YYYY-MM-DD.")
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a valid date.") from None


@functools.lru_cache(maxsize=4096)
def _clean_name_text(value: str) -> str:
    return clean_name(value)


def parse_name(value: Any) -> str:
    """A name by ``models_api.api.names.clean_name``; the same few names come on every line of
    a bulk body, so text is checked once per distinct value."""
    return _clean_name_text(value) if type(value) is str else clean_name(value)


def parse_json(value: Any, *, form: bool, checked: bool = False) -> Any:
    """A JSON value: JSON text in a form, a JSON value already in a JSON body (``checked``
    when its text was already found free of NUL characters and deep nesting)."""
    try:
        if form:
            return parse_json_text(value)
        if not checked:
            check_json_value(value)
    except DjangoValidationError as error:
        raise ValueError(error.messages[0]) from None
    return value


def _single_values(data: Any) -> dict[str, Any]:
    """A multipart form's fields as single values (a repeated field is an error).

    A plain mapping (a CSV row of ``import_records``) has one value per field already.
    """
    if not hasattr(data, "getlist"):
        return data
    values, errors = {}, {}
    for key in data:
        items = data.getlist(key)
        if len(items) > 1:
            errors[key] = ["Give this field once."]
        else:
            values[key] = items[0]
    if errors:
        raise InvalidInput(errors)
    return values


#: Each input field with its parser, in the order checked (and reported).
_PARSERS = (
    ("timestamp", parse_timestamp),
    ("collection_date", parse_date),
    ("model_data", parse_json),
    ("record_info", parse_json),
    ("experiment_name", parse_name),
    ("season_name", parse_name),
    ("site_name", parse_name),
    ("dataset_name", parse_name),
)


def parse_record(
    data: Any,
    *,
    form: bool = False,
    ignore: frozenset[str] = frozenset(),
    json_checked: bool = False,
) -> RecordInput:
    """Check one record's fields; raise ``InvalidInput`` listing every field at fault.

    ``form``: values are text (a multipart form, a CSV row), JSON values as JSON text.
    ``ignore``: fields accepted and dropped (those an export adds: ids, names, times).
    ``json_checked``: the JSON values were already found safe from their text.

    Every record of a bulk body comes through here, so the common case (known fields, all
    present) costs a few set and dictionary operations before the fields' own checks.
    """
    if form:
        data = _single_values(data)
        if data.get("record_file") == "":
            # A browser's file input left empty (filename=""): no file.
            data = {key: value for key, value in data.items() if key != "record_file"}
    if type(data) is not dict and not isinstance(data, Mapping):
        raise InvalidInput({"non_field_errors": ["Give the record as a JSON object."]})
    errors: dict[str, list[str]] = {}
    keys = data.keys()
    if not keys <= INPUT_FIELDS:
        _unknown_fields(data, keys - INPUT_FIELDS - ignore, form, errors)
    get = data.get
    if not keys >= _REQUIRED_FIELDS or None in map(get, _NOT_NULL_FIELDS):
        _missing_fields(data, errors)

    values: dict[str, Any] = {}
    for field, parse in _PARSERS:
        value = get(field)
        if value is None or field in errors:
            continue
        try:
            values[field] = (
                parse(value) if parse is not parse_json
                else parse_json(value, form=form, checked=json_checked)
            )
        except ValueError as error:
            errors[field] = [str(error)]
    record_info = values.get("record_info")
    if record_info is not None and type(record_info) is not dict:
        errors["record_info"] = ['Give a JSON object, such as {"key": "value"}.']
    if errors:
        raise InvalidInput(errors)

    timestamp = values["timestamp"]
    return RecordInput(
        timestamp,
        values.get("collection_date") or timestamp.date(),
        values.get("model_data"),  # absent from values when given as JSON null
        values["experiment_name"],
        values["season_name"],
        values["site_name"],
        values.get("dataset_name"),
        record_info or {},
    )


_REQUIRED_FIELDS = frozenset(REQUIRED_FIELDS)
_NOT_NULL_FIELDS = tuple(key for key in REQUIRED_FIELDS if key not in _MAY_BE_NULL)


def _unknown_fields(
    data: Mapping, unknown: set[str], form: bool, errors: dict[str, list[str]]
) -> None:
    for key in unknown:
        if key == "record_file":
            if data[key] is None and not form:
                continue  # "no file", as a record's own JSON says
            errors[key] = [
                "Send the file as a file part with a file name (filename=\"...\")."
                if form
                else "Files can only be sent as a part of a multipart form."
            ]
        else:
            errors[key] = ["Unknown field."]


def _missing_fields(data: Mapping, errors: dict[str, list[str]]) -> None:
    for key in REQUIRED_FIELDS:
        if key not in data:
            errors.setdefault(key, ["This field is required."])
        elif data[key] is None and key not in _MAY_BE_NULL:
            errors.setdefault(key, ["This field may not be null."])


def form_upload(files: Any) -> UploadedFile | None:
    """The record's file from a multipart form's files: at most one, not empty, not too large."""
    unknown = sorted(set(files) - {"record_file"})
    if unknown:
        raise InvalidInput({name: ["Unknown field."] for name in unknown})
    uploads = files.getlist("record_file")
    if not uploads:
        return None
    if len(uploads) > 1:
        raise InvalidInput({"record_file": ["Send one file."]})
    upload = uploads[0]
    if upload.size == 0:
        raise InvalidInput({"record_file": ["The file is empty."]})
    if upload.size > settings.RECORD_FILE_MAX_SIZE:
        raise TooLarge(
            f"The file is larger than the limit of {settings.RECORD_FILE_MAX_SIZE:,} bytes."
        )
    return upload
