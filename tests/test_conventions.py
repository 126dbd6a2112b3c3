"""The conventions the contract sets for every endpoint: paths, ids, query parameters, bodies,
limits and error bodies."""

from __future__ import annotations

import datetime
import json
import uuid

import pytest

from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site
from tests.factories import (
    ExperimentFactory,
    MLModelFactory,
    SeasonFactory,
    SiteFactory,
)
from tests.helpers import READ_PATHS, assert_error, fill

pytestmark = pytest.mark.django_db

def call(client, method: str, path: str, body: dict | None = None):
    """``method`` on ``path``; a JSON ``body`` for POST and PATCH, none for GET and DELETE."""
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, body or {}, format="json")


#: Every endpoint that takes an id in its path, with the methods it answers.
DETAIL_ENDPOINTS = [
    ("get", "/api/models/id/{id}"),
    ("patch", "/api/models/id/{id}"),
    ("delete", "/api/models/id/{id}"),
    ("get", "/api/models/id/{id}/experiments"),
    ("get", "/api/models/id/{id}/runs"),
    ("post", "/api/models/id/{id}/runs"),
    ("get", "/api/models/id/{id}/datasets"),
    ("post", "/api/models/id/{id}/datasets"),
    ("get", "/api/experiments/id/{id}"),
    ("get", "/api/experiments/id/{id}/seasons"),
    ("get", "/api/experiments/id/{id}/sites"),
    ("get", "/api/experiments/id/{id}/datasets"),
    ("get", "/api/experiments/id/{id}/models"),
    ("patch", "/api/experiments/id/{id}"),
    ("delete", "/api/experiments/id/{id}"),
    ("get", "/api/seasons/id/{id}"),
    ("patch", "/api/seasons/id/{id}"),
    ("delete", "/api/seasons/id/{id}"),
    ("get", "/api/sites/id/{id}"),
    ("patch", "/api/sites/id/{id}"),
    ("delete", "/api/sites/id/{id}"),
]

#: (collection, name field, model) of each object type created by ``POST /``.
KINDS = [
    pytest.param("/api/models", "model_name", MLModel, id="models"),
    pytest.param("/api/experiments", "experiment_name", Experiment, id="experiments"),
    pytest.param("/api/seasons", "season_name", Season, id="seasons"),
    pytest.param("/api/sites", "site_name", Site, id="sites"),
]


def create_body(name_field: str, name: str) -> dict:
    body = {name_field: name}
    if name_field == "season_name":
        body["experiment_name"] = "Experiment A"
    return body


def make(model_class, name: str):
    factories = {
        MLModel: lambda: MLModelFactory(model_name=name),
        Experiment: lambda: ExperimentFactory(experiment_name=name),
        Season: lambda: SeasonFactory(season_name=name),
        Site: lambda: SiteFactory(site_name=name),
    }
    return factories[model_class]()


# --- Trailing slashes: both spellings, every method, never a redirect ------------------------


@pytest.mark.parametrize("template", READ_PATHS)
def test_get_answers_the_same_with_and_without_trailing_slash(api, catalogue, template):
    path = fill(template, catalogue)
    without, with_slash = api.get(path), api.get(path + "/")
    assert without.status_code == with_slash.status_code == 200, (without, with_slash)
    assert without.json() == with_slash.json()


@pytest.mark.parametrize(
    "path", ["/api/models/all", "/api/experiments/all", "/api/seasons/all", "/api/sites/all"]
)
def test_empty_list_is_404_with_and_without_trailing_slash(api, path):
    assert_error(api.get(path), 404)
    assert_error(api.get(path + "/"), 404)


@pytest.mark.parametrize("collection, name_field, model_class", KINDS)
def test_post_creates_with_and_without_trailing_slash(
    api, experiment, collection, name_field, model_class
):
    without = api.post(collection, create_body(name_field, "no slash"), format="json")
    with_slash = api.post(collection + "/", create_body(name_field, "slash"), format="json")
    assert without.status_code == with_slash.status_code == 200, (
        without.content,
        with_slash.content,
    )
    names = set(model_class.objects.values_list(name_field, flat=True))
    assert {"no slash", "slash"} <= names


@pytest.mark.parametrize("suffix", ["", "/"], ids=["no-slash", "slash"])
def test_post_nested_creates_with_and_without_trailing_slash(api, model, suffix):
    runs = api.post(f"/api/models/id/{model.id}/runs{suffix}", {}, format="json")
    assert runs.status_code == 200
    datasets = api.post(
        f"/api/models/id/{model.id}/datasets{suffix}", {"dataset_name": "D"}, format="json"
    )
    assert datasets.status_code == 200
    assert ModelRun.objects.filter(model=model).count() == 1
    assert Dataset.objects.filter(models=model).count() == 1


