"""The one place that talks to the file storage: Django's default storage, which is a local
folder on the embedded default and S3 (django-storages) when ``AWS_STORAGE_BUCKET_NAME`` is set.

Keys are built from ids, never from what the client sends: ``model_records/<model id>/<record
id>/<safe file name>``. All of a model's files share one prefix, so deleting a model deletes
its files with one listing instead of one query per record.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from uuid import UUID

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core import signing
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.urls import reverse

from models_api.api.errors import Unavailable

logger = logging.getLogger(__name__)

PREFIX = "model_records"
_SIGNING_SALT = "records.local-download"
#: What a local folder or S3 raises when it fails.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
FILE_NAME_MAX_LENGTH = 120


class StorageUnavailable(Unavailable):
    default_detail = "The file storage is unreachable; nothing was written. Please try again."


def is_local() -> bool:
    return isinstance(default_storage, FileSystemStorage)


def safe_file_name(client_name: str | None) -> str:
    """A file name that is safe as the last part of a key, whatever the client sent.

    Path separators (both kinds), control characters and dots at the ends are dropped, other
    unusual characters become ``_``, and the name is cut to 120 characters keeping its
    extension: ``../../etc/passwd`` becomes ``passwd``.
    """
    name = (client_name or "").replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", name).strip("._-")
    if len(name) > FILE_NAME_MAX_LENGTH:
        stem, dot, extension = name.rpartition(".")
        extension = extension[:16] if dot else ""
        keep = FILE_NAME_MAX_LENGTH - len(extension) - (1 if extension else 0)
        name = (stem if dot else name)[:keep].rstrip("._-") + (f".{extension}" if extension else "")
    return name or "file"


def model_prefix(model_id: UUID) -> str:
    return f"{PREFIX}/{model_id}/"


def record_file_key(*, model_id: UUID, record_id: UUID, client_name: str | None) -> str:
    return f"{model_prefix(model_id)}{record_id}/{safe_file_name(client_name)}"


def store_file(key: str, content: File) -> str:
    """Write ``content`` under ``key``; 503 (``StorageUnavailable``) if the storage fails."""
    try:
        return default_storage.save(key, content)
    except STORAGE_ERRORS as error:
        logger.warning("Could not store %s: %s", key, error)
        raise StorageUnavailable() from error


def delete_files(keys: Iterable[str]) -> None:
    """Delete stored files; a failure is logged (the key is an orphan for purge_orphan_files)."""
    for key in keys:
        try:
            default_storage.delete(key)
        except STORAGE_ERRORS as error:
            logger.error("Orphaned file %s: could not delete it: %s", key, error)


def delete_prefix(prefix: str) -> None:
    """Delete every file under ``prefix`` (all the files of one model)."""
    try:
        if is_local():
            path = Path(default_storage.path(prefix))
            if path.exists():
                shutil.rmtree(path)
        else:
            bucket = default_storage.bucket
            full_prefix = default_storage._normalize_name(prefix)
            bucket.objects.filter(Prefix=full_prefix).delete()
    except STORAGE_ERRORS as error:
        logger.error("Orphaned files under %s: could not delete them: %s", prefix, error)


def iter_stored_keys(prefix: str = PREFIX):
    """Every key stored under ``prefix`` (for purge_orphan_files)."""
    if is_local():
        root = Path(default_storage.location)
        base = root / prefix
        if base.exists():
            for path in base.rglob("*"):
                if path.is_file():
                    yield path.relative_to(root).as_posix()
        return
    location = default_storage.location.strip("/")
    full_prefix = default_storage._normalize_name(prefix)
    for summary in default_storage.bucket.objects.filter(Prefix=full_prefix):
        key = summary.key
        if location:
            key = key[len(location) + 1 :]
        yield key


def download_name(key: str) -> str:
    return PurePosixPath(key).name


def download_url(key: str, *, build_absolute_uri) -> str:
    """A short-lived URL that serves the file without other credentials.

    On S3 a presigned GET whose response names the file (Content-Disposition); on local
    storage a link to this app carrying a signed, expiring token.
    """
    expiry = settings.RECORD_DOWNLOAD_EXPIRY
    disposition = f'attachment; filename="{download_name(key)}"'
    if not is_local():
        try:
            return default_storage.url(
                key, parameters={"ResponseContentDisposition": disposition}, expire=expiry
            )
        except STORAGE_ERRORS as error:
            raise StorageUnavailable() from error
    token = signing.dumps({"k": key, "e": int(time.time()) + expiry}, salt=_SIGNING_SALT)
    return build_absolute_uri(reverse("record-file", kwargs={"token": token}))


def file_exists(key: str) -> bool:
    """Whether the stored file is there (one HEAD request on S3); ``StorageUnavailable`` when
    the storage cannot say (unreachable, a local folder that is not a folder)."""
    try:
        if is_local():
            os.stat(default_storage.path(key))  # unlike exists(), tells missing from broken
            return True
        return default_storage.exists(key)
    except FileNotFoundError:
        return False
    except STORAGE_ERRORS as error:
        raise StorageUnavailable("The file storage is unreachable. Please try again.") from error


class InvalidLink(Exception):
    """A tampered, malformed or expired download link."""


def key_from_token(token: str) -> str:
    try:
        payload = signing.loads(token, salt=_SIGNING_SALT)
    except signing.BadSignature:
        raise InvalidLink("This download link is invalid.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
        raise InvalidLink("This download link is invalid.")
    if int(payload.get("e", 0)) < time.time():
        raise InvalidLink("This download link has expired.")
    return payload["k"]


def open_local(key: str) -> tuple[File, str]:
    """The stored file and its content type, for the signed local download."""
    content_type = mimetypes.guess_type(download_name(key))[0] or "application/octet-stream"
    return default_storage.open(key, "rb"), content_type


def check_storage() -> None:
    """Raise if the configured storage does not answer (used by ``/healthz``)."""
    if is_local():
        location = Path(default_storage.location)
        location.mkdir(parents=True, exist_ok=True)
        if not os.access(location, os.W_OK):
            raise PermissionError(f"{location} is not writable.")
        return
    # S3: one cheap request that needs the bucket to exist and the credentials to work.
    default_storage.connection.meta.client.head_bucket(Bucket=default_storage.bucket_name)
