"""The OpenAPI 3 schema at ``/api/schema/`` and the Swagger UI at ``/api/docs/``."""

from __future__ import annotations

import json
import re

import openapi_spec_validator
import pytest
import yaml
from django.contrib.staticfiles import finders
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

ERROR_REF = "#/components/schemas/Error"

#: path -> the operations the contract gives it (foundation endpoints; records are tested
#: with the records app).
OPERATIONS = {
    "/api/models/": {"get", "post"},
    "/api/models/all/": {"get"},
    "/api/models/id/{id}/": {"get", "patch", "delete"},
    "/api/models/id/{id}/experiments/": {"get"},
    "/api/models/id/{id}/runs/": {"get", "post"},
    "/api/models/id/{id}/datasets/": {"get", "post"},
    "/api/experiments/": {"get", "post"},
    "/api/experiments/all/": {"get"},
    "/api/experiments/id/{id}/": {"get", "patch", "delete"},
    "/api/experiments/id/{id}/seasons/": {"get"},
    "/api/experiments/id/{id}/sites/": {"get"},
    "/api/experiments/id/{id}/datasets/": {"get"},
    "/api/experiments/id/{id}/models/": {"get"},
    "/api/seasons/": {"get", "post"},
    "/api/seasons/all/": {"get"},
    "/api/seasons/id/{id}/": {"get", "patch", "delete"},
    "/api/sites/": {"get", "post"},
    "/api/sites/all/": {"get"},
    "/api/sites/id/{id}/": {"get", "patch", "delete"},
}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
#: The GET operations that answer a list (``limit``/``offset``, 404 when empty).
LISTS = {
    path
    for path, methods in OPERATIONS.items()
    if "get" in methods and not path.endswith("/id/{id}/")
}
STREAMS = {"/api/models/id/{model_pk}/records/", "/api/models/id/{model_pk}/records/filter/"}
PAGING = {"limit", "offset"}


@pytest.fixture(scope="module")
def schema() -> dict:
    """The schema, generated once for the module (it needs no database)."""
    response = APIClient().get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def operation(schema: dict, path: str, method: str) -> dict:
    return schema["paths"][path][method]


def error_ref(response: dict) -> str | None:
    return response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")


# --- The document ----------------------------------------------------------------------------


def test_schema_is_yaml_openapi_3_by_default(anonymous):
    response = anonymous.get("/api/schema/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.oai.openapi")
    document = yaml.safe_load(response.content)
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "Models API"


@pytest.mark.parametrize("accept", ["application/json", "application/vnd.oai.openapi+json"])
def test_schema_is_json_on_request(anonymous, schema, accept):
    response = anonymous.get("/api/schema/", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert "json" in response["Content-Type"]
    assert json.loads(response.content) == schema


def test_schema_is_a_valid_openapi_document(schema):
    openapi_spec_validator.validate(schema)


def test_schema_has_every_catalogue_path_with_its_operations(schema):
    for path, methods in OPERATIONS.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) & HTTP_METHODS == methods, path


def test_schema_has_no_put(schema):
    for path, operations in schema["paths"].items():
        assert "put" not in operations, path


def test_path_ids_are_uuids(schema):
    for path in OPERATIONS:
        if "{id}" not in path:
            continue
        for method in OPERATIONS[path]:
            (parameter,) = [
                p for p in operation(schema, path, method)["parameters"] if p["in"] == "path"
            ]
            assert parameter["name"] == "id"
            assert parameter["schema"] == {"type": "string", "format": "uuid"}


