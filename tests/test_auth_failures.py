"""Failed authentication is throttled per client address (issue 10, fault 5).

Wrong, malformed and revoked tokens, tokens of inactive users and wrong admin passwords each
count one failure against the client's address; at ``API_AUTH_FAILURE_THROTTLE_RATE`` failures
within the period the address is refused with 429 and ``Retry-After``, the right credentials
included (which are then not even looked up), until the oldest failure leaves the period.
Successes count nothing, other addresses are not affected, and the counts live in Django's
cache (cleared between tests by the autouse ``fresh_throttles`` fixture).
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.env import Env
from models_api.api.auth_failures import AuthFailureThrottle
from tests.helpers import assert_error
from tests.test_auth import make_user

pytestmark = pytest.mark.django_db

RATE = 3
ATTACKER = "203.0.113.7"
NEIGHBOUR = "198.51.100.9"
WRONG = "0123456789abcdef0123456789abcdef01234567"  # well-formed, no such token


@pytest.fixture(autouse=True)
def small_rate(settings):
    settings.AUTH_FAILURE_THROTTLE_RATE = f"{RATE}/minute"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def clock(monkeypatch):
    """The throttle's clock, to be moved on by hand."""
    now = {"t": 1_000_000.0}
    monkeypatch.setattr(AuthFailureThrottle, "timer", lambda self: now["t"])
    return now


@pytest.fixture
def good_token(model) -> str:
    return Token.objects.create(user=make_user("alice", "models_api.view_mlmodel")).key


def get(header: str | None, address: str = ATTACKER, path: str = "/api/models/all"):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    return client.get(path, REMOTE_ADDR=address)


def fail(times: int, address: str = ATTACKER) -> None:
    for _ in range(times):
        assert_error(get(f"Token {WRONG}", address), 401)


def assert_throttled(response) -> int:
    body = assert_error(response, 429)
    seconds = int(response["Retry-After"])
    assert 0 < seconds <= 60
    assert body["detail"] == (
        f"Too many failed authentication attempts from this address; try again in "
        f"{seconds} second{'s' if seconds != 1 else ''}."
    )
    return seconds


# --- API tokens --------------------------------------------------------------------------------


def test_wrong_tokens_up_to_the_rate_are_401_then_429_with_retry_after(good_token):
    fail(RATE)
    assert_throttled(get(f"Token {WRONG}"))
    assert_throttled(get("Token 9" + WRONG[1:]))


def test_the_right_token_is_refused_too_while_the_address_is_over_the_rate(
    good_token, django_assert_num_queries
):
    assert get(f"Token {good_token}").status_code == 200
    fail(RATE)
    with django_assert_num_queries(0):  # refused before the token is looked up
        assert_throttled(get(f"Token {good_token}"))
    post = APIClient()
    post.credentials(HTTP_AUTHORIZATION=f"Token {good_token}")
    assert_throttled(
        post.post("/api/sites", {"site_name": "x"}, format="json", REMOTE_ADDR=ATTACKER)
    )


def test_another_address_is_not_affected(good_token):
    fail(RATE)
    assert_throttled(get(f"Token {good_token}"))
    assert get(f"Token {good_token}", NEIGHBOUR).status_code == 200
    assert_error(get(f"Token {WRONG}", NEIGHBOUR), 401)  # its own budget


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(f"Token {WRONG}", id="wrong-key"),
        pytest.param("Token " + "g" * 40, id="malformed-key"),
        pytest.param("Token a b", id="spaces"),
        pytest.param("Token", id="no-key"),
        pytest.param("Token é", id="not-ascii"),
        pytest.param("inactive", id="inactive-user"),
        pytest.param("revoked", id="revoked-token"),
    ],
)
def test_each_kind_of_failed_token_counts_one(good_token, header):
    if header == "inactive":
        user = make_user("gone", "models_api.view_mlmodel", is_active=False)
        header = f"Token {Token.objects.create(user=user).key}"
    elif header == "revoked":
        token = Token.objects.create(user=make_user("old", "models_api.view_mlmodel"))
        header = f"Token {token.key}"
        token.delete()
    for _ in range(RATE):
        assert_error(get(header), 401)
    assert_throttled(get(f"Token {good_token}"))


@pytest.mark.parametrize("key", [WRONG, "g" * 40, ""], ids=["wrong-key", "malformed-key", "empty"])
def test_failed_x_api_keys_count_as_tokens_do(good_token, key):
    """``X-API-Key`` (the GEMINIbase clients' header) shares the Authorization header's count:
    a wrong key is no way around the lock, and the right one is refused while it holds."""
    attacker = APIClient()
    attacker.credentials(HTTP_X_API_KEY=key)
    for _ in range(RATE):
        assert_error(attacker.get("/api/models/all", REMOTE_ADDR=ATTACKER), 401)
    assert_throttled(attacker.get("/api/models/all", REMOTE_ADDR=ATTACKER))
    owner = APIClient()
    owner.credentials(HTTP_X_API_KEY=good_token)
    assert_throttled(owner.get("/api/models/all", REMOTE_ADDR=ATTACKER))
    assert owner.get("/api/models/all", REMOTE_ADDR=NEIGHBOUR).status_code == 200


def test_successful_requests_count_nothing(good_token):
    for _ in range(RATE * 3):
        assert get(f"Token {good_token}").status_code == 200
    fail(RATE - 1)
    assert get(f"Token {good_token}").status_code == 200
    assert get(f"Token {good_token}").status_code == 200


def test_permission_refusals_are_not_authentication_failures(model):
    nobody = Token.objects.create(user=make_user("nobody")).key
    for _ in range(RATE * 2):
        assert_error(get(f"Token {nobody}"), 403)


