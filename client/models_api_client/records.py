"""``client.records``: adding records (one, or many in bulk bodies), reading them back (one by
one from the NDJSON stream, or as Arrow, pandas or Polars tables), and one record's reads,
changes, deletion and file download."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sized
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import pyarrow as pa
from tqdm.auto import tqdm

from models_api_client import _arrow
from models_api_client._http import HTTP, error_from, iter_body, json_of
from models_api_client.errors import APIError, Invalid, TransportError
from models_api_client.objects import IngestResult, Record
from models_api_client.resources import Id, json_value, path_id, query_value

if TYPE_CHECKING:
    import pandas
    import polars

    from models_api_client.client import Client

__all__ = ["Records"]

NDJSON = "application/x-ndjson"
ARROW_STREAM = "application/vnd.apache.arrow.stream"
BODY_TYPES = {
    "ndjson": NDJSON,
    "arrow": ARROW_STREAM,
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
BodyFormat = Literal["arrow", "csv", "parquet", "ndjson"]

#: ``GET /id/{id}/records``: exact matches.
EXACT_FILTERS = frozenset(
    {"experiment_name", "season_name", "site_name", "dataset_name", "collection_date"}
)
#: ``GET /id/{id}/records/filter``: lists of names, and a time window.
LIST_FILTERS = frozenset({"experiment_names", "season_names", "site_names", "dataset_names"})
WINDOW_FILTERS = frozenset({"start_timestamp", "end_timestamp"}) | LIST_FILTERS
#: Both streams (servers with paging).
PAGING = frozenset({"limit", "offset"})

#: Lines (NDJSON fallback) gathered into one Arrow batch.
FALLBACK_BATCH_ROWS = 10_000

_UNSET: Any = object()

FileSource = str | os.PathLike[str] | IO[bytes]


def stream_query(model_id: Id, filters: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]]:
    """The stream a set of filters goes to, and its query; ValueError (before any request)
    for an unknown filter, or exact filters mixed with window and list filters."""
    unknown = sorted(set(filters) - EXACT_FILTERS - WINDOW_FILTERS - PAGING)
    if unknown:
        raise ValueError(
            f"Unknown record filter(s): {', '.join(unknown)}. Exact filters: "
            f"{', '.join(sorted(EXACT_FILTERS))}; window and list filters: "
            f"{', '.join(sorted(WINDOW_FILTERS))}; either with limit and offset."
        )
    exact = sorted(set(filters) & EXACT_FILTERS)
    window = sorted(set(filters) & WINDOW_FILTERS)
    if exact and window:
        raise ValueError(
            f"Exact filters ({', '.join(exact)}) and window or list filters "
            f"({', '.join(window)}) go to different streams and cannot be mixed; for one name "
            "in a list filter give a list of one (site_names=['Site A1'])."
        )
    base = f"/api/models/id/{path_id(model_id)}/records"
    params: list[tuple[str, str]] = []
    for name, value in filters.items():
        if value is None:
            continue
        if name in LIST_FILTERS:
            values = [value] if isinstance(value, str) else list(value)
            params.extend((name, query_value(item)) for item in values)
        else:
            if isinstance(value, list | tuple | set):
                raise ValueError(f"{name} takes one value, not a list.")
            params.append((name, query_value(value)))
    return (f"{base}/filter" if window else base), params


def _format_unknown(error: APIError) -> bool:
    """Whether an error says the server has no such record format (a server from before the
    formats: 400 naming ``format`` as an unknown parameter; or 406)."""
    return error.status_code == 406 or (error.status_code == 400 and "format" in error.errors)


class _Rows:
    """A bulk batch of records given as dicts (their NDJSON lines kept)."""

    def __init__(self, rows: list[dict[str, Any]], lines: list[bytes]) -> None:
        self.rows, self.lines = rows, lines

    def __len__(self) -> int:
        return len(self.rows)

    def body(self, fmt: str) -> bytes:
        if fmt == "ndjson":
            return b"\n".join(self.lines) + b"\n"
        return _arrow.body_bytes(_arrow.rows_batch(self.rows), fmt)

    def halves(self) -> tuple[_Rows, _Rows]:
        half = len(self.rows) // 2
        return (
            _Rows(self.rows[:half], self.lines[:half]),
            _Rows(self.rows[half:], self.lines[half:]),
        )


class _Table:
    """A bulk batch of records given as a table (an Arrow batch of the input columns)."""

    def __init__(self, batch: pa.RecordBatch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return int(self.batch.num_rows)

    def body(self, fmt: str) -> bytes:
        if fmt == "ndjson":
            return b"\n".join(_arrow.batch_lines(self.batch)) + b"\n"
        # An optional column with no value at all is left out, so that the service's
        # defaults apply (as they do for the keys an NDJSON line leaves out).
        batch = self.batch
        for name in batch.schema.names:
            column = batch.column(name)
            if name not in _arrow.REQUIRED_INPUT and column.null_count == len(column):
                batch = batch.drop_columns([name])
        return _arrow.body_bytes(batch, fmt)

    def halves(self) -> tuple[_Table, _Table]:
        half = len(self) // 2
        return _Table(self.batch.slice(0, half)), _Table(self.batch.slice(half))


_Batch = _Rows | _Table


def _rebatch(batches: Iterable[pa.RecordBatch], size: int) -> Iterator[pa.RecordBatch]:
    """Batches of ``size`` rows (the last one shorter) from batches of any size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        start = 0
        while start < batch.num_rows:
            take = min(size - count, batch.num_rows - start)
            pending.append(batch.slice(start, take))
            count += take
            start += take
            if count == size:
                yield _combine(pending)
                pending, count = [], 0
    if count:
        yield _combine(pending)


