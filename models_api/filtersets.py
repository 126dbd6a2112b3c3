"""Query parameters of the catalogue's search endpoints (``GET /api/<objects>?...``).

An experiment named in a filter that does not exist matches nothing (the contract's rule for
filters); the filters themselves are the shared ones of :mod:`models_api.api.filters`.
"""

from __future__ import annotations

import django_filters

from models_api.api.filters import JSONContainsFilter, ReferenceNameFilter, name_filter
from models_api.api.names import URL_MAX_LENGTH
from models_api.models import Experiment, MLModel, Season, Site


class MLModelFilterSet(django_filters.FilterSet):
    model_name = name_filter("model_name")
    model_url = django_filters.CharFilter(field_name="model_url", max_length=URL_MAX_LENGTH)
    model_info = JSONContainsFilter(field_name="model_info")
    experiment_name = ReferenceNameFilter(
        field_name="experiments", model=Experiment, name_field="experiment_name", distinct=True
    )

    class Meta:
        model = MLModel
        fields: list[str] = []


class ExperimentFilterSet(django_filters.FilterSet):
    experiment_name = name_filter("experiment_name")

    class Meta:
        model = Experiment
        fields: list[str] = []


class SeasonFilterSet(django_filters.FilterSet):
    season_name = name_filter("season_name")
    experiment_name = ReferenceNameFilter(
        field_name="experiment", model=Experiment, name_field="experiment_name"
    )

    class Meta:
        model = Season
        fields: list[str] = []


class SiteFilterSet(django_filters.FilterSet):
    site_name = name_filter("site_name")

    class Meta:
        model = Site
        fields: list[str] = []
