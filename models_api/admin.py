"""Admin for curators: search on names, filters, related rows read in the same query, and JSON
shown indented."""

from __future__ import annotations

from django.contrib import admin

from models_api.api.admin import JSON_FORMFIELD_OVERRIDES, CountedDeleteMixin
from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site


class CatalogueAdmin(CountedDeleteMixin, admin.ModelAdmin):
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    readonly_fields = ("id", "created_at", "updated_at")


class SeasonInline(admin.TabularInline):
    model = Season
    extra = 0
    fields = ("season_name", "season_start_date", "season_end_date")
    show_change_link = True


@admin.register(Experiment)
class ExperimentAdmin(CatalogueAdmin):
    list_display = ("experiment_name", "experiment_start_date", "experiment_end_date", "created_at")
    search_fields = ("experiment_name",)
    list_filter = ("experiment_start_date",)
    date_hierarchy = "created_at"
    inlines = [SeasonInline]


@admin.register(Season)
class SeasonAdmin(CatalogueAdmin):
    list_display = ("season_name", "experiment", "season_start_date", "season_end_date")
    list_select_related = ("experiment",)
    search_fields = ("season_name", "experiment__experiment_name")
    list_filter = ("experiment",)
    autocomplete_fields = ("experiment",)


@admin.register(Site)
class SiteAdmin(CatalogueAdmin):
    list_display = ("site_name", "site_city", "site_state", "site_country")
    search_fields = ("site_name", "site_city", "site_state", "site_country")
    list_filter = ("site_country", "experiments")
    filter_horizontal = ("experiments",)


@admin.register(Dataset)
class DatasetAdmin(CatalogueAdmin):
    list_display = ("dataset_name", "collection_date", "created_at")
    search_fields = ("dataset_name",)
    list_filter = ("experiments", "collection_date")
    filter_horizontal = ("experiments",)
    date_hierarchy = "collection_date"


class ModelRunInline(admin.TabularInline):
    model = ModelRun
    extra = 0
    fields = ("id", "model_run_info", "created_at")
    readonly_fields = ("id", "created_at")
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    show_change_link = True


@admin.register(MLModel)
class MLModelAdmin(CatalogueAdmin):
    list_display = ("model_name", "model_url", "created_at", "updated_at")
    search_fields = ("model_name", "model_url")
    list_filter = ("experiments",)
    filter_horizontal = ("experiments", "datasets")
    inlines = [ModelRunInline]


@admin.register(ModelRun)
class ModelRunAdmin(CatalogueAdmin):
    list_display = ("id", "model", "created_at")
    list_select_related = ("model",)
    search_fields = ("model__model_name",)
    list_filter = ("model",)
    autocomplete_fields = ("model",)
    date_hierarchy = "created_at"