@pytest.mark.parametrize("collection, name_field, model_class", KINDS)
def test_patch_changes_with_and_without_trailing_slash(
    api, experiment, collection, name_field, model_class
):
    first, second = make(model_class, "first"), make(model_class, "second")
    without = api.patch(f"{collection}/id/{first.id}", {name_field: "first!"}, format="json")
    with_slash = api.patch(f"{collection}/id/{second.id}/", {name_field: "second!"}, format="json")
    assert without.status_code == with_slash.status_code == 200
    first.refresh_from_db()
    second.refresh_from_db()
    assert (getattr(first, name_field), getattr(second, name_field)) == ("first!", "second!")


@pytest.mark.parametrize("collection, name_field, model_class", KINDS)
def test_delete_deletes_with_and_without_trailing_slash(api, collection, name_field, model_class):
    first, second = make(model_class, "first"), make(model_class, "second")
    without = api.delete(f"{collection}/id/{first.id}")
    with_slash = api.delete(f"{collection}/id/{second.id}/")
    assert without.json() == {"id": str(first.id), "deleted": True}
    assert with_slash.json() == {"id": str(second.id), "deleted": True}
    assert not model_class.objects.filter(pk__in=[first.pk, second.pk]).exists()


@pytest.mark.parametrize("method", ["get", "post", "patch", "delete", "put"])
@pytest.mark.parametrize(
    "template",
    [
        "/api/models",
        "/api/models/all",
        "/api/models/id/{model}",
        "/api/models/id/{model}/runs",
        "/api/sites/id/{site}",
        "/healthz",
        "/nowhere",
        "/api/models/id/{model}/nowhere",
    ],
)
def test_no_method_on_any_path_is_ever_redirected(api, catalogue, method, template):
    path = fill(template, catalogue)
    for spelling in (path, path + "/"):
        response = getattr(api, method)(spelling, {}, format="json")
        assert not 300 <= response.status_code < 400, (spelling, response.status_code)


def test_healthz_answers_with_and_without_trailing_slash(anonymous):
    assert anonymous.get("/healthz").json() == anonymous.get("/healthz/").json()
    assert anonymous.get("/healthz").status_code == 200


@pytest.mark.parametrize("path", ["/api/schema", "/api/docs"])
def test_schema_and_docs_answer_without_trailing_slash(anonymous, path):
    assert anonymous.get(path).status_code == anonymous.get(path + "/").status_code == 200


# --- Path ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_id",
    ["123", "not-a-uuid", "a.b", "%00", "x" * 300, "01a226be-71d4-74bb-bc88-b7f02fb2c41", "{id}"],
)
@pytest.mark.parametrize("method, template", DETAIL_ENDPOINTS)
def test_non_uuid_path_id_is_404_with_a_json_detail(api, method, template, bad_id):
    response = call(api, method, template.replace("{id}", bad_id), {"x": 1})
    assert_error(response, 404)


@pytest.mark.parametrize("method, template", DETAIL_ENDPOINTS)
def test_unknown_uuid_path_id_is_404_naming_it(api, method, template):
    missing = str(uuid.uuid4())
    body = assert_error(call(api, method, template.replace("{id}", missing), {"x": 1}), 404)
    assert missing in body["detail"]


def test_uppercase_uuid_finds_the_object(api, model):
    response = api.get(f"/api/models/id/{str(model.id).upper()}")
    assert response.status_code == 200
    assert response.json()["id"] == str(model.id)


# --- Query parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("template", READ_PATHS)
def test_unknown_query_parameter_is_400_naming_it(api, catalogue, template):
    response = api.get(fill(template, catalogue), {"colour": "red"})
    body = assert_error(response, 400)
    assert "colour" in body["detail"]
    assert body["errors"] == {"colour": ["Unknown query parameter."]}


def test_every_unknown_query_parameter_is_named(api, model):
    body = assert_error(api.get("/api/models", {"site_name": "x", "page": "5"}), 400)
    assert set(body["errors"]) == {"site_name", "page"}


def test_known_and_unknown_query_parameters_together_are_400(api, model):
    response = api.get("/api/models", {"model_name": "Model A", "model_nme": "typo"})
    assert set(assert_error(response, 400)["errors"]) == {"model_nme"}


