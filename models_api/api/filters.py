"""Query-parameter rules every endpoint applies, and the filters both apps build their
FilterSets from.

The contract rejects unknown query parameters (a typo such as ``site_name`` for ``site_names``
must never silently widen a result), so the parameters an action accepts are exactly its
filterset's, plus ``limit`` and ``offset`` on lists (:func:`check_query_params`). Names given
as filters are resolved to primary keys once, so that the filtered query needs no join; a name
that no row has matches nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, QuerySet
from django.http import QueryDict
from drf_spectacular.utils import extend_schema_field

from models_api.api.errors import InvalidInput
from models_api.api.json_values import parse_json_text
from models_api.api.names import NAME_MAX_LENGTH, NAME_SCHEMA, check_name

#: Query parameters every endpoint knows: DRF's format override (``?format=csv``).
COMMON_PARAMS = frozenset({"format"})


def check_query_params(
    params: QueryDict, filterset_class: type | None, also_known: Iterable[str] = ()
) -> None:
    """400 for unknown, empty or repeated single-valued query parameters, naming each.

    The known parameters are the filterset's and ``also_known`` (single-valued ones, such as
    a paged list's ``limit`` and ``offset``)."""
    filters = filterset_class.base_filters if filterset_class is not None else {}
    others = COMMON_PARAMS | frozenset(also_known)
    errors: dict[str, list[str]] = {}
    for name in params:
        values = params.getlist(name)
        repeatable = getattr(filters.get(name), "repeatable", False)
        if name not in filters and name not in others:
            errors[name] = ["Unknown query parameter."]
        elif len(values) > 1 and not repeatable:
            errors[name] = ["Give this query parameter once."]
        elif any(value == "" for value in values):
            errors[name] = ["This query parameter may not be empty."]
    if errors:
        raise InvalidInput(errors)


class ReferenceNamesField(forms.Field):
    """One or more names (a repeated key) of rows in ``model``, cleaned to their primary keys.

    A name no row has is not an error: it matches nothing (the contract's rule for filters;
    only writes must name rows that exist).
    """

    widget = forms.SelectMultiple  # reads every value of a repeated key

    def __init__(self, *, model: type[Model], name_field: str, **kwargs):
        super().__init__(**kwargs)
        self.model, self.name_field = model, name_field

    def clean(self, value: Any) -> list | None:
        names = [value] if isinstance(value, str) else list(value or [])
        if not names:
            return None
        for name in names:
            try:
                check_name(name)
            except ValueError as error:
                raise DjangoValidationError(str(error)) from None
        return list(
            self.model._default_manager.filter(**{f"{self.name_field}__in": names}).values_list(
                "pk", flat=True
            )
        )


class ReferenceNameField(ReferenceNamesField):
    widget = forms.TextInput


@extend_schema_field({"type": "array", "items": NAME_SCHEMA})
class ReferenceNamesFilter(django_filters.Filter):
    """Keeps rows whose ``field_name`` points at one of the named rows (repeated keys)."""

    field_class = ReferenceNamesField
    repeatable = True

    def filter(self, qs: QuerySet, value: list | None) -> QuerySet:
        if value is None:
            return qs
        qs = qs.filter(**{f"{self.field_name}__in": value})
        return qs.distinct() if self.distinct else qs


@extend_schema_field(NAME_SCHEMA)
class ReferenceNameFilter(ReferenceNamesFilter):
    """The single-valued form of :class:`ReferenceNamesFilter`."""

    field_class = ReferenceNameField
    repeatable = False


class JSONObjectFormField(forms.CharField):
    def to_python(self, value: Any) -> dict | None:
        text = super().to_python(value)
        if not text:
            return None
        parsed = parse_json_text(text)
        if not isinstance(parsed, dict):
            raise DjangoValidationError("Give a JSON object, such as {\"task\": \"detection\"}.")
        return parsed


class JSONContainsFilter(django_filters.Filter):
    """Keeps rows whose JSON field contains the given JSON object (PostgreSQL's ``@>``)."""

    field_class = JSONObjectFormField

    def filter(self, qs: QuerySet, value: dict | None) -> QuerySet:
        if value is None:
            return qs
        return qs.filter(**{f"{self.field_name}__contains": value})


@extend_schema_field(NAME_SCHEMA)
class NameFilter(django_filters.CharFilter):
    """An exact match on a name (1 to 255 characters)."""


def name_filter(field_name: str) -> NameFilter:
    return NameFilter(field_name=field_name, max_length=NAME_MAX_LENGTH)
