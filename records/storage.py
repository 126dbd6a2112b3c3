"""The one place that talks to the file storage (local folder or S3 through django-storages)."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.files.storage import FileSystemStorage, default_storage


def check_storage() -> None:
    """Raise if the configured storage does not answer (used by ``/healthz``)."""
    if isinstance(default_storage, FileSystemStorage):
        location = Path(default_storage.location)
        location.mkdir(parents=True, exist_ok=True)
        if not os.access(location, os.W_OK):
            raise PermissionError(f"{location} is not writable.")
        return
    # S3: one cheap request that needs the bucket to exist and the credentials to work.
    client = default_storage.connection.meta.client
    client.head_bucket(Bucket=default_storage.bucket_name)
