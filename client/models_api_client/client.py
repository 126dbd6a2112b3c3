"""The :class:`Client`: one connection pool to a Models API service, and its resources."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import TracebackType

import httpx

from models_api_client._http import HTTP, RetryPolicy
from models_api_client.records import Records
from models_api_client.resources import Experiments, Models, Seasons, Sites

__all__ = ["Client"]

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


class Client:
    """A client of one Models API service.

    ``base_url`` (default: ``$MODELS_API_URL``) is the service's root, such as
    ``http://127.0.0.1:8000`` (a trailing ``/api`` is accepted too); ``token`` (default:
    ``$MODELS_API_TOKEN``) a key from ``manage.py create_api_user``, sent as
    ``Authorization: Token <key>``. ``timeout``: seconds (or an ``httpx.Timeout``) for
    connecting and between two reads; a stream may last longer.

    Retries (see the README): idempotent calls are retried ``retries`` times on connection
    failures and 503, waiting ``backoff * 2**n`` seconds (with jitter) or what ``Retry-After``
    asks, at most ``max_retry_wait`` seconds each. ``transport`` and ``headers`` go to httpx
    (a proxy's headers, a test transport).

    Use it as a context manager (``with Client() as client: ...``), or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 4,
        backoff: float = 0.5,
        max_retry_wait: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("MODELS_API_URL")
        if not base_url:
            raise ValueError(
                "Give the service's URL: Client('http://host:8000', token) or MODELS_API_URL."
            )
        token = token if token is not None else os.environ.get("MODELS_API_TOKEN")
        if retries < 0:
            raise ValueError("retries must be 0 or more.")
        self.base_url = _root(base_url)
        self._http = HTTP(
            self.base_url,
            token or None,
            timeout=timeout,
            policy=RetryPolicy(retries=retries, backoff=backoff, max_retry_wait=max_retry_wait),
            transport=transport,
            headers=headers,
        )
        #: ``/api/models``: models, their runs, datasets and experiments.
        self.models = Models(self)
        #: ``/api/experiments``.
        self.experiments = Experiments(self)
        #: ``/api/seasons``.
        self.seasons = Seasons(self)
        #: ``/api/sites``.
        self.sites = Sites(self)
        #: Model records: add, stream, read as tables, change, delete, download.
        self.records = Records(self)

    def close(self) -> None:
        """Close the connections (the client cannot be used after)."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"


def _root(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    return url
