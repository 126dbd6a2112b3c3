"""Reading configuration from the environment, failing fast on values that cannot be right.

Every setting that an operator may change is read through :class:`Env`, so that a typo such as
``DJANGO_DEBUG=ture`` stops the process at start-up with ``ImproperlyConfigured`` instead of
silently running with a default.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Env:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.environ.get(name)
        return default if value is None or value == "" else value

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}."
        )

    def int(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self.environ.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}.") from None
        if minimum is not None and number < minimum:
            raise ImproperlyConfigured(f"{name} must be at least {minimum}; got {number}.")
        return number

    def seconds(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        """A duration in seconds, fractions allowed (``0.5``)."""
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return default
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not minimum <= number < math.inf:  # also refuses "nan"
            raise ImproperlyConfigured(
                f"{name} must be a number of seconds, at least {minimum}; got {value!r}."
            )
        return number

    def list(self, name: str, default: list[str] | None = None) -> list[str]:
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return list(default or [])
        return [item.strip() for item in value.split(",") if item.strip()]

    def size(self, name: str, default: int) -> int:
        """A byte size such as ``64MB``, ``512KB`` or a plain number of bytes."""
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return default
        text = value.strip().upper().removesuffix("B")
        factor = 1
        for suffix, multiplier in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
            if text.endswith(suffix):
                text, factor = text[:-1], multiplier
                break
        try:
            number = int(text) * factor
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} must be a size such as 10485760, 512KB or 64MB; got {value!r}."
            ) from None
        if number <= 0:
            raise ImproperlyConfigured(f"{name} must be a positive size; got {value!r}.")
        return number

    def rate(self, name: str, default: str | None) -> str | None:
        """A throttle rate as DRF writes it (``20/minute``: a count, a slash, a period of
        ``s``, ``m``, ``h`` or ``d``, spelled out or not); ``off`` gives None."""
        value = self.environ.get(name)
        if value is None or value.strip() == "":
            return default
        text = value.strip().lower()
        if text in _FALSE | {"none"}:
            return None
        count, _, period = text.partition("/")
        if not (count.isdigit() and int(count) > 0 and period[:1] in {"s", "m", "h", "d"}):
            raise ImproperlyConfigured(
                f"{name} must be a rate such as 20/minute, 5/second or 100/hour, or off; "
                f"got {value!r}."
            )
        return f"{int(count)}/{period}"