def _combine(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    if len(batches) == 1:
        return batches[0]
    (batch,) = pa.Table.from_batches(batches).combine_chunks().to_batches()
    return batch


class Records:
    """The records of models: ``client.records``."""

    #: The largest bulk body sent (below the service's default limit of 64 MB): a batch whose
    #: body would be larger is split, and so is one the service refuses with 413.
    max_body_bytes = 32 * 1024 * 1024
    #: Seconds to wait for the answer to a bulk batch (the service answers once it has
    #: checked and written the whole batch: tens of seconds for 50,000 records on a slow
    #: database). A batch whose answer does not come in time is retried like a lost one.
    bulk_timeout = 600.0

    def __init__(self, client: Client) -> None:
        self._client = client
        #: Whether the server takes bulk bodies of each format but NDJSON (absent: not known
        #: yet) / gives Arrow streams (None: not known yet).
        self._bodies: dict[str, bool] = {}
        self._arrow_streams: bool | None = None

    @property
    def _arrow_bodies(self) -> bool | None:
        return self._bodies.get("arrow")

    @property
    def _http(self) -> HTTP:
        return self._client._http

    # --- adding ------------------------------------------------------------------------------

    def add(
        self,
        model_id: Id,
        *,
        timestamp: Any,
        model_data: Any,
        experiment_name: str,
        season_name: str,
        site_name: str,
        collection_date: Any = None,
        dataset_name: str | None = None,
        record_info: Mapping[str, Any] | None = None,
        file: FileSource | None = None,
        file_name: str | None = None,
    ) -> Record:
        """Add one record and give it back as the service stored it.

        ``timestamp``: an aware or naive (= UTC) ``datetime``, or ISO text;
        ``collection_date``: a ``date`` or ISO text (default: the timestamp's UTC date);
        ``dataset_name`` defaults to ``"<model_name> Dataset <collection_date>"`` and is
        created if missing. ``file``: a path or a binary file object, sent with the record as a
        multipart form (the seed's way), under ``file_name`` (default: the file's own name).

        Safe to retry, and retried like a read: when a try whose answer was lost had written
        the record, the retry's 409 names it and ``add`` returns that record. A 409 on the
        first try (the record was there before) is a :class:`Conflict` with ``existing_id``.
        """
        fields: dict[str, Any] = {
            "timestamp": timestamp,
            "model_data": model_data,
            "experiment_name": experiment_name,
            "season_name": season_name,
            "site_name": site_name,
        }
        if collection_date is not None:
            fields["collection_date"] = collection_date
        if dataset_name is not None:
            fields["dataset_name"] = dataset_name
        if record_info is not None:
            fields["record_info"] = record_info
        path = f"/api/models/id/{path_id(model_id)}/records"
        if file is None:
            sent = self._http.send("POST", path, idempotent=True, json_body=json_value(fields))
        else:
            form = {
                name: json.dumps(json_value(value)) if name in _arrow.JSON_FIELDS
                else query_value(value)
                for name, value in fields.items()
            }
            with _Upload(file, file_name) as upload:
                sent = self._http.send(
                    "POST", path, idempotent=True, files=lambda: (form, upload.part())
                )
        response = sent.response
        if response.status_code == 409 and sent.resent:
            error = error_from(response)
            existing = getattr(error, "existing_id", None)
            if existing is not None:
                return self.get(existing)
            raise error
        if not response.is_success:
            raise error_from(response)
        return Record.from_json(json_of(response))

    def add_many(
        self,
        model_id: Id,
        records: Any,
        *,
        batch_size: int = 50_000,
        progress: bool = False,
        format: BodyFormat | None = None,
    ) -> IngestResult:
        """Add many records in bulk bodies of ``batch_size`` records; the totals come back.

        ``records``: an iterable of dicts (each a record's JSON form, as ``add`` takes it;
        times may be ``datetime``), a pandas or Polars DataFrame, or a pyarrow Table,
        RecordBatch or RecordBatchReader, with the record's input columns (``timestamp``,
        ``collection_date``, ``model_data``, ``dataset_name``, ``experiment_name``,
        ``season_name``, ``site_name``, ``record_info``). The other fields of a record (an
        export's ids, times and file key) are dropped, so an export can be added back; an
        unknown field is a ValueError before any request. In a table, a text ``model_data`` or
        ``record_info`` column is JSON text (as exports give it); any other column type, or
        Python values in a pandas object column, is turned into JSON.

        ``format``: the bodies' format. By default (None) a DataFrame or table is sent as
        Arrow IPC streams and dicts as NDJSON; when the server does not take Arrow bodies
        (415, a server from before the formats) the client says NDJSON instead from then on.
        ``format="arrow"``, ``"csv"``, ``"parquet"`` or ``"ndjson"`` forces one (no
        fallback).

        Each batch is retried on connection failures and 503 (safe: records that exist are
        skipped and counted, never doubled). A batch larger than :attr:`max_body_bytes`, or
        refused with 413, is split in two. A batch with invalid records raises
        :class:`Invalid` whose ``errors`` name the bad records by their number in
        ``records`` (from 1); the batches before it stay written (adding them again skips
        them). ``progress=True`` shows a tqdm bar.
        """
        if format not in (None, *BODY_TYPES):
            raise ValueError("format is 'arrow', 'csv', 'parquet', 'ndjson' or None.")
        return self._add_many(
            model_id, records, batch_size=batch_size, progress=progress, fmt=format,
            auto=format is None,
        )

    def _add_many(
        self,
        model_id: Id,
        records: Any,
        *,
        batch_size: int,
        progress: bool,
        fmt: str | None,
        auto: bool,
    ) -> IngestResult:
        """:meth:`add_many` in bodies of ``fmt`` (None: Arrow for tables, NDJSON for dicts);
        ``auto``: NDJSON instead for a server that does not take that format (what
        ``models-api records import`` asks, to post a file in its own format)."""
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1.")
        path = f"/api/models/id/{path_id(model_id)}/records"
        total: int | None
        batches: Iterator[_Batch]
        if _arrow.is_table_like(records):
            reader, total = _arrow.input_reader(records)
            _arrow.check_columns(reader.schema.names)
            batches = (_Table(b) for b in _rebatch(map(_arrow.input_batch, reader), batch_size))
            fmt = fmt or "arrow"
        else:
            if isinstance(records, Mapping) or isinstance(records, str | bytes):
                raise TypeError("records is an iterable of dicts (or a table), not one record.")
            total = len(records) if isinstance(records, Sized) else None
            batches = self._row_batches(records, batch_size)
            fmt = fmt or "ndjson"
        result = IngestResult()
        first = 0
        with tqdm(total=total, unit="records", disable=not progress, desc="add_many") as bar:
            for batch in batches:
                size = len(batch)
                result += self._send_batch(path, batch, first, fmt, auto=auto, bar=bar)
                first += size
        return result

    def _row_batches(self, records: Iterable[Any], batch_size: int) -> Iterator[_Batch]:
        rows: list[dict[str, Any]] = []
        lines: list[bytes] = []
        size = 0
        for number, record in enumerate(records, 1):
            if not isinstance(record, Mapping):
                raise TypeError(f"Record {number} is a {type(record).__name__}, not a dict.")
            row = _arrow.prepare_row(number, record)
            line = _arrow.dumps(row).encode()
            if rows and (len(rows) >= batch_size or size + len(line) >= self.max_body_bytes):
                yield _Rows(rows, lines)
                rows, lines, size = [], [], 0
            rows.append(row)
            lines.append(line)
            size += len(line) + 1
        if rows:
            yield _Rows(rows, lines)

    def _send_batch(
        self, path: str, batch: _Batch, first: int, fmt: str, *, auto: bool, bar: Any
    ) -> IngestResult:
        if auto and self._bodies.get(fmt) is False:
            fmt = "ndjson"
        body = batch.body(fmt)
        if len(body) > self.max_body_bytes and len(batch) > 1:
            return self._send_halves(path, batch, first, fmt, auto=auto, bar=bar)
        sent = self._http.send(
            "POST", path, idempotent=True, content=body, content_type=BODY_TYPES[fmt],
            read_timeout=self.bulk_timeout,
        )
        response = sent.response
        if response.status_code == 415 and fmt != "ndjson" and auto:
            self._bodies[fmt] = False
            return self._send_batch(path, batch, first, "ndjson", auto=auto, bar=bar)
        if response.status_code == 413 and len(batch) > 1:
            return self._send_halves(path, batch, first, fmt, auto=auto, bar=bar)
        if not response.is_success:
            error = error_from(response)
            if isinstance(error, Invalid):
                _renumber(error, first)
            raise error
        if fmt != "ndjson":
            self._bodies[fmt] = True
        bar.update(len(batch))
        return IngestResult.from_json(json_of(response))

    def _send_halves(
        self, path: str, batch: _Batch, first: int, fmt: str, *, auto: bool, bar: Any
    ) -> IngestResult:
        head, tail = batch.halves()
        result = self._send_batch(path, head, first, fmt, auto=auto, bar=bar)
        return result + self._send_batch(path, tail, first + len(head), fmt, auto=auto, bar=bar)

    # --- reading -----------------------------------------------------------------------------

    def iter(self, model_id: Id, **filters: Any) -> Iterator[Record]:
        """The model's records one by one, ordered by timestamp then id, read from the NDJSON
        stream as it arrives (constant memory, however many match).

        Exact filters (``experiment_name``, ``season_name``, ``site_name``, ``dataset_name``,
        ``collection_date``) read ``/records``; window and list filters (``start_timestamp``,
        ``end_timestamp``, both inclusive; ``experiment_names``, ``season_names``,
        ``site_names``, ``dataset_names``, each a list) read ``/records/filter``. Mixing the
        two kinds, or an unknown filter, is a ValueError, raised here, before any request.
        The request is retried until the stream starts; a connection lost mid-stream is a
        :class:`TransportError` (the records already given stay valid).
        """
        path, params = stream_query(model_id, filters)
        return (Record.from_json(json.loads(line)) for line in self._lines(path, params))

    def _lines(self, path: str, params: list[tuple[str, str]]) -> Iterator[bytes]:
        """The NDJSON lines of a stream, as bytes."""
        with self._http.stream("GET", path, params=params) as response:
            partial = b""
            for chunk in iter_body(response):
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    if line.strip():
                        yield line
            if partial.strip():
                yield partial

    def iter_batches(self, model_id: Id, **filters: Any) -> Iterator[pa.RecordBatch]:
        """The model's records as Arrow record batches, read from the Arrow stream
        (``?format=arrow``) batch by batch as it arrives; the filters are those of
        :meth:`iter`. Columns in the record's field order: ids as strings, times
        ``timestamp[us, tz=UTC]``, ``collection_date`` ``date32``, ``model_data`` and
        ``record_info`` JSON text. From a server without the formats the same batches are
        built from the NDJSON stream."""
        path, params = stream_query(model_id, filters)
        source = self._batch_source(path, params)
        next(source)  # the schema
        return source  # type: ignore[return-value]

    def _batch_source(
        self, path: str, params: list[tuple[str, str]]
    ) -> Iterator[pa.Schema | pa.RecordBatch]:
        """The schema, then the batches (Arrow from the server, else from NDJSON)."""
        if self._arrow_streams is not False:
            try:
                with self._http.stream(
                    "GET", path, params=[*params, ("format", "arrow")]
                ) as response:
                    self._arrow_streams = True
                    reader = pa.ipc.open_stream(_arrow.open_chunks(iter_body(response)))
                    yield _arrow.normalize_records(_empty(reader.schema)).schema
                    for batch in reader:
                        yield _arrow.normalize_records(batch)
                    return
            except APIError as error:
                if isinstance(error, TransportError) or not _format_unknown(error):
                    raise
                self._arrow_streams = False
        yield _arrow.RECORD_SCHEMA
        rows: list[Any] = []
        for line in self._lines(path, params):
            rows.append(json.loads(line))
            if len(rows) >= FALLBACK_BATCH_ROWS:
                yield _arrow.batch_from_json(rows)
                rows = []
        if rows:
            yield _arrow.batch_from_json(rows)

    def to_arrow(self, model_id: Id, **filters: Any) -> pa.Table:
        """The model's records as a pyarrow Table (see :meth:`iter_batches` for the columns
        and :meth:`iter` for the filters)."""
        path, params = stream_query(model_id, filters)
        source = self._batch_source(path, params)
        schema = next(source)
        assert isinstance(schema, pa.Schema)
        return pa.Table.from_batches(list(source), schema=schema)  # type: ignore[arg-type]

    def to_pandas(
        self, model_id: Id, *, parse_json: bool = True, **filters: Any
    ) -> pandas.DataFrame:
        """The model's records as a pandas DataFrame (needs the ``dataframes`` extra).

        Times are ``datetime64[us, UTC]``, ``collection_date`` holds ``datetime.date``s, ids
        are text. ``model_data`` and ``record_info`` are parsed into Python values (dicts,
        lists, ...) unless ``parse_json=False`` keeps their JSON text."""
        try:
            import pandas  # noqa: F401
        except ImportError as error:
            raise ImportError(_EXTRA_HINT.format(name="pandas")) from error
        frame = self.to_arrow(model_id, **filters).to_pandas()
        if parse_json:
            for name in ("model_data", "record_info"):
                frame[name] = pandas_json(frame[name])
        return frame

    def to_polars(self, model_id: Id, **filters: Any) -> polars.DataFrame:
        """The model's records as a Polars DataFrame (needs the ``dataframes`` extra), with
        the Arrow columns' types; ``model_data`` and ``record_info`` stay JSON text
        (``pl.col("model_data").str.json_decode()`` reads them)."""
        try:
            import polars as pl
        except ImportError as error:
            raise ImportError(_EXTRA_HINT.format(name="polars")) from error
        frame = pl.from_arrow(self.to_arrow(model_id, **filters))
        assert isinstance(frame, pl.DataFrame)
        return frame

    # --- one record --------------------------------------------------------------------------

    def get(self, record_id: Id) -> Record:
        """One record; :class:`NotFound` for an unknown id."""
        response = self._http.request(
            "GET", f"/api/models/records/id/{path_id(record_id)}", idempotent=True
        )
        return Record.from_json(json_of(response))

    def update(
        self, record_id: Id, *, model_data: Any = _UNSET, record_info: Any = _UNSET
    ) -> Record:
        """Replace the record's ``model_data`` and/or ``record_info`` (``model_data=None``
        sets JSON null); naming neither is an :class:`Invalid` from the service."""
        body: dict[str, Any] = {}
        if model_data is not _UNSET:
            body["model_data"] = json_value(model_data)
        if record_info is not _UNSET:
            body["record_info"] = json_value(record_info)
        response = self._http.request(
            "PATCH", f"/api/models/records/id/{path_id(record_id)}", idempotent=True,
            content=json.dumps(body).encode(), content_type="application/json",
        )
        return Record.from_json(json_of(response))

    def delete(self, record_id: Id) -> None:
        """Delete the record and its stored file (retried like the catalogue's deletes)."""
        sent = self._http.send(
            "DELETE", f"/api/models/records/id/{path_id(record_id)}", idempotent=True
        )
        if sent.response.status_code == 404 and sent.resent:
            return
        if not sent.response.is_success:
            raise error_from(sent.response)

    def download(self, record_id: Id, destination: FileSource) -> Path | None:
        """Fetch the record's file: follows the service's 307 to the signed link (sent without
        the token, which the link does not need) and streams the body to ``destination``: a
        path (written whole or not at all; an existing folder gets the file under its stored
        name), or a binary file object (written from its position). Gives the path written,
        or None for a file object. :class:`NotFound` when the record has no file."""
        sent = self._http.send(
            "GET", f"/api/models/records/id/{path_id(record_id)}/download", idempotent=True
        )
        response = sent.response
        if response.status_code not in (301, 302, 303, 307, 308):
            if not response.is_success:
                raise error_from(response)
            raise APIError(
                f"The download answered {response.status_code} instead of a redirect.",
                status_code=response.status_code,
            )
        if "Location" not in response.headers:
            raise APIError(
                "The download's redirect names no Location.", status_code=response.status_code
            )
        location = str(response.url.join(response.headers["Location"]))
        with self._http.stream("GET", location, plain=True) as body:
            if isinstance(destination, str | os.PathLike):
                target = Path(destination)
                if target.is_dir():
                    target = target / _attachment_name(body.headers, location)
                part = target.with_name(f".{target.name}.part")
                try:
                    with open(part, "wb") as handle:
                        for chunk in iter_body(body, 1 << 20):
                            handle.write(chunk)
                    os.replace(part, target)
                finally:
                    part.unlink(missing_ok=True)
                return target
            for chunk in iter_body(body, 1 << 20):
                destination.write(chunk)
            return None


_EXTRA_HINT = "{name} is needed: pip install 'models-api-client[dataframes]'"


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)


