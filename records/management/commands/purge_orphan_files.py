"""``manage.py purge_orphan_files``: files under the record prefix that no record points to.

Orphans are rare but can happen: a file whose deletion failed after its row was deleted (the
storage was down; ``records.storage.delete_files`` logs "Orphaned file ..."), or a process
killed between storing a file and committing its row. Dry run by default: the orphans are
printed with a count; ``--delete`` removes them.

Files younger than ``--older-than`` seconds (default an hour) are kept whatever the database
says, because a record's file is stored just before its row is committed: a file seen
without its row may belong to a request that is still running.

Memory stays flat with millions of files: the keys are read from the storage listing in
batches, and each batch is checked against the database with one query by record id (the key
is ``model_records/<model id>/<record id>/<name>``, and the id is the primary key); only keys
that the primary key does not account for are then looked up by ``record_file`` itself, which
has no index. The age of a file is asked only for the orphans (one request each on S3).
"""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from records import storage
from records.models import ModelRecord
from records.storage import STORAGE_ERRORS

DEFAULT_GRACE_SECONDS = 3600
DEFAULT_BATCH_SIZE = 1000


def _record_id(key: str) -> uuid.UUID | None:
    """The record id a key is built from, or None for a key of another shape."""
    parts = PurePosixPath(key).parts
    if len(parts) != 4 or parts[0] != storage.PREFIX:
        return None
    try:
        return uuid.UUID(parts[2])
    except ValueError:
        return None


def _batches(keys: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(keys)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def unreferenced(keys: list[str]) -> list[str]:
    """The keys of ``keys`` that no record's ``record_file`` names (one or two queries)."""
    ids = {record_id for key in keys if (record_id := _record_id(key)) is not None}
    referenced: set[str] = set()
    if ids:
        referenced.update(
            ModelRecord.objects.filter(pk__in=ids)
            .exclude(record_file=None)
            .values_list("record_file", flat=True)
        )
    rest = [key for key in keys if key not in referenced]
    if rest:  # a key of another shape, or one that another record points to
        referenced.update(
            ModelRecord.objects.filter(record_file__in=rest).values_list("record_file", flat=True)
        )
    return [key for key in keys if key not in referenced]


def _modified(key: str) -> datetime.datetime | None:
    """When the file was stored, or None when it is gone already."""
    try:
        modified = default_storage.get_modified_time(key)
    except FileNotFoundError:
        return None
    except STORAGE_ERRORS as error:
        if _is_missing(error):
            return None
        raise
    if timezone.is_naive(modified):
        modified = timezone.make_aware(modified, datetime.UTC)
    return modified


def _is_missing(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound"}


class Command(BaseCommand):
    help = (
        "List the files under the record prefix that no record points to (dry run), or delete "
        "them with --delete. Files younger than --older-than seconds are kept."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--delete", action="store_true", help="delete the orphans (default: only list them)"
        )
        parser.add_argument(
            "--older-than",
            type=int,
            default=DEFAULT_GRACE_SECONDS,
            metavar="SECONDS",
            help=(
                "keep files stored less than SECONDS ago, which may belong to a request that "
                f"is still running (default: {DEFAULT_GRACE_SECONDS})"
            ),
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            metavar="N",
            help=f"keys checked against the database per query (default: {DEFAULT_BATCH_SIZE})",
        )

    def handle(self, *args, delete: bool, older_than: int, batch_size: int, **options) -> None:
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more seconds.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        cutoff = timezone.now() - datetime.timedelta(seconds=older_than)
        scanned = orphans = young = deleted = failed = 0
        try:
            for batch in _batches(storage.iter_stored_keys(), batch_size):
                scanned += len(batch)
                for key in unreferenced(batch):
                    modified = _modified(key)
                    if modified is None:
                        continue  # deleted meanwhile
                    if modified > cutoff:
                        young += 1
                        continue
                    orphans += 1
                    self.stdout.write(key)
                    if delete:
                        if self._delete(key):
                            deleted += 1
                        else:
                            failed += 1
        except STORAGE_ERRORS as error:
            raise CommandError(f"The file storage is unreachable: {error}") from error

        noun = "file" if orphans == 1 else "files"
        if delete:
            summary = f"Deleted {deleted} orphaned {noun} of {orphans}."
        else:
            summary = f"{orphans} orphaned {noun} (dry run: --delete removes them)."
        if young:
            summary += f" Kept {young} younger than {older_than} seconds."
        self.stdout.write(f"{summary} Checked {scanned} stored files.")
        if failed:
            raise CommandError(f"{failed} orphaned files could not be deleted.")

    def _delete(self, key: str) -> bool:
        try:
            default_storage.delete(key)
        except STORAGE_ERRORS as error:
            self.stderr.write(f"Could not delete {key}: {error}")
            return False
        if storage.is_local() and _record_id(key) is not None:
            # The record's own folder (named by its id) is left empty; the model's folder is
            # kept, since a new record of that model may be storing into it right now.
            folder = Path(default_storage.path(key)).parent
            try:
                folder.rmdir()
            except OSError:
                pass  # not empty, or gone
        return True
