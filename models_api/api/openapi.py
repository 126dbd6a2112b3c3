"""OpenAPI descriptions of the contract's shapes (drf-spectacular).

The error bodies are one component, ``Error``; every operation lists the errors the contract
lets it answer, so that clients (and schemathesis) can rely on the schema for failures too.
Every operation that answers a list or a stream documents ``limit`` and ``offset`` with their
bounds (:class:`AutoSchema`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from models_api.api.names import with_article


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, with the paging parameters of each paged operation (those the
    view itself accepts: see ``ContractViewSet.get_paging``)."""

    def get_override_parameters(self) -> list:
        parameters = super().get_override_parameters()
        get_paging = getattr(self.view, "get_paging", None)
        paging = get_paging(self.method) if get_paging else None
        if paging is None:
            return parameters
        return [*paging.parameters(), *parameters]


class APIKeyScheme(OpenApiAuthenticationExtension):
    """Either header carries the token: two security schemes, each enough on its own."""

    target_class = "models_api.api.authentication.APIKeyAuthentication"
    name = ["tokenAuth", "apiKeyAuth"]

    def get_security_requirement(self, auto_schema) -> list[dict[str, list]]:
        return [{"tokenAuth": []}, {"apiKeyAuth": []}]

    def get_security_definition(self, auto_schema) -> list[dict[str, Any]]:
        return [
            build_bearer_security_scheme_object(
                header_name="Authorization", token_prefix=self.target.keyword
            ),
            {
                "type": "apiKey",
                "in": "header",
                "name": self.target.header,
                "description": (
                    "The same token as `Authorization: Token <key>`, bare. Sent with a "
                    "different token in Authorization: 400."
                ),
            },
        ]


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="One human sentence.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="For invalid input: the messages of each field (or line) at fault.",
    )
    id = serializers.UUIDField(
        required=False, help_text="For a conflict (409): the id of the existing object."
    )

    class Meta:
        ref_name = "Error"


class DeletedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    deleted = serializers.BooleanField()

    class Meta:
        ref_name = "Deleted"


def contract_schema(noun: str, serializer: type[serializers.Serializer]):
    """Describe the standard actions of a viewset whose objects are ``noun``s."""
    plural = f"{noun}s"
    return extend_schema_view(
        all=extend_schema(
            summary=f"Every {noun}, ordered by name",
            responses={200: serializer(many=True), 404: ErrorSerializer},
        ),
        list=extend_schema(
            summary=f"Search {plural} (404 when none match)",
            responses={200: serializer(many=True), 400: ErrorSerializer, 404: ErrorSerializer},
        ),
        retrieve=extend_schema(
            summary=f"One {noun}", responses={200: serializer, 404: ErrorSerializer}
        ),
        create=extend_schema(
            summary=f"Create {with_article(noun)}",
            responses={200: serializer, 400: ErrorSerializer, 409: ErrorSerializer},
        ),
        partial_update=extend_schema(
            summary=f"Replace the fields sent of {with_article(noun)}",
            responses={
                200: serializer,
                400: ErrorSerializer,
                404: ErrorSerializer,
                409: ErrorSerializer,
            },
        ),
        destroy=extend_schema(
            summary=f"Delete {with_article(noun)}",
            responses={200: DeletedSerializer, 404: ErrorSerializer, 409: ErrorSerializer},
        ),
    )


_COMMON_ERRORS = {
    "400": "Invalid input (unknown query parameter, bad value).",
    "401": "No credentials.",
    "403": "Authenticated, but without the permission this needs.",
    "404": "Not found (an id that is not a UUID is not found either).",
    "406": "No format this answer comes in satisfies the Accept header or ?format=.",
    "429": "Too many requests.",
    "503": "The database or the object store is unreachable.",
}
_BODY_ERRORS = {
    "413": "The body (or its file) is larger than the configured limit.",
    "415": "The body's content type is not one this operation reads.",
}


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """Postprocessing hook: path ids are UUIDs, request bodies take no other fields, and every
    operation lists the errors it may answer, with the Error body.

    The routes match any text as an id (so that a malformed one is a JSON 404 rather than
    Django's), which would otherwise be documented as any string.
    """
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    # Request bodies refuse fields they do not name (400), as the contract says.
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    for path, operations in result.get("paths", {}).items():
        for _method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    parameter["schema"] = {"type": "string", "format": "uuid"}
            if path.startswith("/healthz") or path.startswith("/api/schema"):
                continue
            responses = operation.setdefault("responses", {})
            codes = dict(_COMMON_ERRORS)
            if "requestBody" in operation:
                codes.update(_BODY_ERRORS)
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": error})
    return result
