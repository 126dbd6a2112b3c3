"""config.env.Env: how the settings read the environment (pure unit tests, a dict as environ).

A value that cannot be right stops start-up with ImproperlyConfigured naming the variable,
instead of silently running with a default.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import Env

# --- str -------------------------------------------------------------------------------------


def test_str_returns_the_value():
    assert Env({"NAME": "value"}).str("NAME") == "value"


@pytest.mark.parametrize(
    "environ", [pytest.param({}, id="unset"), pytest.param({"NAME": ""}, id="empty")]
)
def test_str_unset_or_empty_gives_the_default(environ):
    assert Env(environ).str("NAME", "fallback") == "fallback"
    assert Env(environ).str("NAME") is None


def test_env_reads_the_process_environment_by_default(monkeypatch):
    monkeypatch.setenv("MODELS_API_TEST_VARIABLE", "from-os")
    assert Env().str("MODELS_API_TEST_VARIABLE") == "from-os"


# --- seconds ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("0.5", 0.5), ("2", 2.0), (" 1.25 ", 1.25)])
def test_seconds_takes_fractions(text, expected):
    assert Env({"WAIT": text}).seconds("WAIT", 9.0) == expected


def test_seconds_unset_gives_the_default():
    assert Env({}).seconds("WAIT", 0.5) == 0.5


@pytest.mark.parametrize("text", ["soon", "nan", "inf", "-1", "0.001"])
def test_seconds_not_a_usable_duration_stops_start_up(text):
    with pytest.raises(ImproperlyConfigured, match="WAIT"):
        Env({"WAIT": text}).seconds("WAIT", 0.5, minimum=0.01)


# --- bool ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1", "true", "True", "TRUE", "yes", "on", " true "])
def test_bool_true_spellings(text):
    assert Env({"FLAG": text}).bool("FLAG", False) is True


@pytest.mark.parametrize("text", ["0", "false", "False", "no", "off", " OFF "])
def test_bool_false_spellings(text):
    assert Env({"FLAG": text}).bool("FLAG", True) is False


def test_bool_empty_is_false():
    assert Env({"FLAG": ""}).bool("FLAG", False) is False


@pytest.mark.parametrize("default", [True, False])
def test_bool_unset_gives_the_default(default):
    assert Env({}).bool("FLAG", default) is default


@pytest.mark.parametrize("text", ["ture", "2", "y", "enabled", "-1"])
def test_bool_typo_stops_start_up_naming_the_variable(text):
    with pytest.raises(ImproperlyConfigured) as raised:
        Env({"DJANGO_DEBUG": text}).bool("DJANGO_DEBUG")
    assert "DJANGO_DEBUG" in str(raised.value)
    assert repr(text) in str(raised.value)


# --- int -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("42", 42, id="plain"),
        pytest.param("-3", -3, id="negative-without-minimum"),
        pytest.param("0", 0, id="zero"),
        pytest.param(" 7 ", 7, id="surrounding-spaces"),
    ],
)
def test_int_parses_whole_numbers(text, expected):
    assert Env({"N": text}).int("N", 99) == expected


@pytest.mark.parametrize(
    "environ", [pytest.param({}, id="unset"), pytest.param({"N": ""}, id="empty")]
)
def test_int_unset_or_empty_gives_the_default(environ):
    assert Env(environ).int("N", 60) == 60


@pytest.mark.parametrize("text", ["4.2", "ten", "1e3", "0x10", "60s"])
def test_int_not_a_whole_number_stops_start_up(text):
    with pytest.raises(ImproperlyConfigured) as raised:
        Env({"DATABASE_CONN_MAX_AGE": text}).int("DATABASE_CONN_MAX_AGE", 60)
    assert "DATABASE_CONN_MAX_AGE" in str(raised.value)


def test_int_below_the_minimum_stops_start_up():
    with pytest.raises(ImproperlyConfigured) as raised:
        Env({"JSON_MAX_DEPTH": "0"}).int("JSON_MAX_DEPTH", 64, minimum=1)
    assert "JSON_MAX_DEPTH" in str(raised.value)
    assert "at least 1" in str(raised.value)


def test_int_at_the_minimum_is_accepted():
    assert Env({"JSON_MAX_DEPTH": "1"}).int("JSON_MAX_DEPTH", 64, minimum=1) == 1


# --- list ------------------------------------------------------------------------------------


def test_list_splits_on_commas_and_drops_blanks():
    environ = {"HOSTS": " api.example.org, localhost,,  ,127.0.0.1 "}
    assert Env(environ).list("HOSTS") == ["api.example.org", "localhost", "127.0.0.1"]


def test_list_single_item():
    assert Env({"HOSTS": "localhost"}).list("HOSTS") == ["localhost"]


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="unset"),
        pytest.param({"HOSTS": ""}, id="empty"),
        pytest.param({"HOSTS": "   "}, id="blank"),
    ],
)
def test_list_unset_or_blank_gives_the_default(environ):
    assert Env(environ).list("HOSTS", ["localhost"]) == ["localhost"]
    assert Env(environ).list("HOSTS") == []


def test_list_default_is_copied_not_shared():
    default = ["localhost"]
    result = Env({}).list("HOSTS", default)
    result.append("evil.example.org")
    assert default == ["localhost"]


# --- size ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("10485760", 10_485_760, id="bytes"),
        pytest.param("512KB", 512 * 1024, id="kilobytes"),
        pytest.param("512K", 512 * 1024, id="kilobytes-short"),
        pytest.param("64MB", 64 * 1024**2, id="megabytes"),
        pytest.param("64mb", 64 * 1024**2, id="lower-case"),
        pytest.param("5M", 5 * 1024**2, id="megabytes-short"),
        pytest.param("2GB", 2 * 1024**3, id="gigabytes"),
        pytest.param(" 1G ", 1024**3, id="surrounding-spaces"),
        pytest.param("100B", 100, id="explicit-bytes"),
    ],
)
def test_size_parses_units(text, expected):
    assert Env({"SIZE": text}).size("SIZE", 1) == expected


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="unset"),
        pytest.param({"SIZE": ""}, id="empty"),
        pytest.param({"SIZE": "  "}, id="blank"),
    ],
)
def test_size_unset_or_blank_gives_the_default(environ):
    assert Env(environ).size("SIZE", 5 * 1024**2) == 5 * 1024**2


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0", id="zero"),
        pytest.param("0MB", id="zero-megabytes"),
        pytest.param("-5", id="negative"),
        pytest.param("5TB", id="unknown-unit"),
        pytest.param("1.5MB", id="fraction"),
        pytest.param("MB", id="unit-only"),
        pytest.param("lots", id="words"),
        pytest.param("64MiB", id="binary-unit-spelling"),
    ],
)
def test_size_bad_value_stops_start_up_naming_the_variable(text):
    with pytest.raises(ImproperlyConfigured) as raised:
        Env({"DJANGO_MAX_BODY_SIZE": text}).size("DJANGO_MAX_BODY_SIZE", 1)
    assert "DJANGO_MAX_BODY_SIZE" in str(raised.value)