def test_requests_without_credentials_stay_401(good_token):
    fail(RATE)
    assert_error(get(None), 401)  # nothing to look up: the usual answer


def test_the_lock_lifts_when_the_oldest_failure_leaves_the_period(good_token, clock):
    fail(1)
    clock["t"] += 30
    fail(RATE - 1)
    assert assert_throttled(get(f"Token {good_token}")) == 30
    clock["t"] += 29
    assert assert_throttled(get(f"Token {good_token}")) == 1
    clock["t"] += 2  # the first failure is over a minute old
    assert get(f"Token {good_token}").status_code == 200
    assert_error(get(f"Token {WRONG}"), 401)  # back at the rate: locked again
    assert_throttled(get(f"Token {good_token}"))


def test_the_counts_live_in_the_cache(good_token):
    fail(RATE)
    assert_throttled(get(f"Token {good_token}"))
    cache.clear()
    assert get(f"Token {good_token}").status_code == 200


def test_a_forged_x_forwarded_for_does_not_escape_the_lock(good_token):
    """Without a trusted proxy (DJANGO_BEHIND_PROXY unset) the peer's address counts."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {WRONG}")
    for n in range(RATE):
        client.get("/api/models/all", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
    client.credentials(HTTP_AUTHORIZATION=f"Token {good_token}")
    assert_throttled(
        client.get("/api/models/all", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR="10.9.9.9")
    )


def test_behind_a_trusted_proxy_the_forwarded_address_counts(good_token, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    proxy = "127.0.0.1"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {WRONG}")
    for _ in range(RATE):
        client.get("/api/models/all", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    client.credentials(HTTP_AUTHORIZATION=f"Token {good_token}")
    assert_throttled(
        client.get("/api/models/all", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=ATTACKER)
    )
    ok = client.get("/api/models/all", REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=NEIGHBOUR)
    assert ok.status_code == 200


def test_off_turns_the_throttle_off(good_token, settings):
    settings.AUTH_FAILURE_THROTTLE_RATE = None
    fail(RATE * 3)
    assert get(f"Token {good_token}").status_code == 200


# --- The admin's login -------------------------------------------------------------------------


PASSWORD = "a long and unusual passphrase 42"


@pytest.fixture
def curator(db):
    return get_user_model().objects.create_user("curator", password=PASSWORD, is_staff=True)


def log_in(password: str, address: str = ATTACKER) -> tuple[Client, object]:
    client = Client(REMOTE_ADDR=address)
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "curator", "password": password}
    )
    return client, response


def logged_in(client: Client) -> bool:
    return client.get("/admin/").status_code == 200


def test_wrong_admin_passwords_then_the_right_one_is_refused_with_429(curator):
    for _ in range(RATE):
        client, response = log_in("wrong")
        assert response.status_code == 200  # the form again, with Django's error
        assert not logged_in(client)
    client, response = log_in(PASSWORD)
    assert response.status_code == 429
    seconds = int(response["Retry-After"])
    assert 0 < seconds <= 60
    assert "Too many failed logins from this address" in response.content.decode()
    assert not logged_in(client)


def test_the_admin_login_works_from_another_address_and_after_the_period(curator, clock):
    for _ in range(RATE):
        log_in("wrong")
    assert log_in(PASSWORD)[1].status_code == 429
    client, response = log_in(PASSWORD, NEIGHBOUR)
    assert response.status_code == 302 and logged_in(client)
    clock["t"] += 61
    client, response = log_in(PASSWORD)
    assert response.status_code == 302 and logged_in(client)


def test_a_successful_admin_login_counts_nothing(curator):
    for _ in range(RATE * 2):
        assert log_in(PASSWORD)[1].status_code == 302
    for _ in range(RATE - 1):
        log_in("wrong")
    assert log_in(PASSWORD)[1].status_code == 302


def test_the_login_page_still_shows_while_locked(curator):
    for _ in range(RATE):
        log_in("wrong")
    assert Client(REMOTE_ADDR=ATTACKER).get("/admin/login/").status_code == 200


def test_tokens_and_admin_passwords_share_one_count(curator, good_token):
    """An attacker gets one budget per address, whichever door it tries."""
    fail(RATE - 1)
    log_in("wrong")
    assert log_in(PASSWORD)[1].status_code == 429
    assert_throttled(get(f"Token {good_token}"))


# --- The setting -------------------------------------------------------------------------------


def test_the_default_rate_is_twenty_a_minute():
    assert Env({}).rate("API_AUTH_FAILURE_THROTTLE_RATE", "20/minute") == "20/minute"


@pytest.mark.parametrize(
    "text, rate",
    [("5/second", "5/second"), (" 100/Hour ", "100/hour"), ("30/h", "30/h"), ("off", None)],
)
def test_the_rate_is_read_from_the_environment(text, rate):
    env = Env({"API_AUTH_FAILURE_THROTTLE_RATE": text})
    assert env.rate("API_AUTH_FAILURE_THROTTLE_RATE", "20/minute") == rate


@pytest.mark.parametrize("text", ["20", "20/fortnight", "-1/minute", "0/minute", "x/minute"])
def test_a_malformed_rate_stops_start_up_naming_the_variable(text):
    with pytest.raises(ImproperlyConfigured) as raised:
        Env({"API_AUTH_FAILURE_THROTTLE_RATE": text}).rate("API_AUTH_FAILURE_THROTTLE_RATE", None)
    assert "API_AUTH_FAILURE_THROTTLE_RATE" in str(raised.value)
