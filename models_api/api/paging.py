"""``limit`` and ``offset`` on every list and both record streams.

The parameter names and their meaning are DRF's ``LimitOffsetPagination``'s, without its
envelope: a page is still the plain JSON list (or stream) the seed's clients read, cut after
the list's own order. Unlike DRF, which silently clamps or ignores a value it cannot use, a
value that is not a whole number in range is a 400 naming the parameter, and no ``COUNT``
query is made (there is no envelope to put a count in).

- ``limit``: 1 to ``API_MAX_LIMIT`` (default 10,000) on lists; on streams 1 or more, with no
  upper bound. Without it a list is whole.
- ``offset``: 0 or more. A page past the end is the list's usual 404, or an empty stream.

A view does not declare these as DRF's ``pagination_class``: drf-spectacular would then
document every list answer as a paginated envelope. Views name their paging class in
``paging_class`` instead (see ``ContractViewSet``), and the schema's parameters come from
:meth:`ListPaging.parameters` (see ``models_api.api.openapi.AutoSchema``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from models_api.api.errors import InvalidInput

#: The largest value a SQL LIMIT or OFFSET holds (a signed 64-bit integer, on PostgreSQL and
#: SQLite alike). Larger values mean the same (everything, or past the end), so they are
#: capped here rather than overflowing in the database.
SQL_MAX = 2**63 - 1
_DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Page:
    """The part of an ordered list asked for: ``offset`` rows skipped, then at most ``limit``
    (``None``: to the end)."""

    offset: int = 0
    limit: int | None = None

    @property
    def whole(self) -> bool:
        return self.offset == 0 and self.limit is None

    def of(self, queryset: QuerySet) -> QuerySet:
        """``queryset`` (which must be ordered) cut to this page: LIMIT and OFFSET in SQL."""
        if self.whole:
            return queryset
        end = None if self.limit is None else self.offset + self.limit
        return queryset[self.offset : end]


def _whole_number(text: str) -> int | None:
    """``text`` as a non-negative whole number written in ASCII digits (capped at
    :data:`SQL_MAX`), or None for anything else (``-1``, ``1.5``, ``+1``, ``1e3``, ``x``)."""
    if not _DIGITS.fullmatch(text):
        return None
    digits = text.lstrip("0") or "0"
    return SQL_MAX if len(digits) > 19 else min(int(digits), SQL_MAX)


class ListPaging(LimitOffsetPagination):
    """``limit``/``offset`` of a list: ``limit`` at most ``API_MAX_LIMIT``."""

    default_limit = None  # without ``limit``, the list is whole

    @property
    def max_limit(self) -> int | None:
        return settings.API_MAX_LIMIT

    @property
    def query_params(self) -> tuple[str, str]:
        """The names of the parameters, known to every paged action."""
        return (self.limit_query_param, self.offset_query_param)

    def limit_range(self) -> str:
        if self.max_limit is None:
            return "1 or more"
        return f"1 to {self.max_limit}"

    def page(self, request: Request) -> Page:
        """The page the query asks for; 400 naming each parameter whose value is not a whole
        number in range."""
        errors: dict[str, list[str]] = {}
        limit = offset = None
        try:
            limit = self.get_limit(request)
        except ValueError as error:
            errors[self.limit_query_param] = [str(error)]
        try:
            offset = self.get_offset(request)
        except ValueError as error:
            errors[self.offset_query_param] = [str(error)]
        if errors:
            raise InvalidInput(errors)
        return Page(offset=offset, limit=limit)

    def get_limit(self, request: Request) -> int | None:
        text = request.query_params.get(self.limit_query_param)
        if text is None:
            return self.default_limit
        limit = _whole_number(text)
        if limit is None or limit < 1 or (self.max_limit is not None and limit > self.max_limit):
            raise ValueError(f"Give a whole number, {self.limit_range()}.")
        return limit

    def get_offset(self, request: Request) -> int:
        text = request.query_params.get(self.offset_query_param)
        if text is None:
            return 0
        offset = _whole_number(text)
        if offset is None:
            raise ValueError("Give a whole number, 0 or more.")
        return offset

    def parameters(self) -> list[OpenApiParameter]:
        """The two parameters for the OpenAPI schema, with their bounds."""
        limit_schema = {"type": "integer", "minimum": 1}
        if self.max_limit is not None:
            limit_schema["maximum"] = self.max_limit
        return [
            OpenApiParameter(
                self.limit_query_param,
                limit_schema,
                OpenApiParameter.QUERY,
                description=(
                    f"The most items to answer ({self.limit_range()}), after the list's order "
                    "and `offset`. Without it, every item."
                ),
            ),
            OpenApiParameter(
                self.offset_query_param,
                {"type": "integer", "minimum": 0},
                OpenApiParameter.QUERY,
                description="How many items to skip first, in the list's order (default 0).",
            ),
        ]


class StreamPaging(ListPaging):
    """``limit``/``offset`` of a record stream: ``limit`` has no upper bound."""

    @property
    def max_limit(self) -> None:
        return None
