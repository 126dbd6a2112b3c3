"""The calls of GEMINIbase's web client (``gemini-ui``) against a real server after
``load_demo``: each list answers as a list page expects (200 with a JSON list, or 404 where
the list is empty), and every object endpoint it uses answers 200.

The server is the service as ``make run`` configures it (the embedded default: SQLite and
local files, nothing in the environment), served by gunicorn with the project's
configuration, in a process of its own; the client authenticates as ``gemini-ui`` does with
an API key configured: ``X-API-Key: <key>``. The calls are those of its API module for
models, experiments, seasons and sites: list pages always send ``limit=100&offset=0``.
"""

from __future__ import annotations

import pytest
import requests

from tests.test_production_settings import GunicornServer, environment, manage

KINDS = {
    "models": "model_name",
    "experiments": "experiment_name",
    "seasons": "season_name",
    "sites": "site_name",
}
LIST_PAGE = {"limit": 100, "offset": 0}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """gunicorn on the embedded default after ``migrate`` and ``load_demo``; yields a
    ``requests`` session that sends ``X-API-Key`` to the server's base URL."""
    var_dir = tmp_path_factory.mktemp("gemini-ui")
    env = environment(var_dir)
    for args in (("migrate", "--noinput"), ("load_demo",)):
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr
    created = manage(env, "create_api_user", "gemini-ui")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    server = GunicornServer(env, var_dir / "gunicorn.log", workers=1, threads=4)
    session = requests.Session()
    session.headers["X-API-Key"] = key
    session.base_url = f"{server.url}/"
    yield session
    session.close()
    server.stop()


def call(session, method: str, path: str, **kwargs) -> requests.Response:
    """``path`` relative to the base URL, as the client's ``ky`` prefix joins them."""
    return session.request(method, session.base_url + path, timeout=30, **kwargs)


def list_page(response: requests.Response) -> list:
    """What the client's list pages accept: 200 with a JSON list, or a JSON 404 (empty)."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    if response.status_code == 404:
        assert response.json()["detail"]
        return []
    assert response.status_code == 200, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body, list), body
    return body


@pytest.mark.parametrize("kind", KINDS)
def test_list_pages_of_every_kind(served, kind):
    page = list_page(call(served, "GET", f"api/{kind}/all", params=LIST_PAGE))
    assert page, kind  # the demo has some of each
    assert list_page(call(served, "GET", f"api/{kind}/all", params={"limit": 1, "offset": 1}))
    assert list_page(call(served, "GET", f"api/{kind}/all", params={"offset": 100})) == []


def test_model_runs_page(served):
    model = list_page(call(served, "GET", "api/models", params={"model_name": "Model A"}))[0]
    path = f"api/models/id/{model['id']}/runs"
    assert list_page(call(served, "GET", path, params=LIST_PAGE)) == []  # none yet: a 404
    created = call(served, "POST", path, json={"model_run_info": {"epochs": 3}})
    assert created.status_code == 200, created.text
    runs = list_page(call(served, "GET", path, params=LIST_PAGE))
    assert [run["id"] for run in runs] == [created.json()["id"]]


@pytest.mark.parametrize(
    "kind, params",
    [
        ("models", {"model_name": "Model B"}),
        ("experiments", {"experiment_name": "Experiment A"}),
        ("seasons", {"season_name": "Season 2A", "experiment_name": "Experiment A"}),
        ("sites", {"site_name": "Site B3"}),
        ("sites", {"site_name": "No such site"}),
    ],
)
def test_searches(served, kind, params):
    found = list_page(call(served, "GET", f"api/{kind}", params=params))
    name_field = KINDS[kind]
    assert [obj[name_field] for obj in found] == (
        [] if params[name_field].startswith("No such") else [params[name_field]]
    )
    paged = list_page(call(served, "GET", f"api/{kind}", params={**params, **LIST_PAGE}))
    assert paged == found


@pytest.mark.parametrize("kind", KINDS)
def test_create_read_change_delete(served, kind):
    name_field = KINDS[kind]
    body = {name_field: f"From the web client ({kind})"}
    if kind == "seasons":
        body["experiment_name"] = "Experiment B"
    created = call(served, "POST", f"api/{kind}", json=body)
    assert created.status_code == 200, created.text
    path = f"api/{kind}/id/{created.json()['id']}"
    assert call(served, "GET", path).json() == created.json()
    changed = call(served, "PATCH", path, json={name_field: f"Renamed ({kind})"})
    assert changed.status_code == 200, changed.text
    assert changed.json()[name_field] == f"Renamed ({kind})"
    deleted = call(served, "DELETE", path)
    assert deleted.json() == {"id": created.json()["id"], "deleted": True}
    assert call(served, "GET", path).status_code == 404


def test_experiment_pages(served):
    experiments = list_page(call(served, "GET", "api/experiments/all", params=LIST_PAGE))
    experiment = next(e for e in experiments if e["experiment_name"] == "Experiment A")
    path = f"api/experiments/id/{experiment['id']}"
    seasons = list_page(call(served, "GET", f"{path}/seasons"))
    assert [s["season_name"] for s in seasons] == ["Season 1A", "Season 2A", "Season 3A"]
    sites = list_page(call(served, "GET", f"{path}/sites"))
    assert [s["site_name"] for s in sites] == ["Site A1", "Site A2", "Site A3"]
    assert list_page(call(served, "GET", f"{path}/datasets")) == []  # the demo has none
    models = list_page(call(served, "GET", f"{path}/models"))
    assert [m["model_name"] for m in models] == ["Model A"]


def test_without_the_key_every_call_is_401(served):
    response = requests.get(served.base_url + "api/models/all", params=LIST_PAGE, timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Token"
    wrong = requests.get(
        served.base_url + "api/models/all", headers={"X-API-Key": "0" * 40}, timeout=30
    )
    assert wrong.status_code == 401