@pytest.mark.parametrize("param", ["page", "page_size", "ordering", "search", "fields"])
def test_framework_parameters_are_unknown_too(api, model, param):
    """Only ``limit`` and ``offset`` (paging, see test_paging) are known to every list."""
    response = api.get("/api/models/all", {param: "json"})
    assert param in assert_error(response, 400)["errors"]


@pytest.mark.parametrize("collection, name_field, model_class", KINDS)
def test_unknown_query_parameter_on_writes_is_400_and_writes_nothing(
    api, experiment, collection, name_field, model_class
):
    before = model_class.objects.count()
    response = api.post(f"{collection}?dry_run=1", create_body(name_field, "new"), format="json")
    assert "dry_run" in assert_error(response, 400)["errors"]
    assert model_class.objects.count() == before

    obj = make(model_class, "kept")
    response = api.patch(
        f"{collection}/id/{obj.id}?force=1", {name_field: "changed"}, format="json"
    )
    assert "force" in assert_error(response, 400)["errors"]
    response = api.delete(f"{collection}/id/{obj.id}?force=1")
    assert "force" in assert_error(response, 400)["errors"]
    obj.refresh_from_db()
    assert getattr(obj, name_field) == "kept"


def test_unknown_query_parameter_on_nested_posts_is_400(api, model):
    assert_error(api.post(f"/api/models/id/{model.id}/runs?x=1", {}, format="json"), 400)
    assert_error(
        api.post(f"/api/models/id/{model.id}/datasets?x=1", {"dataset_name": "d"}, format="json"),
        400,
    )
    assert not ModelRun.objects.exists() and not Dataset.objects.exists()


@pytest.mark.parametrize(
    "query, param",
    [
        pytest.param("/api/models?model_name=a&model_name=b", "model_name", id="models-name"),
        pytest.param("/api/models?model_url=s3://a&model_url=s3://b", "model_url", id="models-url"),
        pytest.param(
            "/api/models?experiment_name=Experiment%20A&experiment_name=Experiment%20A",
            "experiment_name",
            id="models-experiment-same-value",
        ),
        pytest.param(
            "/api/experiments?experiment_name=a&experiment_name=b",
            "experiment_name",
            id="experiments",
        ),
        pytest.param("/api/seasons?season_name=a&season_name=b", "season_name", id="seasons-name"),
        pytest.param(
            "/api/seasons?experiment_name=Experiment%20A&experiment_name=Experiment%20B",
            "experiment_name",
            id="seasons-experiment",
        ),
        pytest.param("/api/sites?site_name=a&site_name=b", "site_name", id="sites"),
    ],
)
def test_repeated_single_valued_parameter_is_400(api, catalogue, query, param):
    ExperimentFactory(experiment_name="Experiment B")
    body = assert_error(api.get(query), 400)
    assert param in body["errors"]


@pytest.mark.parametrize(
    "query, param",
    [
        pytest.param("/api/models?model_name=", "model_name", id="models-name"),
        pytest.param("/api/models?model_info=", "model_info", id="models-info"),
        pytest.param("/api/models?experiment_name=", "experiment_name", id="models-experiment"),
        pytest.param("/api/experiments?experiment_name=", "experiment_name", id="experiments"),
        pytest.param("/api/seasons?season_name=", "season_name", id="seasons-name"),
        pytest.param("/api/seasons?experiment_name=", "experiment_name", id="seasons-experiment"),
        pytest.param("/api/sites?site_name", "site_name", id="sites-no-equals-sign"),
        pytest.param(
            "/api/sites?site_name=Site%20A1&site_name=", "site_name", id="sites-repeated-empty"
        ),
    ],
)
def test_empty_valued_parameter_is_400(api, catalogue, query, param):
    assert param in assert_error(api.get(query), 400)["errors"]


@pytest.mark.parametrize(
    "query, param",
    [
        pytest.param("/api/models?model_name=a%00b", "model_name", id="models-name"),
        pytest.param("/api/models?model_url=s3://a%00", "model_url", id="models-url"),
        pytest.param("/api/models?experiment_name=%00", "experiment_name", id="models-experiment"),
        pytest.param(
            '/api/models?model_info={"k":"%5Cu0000"}', "model_info", id="models-info-escaped"
        ),
        pytest.param('/api/models?model_info={"%5Cu0000":1}', "model_info", id="models-info-key"),
        pytest.param('/api/models?model_info={"k":"a%00"}', "model_info", id="models-info-raw"),
        pytest.param(
            "/api/experiments?experiment_name=Experiment%20A%00",
            "experiment_name",
            id="experiments",
        ),
        pytest.param("/api/seasons?season_name=%00", "season_name", id="seasons-name"),
        pytest.param(
            "/api/seasons?experiment_name=Experiment%20A%00",
            "experiment_name",
            id="seasons-experiment",
        ),
        pytest.param("/api/sites?site_name=Site%00", "site_name", id="sites"),
        pytest.param("/api/sites?site%00name=x", "site\x00name", id="nul-in-the-parameter-name"),
    ],
)
def test_nul_character_in_query_parameter_is_400(api, catalogue, query, param):
    assert param in assert_error(api.get(query), 400)["errors"]


