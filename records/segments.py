"""When a bulk ingest's segment is full: at so many rows or so many bytes of JSON text,
whichever comes first, so that the rows a sink holds for a rollback stay a bounded amount of
memory however large each record is (both sinks, ``records.ingest`` and ``records.postgres``).
"""

from __future__ import annotations


class SegmentSize:
    """Counts the rows written since the segment began, and their size."""

    __slots__ = ("rows", "bytes", "max_rows", "max_bytes")

    def __init__(self, max_rows: int, max_bytes: int) -> None:
        self.max_rows, self.max_bytes = max_rows, max_bytes
        self.rows = self.bytes = 0

    def full(self, size: int) -> bool:
        """Count a row of ``size`` characters; whether the segment should now end."""
        self.rows += 1
        self.bytes += size
        return self.rows >= self.max_rows or self.bytes >= self.max_bytes

    def reset(self) -> None:
        self.rows = self.bytes = 0