def test_error_component_is_the_contract_error_body(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["detail"]
    assert error["properties"]["detail"]["type"] == "string"
    assert error["properties"]["errors"]["additionalProperties"] == {
        "type": "array",
        "items": {"type": "string"},
    }
    assert error["properties"]["id"]["format"] == "uuid"


@pytest.mark.parametrize(
    "path, method, codes",
    [
        pytest.param("/api/models/", "get", {"400", "404"}, id="search"),
        pytest.param("/api/models/all/", "get", {"404"}, id="all"),
        pytest.param("/api/models/", "post", {"400", "409"}, id="create"),
        pytest.param("/api/models/id/{id}/", "get", {"404"}, id="retrieve"),
        pytest.param("/api/models/id/{id}/", "patch", {"400", "404", "409"}, id="update"),
        pytest.param("/api/models/id/{id}/", "delete", {"404"}, id="delete"),
        pytest.param("/api/models/id/{id}/runs/", "post", {"400", "404"}, id="create-run"),
        pytest.param("/api/models/id/{id}/datasets/", "post", {"400", "404"}, id="create-dataset"),
        pytest.param("/api/experiments/", "post", {"400", "409"}, id="create-experiment"),
        pytest.param("/api/seasons/id/{id}/", "patch", {"400", "404", "409"}, id="update-season"),
        pytest.param("/api/sites/id/{id}/", "delete", {"404", "409"}, id="delete-site"),
    ],
)
def test_contract_errors_reference_the_error_component(schema, path, method, codes):
    responses = operation(schema, path, method)["responses"]
    for code in codes:
        assert code in responses, code
        assert error_ref(responses[code]) == ERROR_REF, code


def test_every_error_response_references_the_error_component(schema):
    for path in OPERATIONS:
        for method in OPERATIONS[path]:
            responses = operation(schema, path, method)["responses"]
            assert {"401", "403", "503"} <= set(responses), (path, method)
            for code, response in responses.items():
                if int(code) >= 400:
                    assert error_ref(response) == ERROR_REF, (path, method, code)


def test_every_operation_documents_406_as_unknown_format_answers_it(schema, api):
    """``?format=`` is read on every operation (the contract's 406 for an unknown format), so
    each must list it: schemathesis found GET /api/models/all/ answering an undocumented 406."""
    for path, operations in schema["paths"].items():
        if path.startswith(("/healthz", "/api/schema")):
            continue
        for method, answer in operations.items():
            if method in HTTP_METHODS:
                assert "406" in answer["responses"], (path, method)
                assert error_ref(answer["responses"]["406"]) == ERROR_REF, (path, method)
    response = api.get("/api/models/all/", {"format": "yaml"})
    assert response.status_code == 406
    assert response.json()["detail"].startswith("Unknown format 'yaml'")


def test_writes_document_413_and_415(schema):
    for path in OPERATIONS:
        for method in OPERATIONS[path] & {"post", "patch"}:
            assert {"413", "415"} <= set(operation(schema, path, method)["responses"])


def test_success_is_200_not_201_or_204(schema):
    for path in OPERATIONS:
        for method in OPERATIONS[path]:
            codes = {c for c in operation(schema, path, method)["responses"] if c.startswith("2")}
            assert codes == {"200"}, (path, method, codes)


def test_delete_answers_the_deleted_shape(schema):
    response = operation(schema, "/api/models/id/{id}/", "delete")["responses"]["200"]
    assert error_ref(response) == "#/components/schemas/Deleted"
    deleted = schema["components"]["schemas"]["Deleted"]
    assert set(deleted["properties"]) == {"id", "deleted"}


def test_search_documents_its_query_parameters(schema):
    def names(path):
        return {
            p["name"]
            for p in operation(schema, path, "get").get("parameters", [])
            if p["in"] == "query"
        }

    assert names("/api/models/") == {
        "model_name", "model_url", "model_info", "experiment_name", *PAGING
    }
    assert names("/api/experiments/") == {"experiment_name", *PAGING}
    assert names("/api/seasons/") == {"season_name", "experiment_name", *PAGING}
    assert names("/api/sites/") == {"site_name", *PAGING}


@pytest.mark.parametrize("kind", ["models", "experiments", "seasons", "sites"])
def test_all_documents_only_the_paging_parameters(schema, kind):
    parameters = operation(schema, f"/api/{kind}/all/", "get").get("parameters", [])
    assert [p["name"] for p in parameters if p["in"] == "query"] == ["limit", "offset"]


def query_parameters(schema: dict, path: str, method: str) -> dict[str, dict]:
    return {
        p["name"]: p
        for p in operation(schema, path, method).get("parameters", [])
        if p["in"] == "query"
    }


def test_every_list_documents_limit_and_offset_with_their_bounds(schema):
    assert len(LISTS) == 15
    for path in LISTS:
        parameters = query_parameters(schema, path, "get")
        assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 10000}
        assert parameters["offset"]["schema"] == {"type": "integer", "minimum": 0}
        assert not parameters["limit"].get("required") and not parameters["offset"].get("required")
        assert "10000" in parameters["limit"]["description"], path


