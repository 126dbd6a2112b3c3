"""Admin pieces both apps use: JSON shown indented, so curators can read it, and delete
confirmation pages that count instead of listing.

Django's admin lists every object a deletion would take with it; for a model with a million
records that page would load a million rows. These pages give counts, one query per kind of
row (``models_api.api.deletion``, which the API's deletes share), and refuse (as Django does)
when protected rows point at the object or the user may not delete what it would take along.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from models_api.api.deletion import missing_delete_permissions, related_rows
from models_api.api.json_values import parse_json_text


class PrettyJSONFormField(forms.JSONField):
    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and not self.disabled and value not in self.empty_values:
            # The API's rules, which Django's json.loads lacks: NaN, numbers that cannot be
            # kept (1e400 would be stored as Infinity, or fail in the database), NUL, nesting.
            parse_json_text(value)
        return super().to_python(value)

    def bound_data(self, data: Any, initial: Any) -> Any:
        try:
            return super().bound_data(data, initial)
        except ValueError:  # an integer past Python's limit: show the form the text sent
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value: Any) -> str:
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


JSON_FORMFIELD_OVERRIDES = {
    models.JSONField: {
        "form_class": PrettyJSONFormField,
        "widget": forms.Textarea(attrs={"rows": 8, "cols": 80, "style": "font-family: monospace"}),
    }
}


class CountedDeleteMixin(admin.ModelAdmin):
    def get_deleted_objects(self, objs, request: HttpRequest):
        objs = list(objs)
        opts = self.model._meta
        to_delete: list[str] = [str(obj) for obj in objs[:100]]
        model_count: dict[str, int] = {opts.verbose_name_plural: len(objs)}
        related = related_rows(
            self.model, self.model._base_manager.filter(pk__in=[obj.pk for obj in objs])
        )
        protected = [item.label for item in related if item.protected]
        for item in related:
            if not item.protected:
                model_count[item.model._meta.verbose_name_plural] = item.count
                to_delete.append(item.label)
        perms_needed = {
            kind._meta.verbose_name for kind in missing_delete_permissions(request.user, related)
        }
        return to_delete, model_count, perms_needed, protected
