"""The OpenAPI schema and the Swagger UI, answering errors (405, 429) with the contract's JSON
body instead of YAML or HTML."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.renderers import JSONRenderer


class JSONErrorsMixin:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
            response.renderer_context = self.get_renderer_context()
        return response


class SchemaView(JSONErrorsMixin, SpectacularAPIView):
    http_method_names = ["get", "head", "options"]


class DocsView(JSONErrorsMixin, SpectacularSwaggerView):
    http_method_names = ["get", "head", "options"]
