"""Query parameters of the two record streams, checked before the first byte is sent.

A name of an experiment, season, site or dataset that no row has matches nothing (an empty
stream, as the seed's service gave its clients). Names are resolved to ids once, so the
stream's query filters on indexed id columns without joins.
"""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from models_api.api.filters import ReferenceNameFilter, ReferenceNamesFilter
from models_api.models import Dataset, Experiment, Season, Site
from records.models import ModelRecord
from records.validation import parse_timestamp


class RecordFilterSet(django_filters.FilterSet):
    """``GET /id/{id}/records``: exact matches."""

    experiment_name = ReferenceNameFilter(
        field_name="experiment_id", model=Experiment, name_field="experiment_name"
    )
    season_name = ReferenceNameFilter(
        field_name="season_id", model=Season, name_field="season_name"
    )
    site_name = ReferenceNameFilter(field_name="site_id", model=Site, name_field="site_name")
    dataset_name = ReferenceNameFilter(
        field_name="dataset_id", model=Dataset, name_field="dataset_name"
    )
    collection_date = django_filters.DateFilter(field_name="collection_date")

    class Meta:
        model = ModelRecord
        fields: list[str] = []


class TimestampField(forms.CharField):
    """A window bound, read by the same rules as a record's timestamp (ISO 8601, UTC when no
    zone is given), so that a bound outside the calendar in UTC is a 400 here rather than an
    error inside the database adapter once the stream has started."""

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return None
        try:
            return parse_timestamp(text)
        except ValueError as error:
            # Client text goes in params: django-filter formats the message with "%".
            raise forms.ValidationError("%(reason)s", params={"reason": str(error)}) from None


@extend_schema_field(OpenApiTypes.DATETIME)
class TimestampFilter(django_filters.Filter):
    field_class = TimestampField


class WindowForm(forms.Form):
    def clean(self) -> dict:
        cleaned = super().clean()
        start, end = cleaned.get("start_timestamp"), cleaned.get("end_timestamp")
        if start and end and start > end:
            raise forms.ValidationError(
                {"start_timestamp": "start_timestamp is after end_timestamp."}
            )
        return cleaned


class RecordWindowFilterSet(django_filters.FilterSet):
    """``GET /id/{id}/records/filter``: a time window (both bounds inclusive, either optional)
    and lists of names, each given as repeated keys (``?site_names=A&site_names=B``)."""

    start_timestamp = TimestampFilter(field_name="timestamp", lookup_expr="gte")
    end_timestamp = TimestampFilter(field_name="timestamp", lookup_expr="lte")
    experiment_names = ReferenceNamesFilter(
        field_name="experiment_id", model=Experiment, name_field="experiment_name"
    )
    season_names = ReferenceNamesFilter(
        field_name="season_id", model=Season, name_field="season_name"
    )
    site_names = ReferenceNamesFilter(field_name="site_id", model=Site, name_field="site_name")
    dataset_names = ReferenceNamesFilter(
        field_name="dataset_id", model=Dataset, name_field="dataset_name"
    )

    class Meta:
        model = ModelRecord
        fields: list[str] = []
        form = WindowForm
