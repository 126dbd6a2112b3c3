from django.contrib import admin
from django.urls import include, path, re_path

from config.api_docs import DocsView, SchemaView
from config.health import healthz

admin.site.site_header = admin.site.site_title = "Models API"
admin.site.index_title = "Catalogue and records"

schema_view = SchemaView.as_view()
docs_view = DocsView.as_view(url_name="schema")

urlpatterns = [
    # Like the API, these answer with and without the trailing slash, never redirecting.
    re_path(r"^healthz/?$", healthz, name="healthz"),
    path("api/schema/", schema_view, name="schema"),
    re_path(r"^api/schema$", schema_view),
    path("api/docs/", docs_view, name="docs"),
    re_path(r"^api/docs$", docs_view),
    path("admin/", admin.site.urls),
    path("", include("records.urls")),
    path("", include("models_api.urls")),
]

handler400 = "config.error_views.bad_request"
handler403 = "config.error_views.permission_denied"
handler404 = "config.error_views.not_found"
handler500 = "config.error_views.server_error"
