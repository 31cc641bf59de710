"""Configuration checks: IVR_ENV is one of three exact words, and production refuses settings
that cannot be real (a default or forged auth token, a plain-http public URL, /metrics open)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from ivr import create_app
from ivr.config import DEFAULT_AUTH_TOKEN, ConfigError, load_config

REAL = {
    "ENV": "production",
    "SECRET_KEY": "x" * 40,
    "TWILIO_ACCOUNT_SID": "AC" + "3f" * 16,
    "TWILIO_AUTH_TOKEN": "0123456789abcdef0123456789abcdef",
    "PUBLIC_BASE_URL": "https://support.example.test",
    "METRICS_TOKEN": "a-long-prometheus-token",
}
"""Production settings that pass every check."""


def configured(tmp_path: Path, **settings: Any) -> Flask:
    app = Flask("probe", instance_path=str(tmp_path / "instance"))
    load_config(app, {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **settings})
    return app


def test_production_starts_with_real_settings(tmp_path: Path) -> None:
    app = create_app({**REAL, "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert app.config["VALIDATE_SIGNATURE"] is True
    assert app.config["SESSION_COOKIE_SECURE"] is True


@pytest.mark.parametrize("env", ["Production", "prod", "production ", " production",
                                 "PRODUCTION", "dev", "", "staging", True, 1])
def test_an_unknown_environment_is_refused_not_run_as_development(tmp_path: Path,
                                                                   env: object) -> None:
    with pytest.raises(ConfigError, match="IVR_ENV must be exactly one of development, test, "
                                          "production"):
        configured(tmp_path, **{**REAL, "ENV": env})


@pytest.mark.parametrize("env", ["development", "test"])
def test_development_and_test_keep_their_defaults(tmp_path: Path, env: str) -> None:
    app = configured(tmp_path, ENV=env)
    assert app.config["TWILIO_AUTH_TOKEN"] == DEFAULT_AUTH_TOKEN


def test_the_environment_variable_is_read_exactly(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_ENV", "production ")
    with pytest.raises(ConfigError, match="not 'production '"):
        configured(tmp_path)


@pytest.mark.parametrize("token", ["", "x", "real-token-abcdef", DEFAULT_AUTH_TOKEN,
                                   "0123456789ABCDEF0123456789ABCDEF",  # upper case
                                   "0123456789abcdef0123456789abcde",  # 31
                                   "0123456789abcdef0123456789abcdef0",  # 33
                                   "0123456789abcdef0123456789abcdeg",
                                   " 0123456789abcdef0123456789abcde"])
def test_production_refuses_an_auth_token_that_cannot_be_real(tmp_path: Path,
                                                              token: str) -> None:
    with pytest.raises(ConfigError, match="IVR_TWILIO_AUTH_TOKEN must be the account's auth "
                                          "token"):
        configured(tmp_path, **{**REAL, "TWILIO_AUTH_TOKEN": token})


def test_an_api_key_secret_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="an API key secret cannot check Twilio's webhook "
                                          "signatures"):
        configured(tmp_path, **{**REAL, "TWILIO_AUTH_TOKEN": "Zx8kQ2mN4pR6tV8wY0aC2eG4iK6mO8qS"})


def test_webhooks_signed_with_a_one_character_token_never_get_in(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        create_app({**REAL, "TWILIO_AUTH_TOKEN": "x",
                    "DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})


@pytest.mark.parametrize("sid", ["", "AC00000000000000000000000000000000", "AC123",
                                 "SK" + "3f" * 16])
def test_production_refuses_a_placeholder_account_sid(tmp_path: Path, sid: str) -> None:
    with pytest.raises(ConfigError, match="IVR_TWILIO_ACCOUNT_SID"):
        configured(tmp_path, **{**REAL, "TWILIO_ACCOUNT_SID": sid})


@pytest.mark.parametrize("url", ["", "http://support.example.test", "support.example.test",
                                 "https://", "https:/support.example.test", "//support.example",
                                 "https://support.example.test?x=1", "https://user@host.test",
                                 "https://support.example.test:0", " https://support.example.test",
                                 "https://exa mple.test", "ftp://support.example.test"])
def test_production_refuses_a_public_url_that_is_not_absolute_https(tmp_path: Path,
                                                                    url: str) -> None:
    with pytest.raises(ConfigError, match="IVR_PUBLIC_BASE_URL must be the https:// URL"):
        configured(tmp_path, **{**REAL, "PUBLIC_BASE_URL": url})


@pytest.mark.parametrize("url", ["https://support.example.test",
                                 "https://support.example.test/ivr", "https://10.0.0.5:8443"])
def test_production_takes_an_https_public_url(tmp_path: Path, url: str) -> None:
    assert configured(tmp_path, **{**REAL, "PUBLIC_BASE_URL": url}).config[
        "PUBLIC_BASE_URL"] == url


def test_production_refuses_open_metrics_unless_marked_private(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set IVR_METRICS_TOKEN .* or IVR_METRICS_PRIVATE=true"):
        configured(tmp_path, **{**REAL, "METRICS_TOKEN": ""})
    with pytest.raises(ConfigError, match="IVR_METRICS_TOKEN must be at least 16 characters"):
        configured(tmp_path, **{**REAL, "METRICS_TOKEN": "short"})
    private = configured(tmp_path, **{**REAL, "METRICS_TOKEN": "", "METRICS_PRIVATE": True})
    assert private.config["METRICS_PRIVATE"] is True


def test_the_metrics_private_setting_is_a_boolean_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IVR_METRICS_PRIVATE", "true")
    assert configured(tmp_path, **{**REAL, "METRICS_TOKEN": ""}).config["METRICS_PRIVATE"] is True
    monkeypatch.setenv("IVR_METRICS_PRIVATE", "yes")
    with pytest.raises(ConfigError, match="IVR_METRICS_PRIVATE must be true or false"):
        configured(tmp_path, **{**REAL, "METRICS_TOKEN": ""})


@pytest.mark.parametrize("setting", [
    {"SECRET_KEY": "dev-only-not-secret"}, {"SECRET_KEY": "short"},
    {"VALIDATE_SIGNATURE": False},
])
def test_production_refuses_unsafe_defaults(tmp_path: Path, setting: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        configured(tmp_path, **{**REAL, **setting})
