"""Authentication (token or session) and authorisation (Django's model permissions, per object
type)."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.utils.crypto import get_random_string
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from models_api.models import Dataset, Experiment, MLModel, ModelRun, Season, Site
from records.models import ModelRecord
from tests.conftest import record_body
from tests.helpers import READ_PATHS, assert_error, fill

pytestmark = pytest.mark.django_db


def make_user(username: str, *perms: str, **fields):
    """A user holding exactly ``perms`` (``"app_label.codename"``)."""
    user = get_user_model().objects.create_user(username=username, **fields)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def client_for(user, *, enforce_csrf_checks: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=enforce_csrf_checks)
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def call(client, method: str, path: str, body: dict | None = None):
    if method in ("get", "delete"):
        return getattr(client, method)(path)
    return getattr(client, method)(path, body or {}, format="json")


WRITES = [
    pytest.param("post", "/api/models", {"model_name": "new"}, id="create-model"),
    pytest.param("patch", "/api/models/id/{model}", {"model_name": "renamed"}, id="change-model"),
    pytest.param("delete", "/api/models/id/{model}", None, id="delete-model"),
    pytest.param("post", "/api/models/id/{model}/runs", {"model_run_info": {}}, id="create-run"),
    pytest.param(
        "post", "/api/models/id/{model}/datasets", {"dataset_name": "new"}, id="create-dataset"
    ),
    pytest.param("post", "/api/experiments", {"experiment_name": "new"}, id="create-experiment"),
    pytest.param(
        "patch",
        "/api/experiments/id/{experiment}",
        {"experiment_name": "renamed"},
        id="change-experiment",
    ),
    pytest.param("delete", "/api/experiments/id/{experiment}", None, id="delete-experiment"),
    pytest.param(
        "post",
        "/api/seasons",
        {"season_name": "new", "experiment_name": "Experiment A"},
        id="create-season",
    ),
    pytest.param(
        "patch", "/api/seasons/id/{season}", {"season_name": "renamed"}, id="change-season"
    ),
    pytest.param("delete", "/api/seasons/id/{season}", None, id="delete-season"),
    pytest.param("post", "/api/sites", {"site_name": "new"}, id="create-site"),
    pytest.param("patch", "/api/sites/id/{site}", {"site_name": "renamed"}, id="change-site"),
    pytest.param("delete", "/api/sites/id/{site}", None, id="delete-site"),
]


def snapshot() -> dict:
    """Every row of the catalogue, to show that a refused write changed nothing."""
    return {
        model_class.__name__: sorted(
            (str(row["id"]), str(sorted(row.items()))) for row in model_class.objects.values()
        )
        for model_class in (MLModel, ModelRun, Dataset, Experiment, Season, Site)
    }


# --- No or bad credentials: 401 --------------------------------------------------------------


@pytest.mark.parametrize("template", READ_PATHS)
def test_read_without_credentials_is_401_with_www_authenticate(anonymous, catalogue, template):
    response = anonymous.get(fill(template, catalogue))
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("method, template, body", WRITES)
def test_write_without_credentials_is_401_and_changes_nothing(
    anonymous, catalogue, method, template, body
):
    before = snapshot()
    response = call(anonymous, method, fill(template, catalogue), body)
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    assert snapshot() == before


def test_credentials_are_checked_before_the_body_and_the_query(anonymous, model):
    response = anonymous.generic(
        "POST", "/api/models", b"{not json", content_type="application/json"
    )
    assert_error(response, 401)
    assert_error(anonymous.get("/api/models?colour=red"), 401)
    assert_error(anonymous.get(f"/api/models/id/{uuid.uuid4()}"), 401)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Token 0123456789abcdef0123456789abcdef01234567", id="unknown-token"),
        pytest.param("Token ", id="empty-token"),
        pytest.param("Token a b", id="token-with-spaces"),
        pytest.param("Token é", id="non-ascii-token"),
        pytest.param("Token " + "g" * 40, id="not-hex"),
        pytest.param("Token " + "a" * 4000, id="very-long"),
    ],
)
def test_bad_token_is_401(db, model, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/models/all")
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    response = client.post("/api/models", {"model_name": "x"}, format="json")
    assert_error(response, 401)
    assert MLModel.objects.count() == 1


ON_POSTGRESQL = connection.vendor == "postgresql"


@pytest.mark.parametrize("key", ["\x00", "abc\x00def"], ids=["nul", "nul-inside"])
def test_token_with_a_nul_character_is_401(db, model, key):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert_error(client.get("/api/models/all"), 401)


@pytest.mark.parametrize(
    "cookie",
    ['sessionid="abcdefghij\\000klmnop"', "sessionid=abcdefghij\x00klmnop"],
    ids=["quoted-octal-escape", "raw"],
)
def test_session_cookie_with_a_nul_character_is_401(db, model, cookie):
    client = APIClient(raise_request_exception=False)
    assert_error(client.get("/api/models/all", HTTP_COOKIE=cookie), 401)


def test_session_cookie_with_a_nul_character_does_not_break_public_endpoints(db):
    client = APIClient(raise_request_exception=False)
    cookie = 'sessionid="abcdefghij\\000klmnop"'
    assert client.get("/healthz", HTTP_COOKIE=cookie).status_code == 200
    assert client.get("/api/schema/", HTTP_COOKIE=cookie).status_code == 200


def test_unknown_session_cookie_is_401(db, model):
    client = APIClient()
    assert_error(client.get("/api/models/all", HTTP_COOKIE="sessionid=" + "z" * 32), 401)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer {key}", id="bearer-scheme"),
        pytest.param("Basic {key}", id="basic-scheme"),
        pytest.param("{key}", id="key-without-scheme"),
    ],
)
def test_token_under_another_scheme_is_not_credentials(db, model, header):
    token = Token.objects.create(user=make_user("alice", "models_api.view_mlmodel"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.format(key=token.key))
    assert_error(client.get("/api/models/all"), 401)


def test_token_keyword_is_case_insensitive(db, model):
    token = Token.objects.create(user=make_user("alice", "models_api.view_mlmodel"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"token {token.key}")
    assert client.get("/api/models/all").status_code == 200


def test_token_of_an_inactive_user_is_401(db, model):
    user = make_user("gone", "models_api.view_mlmodel", is_active=False)
    assert_error(client_for(user).get("/api/models/all"), 401)


def test_deleted_token_no_longer_works(db, model):
    user = make_user("alice", "models_api.view_mlmodel")
    client = client_for(user)
    assert client.get("/api/models/all").status_code == 200
    Token.objects.filter(user=user).delete()
    assert_error(client.get("/api/models/all"), 401)


# --- Authenticated without permission: 403 ---------------------------------------------------


@pytest.mark.parametrize("template", READ_PATHS)
def test_user_without_permissions_gets_403_on_reads(catalogue, template):
    client = client_for(make_user("nobody"))
    assert_error(client.get(fill(template, catalogue)), 403)


@pytest.mark.parametrize("method, template, body", WRITES)
def test_user_without_permissions_gets_403_on_writes(catalogue, method, template, body):
    client = client_for(make_user("nobody"))
    before = snapshot()
    assert_error(call(client, method, fill(template, catalogue), body), 403)
    assert snapshot() == before


@pytest.mark.parametrize("template", READ_PATHS)
def test_reader_can_read_everything(reader, catalogue, template):
    response = reader.get(fill(template, catalogue))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("method, template, body", WRITES)
def test_reader_gets_403_on_every_write(reader, catalogue, method, template, body):
    before = snapshot()
    assert_error(call(reader, method, fill(template, catalogue), body), 403)
    assert snapshot() == before


@pytest.mark.parametrize("method, template, body", WRITES)
def test_writer_may_write(api, catalogue, method, template, body):
    response = call(api, method, fill(template, catalogue), body)
    assert response.status_code == 200, response.content


def test_reader_gets_403_even_for_an_unknown_id(reader):
    assert_error(reader.delete(f"/api/sites/id/{uuid.uuid4()}"), 403)
    assert_error(
        reader.patch(f"/api/sites/id/{uuid.uuid4()}", {"site_name": "x"}, format="json"), 403
    )


# --- Permissions are per object type ---------------------------------------------------------


def test_view_mlmodel_alone_reads_models_but_not_their_runs_datasets_or_experiments(catalogue):
    model = catalogue["model"]
    client = client_for(make_user("modeller", "models_api.view_mlmodel"))
    assert client.get("/api/models/all").status_code == 200
    assert client.get("/api/models").status_code == 200
    assert client.get(f"/api/models/id/{model.id}").status_code == 200
    assert_error(client.get(f"/api/models/id/{model.id}/runs"), 403)
    assert_error(client.get(f"/api/models/id/{model.id}/datasets"), 403)
    assert_error(client.get(f"/api/models/id/{model.id}/experiments"), 403)
    assert_error(client.get("/api/experiments/all"), 403)
    assert_error(client.get("/api/seasons/all"), 403)
    assert_error(client.get("/api/sites/all"), 403)
    assert_error(client.post("/api/models", {"model_name": "x"}, format="json"), 403)


@pytest.mark.parametrize(
    "perm, allowed",
    [
        pytest.param("models_api.view_modelrun", "/api/models/id/{model}/runs", id="runs"),
        pytest.param("models_api.view_dataset", "/api/models/id/{model}/datasets", id="datasets"),
        pytest.param(
            "models_api.view_experiment", "/api/models/id/{model}/experiments", id="experiments"
        ),
    ],
)
def test_a_models_related_lists_need_the_view_permission_of_their_type(catalogue, perm, allowed):
    client = client_for(make_user("u", "models_api.view_mlmodel", perm))
    for template in (
        "/api/models/id/{model}/runs",
        "/api/models/id/{model}/datasets",
        "/api/models/id/{model}/experiments",
    ):
        response = client.get(fill(template, catalogue))
        assert response.status_code == (200 if template == allowed else 403), template


@pytest.mark.parametrize(
    "perm, allowed",
    [
        pytest.param("models_api.view_season", "seasons", id="seasons"),
        pytest.param("models_api.view_site", "sites", id="sites"),
        pytest.param("models_api.view_dataset", "datasets", id="datasets"),
        pytest.param("models_api.view_mlmodel", "models", id="models"),
    ],
)
def test_an_experiments_lists_need_the_view_permission_of_their_type(catalogue, perm, allowed):
    client = client_for(make_user("u", "models_api.view_experiment", perm))
    for kind in ("seasons", "sites", "datasets", "models"):
        response = client.get(fill(f"/api/experiments/id/{{experiment}}/{kind}", catalogue))
        assert response.status_code == (200 if kind == allowed else 403), kind


@pytest.mark.parametrize(
    "perm, path",
    [
        pytest.param("models_api.view_experiment", "/api/experiments/all", id="experiments"),
        pytest.param("models_api.view_season", "/api/seasons/all", id="seasons"),
        pytest.param("models_api.view_site", "/api/sites/all", id="sites"),
    ],
)
def test_view_permission_of_one_catalogue_type_reads_only_that_type(catalogue, perm, path):
    client = client_for(make_user("u", perm))
    for other in ("/api/experiments/all", "/api/seasons/all", "/api/sites/all", "/api/models/all"):
        assert client.get(other).status_code == (200 if other == path else 403), other


def test_run_creation_needs_add_modelrun(catalogue):
    model = catalogue["model"]
    viewer = client_for(make_user("viewer", "models_api.view_mlmodel", "models_api.change_mlmodel"))
    assert_error(viewer.post(f"/api/models/id/{model.id}/runs", {}, format="json"), 403)
    runner = client_for(make_user("runner", "models_api.add_modelrun"))
    assert runner.post(f"/api/models/id/{model.id}/runs", {}, format="json").status_code == 200
    assert_error(runner.get(f"/api/models/id/{model.id}/runs"), 403)


def test_dataset_creation_needs_add_dataset(catalogue):
    model = catalogue["model"]
    other = client_for(make_user("other", "models_api.add_mlmodel", "models_api.add_modelrun"))
    response = other.post(
        f"/api/models/id/{model.id}/datasets", {"dataset_name": "d"}, format="json"
    )
    assert_error(response, 403)
    curator = client_for(make_user("curator", "models_api.add_dataset"))
    response = curator.post(
        f"/api/models/id/{model.id}/datasets", {"dataset_name": "d"}, format="json"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "perm, method, allowed",
    [
        pytest.param("models_api.add_site", "post", True, id="add-creates"),
        pytest.param("models_api.add_site", "patch", False, id="add-does-not-change"),
        pytest.param("models_api.add_site", "delete", False, id="add-does-not-delete"),
        pytest.param("models_api.change_site", "patch", True, id="change-changes"),
        pytest.param("models_api.change_site", "post", False, id="change-does-not-create"),
        pytest.param("models_api.change_site", "delete", False, id="change-does-not-delete"),
        pytest.param("models_api.delete_site", "delete", True, id="delete-deletes"),
        pytest.param("models_api.delete_site", "post", False, id="delete-does-not-create"),
        pytest.param("models_api.delete_site", "get", False, id="delete-does-not-read"),
        pytest.param("models_api.change_experiment", "patch", False, id="other-type-change"),
    ],
)
def test_each_write_needs_its_own_permission(site, perm, method, allowed):
    client = client_for(make_user("u", perm))
    path = {"post": "/api/sites", "get": f"/api/sites/id/{site.id}"}.get(
        method, f"/api/sites/id/{site.id}"
    )
    response = call(client, method, path, {"site_name": "Site Z"})
    if allowed:
        assert response.status_code == 200, response.content
    else:
        assert_error(response, 403)


def test_permissions_through_a_group_count(db, model):
    from django.contrib.auth.models import Group

    group = Group.objects.create(name="model readers")
    group.permissions.add(Permission.objects.get(codename="view_mlmodel"))
    user = make_user("member")
    user.groups.add(group)
    assert client_for(user).get("/api/models/all").status_code == 200


def test_permissions_read_with_the_token_follow_grants_and_revocations_at_once(db, model):
    """The token's query brings the user's permissions along; nothing is kept between
    requests, so a grant or a revocation (own or through a group) counts from the next one."""
    from django.contrib.auth.models import Group

    user = make_user("changing")
    client = client_for(user)
    assert_error(client.get("/api/models/all"), 403)
    view = Permission.objects.get(codename="view_mlmodel")
    user.user_permissions.add(view)
    assert client.get("/api/models/all").status_code == 200
    user.user_permissions.remove(view)
    assert_error(client.get("/api/models/all"), 403)
    group = Group.objects.create(name="readers")
    group.permissions.add(view, Permission.objects.get(codename="add_site"))
    user.groups.add(group)
    assert client.get("/api/models/all").status_code == 200
    assert client.post("/api/sites", {"site_name": "Site G"}, format="json").status_code == 200
    group.permissions.remove(view)
    assert_error(client.get("/api/models/all"), 403)


def test_superuser_may_do_everything(db, model):
    user = get_user_model().objects.create_superuser("root", password=None)
    client = client_for(user)
    assert client.get(f"/api/models/id/{model.id}/experiments").status_code == 200
    assert client.post("/api/sites", {"site_name": "s"}, format="json").status_code == 200


# --- Sessions --------------------------------------------------------------------------------


@pytest.fixture
def session_user(db):
    return make_user("browser", "models_api.view_site", "models_api.add_site")


def test_session_login_authenticates(session_user, site):
    client = APIClient()
    client.force_login(session_user)
    assert client.get("/api/sites/all").status_code == 200
    assert client.post("/api/sites", {"site_name": "by session"}, format="json").status_code == 200
    assert_error(client.get("/api/models/all"), 403)


def test_session_reads_need_no_csrf_token(session_user, site):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(session_user)
    assert client.get("/api/sites/all").status_code == 200


def test_session_writes_need_a_csrf_token_when_enforced(session_user):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(session_user)
    body = assert_error(client.post("/api/sites", {"site_name": "forged"}, format="json"), 403)
    assert "CSRF" in body["detail"]
    assert not Site.objects.exists()

    secret = get_random_string(32)
    client.cookies[django_settings.CSRF_COOKIE_NAME] = secret
    wrong = client.post(
        "/api/sites", {"site_name": "forged"}, format="json", HTTP_X_CSRFTOKEN=get_random_string(32)
    )
    assert_error(wrong, 403)
    assert not Site.objects.exists()

    response = client.post(
        "/api/sites", {"site_name": "genuine"}, format="json", HTTP_X_CSRFTOKEN=secret
    )
    assert response.status_code == 200, response.content
    assert list(Site.objects.values_list("site_name", flat=True)) == ["genuine"]


def test_token_writes_need_no_csrf_token(db):
    client = client_for(make_user("robot", "models_api.add_site"), enforce_csrf_checks=True)
    assert client.post("/api/sites", {"site_name": "by token"}, format="json").status_code == 200


def test_logged_out_session_is_401(session_user, site):
    client = APIClient()
    client.force_login(session_user)
    client.logout()
    assert_error(client.get("/api/sites/all"), 401)


def test_session_of_a_user_without_permissions_is_403(db, site):
    client = APIClient()
    client.force_login(make_user("nobody"))
    assert_error(client.get("/api/sites/all"), 403)


# --- X-API-Key: <token> ----------------------------------------------------------------------


def token_of(username: str) -> str:
    return Token.objects.get(user__username=username).key


def key_client(key: str, **credentials) -> APIClient:
    """A client that sends ``X-API-Key: <key>`` (and any other credentials given)."""
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=key, **credentials)
    return client


@pytest.fixture
def records_demo(demo):
    """The demo catalogue with one record of Model A; yields (model, record id)."""
    client = client_for(get_user_model().objects.create_superuser("setup", password=None))
    response = client.post(f"/api/models/id/{demo.id}/records", record_body(), format="json")
    assert response.status_code == 200, response.content
    return demo, response.json()["id"]


def every_verb(client, model, record_id) -> dict[str, int]:
    """GET, POST, PATCH and DELETE on a catalogue endpoint and on a record endpoint: the
    status of each."""
    site = client.post("/api/sites", {"site_name": "By key"}, format="json")
    site_id = site.json()["id"] if site.status_code == 200 else str(Site.objects.first().id)
    record_path = f"/api/models/records/id/{record_id}"
    new_record = record_body(timestamp="2024-06-02T10:00:00Z")
    return {
        "GET /api/sites/all": client.get("/api/sites/all").status_code,
        "POST /api/sites": site.status_code,
        "PATCH /api/sites/id": client.patch(
            f"/api/sites/id/{site_id}", {"site_city": "Davis"}, format="json"
        ).status_code,
        "DELETE /api/sites/id": client.delete(f"/api/sites/id/{site_id}").status_code,
        "GET records stream": client.get(f"/api/models/id/{model.id}/records").status_code,
        "POST record": client.post(
            f"/api/models/id/{model.id}/records", new_record, format="json"
        ).status_code,
        "GET record": client.get(record_path).status_code,
        "PATCH record": client.patch(
            record_path, {"record_info": {"by": "key"}}, format="json"
        ).status_code,
        "DELETE record": client.delete(record_path).status_code,
    }


def test_x_api_key_authenticates_every_verb(api, records_demo):
    model, record_id = records_demo
    client = key_client(token_of("writer"))
    assert set(every_verb(client, model, record_id).values()) == {200}
    assert not ModelRecord.objects.filter(pk=record_id).exists()
    assert not Site.objects.filter(site_name="By key").exists()


def test_x_api_key_without_permission_is_403_on_every_write(reader, records_demo):
    model, record_id = records_demo
    before = snapshot()
    statuses = every_verb(key_client(token_of("reader")), model, record_id)
    assert statuses == {
        "GET /api/sites/all": 200,
        "POST /api/sites": 403,
        "PATCH /api/sites/id": 403,
        "DELETE /api/sites/id": 403,
        "GET records stream": 200,
        "POST record": 403,
        "GET record": 200,
        "PATCH record": 403,
        "DELETE record": 403,
    }
    assert snapshot() == before
    assert ModelRecord.objects.get(pk=record_id).record_info == {}


def test_x_api_key_of_a_user_without_any_permission_is_403_on_reads(catalogue):
    client = key_client(Token.objects.create(user=make_user("nobody")).key)
    for template in READ_PATHS:
        assert_error(client.get(fill(template, catalogue)), 403)


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("0123456789abcdef0123456789abcdef01234567", id="unknown-key"),
        pytest.param("", id="empty"),
        pytest.param("a b", id="with-a-space"),
        pytest.param("g" * 40, id="not-hex"),
        pytest.param("a" * 4000, id="very-long"),
        pytest.param("\x00", id="nul"),
    ],
)
def test_wrong_x_api_key_is_401_with_www_authenticate_on_every_verb(records_demo, key):
    model, record_id = records_demo
    before = snapshot()
    client = key_client(key)
    client.raise_request_exception = False
    for status_code in every_verb(client, model, record_id).values():
        assert status_code == 401
    response = client.get("/api/models/all")
    assert_error(response, 401)
    assert response["WWW-Authenticate"] == "Token"
    assert snapshot() == before
    assert ModelRecord.objects.filter(pk=record_id).exists()


def test_x_api_key_of_an_inactive_user_is_401(db, model):
    user = make_user("gone", "models_api.view_mlmodel", is_active=False)
    token = Token.objects.create(user=user)
    assert_error(key_client(token.key).get("/api/models/all"), 401)


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Token {other}", id="another-valid-token"),
        pytest.param("Token 0123456789abcdef0123456789abcdef01234567", id="an-unknown-token"),
        pytest.param("Token ", id="an-empty-token"),
        pytest.param("token {other}", id="lower-case-keyword"),
    ],
)
def test_x_api_key_and_a_different_token_is_400_and_writes_nothing(
    api, reader, model, authorization
):
    client = key_client(
        token_of("writer"), HTTP_AUTHORIZATION=authorization.format(other=token_of("reader"))
    )
    response = client.post("/api/sites", {"site_name": "ambiguous"}, format="json")
    body = assert_error(response, 400)
    assert "X-API-Key" in body["detail"] and "Authorization" in body["detail"]
    assert not Site.objects.exists()
    assert_error(client.get("/api/models/all"), 400)


def test_x_api_key_and_the_same_token_is_accepted(api, model):
    key = token_of("writer")
    client = key_client(key, HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/models/all").status_code == 200
    assert client.post("/api/sites", {"site_name": "s"}, format="json").status_code == 200


def test_x_api_key_beside_another_authorization_scheme_authenticates_with_the_key(api, model):
    client = key_client(token_of("writer"), HTTP_AUTHORIZATION="Bearer something-else")
    assert client.get("/api/models/all").status_code == 200


def test_x_api_key_takes_the_same_one_query_as_the_token(api, model, django_assert_num_queries):
    """The key is looked up like a token: the token, its user and the user's permissions in
    one query, then the list."""
    for client in (api, key_client(token_of("writer"))):
        with django_assert_num_queries(2):
            assert client.get("/api/models/all").status_code == 200


def test_x_api_key_wins_over_a_session_and_a_wrong_key_is_401_even_then(session_user, site):
    client = APIClient()
    client.force_login(session_user)
    client.credentials(HTTP_X_API_KEY="0" * 40)
    assert_error(client.get("/api/sites/all"), 401)


# --- Public endpoints ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/api/schema/", "/api/docs/"])
def test_public_endpoints_need_no_credentials(anonymous, path):
    assert anonymous.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/api/schema/", "/api/docs/"])
def test_public_endpoints_ignore_a_bad_token(db, path):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/healthz", "/api/schema/", "/api/docs/"])
def test_public_endpoints_ignore_a_bad_x_api_key_and_disagreeing_credentials(db, path):
    assert key_client("not-a-real-key").get(path).status_code == 200
    client = key_client("0" * 40, HTTP_AUTHORIZATION="Token " + "1" * 40)
    assert client.get(path).status_code == 200
