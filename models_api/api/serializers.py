"""The base of every model serializer of the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers


class StrictModelSerializer(serializers.ModelSerializer):
    """Rejects fields it does not know, or may not write, instead of ignoring them.

    Uniqueness is left to the database constraints (the services turn a clash into a 409 that
    names the existing row), so no uniqueness validators run here.
    """

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {}
            for key in data:
                field = self.fields.get(key)
                if field is None:
                    errors[key] = ["Unknown field."]
                elif field.read_only:
                    errors[key] = ["This field is read-only."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def get_validators(self) -> list:
        return []
