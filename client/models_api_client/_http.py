"""HTTP plumbing: one httpx client (connection reuse, timeouts), retries, and error answers
turned into :mod:`models_api_client.errors`.

Retry policy (see the README's "Retries"):

- A call marked *idempotent* (every GET, PATCH and DELETE; adding a record, which the
  contract's 409 rule makes safe; a bulk batch, whose repeats the service skips) is retried
  on a connection failure (refused, reset, timed out, a response cut short) and on a 503, up
  to ``retries`` more times.
- Any other call (creating a model, an experiment, a season, a site, a dataset, a run: a
  repeat would create a second run, or answer 409 for a name the first try took) is retried
  only when the request provably never left (the connection could not be opened), and a 503
  is raised at once as :class:`Unavailable`.
- The wait before retry n (0, 1, ...) is ``backoff * 2**n`` with jitter (between half and
  all of it), or what the 503's ``Retry-After`` asks, capped at ``max_retry_wait`` seconds.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from models_api_client import errors
from models_api_client.errors import APIError, TransportError

#: httpx failures that happen before any byte of the request is sent: retrying them can
#: never repeat a write.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

Params = Mapping[str, Any] | list[tuple[str, str]] | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 4
    backoff: float = 0.5
    max_retry_wait: float = 30.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_wait)
        delay: float = self.backoff * 2.0**attempt * random.uniform(0.5, 1.0)
        return min(delay, self.max_retry_wait)


@dataclass(slots=True)
class Sent:
    """An answer, and whether a try before it may have reached the service (so that a 409
    or a 404 may be the work of that earlier try)."""

    response: httpx.Response
    resent: bool


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def error_from(response: httpx.Response) -> APIError:
    """The error for an answer that is not a success (its body must have been read)."""
    body: Any = None
    detail = f"The service answered {response.status_code} {response.reason_phrase}."
    fields: dict[str, list[str]] = {}
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip()
        if text:
            detail = f"{detail} {text[:200]}"
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            detail = body["detail"]
        raw = body.get("errors")
        if isinstance(raw, dict):
            fields = {
                str(k): [str(m) for m in v] if isinstance(v, list) else [str(v)]
                for k, v in raw.items()
            }
    cls = errors.error_class(response.status_code)
    kwargs: dict[str, Any] = {"status_code": response.status_code, "errors": fields, "body": body}
    if cls is errors.Conflict:
        existing = body.get("id") if isinstance(body, dict) else None
        kwargs["existing_id"] = _uuid_or_none(existing)
    elif cls is errors.Unavailable:
        kwargs["retry_after"] = retry_after(response)
    return cls(detail, **kwargs)


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else None
    except ValueError:
        return None


def is_json_error(response: httpx.Response) -> bool:
    """Whether an answer carries the contract's error body (not, say, a proxy's HTML page)."""
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("detail"), str)


class HTTP:
    """The one connection pool of a :class:`~models_api_client.Client`."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float | httpx.Timeout,
        policy: RetryPolicy,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.base_url = base_url
        self.policy = policy
        default_headers = {"User-Agent": _user_agent(), **(headers or {})}
        if token:
            default_headers["Authorization"] = f"Token {token}"
        try:
            self.client = httpx.Client(
                base_url=base_url, headers=default_headers, timeout=timeout, transport=transport
            )
        except httpx.InvalidURL as error:
            raise ValueError(f"The base URL {base_url!r} is not valid: {error}.") from None
        # Signed download links carry their own credential; the token never goes there.
        self._plain = httpx.Client(
            headers={"User-Agent": _user_agent()}, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self.client.close()
        self._plain.close()

    # --- sending, with retries ---------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool,
        params: Params = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        files: Callable[[], tuple[dict[str, str], dict[str, Any]]] | None = None,
        stream: bool = False,
        plain: bool = False,
        accept: str | None = None,
        read_timeout: float | None = None,
    ) -> Sent:
        """Send with the retry policy; any answer comes back (errors are not raised here).

        ``files``: a callable giving ``(data, files)`` for a multipart form, called again for
        each try (so that file objects are rewound). ``plain``: send with no credentials (a
        signed link). ``stream``: leave the body unread (the caller closes the response).
        ``read_timeout``: seconds to wait for the answer, when longer than the client's own
        (a bulk batch is answered once the service has written it).
        """
        client = self._plain if plain else self.client
        resent = False
        attempt = 0
        while True:
            headers: dict[str, str] = {}
            if content_type:
                headers["Content-Type"] = content_type
            if accept:
                headers["Accept"] = accept
            kwargs: dict[str, Any] = {"params": params, "headers": headers}
            if read_timeout is not None:
                timeout = client.timeout
                kwargs["timeout"] = httpx.Timeout(
                    connect=timeout.connect, read=max(timeout.read or 0, read_timeout),
                    write=timeout.write, pool=timeout.pool,
                )
            if json_body is not None:
                kwargs["content"] = json.dumps(json_body, separators=(",", ":")).encode()
                headers["Content-Type"] = "application/json"
            elif content is not None:
                kwargs["content"] = content
            elif files is not None:
                kwargs["data"], kwargs["files"] = files()
            try:
                request = client.build_request(method, url, **kwargs)
            except httpx.InvalidURL as error:
                raise TransportError(f"The URL is not valid: {error}") from error
            try:
                response = client.send(request, stream=stream)
            except httpx.UnsupportedProtocol as error:  # a base URL without http(s)://
                raise TransportError(_describe(error, method, str(request.url))) from error
            except httpx.TransportError as error:
                sent = not isinstance(error, _NOT_SENT)
                if attempt < self.policy.retries and (idempotent or not sent):
                    time.sleep(self.policy.wait(attempt, None))
                    attempt += 1
                    resent = resent or sent
                    continue
                raise TransportError(_describe(error, method, str(request.url))) from error
            except httpx.HTTPError as error:  # a malformed header and the like
                raise TransportError(f"{type(error).__name__}: {error}") from error
            if response.status_code == 503 and idempotent and attempt < self.policy.retries:
                wait = self.policy.wait(attempt, retry_after(response))
                response.close()
                time.sleep(wait)
                attempt += 1
                continue  # a 503 wrote nothing: this retry repeats no write
            return Sent(response, resent)

    def request(self, method: str, url: str, *, idempotent: bool, **kwargs: Any) -> httpx.Response:
        """Send (with retries) and raise the answer's error, if it is one."""
        sent = self.send(method, url, idempotent=idempotent, **kwargs)
        check(sent.response)
        return sent.response

    @contextmanager
    def stream(
        self, method: str, url: str, *, params: Params = None, accept: str | None = None,
        plain: bool = False,
    ) -> Iterator[httpx.Response]:
        """A streamed GET: retried until an answer starts; an error answer is raised with its
        body read; the body of a success is read by the caller, inside the ``with``."""
        sent = self.send(
            method, url, idempotent=True, params=params, stream=True, accept=accept, plain=plain
        )
        response = sent.response
        try:
            if not response.is_success:
                try:
                    response.read()
                except httpx.HTTPError as error:
                    raise TransportError(f"{type(error).__name__}: {error}") from error
                raise error_from(response)
            yield response
        finally:
            response.close()