@pytest.mark.parametrize(
    "query, param",
    [
        pytest.param("/api/models?model_name=" + "x" * 256, "model_name", id="models-name"),
        pytest.param(
            "/api/experiments?experiment_name=" + "x" * 256, "experiment_name", id="experiments"
        ),
        pytest.param(
            "/api/seasons?experiment_name=" + "x" * 256, "experiment_name", id="seasons-experiment"
        ),
        pytest.param("/api/sites?site_name=" + "x" * 256, "site_name", id="sites"),
    ],
)
def test_over_long_name_in_query_is_400(api, catalogue, query, param):
    assert param in assert_error(api.get(query), 400)["errors"]


@pytest.mark.parametrize(
    "query",
    [
        pytest.param("/api/models?experiment_name=%25", id="models-percent"),
        pytest.param("/api/models?experiment_name=100%25%20maize", id="models-percent-word"),
        pytest.param("/api/seasons?experiment_name=%25s", id="seasons-percent-s"),
        pytest.param("/api/seasons?experiment_name=%25(x)s", id="seasons-percent-named"),
    ],
)
def test_unknown_name_with_a_percent_sign_in_a_query_matches_nothing(api, catalogue, query):
    """Not a server error (django-filter formats messages with "%"): an empty list's 404."""
    api.raise_request_exception = False
    assert_error(api.get(query), 404)


@pytest.mark.parametrize("path", ["/api/models/all", "/api/models/id/{model}", "/api/sites"])
def test_format_is_known_everywhere(api, catalogue, path):
    """DRF's format override: ``json`` is what these answer; anything else is a 406 naming it."""
    path = fill(path, catalogue)
    assert api.get(path, {"format": "json"}).status_code == 200
    detail = assert_error(api.get(path, {"format": "csv"}), 406)["detail"]
    assert "application/json (format=json)" in detail


def test_an_unsupported_method_is_405_whatever_format_was_asked_for(api, catalogue):
    path = fill("/api/models/id/{model}/records?format=arrow", catalogue)
    response = api.generic("TRACE", path)
    assert_error(response, 405)


def test_names_with_like_wildcards_match_exactly(api):
    ExperimentFactory(experiment_name="100% maize")
    ExperimentFactory(experiment_name="100x maize")
    SiteFactory(site_name="plot_1")
    SiteFactory(site_name="plotA1")
    found = api.get("/api/experiments", {"experiment_name": "100% maize"}).json()
    assert [e["experiment_name"] for e in found] == ["100% maize"]
    found = api.get("/api/sites", {"site_name": "plot_1"}).json()
    assert [s["site_name"] for s in found] == ["plot_1"]
    assert_error(api.get("/api/sites", {"site_name": "plot%"}), 404)


def test_existing_experiment_with_a_percent_sign_filters_seasons(api):
    experiment = ExperimentFactory(experiment_name="100% maize")
    season = SeasonFactory(experiment=experiment, season_name="Spring")
    found = api.get("/api/seasons", {"experiment_name": "100% maize"}).json()
    assert [s["id"] for s in found] == [str(season.id)]


def test_thousands_of_query_parameters_are_400(api, model):
    query = "&".join(f"p{n}=1" for n in range(2_000))
    assert_error(api.get(f"/api/models?{query}"), 400)


def test_query_parameter_that_is_not_utf_8_is_not_a_server_error(api, model):
    response = api.get("/api/models?model_name=%FF%FE")
    # Decoded with replacement characters, as Django decodes every query: a name no model has.
    assert_error(response, 404)
    assert isinstance(response.json()["detail"], str)


# --- Unknown URLs, methods -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nowhere",
        "/api",
        "/api/",
        "/api/nowhere",
        "/api/models/nowhere",
        "/api/models/all/extra",
        "/api/models/id",
        "/api/models/id/",
        "/api/records",
        "/api/models/id/{model}/nowhere",
        "/api/models/id/{model}/runs/extra",
        "/api/experiments/id/{experiment}/runs",
        "/api/%00",
        "/static/nothing.css",
        "/media/secret.txt",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "patch", "delete"])
