"""Serializer fields shared by every endpoint: names, URLs, JSON values and references by name.

They refuse up front what the database would otherwise reject with a 500 (NUL characters,
over-long text, absurd nesting), each with a sentence the client can act on.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from models_api.api.json_values import check_json_value, parse_json_text
from models_api.api.names import NAME_MAX_LENGTH, URL_MAX_LENGTH, clean_name


class TextField(serializers.CharField):
    """Text that must arrive as a JSON string: DRF would turn ``5`` into ``"5"`` silently."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class NameField(TextField):
    """A ``*_name``: 1 to 255 characters, surrounding white space removed."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", NAME_MAX_LENGTH)
        super().__init__(**kwargs)


class URLField(TextField):
    """An absolute URL of any scheme (``https://``, ``s3://``, ``hf://``...), at most 2,048
    characters."""

    default_error_messages = {"invalid": "Enter an absolute URL such as https://example.org/model.pt."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", URL_MAX_LENGTH)
        super().__init__(**kwargs)
        self.validators.append(
            RegexValidator(
                r"^[A-Za-z][A-Za-z0-9+.-]*://[^\s]+$", message=self.error_messages["invalid"]
            )
        )


class JSONValueField(serializers.JSONField):
    """Any JSON value. In a multipart form the value is JSON text, parsed here."""

    def to_internal_value(self, data: Any) -> Any:
        try:
            if getattr(data, "is_json_string", False):  # a form field: JSON text
                return parse_json_text(data)
            check_json_value(data)
        except DjangoValidationError as error:
            raise serializers.ValidationError(error.messages) from None
        return data


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(JSONValueField):
    """A JSON object (``*_info`` fields)."""

    default_error_messages = {
        "not_an_object": "Give a JSON object, such as {{\"key\": \"value\"}}."
    }

    def to_internal_value(self, data: Any) -> dict:
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object")
        return value


class NameRelatedField(serializers.SlugRelatedField):
    """A reference to a row by its unique name; an unknown name is a 400 naming it."""

    default_error_messages = {
        "does_not_exist": "No {label} is named '{value}'.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.label_name = self.queryset.model._meta.verbose_name

    def to_internal_value(self, data: Any) -> Any:
        try:
            data = clean_name(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        try:
            return self.get_queryset().get(**{self.slug_field: data})
        except self.queryset.model.DoesNotExist:
            self.fail("does_not_exist", label=self.label_name, value=data)
