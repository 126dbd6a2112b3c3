"""``models-api``: records in and out of the service from a shell, for people without one on
the server.

    models-api records export MODEL_ID [--format parquet] [-o r.parquet] [filters]
    models-api records import MODEL_ID FILE [--format csv] [--batch-size N]

The service's URL and token come from ``MODELS_API_URL`` and ``MODELS_API_TOKEN`` (or
``--url`` and ``--token``). Formats: NDJSON, CSV, Arrow (IPC stream) and Parquet, told by the
file's extension unless ``--format`` says. An export streams in constant memory (the server's
own format when it has the formats, else converted here from its NDJSON stream); an import is
sent in bulk batches, safe to run again (existing records are skipped).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from models_api_client import _arrow
from models_api_client._http import iter_body
from models_api_client.client import Client
from models_api_client.errors import APIError, TransportError
from models_api_client.records import _format_unknown, stream_query

FORMATS = ("ndjson", "csv", "arrow", "parquet")
EXTENSIONS = {
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
    ".csv": "csv",
    ".arrow": "arrow",
    ".arrows": "arrow",
    ".ipc": "arrow",
    ".feather": "arrow",
    ".parquet": "parquet",
    ".pq": "parquet",
}
#: Stream filters as options: (option, filter, takes a list).
FILTERS = [
    ("--experiment-name", "experiment_name", False),
    ("--season-name", "season_name", False),
    ("--site-name", "site_name", False),
    ("--dataset-name", "dataset_name", False),
    ("--collection-date", "collection_date", False),
    ("--start-timestamp", "start_timestamp", False),
    ("--end-timestamp", "end_timestamp", False),
    ("--experiment-names", "experiment_names", True),
    ("--season-names", "season_names", True),
    ("--site-names", "site_names", True),
    ("--dataset-names", "dataset_names", True),
    ("--limit", "limit", False),
    ("--offset", "offset", False),
]


def format_of(path: str | None, given: str | None) -> str:
    if given:
        return given
    if path and path != "-":
        found = EXTENSIONS.get(Path(path).suffix.lower())
        if found:
            return found
        raise SystemExit(
            f"models-api: cannot tell the format of {path!r} from its extension; give --format "
            f"({', '.join(FORMATS)})."
        )
    return "ndjson"


# --- export ------------------------------------------------------------------------------------


def export(client: Client, model_id: str, fmt: str, out: IO[bytes], filters: dict[str, Any],
           progress: bool) -> int:
    """Write the model's records to ``out`` in ``fmt``; gives the records (or bytes) written."""
    records = client.records
    path, params = stream_query(model_id, filters)
    if fmt == "ndjson":
        count = 0
        with tqdm(unit=" records", disable=not progress, desc="export") as bar:
            for line in records._lines(path, params):
                out.write(line + b"\n")
                count += 1
                bar.update()
        return count
    if records._arrow_streams is not False:  # the server's own file, byte for byte
        try:
            with client._http.stream("GET", path, params=[*params, ("format", fmt)]) as response:
                written = 0
                with tqdm(unit="B", unit_scale=True, disable=not progress, desc="export") as bar:
                    for chunk in iter_body(response):
                        out.write(chunk)
                        written += len(chunk)
                        bar.update(len(chunk))
                return written
        except APIError as error:
            if isinstance(error, TransportError) or not _format_unknown(error):
                raise
            records._arrow_streams = False  # the fallback below asks no second time
    # A server without the formats: convert its NDJSON stream here, batch by batch.
    count = 0
    with tqdm(unit=" records", disable=not progress, desc="export") as bar:
        if fmt == "csv":
            text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            writer = csv.writer(text, lineterminator="\r\n")
            writer.writerow(_arrow.RECORD_FIELDS)
            for line in records._lines(path, params):
                writer.writerow(csv_row(json.loads(line)))
                count += 1
                bar.update()
            text.detach()
            return count
        batches = records._batch_source(path, params)
        schema = next(batches)
        assert isinstance(schema, pa.Schema)
        sink: Any = out  # pyarrow wraps any Python file object
        writer_class: Any = pa.ipc.new_stream if fmt == "arrow" else pq.ParquetWriter
        with writer_class(sink, schema) as table_writer:
            for batch in batches:
                assert isinstance(batch, pa.RecordBatch)
                table_writer.write_batch(batch)
                count += batch.num_rows
                bar.update(batch.num_rows)
    return count


def csv_row(record: dict[str, Any]) -> list[str]:
    """A record as the contract's CSV row: JSON fields as JSON text, null as an empty field."""
    row = []
    for name in _arrow.RECORD_FIELDS:
        value = record.get(name)
        if name in _arrow.JSON_FIELDS:
            row.append(_arrow.dumps(value))
        else:
            row.append("" if value is None else str(value))
    return row


# --- import ------------------------------------------------------------------------------------


