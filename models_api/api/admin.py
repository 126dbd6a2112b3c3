"""Admin pieces both apps use: JSON shown indented, so curators can read it, and delete
confirmation pages that count instead of listing.

Django's admin lists every object a deletion would take with it; for a model with a million
records that page would load a million rows. These pages give counts, one query per
relation, and refuse (as Django does) when protected rows point at the object.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin
from django.db import models
from django.db.models import CASCADE, PROTECT, Model, QuerySet
from django.http import HttpRequest

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
        to_delete: list[str] = []
        model_count: dict[str, int] = {}
        perms_needed: set[str] = set()
        protected: list[str] = []
        objs = list(objs)
        opts = self.model._meta
        model_count[opts.verbose_name_plural] = len(objs)
        to_delete.extend(str(obj) for obj in objs[:100])
        for relation in opts.related_objects:
            if relation.on_delete not in (CASCADE, PROTECT) or relation.many_to_many:
                continue
            related: type[Model] = relation.related_model
            rows: QuerySet = related._base_manager.filter(**{f"{relation.field.name}__in": objs})
            count = rows.count()
            if not count:
                continue
            label = related._meta.verbose_name if count == 1 else related._meta.verbose_name_plural
            summary = f"{count:,} {label}"
            if relation.on_delete is PROTECT:
                protected.append(summary)
                continue
            model_count[related._meta.verbose_name_plural] = count
            to_delete.append(summary)
            codename = f"{related._meta.app_label}.delete_{related._meta.model_name}"
            if not request.user.has_perm(codename):
                perms_needed.add(related._meta.verbose_name)
        return to_delete, model_count, perms_needed, protected