def test_unknown_url_answers_a_json_404(api, catalogue, path, method):
    response = getattr(api, method)(fill(path, catalogue), {}, format="json")
    assert_error(response, 404)


def test_unknown_url_answers_a_json_404_without_credentials(anonymous):
    assert_error(anonymous.get("/api/nowhere"), 404)


@pytest.mark.parametrize(
    "method, template",
    [
        ("put", "/api/models"),
        ("put", "/api/models/id/{model}"),
        ("patch", "/api/models"),
        ("delete", "/api/models"),
        ("post", "/api/models/all"),
        ("delete", "/api/models/all"),
        ("post", "/api/models/id/{model}"),
        ("post", "/api/models/id/{model}/experiments"),
        ("delete", "/api/models/id/{model}/runs"),
        ("patch", "/api/models/id/{model}/datasets"),
        ("put", "/api/experiments/id/{experiment}"),
        ("put", "/api/seasons"),
        ("post", "/api/sites/id/{site}"),
    ],
)
def test_unsupported_method_is_405_with_a_detail(api, catalogue, method, template):
    path = fill(template, catalogue)
    for spelling in (path, path + "/"):
        body = assert_error(getattr(api, method)(spelling, {}, format="json"), 405)
        assert method.upper() in body["detail"]


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_unsupported_method_on_healthz_is_405_with_a_json_detail(anonymous, method):
    assert_error(getattr(anonymous, method)("/healthz"), 405)


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_unsupported_method_on_schema_and_docs_is_405_with_a_json_detail(anonymous, path):
    assert_error(anonymous.delete(path), 405)


# --- Bodies ----------------------------------------------------------------------------------


@pytest.fixture
def write_paths(catalogue):
    """(method, path) of every endpoint that reads a JSON body."""
    return [
        ("POST", "/api/models"),
        ("PATCH", f"/api/models/id/{catalogue['model'].id}"),
        ("POST", f"/api/models/id/{catalogue['model'].id}/runs"),
        ("POST", f"/api/models/id/{catalogue['model'].id}/datasets"),
        ("POST", "/api/experiments"),
        ("PATCH", f"/api/experiments/id/{catalogue['experiment'].id}"),
        ("POST", "/api/seasons"),
        ("PATCH", f"/api/seasons/id/{catalogue['season'].id}"),
        ("POST", "/api/sites"),
        ("PATCH", f"/api/sites/id/{catalogue['site'].id}"),
    ]


def counts() -> dict:
    return {
        model_class.__name__: model_class.objects.count()
        for model_class in (MLModel, ModelRun, Dataset, Experiment, Season, Site)
    }


