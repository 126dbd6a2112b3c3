"""The production configuration, as an operator sets it: environment variables only (README
"Configuration"), checked in fresh processes (``manage.py check --deploy``, ``manage.py shell``)
and served by the production server (gunicorn with ``config/gunicorn.conf.py``, as ``make
serve`` runs it) on a database of its own.

The size limits are enforced per request elsewhere (``test_conventions``, ``test_record_files``,
``test_bulk_ingest``, through the ``settings`` fixture); here they come from the environment.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(BASE_DIR / "manage.py")]

#: Variables the service reads; none leaks into a subprocess from the test's environment.
_SERVICE_PREFIXES = (
    "DJANGO_", "DATABASE_", "AWS_", "API_", "RECORD", "JSON_MAX_", "GUNICORN_", "WEB_CONCURRENCY",
    "HOST", "PORT", "FORWARDED_ALLOW_IPS", "REDIS_",
)


def environment(var_dir: Path, **variables: str) -> dict[str, str]:
    """The test's environment without any of the service's variables, plus ``variables``;
    the embedded default (SQLite, local files) lives in ``var_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SERVICE_PREFIXES)}
    env["DJANGO_VAR_DIR"] = str(var_dir)
    env.update(variables)
    return env


def production(**overrides: str) -> dict[str, str]:
    """The production environment of the README ("Production"; the database and S3 aside,
    which ``check --deploy`` does not look at); ``None`` values are left out."""
    variables = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_DEBUG": "false",
        "DJANGO_ALLOWED_HOSTS": "models.example.org,127.0.0.1",
        "DJANGO_CSRF_TRUSTED_ORIGINS": "https://models.example.org",
        "DJANGO_HTTPS": "true",
        "DJANGO_BEHIND_PROXY": "true",
    }
    variables.update(overrides)
    return {k: v for k, v in variables.items() if v is not None}


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*MANAGE, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=timeout
    )


def check_deploy(var_dir: Path, **variables: str) -> subprocess.CompletedProcess:
    return manage(environment(var_dir, **variables), "check", "--deploy", "--fail-level", "WARNING")


# --- manage.py check --deploy ----------------------------------------------------------------


def test_check_deploy_passes_with_the_readme_production_environment(tmp_path):
    result = check_deploy(tmp_path, **production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "overrides, warnings",
    [
        pytest.param(
            {"DJANGO_HTTPS": None},
            ["security.W004", "security.W008", "security.W012", "security.W016"],
            id="without-https",
        ),
        pytest.param({"DJANGO_DEBUG": "true"}, ["security.W018"], id="debug"),
        pytest.param({"DJANGO_SECRET_KEY": "short-and-known"}, ["security.W009"], id="weak-key"),
        pytest.param({"DJANGO_HSTS_SECONDS": "0"}, ["security.W004"], id="no-hsts"),
        pytest.param({"DJANGO_SECURE_COOKIES": "false"}, ["security.W012"], id="plain-cookies"),
        pytest.param({"DJANGO_HSTS_PRELOAD": "false"}, ["security.W021"], id="no-preload"),
    ],
)
def test_check_deploy_fails_when_production_is_incomplete(tmp_path, overrides, warnings):
    result = check_deploy(tmp_path, **production(**overrides))
    assert result.returncode != 0, result.stdout
    for warning in warnings:
        assert warning in result.stderr


def test_a_malformed_variable_stops_start_up_naming_it(tmp_path):
    result = check_deploy(tmp_path, **production(DJANGO_HTTPS="ture"))
    assert result.returncode != 0
    assert "DJANGO_HTTPS" in result.stderr and "ImproperlyConfigured" in result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "many"])
def test_an_api_max_limit_below_one_or_not_a_number_stops_start_up(tmp_path, value):
    result = check_deploy(tmp_path, **production(API_MAX_LIMIT=value))
    assert result.returncode != 0
    assert "API_MAX_LIMIT" in result.stderr and "ImproperlyConfigured" in result.stderr


# --- Settings read from the environment --------------------------------------------------------

_PRINT_SETTINGS = """
import json
from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle
print(json.dumps({
    "DATA_UPLOAD_MAX_MEMORY_SIZE": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
    "RECORD_FILE_MAX_SIZE": settings.RECORD_FILE_MAX_SIZE,
    "RECORDS_BULK_MAX_BODY_SIZE": settings.RECORDS_BULK_MAX_BODY_SIZE,
    "JSON_MAX_DEPTH": settings.JSON_MAX_DEPTH,
    "API_MAX_LIMIT": settings.API_MAX_LIMIT,
    "rates": settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
    "throttle_class_rates": SimpleRateThrottle.THROTTLE_RATES,
    "DEBUG": settings.DEBUG,
    "SECURE_SSL_REDIRECT": settings.SECURE_SSL_REDIRECT,
    "SECURE_PROXY_SSL_HEADER": settings.SECURE_PROXY_SSL_HEADER,
    "SECURE_HSTS_SECONDS": settings.SECURE_HSTS_SECONDS,
    "SECURE_HSTS_PRELOAD": settings.SECURE_HSTS_PRELOAD,
    "SESSION_COOKIE_SECURE": settings.SESSION_COOKIE_SECURE,
    "CSRF_COOKIE_SECURE": settings.CSRF_COOKIE_SECURE,
    "ALLOWED_HOSTS": settings.ALLOWED_HOSTS,
}))
"""


