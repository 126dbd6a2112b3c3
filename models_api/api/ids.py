"""Primary keys.

Ids are UUIDv7: random enough to be unguessable and collision-free across servers, and ordered
by creation time, so that inserting millions of records appends to the primary-key index
instead of writing all over it (as UUIDv4 would).
"""

import uuid

import uuid_utils
from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()


def new_id_text() -> str:
    """A new id as text, for bulk writes: uuid_utils' own UUID formats itself several times
    faster than the standard library's, which bulk ingest does once per record."""
    return str(uuid_utils.uuid7())


def new_id_bytes() -> bytes:
    """A new id as its 16 bytes, for bulk writes in PostgreSQL's binary COPY format."""
    return uuid_utils.uuid7().bytes
