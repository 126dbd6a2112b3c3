"""What the two file commands (``import_records``, ``export_records``) share: finding the
model, telling the format, and a progress bar that shows only on a terminal."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.core.management.base import CommandError, OutputWrapper
from tqdm import tqdm

from models_api.models import MLModel

FORMATS = {
    ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson", ".csv": "csv",
    ".arrow": "arrow", ".arrows": "arrow", ".parquet": "parquet", ".pq": "parquet",
}


def find_model(name_or_id: str) -> MLModel:
    """The model with this id, or else with this name."""
    try:
        return MLModel.objects.get(pk=uuid.UUID(name_or_id))
    except (ValueError, MLModel.DoesNotExist):
        pass
    try:
        return MLModel.objects.get(model_name=name_or_id)
    except MLModel.DoesNotExist:
        raise CommandError(f"No model is named or has the id '{name_or_id}'.") from None


def choose_format(path: str, given: str | None) -> str:
    """``--format`` if given, else from the file's extension; standard input is NDJSON."""
    if given:
        return given
    if path == "-":
        return "ndjson"
    try:
        return FORMATS[Path(path).suffix.lower()]
    except KeyError:
        raise CommandError(
            f"Cannot tell the format of '{path}' from its extension; give --format "
            "ndjson, csv, arrow or parquet."
        ) from None


def progress(stderr: OutputWrapper, unit: str) -> tqdm:
    """A progress bar on a terminal only: piped or captured output stays clean.

    tqdm writes to the raw stream: Django's ``OutputWrapper`` would end every redraw with a
    newline.
    """
    stream = getattr(stderr, "_out", stderr)
    return tqdm(file=stream, unit=f" {unit}", disable=not stderr.isatty())
