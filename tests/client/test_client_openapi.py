"""The OpenAPI schema stays the source of truth: every operation the server's schema lists
has a client method. A new endpoint on the server fails this test until the client has it
(and the mapping below names it)."""

from __future__ import annotations

import httpx
import pytest
import yaml

#: (method, path) in the schema -> the client methods that call it.
OPERATIONS = {
    ("GET", "/api/models/all/"): ["models.all"],
    ("GET", "/api/models/"): ["models.search"],
    ("POST", "/api/models/"): ["models.create"],
    ("GET", "/api/models/id/{id}/"): ["models.get"],
    ("PATCH", "/api/models/id/{id}/"): ["models.update"],
    ("DELETE", "/api/models/id/{id}/"): ["models.delete"],
    ("GET", "/api/models/id/{id}/experiments/"): ["models.experiments"],
    ("GET", "/api/models/id/{id}/runs/"): ["models.runs"],
    ("POST", "/api/models/id/{id}/runs/"): ["models.create_run"],
    ("GET", "/api/models/id/{id}/datasets/"): ["models.datasets"],
    ("POST", "/api/models/id/{id}/datasets/"): ["models.create_dataset"],
    ("POST", "/api/models/id/{model_pk}/records/"): ["records.add", "records.add_many"],
    ("GET", "/api/models/id/{model_pk}/records/"): [
        "records.iter", "records.iter_batches", "records.to_arrow", "records.to_pandas",
        "records.to_polars",
    ],
    ("GET", "/api/models/id/{model_pk}/records/filter/"): [
        "records.iter", "records.iter_batches", "records.to_arrow", "records.to_pandas",
        "records.to_polars",
    ],
    ("GET", "/api/models/records/id/{id}/"): ["records.get"],
    ("PATCH", "/api/models/records/id/{id}/"): ["records.update"],
    ("DELETE", "/api/models/records/id/{id}/"): ["records.delete"],
    ("GET", "/api/models/records/id/{id}/download/"): ["records.download"],
    **{
        operation: [f"{resource}.{method}"]
        for resource in ("experiments", "seasons", "sites")
        for operation, method in [
            (("GET", f"/api/{resource}/all/"), "all"),
            (("GET", f"/api/{resource}/"), "search"),
            (("POST", f"/api/{resource}/"), "create"),
            (("GET", f"/api/{resource}/id/{{id}}/"), "get"),
            (("PATCH", f"/api/{resource}/id/{{id}}/"), "update"),
            (("DELETE", f"/api/{resource}/id/{{id}}/"), "delete"),
        ]
    },
    # The contract's lists of what is linked to an experiment (the client has them already).
    ("GET", "/api/experiments/id/{id}/seasons/"): ["experiments.seasons"],
    ("GET", "/api/experiments/id/{id}/sites/"): ["experiments.sites"],
    ("GET", "/api/experiments/id/{id}/datasets/"): ["experiments.datasets"],
    ("GET", "/api/experiments/id/{id}/models/"): ["experiments.models"],
}
#: Operations that are not the API's resources: the schema itself and the health check.
NOT_RESOURCES = {("GET", "/api/schema/"), ("GET", "/healthz/"), ("GET", "/api/docs/")}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
def schema(server) -> dict:
    response = httpx.get(f"{server.url}/api/schema/", timeout=30)
    assert response.status_code == 200
    return yaml.safe_load(response.content)  # YAML (a JSON schema is valid YAML too)


def schema_operations(schema: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method in METHODS
    }


def test_every_operation_of_the_schema_has_a_client_method(schema, client):
    operations = schema_operations(schema) - NOT_RESOURCES
    unmapped = sorted(operations - set(OPERATIONS))
    assert not unmapped, f"operations without a client method: {unmapped}"
    for operation in operations:
        for name in OPERATIONS[operation]:
            resource, method = name.split(".")
            assert callable(getattr(getattr(client, resource), method)), (operation, name)


def test_the_mapping_names_only_real_methods(client):
    for operation, names in OPERATIONS.items():
        for name in names:
            resource, method = name.split(".")
            assert callable(getattr(getattr(client, resource), method, None)), (operation, name)
