"""What several test modules check or walk in the same way."""

from __future__ import annotations

import json
import re
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa

#: A ``detail`` is one human sentence: some text, ending with a full stop (or ! or ?).
ONE_SENTENCE = re.compile(r"[^\n]*\S[^\n]*[.!?]")

#: Every read endpoint of the catalogue, ids as ``{model}``, ``{experiment}``... (see ``fill``).
#: Each answers 200 for the ``catalogue`` fixture.
READ_PATHS = [
    "/api/models/all",
    "/api/models",
    "/api/models/id/{model}",
    "/api/models/id/{model}/experiments",
    "/api/models/id/{model}/runs",
    "/api/models/id/{model}/datasets",
    "/api/experiments/all",
    "/api/experiments",
    "/api/experiments/id/{experiment}",
    "/api/experiments/id/{experiment}/seasons",
    "/api/experiments/id/{experiment}/sites",
    "/api/experiments/id/{experiment}/datasets",
    "/api/experiments/id/{experiment}/models",
    "/api/seasons/all",
    "/api/seasons",
    "/api/seasons/id/{season}",
    "/api/sites/all",
    "/api/sites",
    "/api/sites/id/{site}",
]

#: Every list endpoint of the catalogue (``limit``/``offset``, 404 when empty): the read
#: endpoints that do not end at one object's id.
LIST_PATHS = [path for path in READ_PATHS if not re.search(r"/id/\{\w+\}$", path)]


def fill(template: str, catalogue: dict) -> str:
    """``template`` with the ids of the ``catalogue`` fixture's objects."""
    return template.format(**{key: obj.id for key, obj in catalogue.items()})


def assert_error(response, status: int) -> dict:
    """The answer is the contract's error: ``status``, JSON (never a stream), an object whose
    ``detail`` is one sentence and whose ``errors``, if any, map to lists of messages."""
    content = b"" if getattr(response, "streaming", False) else response.content
    assert response.status_code == status, (response.status_code, content[:500])
    assert not getattr(response, "streaming", False), "an error must not be a stream"
    content_type = response["Content-Type"] if hasattr(response, "__getitem__") else (
        response.headers["Content-Type"]
    )
    assert content_type.startswith("application/json"), content_type
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str), body
    assert ONE_SENTENCE.fullmatch(body["detail"]), body["detail"]
    for field, messages in body.get("errors", {}).items():
        assert isinstance(messages, list) and messages, (field, messages)
        assert all(isinstance(message, str) for message in messages), (field, messages)
    return body


class Peak:
    bytes = 0


@contextmanager
def peak_memory() -> Iterator[Peak]:
    """The peak of memory allocated in the block, by Python and by Arrow (whose buffers
    tracemalloc does not see), in ``.bytes`` once the block is left."""
    peak, previous = Peak(), pa.default_memory_pool()
    pool = pa.proxy_memory_pool(previous)
    pa.set_memory_pool(pool)
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        yield peak
        peak.bytes = tracemalloc.get_traced_memory()[1] + pool.max_memory()
    finally:
        tracemalloc.stop()
        pa.set_memory_pool(previous)


def ndjson_lines(response) -> list[dict]:
    """The records of a 200 NDJSON stream, each line ended by a newline."""
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/x-ndjson"
    body = b"".join(response.streaming_content)
    assert body == b"" or body.endswith(b"\n")
    return [json.loads(line) for line in body.splitlines()]
