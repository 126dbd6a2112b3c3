"""``manage.py import_records MODEL FILE``: load a model's records from an NDJSON, CSV, Arrow or
Parquet file.

This is the bulk endpoint for an operator: the lines are checked by the same code
(``records.ingest.parse_ndjson``, ``records.validation.parse_record``) and written by the same
``records.ingest.ingest_records``, so a file is accepted or refused exactly as a bulk request
body would be, and loads through PostgreSQL COPY. Nothing here validates or inserts on its own.

- Atomic by default: one bad line and nothing is written; every bad line is reported by its
  number. ``--batch-size N`` commits every N records instead, for files too large to redo.
- Existing records (and repeats within the file) are skipped and counted, so a failed or
  interrupted import can simply be run again.
- The file is read line by line, never whole.

CSV: a header row naming the record's fields; ``model_data`` and ``record_info`` cells hold
JSON text and an empty cell is a field not given. NDJSON: the bulk body's lines. In both, the
fields that ``export_records`` adds (ids, ``model_name``, times) are ignored, so that an
export of either format imports as it is.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import chain, islice
from typing import IO, TypeVar

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from models_api.api.errors import NON_FIELD, DomainError, InvalidInput
from models_api.models import MLModel
from records.ingest import IngestResult, ParsedLine, ingest_records, parse_ndjson
from records.management.file_commands import choose_format, find_model, progress
from records.readers import (
    ASSIGNED_FIELDS,
    arrow_records,
    csv_fields,
    csv_reader,
    csv_rows,
    parquet_records,
)
from records.representation import RECORD_FIELDS
from records.validation import INPUT_FIELDS, REQUIRED_FIELDS, parse_record

#: A CSV header may name every column of an export: the assigned ones (``ASSIGNED_FIELDS``)
#: are accepted and ignored.
CSV_COLUMNS = frozenset(RECORD_FIELDS) | INPUT_FIELDS

T = TypeVar("T")


#: Lines or rows read between updates of the progress bar (an update a line costs as much as
#: a tenth of the line's own checks).
PROGRESS_STEP = 1000


def counted(items: Iterable[T], bar: tqdm) -> Iterator[T]:
    """``items``, counted on the progress bar as they pass."""
    number = 0
    for number, item in enumerate(items, start=1):
        if not number % PROGRESS_STEP:
            bar.update(PROGRESS_STEP)
        yield item
    bar.update(number % PROGRESS_STEP)


def parse_csv(stream: IO[bytes], bar: tqdm) -> Iterator[ParsedLine]:
    """Records from CSV rows, numbered by the file line each row starts on.

    The header is checked before any row is read; a row is then checked like a multipart
    form (``form=True``: its cells are text, JSON fields JSON text).
    """
    reader = csv_reader(stream)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as error:
        raise CommandError(f"The CSV header cannot be read: {error}.") from None
    if header is None:
        raise CommandError("The CSV file is empty: it needs a header row naming the fields.")
    check_csv_header(header)
    shown = reader.line_num  # lines the progress bar counts so far
    bar.update(shown)
    start = reader.line_num + 1
    try:
        for cells in csv_rows(reader, unit="line", whole="file"):
            if isinstance(cells, str):
                yield start, [cells]
                return
            number, start = start, reader.line_num + 1
            if reader.line_num - shown >= PROGRESS_STEP:
                bar.update(reader.line_num - shown)
                shown = reader.line_num
            if cells:  # a blank line is skipped, as in NDJSON
                yield number, csv_record(header, cells)
    finally:
        bar.update(reader.line_num - shown)


def check_csv_header(header: list[str]) -> None:
    unknown = [name for name in header if name not in CSV_COLUMNS]
    repeated = sorted({name for name in header if header.count(name) > 1})
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    problems = []
    if unknown:
        problems.append(f"unknown columns {', '.join(map(repr, unknown))}")
    if repeated:
        problems.append(f"repeated columns {', '.join(map(repr, repeated))}")
    if missing:
        problems.append(f"missing columns {', '.join(map(repr, missing))}")
    if problems:
        raise CommandError(f"The CSV header has {'; '.join(problems)}; nothing was read.")


def csv_record(header: list[str], cells: list[str]):
    row = csv_fields(header, cells, ASSIGNED_FIELDS)
    if isinstance(row, list):
        return row
    if row.pop("record_file", None) is not None:
        # An exported record with a file: importing it without its file would lose data.
        return ["record_file: Files cannot be imported; empty the cell or drop the column."]
    try:
        return parse_record(row, form=True)
    except InvalidInput as invalid:
        return invalid.lines()


@contextmanager
def open_input(path: str, stdin: IO[bytes] | None):
    if path == "-":
        yield stdin if stdin is not None else sys.stdin.buffer
        return
    try:
        stream = open(path, "rb")
    except OSError as error:
        raise CommandError(f"Cannot read '{path}': {error.strerror}.") from None
    with stream:
        yield stream


def failure(error: DomainError) -> str:
    """The ingest's refusal as text, each bad line (or column) on its own line."""
    lines = [error.detail]
    if isinstance(error, InvalidInput):
        for key, messages in error.errors.items():
            if key == NON_FIELD:
                continue
            where = f"line {key}" if key.isdigit() else key
            lines.extend(f"  {where}: {message}" for message in messages)
    return "\n".join(lines)


