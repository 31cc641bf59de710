"""Configuration: defaults in code, then IVR_* environment variables, then test overrides."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from callbacks.logs import LOG_FORMATS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SECRET_KEY = "dev-only-not-secret"
DEFAULT_AUTH_TOKEN = "dev-auth-token-0123456789abcdef"

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "SECRET_KEY": DEFAULT_SECRET_KEY,
    "DATABASE_URL": "",
    "REDIS_URL": "",
    "REDIS_SENTINELS": "",  # host:port,host:port: find the Redis master through Sentinel
    "REDIS_SENTINEL_MASTER": "mymaster",  # the name in `sentinel monitor <name> ...`
    "REDIS_PASSWORD": "",  # the master's (and replicas') password, with Sentinel
    "REDIS_SENTINEL_PASSWORD": "",  # the Sentinels' own password, if they have one
    "PUBLIC_BASE_URL": "",
    "VALIDATE_SIGNATURE": True,
    "TWILIO_ACCOUNT_SID": "AC00000000000000000000000000000000",
    "TWILIO_AUTH_TOKEN": DEFAULT_AUTH_TOKEN,
    "TWILIO_API_BASE_URL": "https://api.twilio.com",
    "DEFAULT_FLOW": "it-support",
    "DEFAULT_LANGUAGE": "en",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "",  # json or text; empty: json in production, text elsewhere
    "SMS_FROM": "",
    "MODELS_DIR": "",
    "SPEECH_MODELS": {},
    "KEYWORDS_FILE": "",
    "PRIORITIES_FILE": "",
    "DIRECTORY_FILE": "",
    "DELIVERY_FILE": "",  # connectors to the company's ticket system (flows/delivery.yaml)
    "DELETE_RECORDINGS": False,
    "MAX_VOICEMAIL_SECONDS": 600,
    "SPEECH_THREADS": 1,
    "RECONCILE_SECONDS": 60,
    "HEARTBEAT_SECONDS": 30,
    "CALL_LOG_FLUSH_SECONDS": 0.1,
    "PUBLISH_LOOKUP_SECONDS": 2.0,
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    "PROXY_HOPS": 0,
    "CALLBACK_FROM": "",
    "CALLBACK_MAX_ATTEMPTS": 3,
    "CALLBACK_RETRY_MINUTES": "10,30,120",
    "WRAP_UP_SECONDS": 60,
    "DIAL_TIMEOUT_SECONDS": 25,
    "SURVEY": True,  # satisfaction survey: true, false, or flow names for the keypad survey
    "DISPLAY_TIMEZONE": "",  # the console's times; empty: the published flow's calendar, else UTC
    "METRICS_TOKEN": "",  # bearer token for GET /metrics; empty: open (firewall it instead)
}


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says which setting to fix."""


def load_config(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    """Fill `app.config` from defaults, the environment and `overrides`, then check it."""
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("IVR")
    # Platform conventions (Heroku, Render, ...) name these without a prefix.
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name) and not os.environ.get(f"IVR_{name}"):
            app.config[name] = os.environ[name]
    if overrides:
        app.config.update(overrides)
    app.config["REDIS_URL"] = redis_address(app.config)
    if not app.config["DATABASE_URL"]:
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'ivr.sqlite3'}"
    app.config["DATABASE_URL"] = _sqlalchemy_url(app.config["DATABASE_URL"])
    if not app.config["MODELS_DIR"]:
        app.config["MODELS_DIR"] = str(Path(app.instance_path) / "models")
    for key, name in (("KEYWORDS_FILE", "keywords.yaml"), ("PRIORITIES_FILE", "priorities.yaml"),
                      ("DIRECTORY_FILE", "directory.csv"),
                      ("DELIVERY_FILE", "delivery.yaml")):
        if not app.config[key]:
            app.config[key] = str(ROOT / "flows" / name)
    log_format = str(app.config["LOG_FORMAT"] or "").strip().lower()
    app.config["LOG_FORMAT"] = log_format or ("json" if app.config["ENV"] == "production"
                                              else "text")
    check_config(app.config)


def redis_address(config: Any) -> str:
    """REDIS_URL, or the Sentinel address built from REDIS_SENTINELS and its companions."""
    from callbacks.redis_client import RedisAddressError, sentinel_address

    url, sentinels = str(config.get("REDIS_URL") or ""), str(config.get("REDIS_SENTINELS") or "")
    if not sentinels:
        return url
    if url:
        raise ConfigError("set IVR_REDIS_URL or IVR_REDIS_SENTINELS, not both")
    try:
        return sentinel_address(sentinels, str(config.get("REDIS_SENTINEL_MASTER") or ""),
                                str(config.get("REDIS_PASSWORD") or ""),
                                str(config.get("REDIS_SENTINEL_PASSWORD") or ""))
    except RedisAddressError as error:
        raise ConfigError(str(error)) from None


def check_config(config: dict[str, Any]) -> None:
    """Refuse settings that cannot work, and settings that are unsafe in production."""
    if config.get("LOG_FORMAT", "text") not in LOG_FORMATS:
        raise ConfigError(f"IVR_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                          f"not {config['LOG_FORMAT']!r}")
    if config["ENV"] != "production":
        return
    if config["SECRET_KEY"] == DEFAULT_SECRET_KEY or len(str(config["SECRET_KEY"])) < 16:
        raise ConfigError("IVR_SECRET_KEY must be set to a long random value in production")
    if config["TWILIO_AUTH_TOKEN"] == DEFAULT_AUTH_TOKEN:
        raise ConfigError("IVR_TWILIO_AUTH_TOKEN must be the account's auth token in production")
    if not config["VALIDATE_SIGNATURE"]:
        raise ConfigError("IVR_VALIDATE_SIGNATURE cannot be turned off in production")
    if not config["PUBLIC_BASE_URL"]:
        raise ConfigError("IVR_PUBLIC_BASE_URL must be the URL Twilio calls (https://...)")


def _sqlalchemy_url(url: str) -> str:
    # Hosted PostgreSQL often hands out postgres:// URLs; use the psycopg 3 driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
