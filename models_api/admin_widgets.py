"""Admin form pieces shared by both apps: JSON shown indented, so curators can read it."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.db import models


class PrettyJSONFormField(forms.JSONField):
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