BAD_BODIES = [
    pytest.param(b'{"model_name": ', id="truncated-json"),
    pytest.param(b"{'model_name': 'x'}", id="single-quotes"),
    pytest.param(b'{"model_name": "x",}', id="trailing-comma"),
    pytest.param(b'{"model_name": "\xff\xfe"}', id="not-utf-8"),
    pytest.param('{"model_name": "é"}'.encode("latin-1"), id="latin-1"),
    pytest.param(b'\xef\xbb\xbf{"model_name": "bom"}', id="utf-8-bom"),
    pytest.param(b'{"model_name": "x", "model_info": {"a": NaN}}', id="nan"),
    pytest.param(b'{"model_name": "x", "model_info": {"a": 1e400}}', id="infinite-number"),
    pytest.param(b'{"model_name": "\\ud800"}', id="lone-surrogate"),
    pytest.param(b"[]", id="empty-array"),
    pytest.param(b'[{"model_name": "x"}]', id="array"),
    pytest.param(b'"model_name"', id="string"),
    pytest.param(b"42", id="number"),
    pytest.param(b"true", id="boolean"),
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_json_body_is_400_on_every_write(api, write_paths, body):
    before = counts()
    for method, path in write_paths:
        response = api.generic(method, path, body, content_type="application/json")
        assert_error(response, 400)
    assert counts() == before


@pytest.mark.parametrize(
    "content_type, body",
    [
        pytest.param("text/plain", b'{"model_name": "x"}', id="text-plain"),
        pytest.param("application/x-www-form-urlencoded", b"model_name=x", id="form-urlencoded"),
        pytest.param(
            "multipart/form-data; boundary=BoUnDaRy",
            b'--BoUnDaRy\r\nContent-Disposition: form-data; name="model_name"\r\n\r\n'
            b"x\r\n--BoUnDaRy--\r\n",
            id="multipart",
        ),
        pytest.param("application/xml", b"<model_name>x</model_name>", id="xml"),
        pytest.param("application/x-ndjson", b'{"model_name": "x"}\n', id="ndjson"),
        pytest.param("", b'{"model_name": "x"}', id="no-content-type"),
    ],
)
def test_body_of_another_content_type_is_415(api, write_paths, content_type, body):
    before = counts()
    for method, path in write_paths:
        response = api.generic(method, path, body, content_type=content_type)
        body_json = assert_error(response, 415)
        assert "media type" in body_json["detail"]
    assert counts() == before


def test_json_content_type_with_charset_is_accepted(api):
    response = api.generic(
        "POST",
        "/api/sites",
        b'{"site_name": "Caf\xc3\xa9"}',
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200
    assert response.json()["site_name"] == "Café"


def test_null_body_is_400_on_every_write(api, write_paths):
    before = counts()
    for method, path in write_paths:
        response = api.generic(method, path, b"null", content_type="application/json")
        assert response.status_code == 400, (path, response.content)
        assert isinstance(response.json()["detail"], str)
    assert counts() == before


def test_null_body_on_create_answers_a_sentence(api):
    response = api.generic("POST", "/api/sites", b"null", content_type="application/json")
    assert_error(response, 400)


def test_body_over_the_size_limit_is_413_and_writes_nothing(api, write_paths, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    body = json.dumps({"model_name": "x", "model_info": {"pad": "p" * 300}}).encode()
    before = counts()
    for method, path in write_paths:
        response = api.generic(method, path, body, content_type="application/json")
        assert_error(response, 413)
    assert counts() == before


def test_body_at_the_size_limit_is_accepted(api, settings):
    body = json.dumps({"site_name": "limit", "site_info": {"pad": ""}}).encode()
    padding = 120 - len(body)
    body = json.dumps({"site_name": "limit", "site_info": {"pad": "p" * padding}}).encode()
    assert len(body) == 120
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 120
    assert (
        api.generic("POST", "/api/sites", body, content_type="application/json").status_code == 200
    )
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 119
    body = body.replace(b'"limit"', b'"limit2"')
    assert_error(api.generic("POST", "/api/sites", body, content_type="application/json"), 413)
    assert Site.objects.count() == 1


def test_default_size_limit_refuses_a_body_over_5_mb(api):
    body = json.dumps({"site_name": "huge", "site_info": {"pad": "p" * (5 * 1024 * 1024)}})
    response = api.generic("POST", "/api/sites", body.encode(), content_type="application/json")
    assert_error(response, 413)
    assert not Site.objects.exists()


def deeply_nested(levels: int, leaf: str = "1") -> str:
    return '{"a":' * levels + leaf + "}" * levels


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 10_000 + "]" * 10_000, id="array-body"),
        pytest.param(deeply_nested(10_000), id="object-body"),
        pytest.param(
            '{"model_name": "x", "model_info": ' + deeply_nested(10_000) + "}", id="inside-a-field"
        ),
    ],
)
def test_json_nested_ten_thousand_levels_is_400(api, write_paths, body):
    before = counts()
    for method, path in write_paths:
        response = api.generic(method, path, body.encode(), content_type="application/json")
        assert_error(response, 400)
    assert counts() == before


INFO_FIELDS = [
    pytest.param("POST", "/api/models", {"model_name": "m"}, "model_info", id="model_info"),
    pytest.param(
        "POST",
        "/api/experiments",
        {"experiment_name": "e"},
        "experiment_info",
        id="experiment_info",
    ),
    pytest.param(
        "POST",
        "/api/seasons",
        {"season_name": "s", "experiment_name": "Experiment A"},
        "season_info",
        id="season_info",
    ),
    pytest.param("POST", "/api/sites", {"site_name": "s"}, "site_info", id="site_info"),
    pytest.param("POST", "/api/models/id/{model}/runs", {}, "model_run_info", id="model_run_info"),
    pytest.param(
        "POST",
        "/api/models/id/{model}/datasets",
        {"dataset_name": "d"},
        "dataset_info",
        id="dataset_info",
    ),
    pytest.param("PATCH", "/api/sites/id/{site}", {}, "site_info", id="patch-site_info"),
]


def nest(levels: int, container: str) -> object:
    """A JSON value of ``levels`` nested objects or arrays (``levels`` >= 1)."""
    value: object = {} if container == "object" else []
    for _ in range(levels - 1):
        value = {"k": value} if container == "object" else [value]
    return value


