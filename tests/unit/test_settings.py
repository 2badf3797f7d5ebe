"""Settings: defaults, validation, and messages that name the variable."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ti_anomali.settings import FetchSettings, SettingsError

BASE = {
    "THREATSTREAM_SECRET_NAME": "ti/threatstream",
    "CURSOR_TABLE_NAME": "cursor",
    "DEAD_LETTER_BUCKET": "dead",
    "ENGINE_URL": "https://search.example:443",
    "AWS_REGION": "eu-west-1",
}


def test_defaults_match_elastic_integration() -> None:
    settings = FetchSettings.from_environment(BASE)

    assert settings.threatstream_url == "https://api.threatstream.com"
    assert settings.page_size == 1000
    assert settings.initial_interval == timedelta(hours=2160)
    assert settings.delay == timedelta(minutes=1)
    assert settings.ioc_duration == timedelta(days=90)
    assert settings.http_timeout_seconds == 30
    assert settings.tags == ("forwarded", "anomali-intelligence")
    assert settings.pages_per_invocation == 1
    assert settings.remote_api is False
    assert settings.engine.auth == "sigv4"
    assert settings.engine.namespace == "default"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PAGE_SIZE", "1001"),
        ("PAGE_SIZE", "0"),
        ("PAGE_SIZE", "many"),
        ("INITIAL_INTERVAL", "90 days"),
        ("IOC_DURATION", "90w"),
        ("REMOTE_API", "maybe"),
        ("NAMESPACE", "my-space"),
        ("NAMESPACE", "Prod"),
        ("ENGINE_KIND", "solr"),
        ("ENGINE_AUTH", "kerberos"),
        ("THREATSTREAM_URL", "http://api.threatstream.com"),
        ("THREATSTREAM_URL", "https://user:pw@api.threatstream.com"),
        ("HTTP_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_invalid_value_names_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        FetchSettings.from_environment({**BASE, name: value})


@pytest.mark.parametrize(
    "name", ["THREATSTREAM_SECRET_NAME", "CURSOR_TABLE_NAME", "DEAD_LETTER_BUCKET", "ENGINE_URL"]
)
def test_missing_required_names_variable(name: str) -> None:
    environment = {key: value for key, value in BASE.items() if key != name}

    with pytest.raises(SettingsError, match=name):
        FetchSettings.from_environment(environment)


def test_plain_http_allowed_on_loopback() -> None:
    settings = FetchSettings.from_environment({**BASE, "THREATSTREAM_URL": "http://127.0.0.1:8080/"})

    assert settings.threatstream_url == "http://127.0.0.1:8080"


def test_ioc_duration_none_disables_expiry() -> None:
    assert FetchSettings.from_environment({**BASE, "IOC_DURATION": "none"}).ioc_duration is None


def test_basic_auth_needs_engine_secret() -> None:
    with pytest.raises(SettingsError, match="ENGINE_SECRET_NAME"):
        FetchSettings.from_environment({**BASE, "ENGINE_AUTH": "basic"})


def test_sigv4_needs_region() -> None:
    environment = {key: value for key, value in BASE.items() if key != "AWS_REGION"}

    with pytest.raises(SettingsError, match="AWS_REGION"):
        FetchSettings.from_environment(environment)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("THREATSTREAM_URL", "https://api.threatstream.com:99999"),
        ("THREATSTREAM_URL", "https://api.threatstream.com:abc"),
        ("ENGINE_URL", "https://search.example:70000"),
        ("INITIAL_INTERVAL", "99999999999d"),
        ("INITIAL_INTERVAL", "999999999d"),
        ("FETCH_DELAY", "4000d"),
        ("IOC_DURATION", "99999999999d"),
        ("THREATSTREAM_CA_BUNDLE_PATH", "/nonexistent/ca.pem"),
        ("ENGINE_CA_BUNDLE_PATH", "/nonexistent/ca.pem"),
        ("GEOIP_DATABASE_PATH", "/nonexistent/city.mmdb"),
    ],
)
def test_hostile_value_fails_at_start_naming_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        FetchSettings.from_environment({**BASE, name: value})
