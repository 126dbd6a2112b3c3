"""``manage.py export_records MODEL [filters] -o FILE``: write a model's records as NDJSON, CSV,
Arrow or Parquet.

The filters are the streams' own: the options are turned into the query string the API would
receive and checked by the same FilterSets (``records.filtersets``), so a filter means here
what it means in ``GET /id/{id}/records`` and ``/records/filter`` (both kinds may be combined).
The records come from ``records.representation.RecordBatches`` and are encoded by the
streams' own renderers (``records.renderers``): an export is byte for byte what the API streams
in that format, ordered by timestamp then id, and memory stays flat however many records match.
``import_records`` reads every format back. A file is written under a temporary name and
renamed once complete, so a failed export never leaves a file that looks whole.

With replicas (``DATABASE_REPLICA_URLS``) an export reads from one that has replayed every
write committed when it starts (else from the primary), as the streams do for their user.
"""

from __future__ import annotations

import codecs
import io
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pyarrow as pa
from django.core.management.base import BaseCommand, CommandError
from django.db.models import QuerySet
from django.http import QueryDict

from models_api.api.errors import InvalidInput
from models_api.api.filters import check_query_params
from models_api.api.replicas import primary_lsn, replica_reads, replicas
from records.filtersets import RecordFilterSet, RecordWindowFilterSet
from records.management.file_commands import choose_format, find_model, progress
from records.models import ModelRecord
from records.renderers import FORMATS
from records.representation import RecordBatches

#: The options (argparse dests) of each stream's FilterSet: the names of its query parameters.
EXACT_FILTERS = ("experiment_name", "season_name", "site_name", "dataset_name", "collection_date")
WINDOW_FILTERS = (
    "start_timestamp", "end_timestamp",
    "experiment_names", "season_names", "site_names", "dataset_names",
)


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


def counted(batches: Iterable[pa.RecordBatch], count: Callable[[int], None]):
    """The batches, counting their records as they pass."""
    for batch in batches:
        count(batch.num_rows)
        yield batch


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
    if isinstance(stream, io.BytesIO):
        return stream.write
    # A text stream (call_command(stdout=StringIO())): decode, even across a split character.
    decoder = codecs.getincrementaldecoder("utf-8")()
    return lambda data: stream.write(decoder.decode(data))


class Command(BaseCommand):
    help = (
        "Export a model's records as NDJSON, CSV, Arrow or Parquet, filtered like the record "
        "streams "
        "(GET /id/{id}/records and /records/filter)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", help="the model's name or id")
        parser.add_argument(
            "-o", "--output", metavar="FILE",
            help="the file to write (default, or -: standard output)",
        )
        parser.add_argument(
            "--format", choices=sorted(FORMATS),
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
        with replica_reads(min_lsn=primary_lsn() if replicas() else None):
            self.export(options)

    def export(self, options: dict) -> None:
        model = find_model(options["model"])
        file_format = choose_format(options["output"] or "-", options["format"])
        queryset = ModelRecord.objects.for_model(model)
        queryset = filtered(queryset, RecordFilterSet, options, EXACT_FILTERS)
        queryset = filtered(queryset, RecordWindowFilterSet, options, WINDOW_FILTERS)

        renderer = FORMATS[file_format]()
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

                for chunk in renderer.encode(counted(RecordBatches(queryset), count)):
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