@pytest.mark.parametrize("container", ["object", "array"])
@pytest.mark.parametrize("method, template, body, field", INFO_FIELDS)
def test_json_value_nested_deeper_than_the_limit_is_400(
    api, catalogue, settings, method, template, body, field, container
):
    settings.JSON_MAX_DEPTH = 4
    path = fill(template, catalogue)
    before = counts()
    too_deep = {**body, field: {"top": nest(4, container)}}  # 5 levels with the top object
    response = api.generic(method, path, json.dumps(too_deep), content_type="application/json")
    assert field in assert_error(response, 400)["errors"]
    assert counts() == before

    at_limit = {**body, field: {"top": nest(3, container)}}  # 4 levels
    response = api.generic(method, path, json.dumps(at_limit), content_type="application/json")
    assert response.status_code == 200, response.content
    assert response.json()[field] == at_limit[field]


def test_json_value_at_the_default_depth_limit_is_accepted(api, settings):
    depth = settings.JSON_MAX_DEPTH
    accepted = api.post(
        "/api/sites", {"site_name": "deep", "site_info": nest(depth, "object")}, format="json"
    )
    assert accepted.status_code == 200
    refused = api.post(
        "/api/sites", {"site_name": "deeper", "site_info": nest(depth + 1, "object")}, format="json"
    )
    assert "site_info" in assert_error(refused, 400)["errors"]


def test_deep_json_in_a_query_parameter_is_400(api, model):
    response = api.get("/api/models", {"model_info": deeply_nested(10_000)})
    assert "model_info" in assert_error(response, 400)["errors"]


def test_json_in_a_query_parameter_deeper_than_the_limit_is_400(api, model, settings):
    settings.JSON_MAX_DEPTH = 3
    response = api.get("/api/models", {"model_info": json.dumps(nest(4, "object"))})
    assert "model_info" in assert_error(response, 400)["errors"]


# --- NUL characters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, template, body, field",
    [
        pytest.param("POST", "/api/models", {"model_name": "a\x00"}, "model_name", id="model_name"),
        pytest.param(
            "POST",
            "/api/models",
            {"model_name": "m", "model_url": "s3://a\x00"},
            "model_url",
            id="model_url",
        ),
        pytest.param(
            "POST",
            "/api/models",
            {"model_name": "m", "experiment_name": "Experiment A\x00"},
            "experiment_name",
            id="model-experiment_name",
        ),
        pytest.param(
            "POST",
            "/api/experiments",
            {"experiment_name": "\x00"},
            "experiment_name",
            id="experiment_name",
        ),
        pytest.param(
            "POST",
            "/api/seasons",
            {"season_name": "s\x00", "experiment_name": "Experiment A"},
            "season_name",
            id="season_name",
        ),
        pytest.param("POST", "/api/sites", {"site_name": "\x00x"}, "site_name", id="site_name"),
        pytest.param(
            "POST",
            "/api/sites",
            {"site_name": "s", "site_city": "\x00"},
            "site_city",
            id="site_city",
        ),
        pytest.param(
            "POST",
            "/api/sites",
            {"site_name": "s", "site_country": "a\x00"},
            "site_country",
            id="site_country",
        ),
        pytest.param(
            "POST",
            "/api/models/id/{model}/datasets",
            {"dataset_name": "d\x00"},
            "dataset_name",
            id="dataset_name",
        ),
        pytest.param(
            "PATCH",
            "/api/models/id/{model}",
            {"model_name": "a\x00"},
            "model_name",
            id="patch-model_name",
        ),
        pytest.param(
            "PATCH",
            "/api/sites/id/{site}",
            {"site_name": "a\x00"},
            "site_name",
            id="patch-site_name",
        ),
        pytest.param(
            "PATCH",
            "/api/seasons/id/{season}",
            {"season_name": "a\x00"},
            "season_name",
            id="patch-season_name",
        ),
    ],
)
def test_nul_character_in_a_name_is_400(api, catalogue, method, template, body, field):
    before = counts()
    response = api.generic(
        method, fill(template, catalogue), json.dumps(body), content_type="application/json"
    )
    assert field in assert_error(response, 400)["errors"]
    assert counts() == before


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"k": "a\x00b"}, id="in-a-value"),
        pytest.param({"k\x00": 1}, id="in-a-key"),
        pytest.param({"k": ["ok", {"deep": "\x00"}]}, id="nested-value"),
        pytest.param({"k": [{"deep\x00": None}]}, id="nested-key"),
    ],
)
@pytest.mark.parametrize("method, template, body, field", INFO_FIELDS)
def test_nul_character_in_json_is_400(api, catalogue, method, template, body, field, value):
    before = counts()
    response = api.generic(
        method,
        fill(template, catalogue),
        json.dumps({**body, field: value}),
        content_type="application/json",
    )
    assert field in assert_error(response, 400)["errors"]
    assert counts() == before


