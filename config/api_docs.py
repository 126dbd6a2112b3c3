"""The OpenAPI schema and the Swagger UI, answering errors (405, 429) with the contract's JSON
body instead of YAML or HTML."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from models_api.api.viewsets import JSONErrorsMixin


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    http_method_names = ["get", "head", "options"]


class DocsView(JSONErrorsMixin, SpectacularSwaggerView):
    http_method_names = ["get", "head", "options"]