def pandas_json(column: Any) -> list[Any]:
    return [None if value is None else json.loads(value) for value in column]


def _renumber(error: Invalid, first: int) -> None:
    """Bulk errors name lines of the batch; make them name records of the whole input."""
    if not first:
        return
    renumbered: dict[str, list[str]] = {}
    for key, messages in error.errors.items():
        renumbered[str(int(key) + first) if key.isdigit() else key] = messages
    error.errors = renumbered
    error.detail = (
        f"{error.detail} (Records are numbered from 1 in the records given; the {first} "
        "before this batch were sent and stay added.)"
    )


def _attachment_name(headers: Any, location: str) -> str:
    disposition = headers.get("Content-Disposition", "")
    for part in disposition.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return Path(value.strip('"')).name or "download"
    return Path(location.split("?")[0]).name or "download"


class _Upload:
    """A record's file for a multipart form, rewound for each try of the request."""

    def __init__(self, source: FileSource, name: str | None) -> None:
        self._opened: IO[bytes] | None = None
        if isinstance(source, str | os.PathLike):
            self._opened = open(source, "rb")  # noqa: SIM115 (closed in __exit__)
            handle: IO[bytes] = self._opened
            default = Path(source).name
        else:
            handle = source
            default = Path(str(getattr(source, "name", "") or "file")).name
        if not _seekable(handle):  # read it once, so that a retry can send it again
            handle = io.BytesIO(handle.read())
        self._handle = handle
        self._start = handle.tell()
        self._name = name or default or "file"

    def __enter__(self) -> _Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._opened is not None:
            self._opened.close()

    def part(self) -> dict[str, Any]:
        self._handle.seek(self._start)
        return {"record_file": (self._name, self._handle, "application/octet-stream")}


def _seekable(handle: IO[bytes]) -> bool:
    try:
        return bool(handle.seekable())
    except (AttributeError, OSError, ValueError):
        return False