def read_ndjson(handle: IO[bytes]) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(handle, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"Line {number} is not valid JSON: {error.msg}.") from None
        if not isinstance(value, dict):
            raise ValueError(f"Line {number} is not a JSON object.")
        yield value


def read_csv(handle: IO[bytes]) -> pa.RecordBatchReader:
    """A CSV file as batches of text columns (an empty cell a null: a field not given; JSON
    fields JSON text), read a block at a time."""
    return pacsv.open_csv(
        handle,
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in _arrow.RECORD_FIELDS},
            strings_can_be_null=True,
            null_values=[""],  # not pyarrow's default list, which holds "null", JSON's null
        ),
    )


def read_arrow(handle: IO[bytes]) -> pa.RecordBatchReader:
    """An Arrow IPC stream, or an Arrow (Feather v2) file."""
    data = handle.read() if not handle.seekable() else None
    source: Any = pa.py_buffer(data) if data is not None else handle
    try:
        return pa.ipc.open_stream(source)
    except pa.ArrowInvalid:
        if data is None:
            handle.seek(0)
        file_reader = pa.ipc.open_file(source)
        batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
        return pa.RecordBatchReader.from_batches(file_reader.schema, batches)


def read_parquet(handle: IO[bytes]) -> pa.RecordBatchReader:
    parquet = pq.ParquetFile(handle)
    return pa.RecordBatchReader.from_batches(
        parquet.schema_arrow, parquet.iter_batches(batch_size=65_536)
    )


def import_records(client: Client, model_id: str, fmt: str, handle: IO[bytes],
                   batch_size: int, progress: bool) -> dict[str, int]:
    data: Any
    if fmt == "ndjson":
        data = read_ndjson(handle)
    elif fmt == "csv":
        data = read_csv(handle)
    elif fmt == "arrow":
        data = read_arrow(handle)
    else:
        data = read_parquet(handle)
    # The file goes in its own format, less the columns an export adds (the service assigns
    # them, and refuses them as it refuses any unknown field); NDJSON to a server without it.
    result = client.records._add_many(
        model_id, data, batch_size=batch_size, progress=progress, fmt=fmt, auto=True
    )
    return result.to_dict()


# --- the command -------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="models-api", description="Records in and out of a Models API service."
    )
    main_parser.add_argument("--url", help="the service's URL (default: $MODELS_API_URL)")
    main_parser.add_argument("--token", help="an API token (default: $MODELS_API_TOKEN)")
    progress = main_parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None,
        help="show progress bars (default: when standard error is a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    groups = main_parser.add_subparsers(dest="group", required=True)
    records = groups.add_parser("records", help="a model's records").add_subparsers(
        dest="command", required=True
    )

    out = records.add_parser("export", help="write a model's records to a file")
    out.add_argument("model_id")
    out.add_argument("--format", choices=FORMATS, help="default: from -o's extension, or ndjson")
    out.add_argument("-o", "--output", default="-", help="the file (default: standard output)")
    for option, name, many in FILTERS:
        out.add_argument(
            option, dest=name, action="append" if many else "store",
            help="repeat for several" if many else None,
        )

    into = records.add_parser("import", help="add records from a file (existing ones skipped)")
    into.add_argument("model_id")
    into.add_argument("file", help="NDJSON, CSV, Arrow or Parquet; '-' is standard input")
    into.add_argument("--format", choices=FORMATS, help="default: from the file's extension")
    into.add_argument("--batch-size", type=int, default=50_000)
    return main_parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        with Client(args.url, args.token) as client:
            if args.command == "export":
                return _export(client, args, progress)
            return _import(client, args, progress)
    except APIError as error:
        print(f"models-api: error: {error}", file=sys.stderr)
        for key, messages in list(error.errors.items())[:20]:
            print(f"  {key}: {'; '.join(messages)}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as error:
        print(f"models-api: error: {error}", file=sys.stderr)
        return 2


def _export(client: Client, args: argparse.Namespace, progress: bool) -> int:
    fmt = format_of(args.output, args.format)
    filters = {name: getattr(args, name) for _, name, _ in FILTERS
               if getattr(args, name) is not None}
    if args.output == "-":
        export(client, args.model_id, fmt, sys.stdout.buffer, filters, progress)
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.output)
    part = target.with_name(f".{target.name}.part")
    try:  # written whole or not at all
        with open(part, "wb") as handle:
            export(client, args.model_id, fmt, handle, filters, progress)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return 0


def _import(client: Client, args: argparse.Namespace, progress: bool) -> int:
    if args.file == "-":
        if not args.format:
            raise SystemExit("models-api: give --format to read standard input.")
        result = import_records(
            client, args.model_id, args.format, sys.stdin.buffer, args.batch_size, progress
        )
    else:
        fmt = format_of(args.file, args.format)
        with open(args.file, "rb") as handle:
            result = import_records(client, args.model_id, fmt, handle, args.batch_size, progress)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
