"""``manage.py export_records MODEL [filters] -o FILE``: write a model's records as NDJSON or CSV.

The filters are the streams' own: the options are turned into the query string the API would
receive and checked by the same FilterSets (``records.filtersets``), so a filter means here
what it means in ``GET /id/{id}/records`` and ``/records/filter`` (both kinds may be combined).
The lines come from ``records.representation.render_lines``, the stream's renderer: an NDJSON
export is byte for byte what the API streams, ordered by timestamp then id, and memory stays
flat however many records match.

CSV has one column per field of the record object, ``model_data`` and ``record_info`` as JSON
text; ``import_records`` reads it back. A file is written under a temporary name and renamed
once complete, so a failed export never leaves a file that looks whole.
"""

from __future__ import annotations

import codecs
import csv
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from django.http import QueryDict

from models_api.api import json_values
from models_api.api.errors import InvalidInput
from models_api.api.filters import check_query_params
from records.filtersets import RecordFilterSet, RecordWindowFilterSet
from records.management.file_commands import choose_format, find_model, progress
from records.models import ModelRecord
from records.representation import RECORD_FIELDS, render_lines

#: The options (argparse dests) of each stream's FilterSet: the names of its query parameters.
EXACT_FILTERS = ("experiment_name", "season_name", "site_name", "dataset_name", "collection_date")
WINDOW_FILTERS = (
    "start_timestamp", "end_timestamp",
    "experiment_names", "season_names", "site_names", "dataset_names",
)
JSON_COLUMNS = frozenset({"model_data", "record_info"})


def filtered(queryset: QuerySet, filterset_class: type, options: dict, names: tuple) -> QuerySet:
    """``queryset`` filtered as the API filters it, given the same parameters."""
    params = QueryDict(mutable=True)
    for name in names:
        value = options.get(name)
        if value is not None:
            params.setlist(name, value if isinstance(value, list) else [value])
    try:
        check_query_params(params, filterset_class)
    except InvalidInput as error:
        raise CommandError(_messages(error.errors)) from None
    filterset = filterset_class(params, queryset=queryset)
    if not filterset.is_valid():
        raise CommandError(_messages(filterset.errors))
    return filterset.qs


def _messages(errors: dict) -> str:
    return "Invalid filter: " + "; ".join(
        f"--{name.replace('_', '-')}: {' '.join(str(message) for message in messages)}"
        for name, messages in errors.items()
    )


def ndjson_chunks(queryset: QuerySet, count: Callable[[int], None]) -> Iterator[bytes]:
    for chunk in render_lines(queryset):
        count(chunk.count(b"\n"))
        yield chunk


def csv_chunks(queryset: QuerySet, count: Callable[[int], None]) -> Iterator[bytes]:
    """The stream's lines as CSV rows, converted a chunk at a time (a chunk from PostgreSQL's
    COPY may end inside a line: the rest is carried over to the next)."""
    buffer = _Buffer()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RECORD_FIELDS)
    yield buffer.take()
    rest = b""
    for chunk in render_lines(queryset):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        for line in lines:
            record = json_values.loads(line)  # exact: big integers keep every digit
            writer.writerow([_cell(name, record[name]) for name in RECORD_FIELDS])
        count(len(lines))
        yield buffer.take()
    if rest.strip():
        raise CommandError("The record stream ended inside a line.")


def _cell(name: str, value) -> str:
    if name in JSON_COLUMNS:
        return json_values.dumps(value).decode()
    return "" if value is None else value


class _Buffer:
    """A text sink for ``csv.writer`` whose content is taken as UTF-8 bytes."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> None:
        self.parts.append(text)

    def take(self) -> bytes:
        text, self.parts = "".join(self.parts), []
        return text.encode()


@contextmanager
def open_output(target: str | None, stdout) -> Iterator[Callable[[bytes], None]]:
    """A function writing bytes to ``target`` (a path, or standard output for None or ``-``)."""
    if target in (None, "-"):
        stream = getattr(stdout, "_out", stdout)
        yield _stdout_writer(stream)
        stream.flush()  # all of the data before the summary on stderr
        return
    path = Path(target)
    partial = path.with_name(f".{path.name}.partial")
    try:
        stream = open(partial, "wb")
    except OSError as error:
        raise CommandError(f"Cannot write '{target}': {error.strerror}.") from None
    try:
        with stream:
            yield stream.write
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _stdout_writer(stream: IO) -> Callable[[bytes], None]:
    binary = getattr(stream, "buffer", None)
    if binary is not None:  # the real standard output: bytes go straight through
        stream.flush()
        return binary.write
    # A text stream (call_command(stdout=StringIO())): decode, even across a split character.
    decoder = codecs.getincrementaldecoder("utf-8")()
    return lambda data: stream.write(decoder.decode(data))


class Command(BaseCommand):
    help = (
        "Export a model's records as NDJSON or CSV, filtered like the record streams "
        "(GET /id/{id}/records and /records/filter)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", help="the model's name or id")
        parser.add_argument(
            "-o", "--output", metavar="FILE",
            help="the file to write (default, or -: standard output)",
        )
        parser.add_argument(
            "--format", choices=["ndjson", "csv"],
            help="the output format (default: from the extension; NDJSON on standard output)",
        )
        exact = parser.add_argument_group("exact filters (as GET /id/{id}/records)")
        for name in EXACT_FILTERS:
            exact.add_argument(f"--{name.replace('_', '-')}", metavar="VALUE")
        window = parser.add_argument_group("window filters (as GET /id/{id}/records/filter)")
        window.add_argument("--start-timestamp", metavar="ISO8601", help="inclusive")
        window.add_argument("--end-timestamp", metavar="ISO8601", help="inclusive")
        for name in WINDOW_FILTERS[2:]:
            window.add_argument(
                f"--{name.replace('_', '-')}", action="append", metavar="NAME",
                help="repeat for several",
            )

    def handle(self, *args, **options) -> None:
        model = find_model(options["model"])
        file_format = choose_format(options["output"] or "-", options["format"])
        queryset = ModelRecord.objects.for_model(model)
        queryset = filtered(queryset, RecordFilterSet, options, EXACT_FILTERS)
        queryset = filtered(queryset, RecordWindowFilterSet, options, WINDOW_FILTERS)

        chunks = csv_chunks if file_format == "csv" else ndjson_chunks
        exported = 0
        started = time.perf_counter()
        try:
            with progress(self.stderr, "records") as bar, \
                    open_output(options["output"], self.stdout) as write:
                if not bar.disable:
                    bar.total = queryset.count()

                def count(records: int) -> None:
                    nonlocal exported
                    exported += records
                    bar.update(records)

                for chunk in chunks(queryset, count):
                    write(chunk)
        except BrokenPipeError:  # the reader left (`export_records ... | head`): no error
            # Point standard output at nothing, so that the flush at exit cannot fail too.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return
        seconds = time.perf_counter() - started
        # On stderr: standard output may be the export itself.
        self.stderr.write(
            f"exported {exported} records, {seconds:.1f} seconds, "
            f"{exported / max(seconds, 1e-9):,.0f} records/second"
        )