def json_of(response: httpx.Response) -> Any:
    """The JSON of a success; a body that is not JSON (a proxy's page, a wrong base URL) is
    the client's own ``APIError``, not a decoding error."""
    try:
        return response.json()
    except ValueError:
        raise APIError(
            f"The answer is not JSON (Content-Type {response.headers.get('Content-Type')!r}); "
            "is the base URL the service's?",
            status_code=response.status_code,
        ) from None


def check(response: httpx.Response) -> None:
    if response.is_success:
        return
    raise error_from(response)


def iter_body(response: httpx.Response, chunk_size: int | None = None) -> Iterator[bytes]:
    """The chunks of a streamed body; a connection that fails mid-body is a TransportError."""
    try:
        yield from response.iter_bytes(chunk_size)
    except httpx.HTTPError as error:
        raise TransportError(
            f"The connection failed in the middle of the answer ({type(error).__name__}: "
            f"{error}); what was read so far is incomplete."
        ) from error


def _describe(error: httpx.TransportError, method: str, where: str) -> str:
    reason = str(error) or type(error).__name__
    return f"{method} to {where} failed: {type(error).__name__}: {reason}"


def _user_agent() -> str:
    from models_api_client import __version__

    return f"models-api-client/{__version__} httpx/{httpx.__version__}"