def test_both_streams_document_a_limit_without_upper_bound(schema):
    for path in STREAMS:
        parameters = query_parameters(schema, path, "get")
        assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1}, path
        assert parameters["offset"]["schema"] == {"type": "integer", "minimum": 0}, path


def test_paging_is_documented_only_where_a_list_is_answered(schema):
    for path, operations in schema["paths"].items():
        for method in set(operations) & HTTP_METHODS:
            documented = PAGING & set(query_parameters(schema, path, method))
            paged = method == "get" and (path in LISTS or path in STREAMS)
            assert documented == (PAGING if paged else set()), (path, method)


def test_lists_are_documented_as_plain_arrays_not_paginated_envelopes(schema):
    assert not [name for name in schema["components"]["schemas"] if "Paginated" in name]
    for path in LISTS:
        content = operation(schema, path, "get")["responses"]["200"]["content"]
        assert content["application/json"]["schema"]["type"] == "array", path


def test_create_request_bodies_are_json_with_required_names(schema):
    for path, name in [
        ("/api/models/", "model_name"),
        ("/api/experiments/", "experiment_name"),
        ("/api/sites/", "site_name"),
    ]:
        content = operation(schema, path, "post")["requestBody"]["content"]
        assert set(content) == {"application/json"}
        ref = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
        assert name in schema["components"]["schemas"][ref]["required"]
    season = schema["components"]["schemas"]["SeasonRequest"]
    assert {"season_name", "experiment_name"} <= set(season["required"])


def test_response_objects_have_the_contract_fields(schema):
    components = schema["components"]["schemas"]
    expected = {
        "MLModel": {"id", "model_name", "model_url", "model_info"},
        "ModelRun": {"id", "model_id", "model_run_info"},
        "Dataset": {"id", "dataset_name", "dataset_info", "collection_date"},
        "Experiment": {
            "id",
            "experiment_name",
            "experiment_info",
            "experiment_start_date",
            "experiment_end_date",
        },
        "Season": {
            "id",
            "season_name",
            "season_info",
            "season_start_date",
            "season_end_date",
            "experiment_id",
            "experiment_name",
        },
        "Site": {"id", "site_name", "site_city", "site_state", "site_country", "site_info"},
    }
    for name, fields in expected.items():
        assert set(components[name]["properties"]) == fields | {"created_at", "updated_at"}, name
        assert components[name]["properties"]["created_at"]["format"] == "date-time"


def test_info_fields_are_documented_as_objects(schema):
    components = schema["components"]["schemas"]
    for component, field in [
        ("MLModelRequest", "model_info"),
        ("SiteRequest", "site_info"),
        ("ExperimentRequest", "experiment_info"),
    ]:
        assert components[component]["properties"][field].get("type") == "object"


def test_token_and_session_authentication_are_documented(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": 'Token-based authentication with required prefix "Token"',
    }
    assert schemes["cookieAuth"]["in"] == "cookie"
    security = operation(schema, "/api/models/", "get")["security"]
    assert {"tokenAuth": []} in security


def test_the_x_api_key_header_is_documented_as_an_alternative_to_the_token(schema):
    scheme = schema["components"]["securitySchemes"]["apiKeyAuth"]
    assert {key: scheme[key] for key in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
    }
    for path in ("/api/models/", "/api/models/id/{model_pk}/records/", "/api/sites/id/{id}/"):
        for method in set(schema["paths"][path]) & HTTP_METHODS:
            security = operation(schema, path, method)["security"]
            # Each entry alone is enough (OpenAPI: a list of alternatives).
            assert {"tokenAuth": []} in security and {"apiKeyAuth": []} in security, path


# --- Swagger UI ------------------------------------------------------------------------------


def test_docs_render_swagger_ui(anonymous):
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert '<div id="swagger-ui"></div>' in html
    assert '"/api/schema/"' in html


def test_docs_load_nothing_from_a_cdn(anonymous):
    html = anonymous.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)


def test_docs_assets_are_shipped_with_the_service(anonymous):
    html = anonymous.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    for asset in assets:
        assert finders.find(asset), asset
