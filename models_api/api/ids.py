"""Primary keys.

Ids are UUIDv7: random enough to be unguessable and collision-free across servers, and ordered
by creation time, so that inserting millions of records appends to the primary-key index
instead of writing all over it (as UUIDv4 would).
"""

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()