def test_nul_character_in_a_body_key_is_400(api):
    response = api.generic(
        "POST",
        "/api/sites",
        json.dumps({"site_name": "s", "x\x00": 1}),
        content_type="application/json",
    )
    assert_error(response, 400)
    assert not Site.objects.exists()


# --- Error bodies ----------------------------------------------------------------------------


def test_validation_errors_list_messages_per_field(api):
    body = assert_error(
        api.post("/api/sites", {"site_city": 5, "site_info": []}, format="json"), 400
    )
    assert set(body["errors"]) == {"site_name", "site_city", "site_info"}
    for messages in body["errors"].values():
        assert isinstance(messages, list) and messages
        assert all(isinstance(message, str) and message for message in messages)


def test_unknown_body_fields_are_named(api):
    body = assert_error(
        api.post("/api/sites", {"site_name": "s", "colour": "red", "size": 2}, format="json"), 400
    )
    assert body["errors"] == {"colour": ["Unknown field."], "size": ["Unknown field."]}


def test_error_with_several_fields_still_has_one_sentence(api):
    body = assert_error(
        api.post("/api/sites", {"site_name": "", "site_info": [], "site_city": 1}, format="json"),
        400,
    )
    assert len(body["errors"]) == 3


def test_conflict_body_names_the_existing_id(api, site):
    body = assert_error(api.post("/api/sites", {"site_name": "Site A1"}, format="json"), 409)
    assert body["id"] == str(site.id)
    assert "Site A1" in body["detail"]


def test_conflict_sentence_is_grammatical(api, experiment):
    body = assert_error(
        api.post("/api/experiments", {"experiment_name": "Experiment A"}, format="json"), 409
    )
    assert body["detail"] == "An experiment named 'Experiment A' already exists."


# --- Timestamps ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "/api/models/id/{model}",
        "/api/models/id/{model}/runs",
        "/api/models/id/{model}/datasets",
        "/api/models/id/{model}/experiments",
        "/api/experiments/id/{experiment}",
        "/api/seasons/id/{season}",
        "/api/sites/id/{site}",
    ],
)
def test_response_timestamps_are_utc_with_z(api, catalogue, template):
    body = api.get(fill(template, catalogue)).json()
    for obj in body if isinstance(body, list) else [body]:
        for field in ("created_at", "updated_at"):
            assert obj[field].endswith("Z"), obj[field]
            assert "+" not in obj[field]


@pytest.mark.parametrize(
    "stored, shown",
    [
        pytest.param(
            datetime.datetime(2024, 6, 1, 10, 0, tzinfo=datetime.UTC),
            "2024-06-01T10:00:00Z",
            id="whole-seconds",
        ),
        pytest.param(
            datetime.datetime(2024, 6, 1, 10, 0, 0, 123456, tzinfo=datetime.UTC),
            "2024-06-01T10:00:00.123456Z",
            id="microseconds",
        ),
        pytest.param(
            datetime.datetime(2024, 6, 1, 10, 0, 0, 120000, tzinfo=datetime.UTC),
            "2024-06-01T10:00:00.120000Z",
            id="six-digits",
        ),
        pytest.param(
            datetime.datetime(
                2024, 6, 1, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
            ),
            "2024-06-01T10:00:00Z",
            id="stored-from-another-zone",
        ),
    ],
)
def test_timestamp_format(api, site, stored, shown):
    Site.objects.filter(pk=site.pk).update(created_at=stored, updated_at=stored)
    body = api.get(f"/api/sites/id/{site.id}").json()
    assert body["created_at"] == shown
    assert body["updated_at"] == shown


def test_integers_beyond_64_bits_keep_every_digit(api):
    big = 123456789012345678901234567890
    body = b'{"model_name": "Big", "model_info": {"n": 123456789012345678901234567890, "f": 0.1}}'
    response = api.generic("POST", "/api/models", body, content_type="application/json")
    assert response.status_code == 200
    assert json.loads(response.content)["model_info"] == {"n": big, "f": 0.1}
    stored = api.get(f"/api/models/id/{json.loads(response.content)['id']}")
    assert json.loads(stored.content)["model_info"]["n"] == big


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_number_constants_are_400(api, constant):
    body = f'{{"model_name": "x", "model_info": {{"n": {constant}, "d": 1234567890123456789012}}}}'
    response = api.generic("POST", "/api/models", body, content_type="application/json")
    assert_error(response, 400)
