"""Records in the admin: filters, a date hierarchy, a download link, and a changelist that
stays fast at millions of rows (no full count; an estimate on PostgreSQL)."""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from models_api.api.admin import JSON_FORMFIELD_OVERRIDES
from records import postgres, services
from records.models import ModelRecord


class EstimatedCountPaginator(Paginator):
    """On PostgreSQL, the unfiltered changelist counts from the planner's statistics
    (``pg_class.reltuples``) instead of scanning every row; filtered lists count exactly."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connections[queryset.db].vendor == "postgresql" and not queryset.query.where:
            estimate = postgres.estimated_row_count(queryset.model, queryset.db)
            if estimate > 10_000:
                return estimate
        return super().count


@admin.register(ModelRecord)
class ModelRecordAdmin(admin.ModelAdmin):
    list_display = ("id", "timestamp", "model", "experiment", "season", "site", "dataset", "file")
    list_select_related = ("model", "experiment", "season__experiment", "site", "dataset")
    list_filter = ("model", "experiment", "season", "site", "dataset")
    date_hierarchy = "timestamp"
    search_fields = ("=id", "=model__model_name")
    ordering = ("-id",)  # ids are time-ordered (UUIDv7): newest first, straight off the primary key
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    formfield_overrides = JSON_FORMFIELD_OVERRIDES
    fields = (
        "id", "model", "timestamp", "collection_date", "dataset", "experiment", "season", "site",
        "model_data", "record_info", "record_file", "created_at", "updated_at",
    )
    readonly_fields = (
        "id", "model", "timestamp", "collection_date", "dataset", "experiment", "season", "site",
        "record_file", "created_at", "updated_at",
    )

    @admin.display(description="file")
    def file(self, record: ModelRecord) -> str:
        if not record.record_file:
            return "-"
        url = reverse("record-download", kwargs={"pk": record.pk})
        return format_html('<a href="{}">download</a>', url)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "model_data":
            field.required = False  # JSON null is a value (the form would call it missing)
        return field

    def has_add_permission(self, request) -> bool:
        return False  # records come through the API, which stores their files and links

    def save_model(self, request, obj: ModelRecord, form, change: bool) -> None:
        services.update_record(
            obj, **{name: form.cleaned_data[name] for name in ("model_data", "record_info")}
        )

    def delete_model(self, request, obj: ModelRecord) -> None:
        services.delete_record(obj)

    def delete_queryset(self, request, queryset) -> None:
        services.delete_records(queryset)