def printed_settings(var_dir: Path, **variables: str) -> dict:
    result = manage(environment(var_dir, **variables), "shell", "-c", _PRINT_SETTINGS)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_defaults_without_any_environment(tmp_path):
    values = printed_settings(tmp_path)
    assert values["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 5 * 1024**2
    assert values["RECORD_FILE_MAX_SIZE"] == 100 * 1024**2
    assert values["RECORDS_BULK_MAX_BODY_SIZE"] == 64 * 1024**2
    assert values["API_MAX_LIMIT"] == 10_000
    assert values["rates"] == {"anon": "60/minute", "user": None}
    assert values["throttle_class_rates"] == values["rates"]
    assert values["DEBUG"] is False and values["SECURE_SSL_REDIRECT"] is False


def test_limits_and_rates_are_read_from_the_environment(tmp_path):
    values = printed_settings(
        tmp_path,
        DJANGO_MAX_BODY_SIZE="2KB",
        RECORD_FILE_MAX_SIZE="3MB",
        RECORDS_BULK_MAX_BODY_SIZE="1GB",
        JSON_MAX_DEPTH="8",
        API_MAX_LIMIT="500",
        API_ANON_THROTTLE_RATE="5/minute",
        API_USER_THROTTLE_RATE="1000/hour",
    )
    assert values["DATA_UPLOAD_MAX_MEMORY_SIZE"] == 2048
    assert values["RECORD_FILE_MAX_SIZE"] == 3 * 1024**2
    assert values["RECORDS_BULK_MAX_BODY_SIZE"] == 1024**3
    assert values["JSON_MAX_DEPTH"] == 8
    assert values["API_MAX_LIMIT"] == 500
    assert values["rates"] == {"anon": "5/minute", "user": "1000/hour"}
    assert values["throttle_class_rates"] == values["rates"]  # what DRF's throttles use


def test_production_environment_turns_on_https_behind_a_proxy(tmp_path):
    values = printed_settings(tmp_path, **production())
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_HSTS_SECONDS"] == 31_536_000
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["ALLOWED_HOSTS"] == ["models.example.org", "127.0.0.1"]
    assert values["DEBUG"] is False


# --- The production server, configured from the environment ---------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class GunicornServer:
    """``gunicorn config.wsgi --config config/gunicorn.conf.py`` (what ``make serve`` runs)
    in a subprocess, with ``env``; its output goes to ``log``."""

    def __init__(self, env: dict[str, str], log: Path, *, workers: int = 2, threads: int = 4):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {
            **env,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "GUNICORN_THREADS": str(threads),
        }
        self._output = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi", "-c", "config/gunicorn.conf.py"],
            cwd=BASE_DIR,
            env=env,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{self.output()[-3000:]}")
            time.sleep(0.2)

    def output(self) -> str:
        self._output.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._output.close()


LIMITS = {
    "DJANGO_MAX_BODY_SIZE": "2KB",
    "RECORD_FILE_MAX_SIZE": "4KB",
    "RECORDS_BULK_MAX_BODY_SIZE": "8KB",
}


@pytest.fixture(scope="module")
def production_server(tmp_path_factory):
    """gunicorn in the production environment (with small size limits) on its own SQLite
    database, with the demo catalogue; yields (server, model id, token)."""
    var_dir = tmp_path_factory.mktemp("production")
    env = environment(var_dir, **production(), **LIMITS)
    for args in (("migrate", "--noinput"), ("load_demo",)):
        result = manage(env, *args)
        assert result.returncode == 0, result.stderr
    created = manage(env, "create_api_user", "operator")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    model_id = manage(
        env,
        "shell",
        "-c",
        "from models_api.models import MLModel as M; print(M.objects.get(model_name='Model A').id)",
    ).stdout.strip().splitlines()[-1]
    server = GunicornServer(env, var_dir / "gunicorn.log")
    yield server, model_id, token
    server.stop()


HTTPS = {"X-Forwarded-Proto": "https"}  # what the proxy in front adds


def call(server, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {**HTTPS, **kwargs.pop("headers", {})}
    if token:
        headers["Authorization"] = f"Token {token}"
    return requests.request(
        method, f"{server.url}{path}", headers=headers, allow_redirects=False, timeout=30, **kwargs
    )


def record(**overrides) -> dict:
    body = {
        "timestamp": "2024-06-01T10:00:00Z",
        "model_data": {"label": "weed"},
        "experiment_name": "Experiment A",
        "season_name": "Season 1A",
        "site_name": "Site A1",
    }
    body.update(overrides)
    return body


def assert_413(response: requests.Response) -> None:
    assert response.status_code == 413, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_json_body_limit_from_the_environment_is_enforced(production_server):
    server, _, token = production_server
    small = call(server, "POST", "/api/sites", token, json={"site_name": "s" * 100})
    assert small.status_code == 200, small.text
    big = call(
        server, "POST", "/api/sites", token, json={"site_name": "x", "site_info": {"n": "x" * 2100}}
    )
    assert_413(big)


def test_record_file_limit_from_the_environment_is_enforced(production_server):
    server, model_id, token = production_server
    path = f"/api/models/id/{model_id}/records"

    def post(size: int, second: int):
        fields = record(timestamp=f"2024-06-01T11:00:{second:02d}Z")
        fields["model_data"] = json.dumps(fields["model_data"])
        files = {"record_file": ("data.bin", os.urandom(size))}
        return call(server, "POST", path, token, data=fields, files=files)

    assert post(3 * 1024, 1).status_code == 200
    assert_413(post(5 * 1024, 2))  # under file + form limit declared, over the file limit
    assert_413(post(64 * 1024, 3))  # refused on its declared length


def test_bulk_body_limit_from_the_environment_is_enforced(production_server):
    server, model_id, token = production_server
    path = f"/api/models/id/{model_id}/records"

    def body(lines: int) -> str:
        return "".join(
            json.dumps(record(timestamp=f"2024-06-02T10:{n // 60:02d}:{n % 60:02d}Z")) + "\n"
            for n in range(lines)
        )

    headers = {"Content-Type": "application/x-ndjson"}
    small = body(20)
    assert len(small) < 8 * 1024
    response = call(server, "POST", path, token, data=small, headers=headers)
    assert response.status_code == 200 and response.json()["created"] == 20, response.text
    big = body(80)
    assert len(big) > 8 * 1024
    assert_413(call(server, "POST", path, token, data=big, headers=headers))

    def chunks():  # no Content-Length: the limit holds while reading
        yield big.encode()

    chunked = call(server, "POST", path, token, data=chunks(), headers=headers)
    assert chunked.status_code in (400, 411, 413), chunked.text
    assert chunked.status_code != 200


def test_https_headers_and_redirects_behind_the_proxy(production_server):
    server, _, token = production_server
    response = call(server, "GET", "/api/models/all", token)
    assert response.status_code == 200
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    # Plain HTTP (the proxy says so): redirected to HTTPS, except the health probe.
    plain = requests.get(
        f"{server.url}/api/models/all", headers={"X-Forwarded-Proto": "http"},
        allow_redirects=False, timeout=10,
    )
    assert plain.status_code == 301
    assert plain.headers["Location"].startswith("https://")
    assert requests.get(f"{server.url}/healthz", timeout=10).status_code == 200
    # Cookies are secure-only.
    login = call(server, "GET", "/admin/login/")
    assert login.status_code == 200
    assert all(cookie.secure for cookie in login.cookies)


def test_a_write_over_plain_http_is_never_answered_with_a_301(production_server):
    server, _, token = production_server
    response = requests.post(
        f"{server.url}/api/sites",
        json={"site_name": "over plain http"},
        headers={"X-Forwarded-Proto": "http", "Authorization": f"Token {token}"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code != 301


def test_unknown_hosts_are_refused_with_a_json_400(production_server):
    server, _, token = production_server
    for headers in ({"Host": "evil.example.org"}, {"X-Forwarded-Host": "evil.example.org"}):
        response = call(server, "GET", "/api/models/all", token, headers=headers)
        assert response.status_code == 400
        assert response.json()["detail"]


def test_the_server_log_never_shows_a_token(production_server):
    server, model_id, token = production_server
    call(server, "GET", "/api/models/all", token)
    call(server, "GET", f"/api/models/id/{model_id}/records", token)
    call(server, "GET", "/api/models/all", "0" * 40)  # 401
    call(server, "GET", "/api/models?colour=red", token)  # 400
    call(server, "POST", "/api/sites", token, json={"site_info": {"n": "x" * 3000}})  # 413
    time.sleep(0.5)  # let the access log lines land
    output = server.output()
    assert "/api/models/all" in output  # the access log is there
    assert token not in output and "0" * 40 not in output