class Command(BaseCommand):
    help = (
        "Import a model's records from an NDJSON or CSV file (or - for standard input), "
        "checked and written exactly like the bulk endpoint."
    )
    #: call_command(..., stdin=stream) reads that binary stream instead of sys.stdin.
    stealth_options = ("stdin",)

    def add_arguments(self, parser) -> None:
        parser.add_argument("model", help="the model's name or id")
        parser.add_argument("file", help="the file to read, or - for standard input")
        parser.add_argument(
            "--format", choices=["ndjson", "csv", "arrow", "parquet"],
            help="the file's format (default: from its extension; NDJSON for standard input)",
        )
        parser.add_argument(
            "--batch-size", type=int, metavar="N",
            help="commit every N records instead of all or nothing",
        )

    def handle(self, *args, **options) -> None:
        self.verbosity = options["verbosity"]
        model = find_model(options["model"])
        file_format = choose_format(options["file"], options["format"])
        batch_size = options["batch_size"]
        if batch_size is not None and batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        started = time.perf_counter()
        try:
            with open_input(options["file"], options.get("stdin")) as stream, \
                    progress(self.stderr, "lines") as bar:
                records = self.read(file_format, stream, bar)
                first = next(records, None)
                if first is None:
                    raise CommandError("The file holds no records.")
                records = chain([first], records)
                if batch_size:
                    result = self.import_in_batches(model, records, batch_size)
                else:
                    result = self.import_at_once(model, records)
        except DomainError as error:  # a columnar file whose columns are wrong, or cut short
            raise CommandError(failure(error)) from None
        seconds = time.perf_counter() - started
        total = result.created + result.skipped_existing
        self.stdout.write(
            f"created {result.created}, skipped_existing {result.skipped_existing}, "
            f"{seconds:.1f} seconds, {total / max(seconds, 1e-9):,.0f} records/second"
        )

    @staticmethod
    def read(file_format: str, stream: IO[bytes], bar: tqdm) -> Iterator[ParsedLine]:
        if file_format == "csv":
            return parse_csv(stream, bar)
        if file_format == "arrow":
            return counted(arrow_records(stream, ignore=ASSIGNED_FIELDS), bar)
        if file_format == "parquet":
            if not stream.seekable():  # standard input: Parquet's footer is read first
                stream = io.BytesIO(stream.read())
            return counted(parquet_records(stream, ignore=ASSIGNED_FIELDS), bar)
        return parse_ndjson(counted(enumerate(stream, start=1), bar), ignore=ASSIGNED_FIELDS)

    def import_at_once(self, model: MLModel, records: Iterable[ParsedLine]) -> IngestResult:
        try:
            return ingest_records(model=model, records=records)
        except DomainError as error:
            raise CommandError(failure(error)) from None

    def import_in_batches(
        self, model: MLModel, records: Iterator[ParsedLine], size: int
    ) -> IngestResult:
        """Each batch of ``size`` records in a transaction of its own.

        The first batch that fails stops the import: the batches before it stay committed
        (and are skipped as existing when the file is imported again), nothing after it is read.
        """
        created = skipped = batches = 0
        first_line = last_line = None
        while batch := list(islice(records, size)):
            try:
                result = ingest_records(model=model, records=batch)
            except DomainError as error:
                committed = (
                    f"Committed before it: {_batches(batches)} (lines {first_line} to "
                    f"{last_line}), created {created}, skipped_existing {skipped}."
                    if batches
                    else "No batch was committed."
                )
                raise CommandError(
                    f"Batch {batches + 1} (lines {batch[0][0]} to {batch[-1][0]}) failed and "
                    f"was not written; later lines were not read. {committed}\n{failure(error)}"
                ) from None
            batches += 1
            created += result.created
            skipped += result.skipped_existing
            first_line = first_line or batch[0][0]
            last_line = batch[-1][0]
            if self.verbosity >= 2:
                self.stdout.write(
                    f"batch {batches} (lines {batch[0][0]} to {last_line}) committed: "
                    f"created {result.created}, skipped_existing {result.skipped_existing}"
                )
        return IngestResult(created=created, skipped_existing=skipped)


def _batches(count: int) -> str:
    return "batch 1" if count == 1 else f"batches 1 to {count}"
