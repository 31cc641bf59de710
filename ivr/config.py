"""Configuration: defaults in code, then IVR_* environment variables, then test overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
    "TEXTS_FILE": "",  # the SMS texts to callers per language (flows/texts.yaml)
    "DELIVERY_FILE": "",  # connectors to the company's ticket system (flows/delivery.yaml)
    "INCIDENTS_FILE": "",  # incident suggestions and the menu's announcement (flows/incidents.yaml)
    "INCIDENT_CACHE_SECONDS": 3.0,  # how long a web process caches the open incidents it announces
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
    "METRICS_PRIVATE": False,  # true: /metrics is only reachable on a private address
}

ENVIRONMENTS = ("development", "test", "production")
AUTH_TOKEN = re.compile(r"^[0-9a-f]{32}$")
"""Twilio's auth tokens: 32 lower-case hex digits (they also sign every webhook)."""
API_KEY_SECRET = re.compile(r"^[0-9A-Za-z]{32}$")
"""An API key's secret looks alike but cannot check webhook signatures."""
ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")
MIN_METRICS_TOKEN = 16
HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
                  r"|^[0-9a-f:.]+$")
"""A DNS name or an IP address (urlsplit gives host names in lower case)."""


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
        # The instance folder holds the database, the private Redis and the demo's password.
        Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{Path(app.instance_path) / 'ivr.sqlite3'}"
    app.config["DATABASE_URL"] = _sqlalchemy_url(app.config["DATABASE_URL"])
    if not app.config["MODELS_DIR"]:
        app.config["MODELS_DIR"] = str(Path(app.instance_path) / "models")
    for key, name in (("KEYWORDS_FILE", "keywords.yaml"), ("PRIORITIES_FILE", "priorities.yaml"),
                      ("DIRECTORY_FILE", "directory.csv"), ("TEXTS_FILE", "texts.yaml"),
                      ("DELIVERY_FILE", "delivery.yaml"), ("INCIDENTS_FILE", "incidents.yaml")):
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
    if config["ENV"] not in ENVIRONMENTS:
        # A typo must not fall back to development, with its public token and secret key.
        raise ConfigError(f"IVR_ENV must be exactly one of {', '.join(ENVIRONMENTS)} "
                          f"(lower case, no spaces), not {config['ENV']!r}")
    if config.get("LOG_FORMAT", "text") not in LOG_FORMATS:
        raise ConfigError(f"IVR_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                          f"not {config['LOG_FORMAT']!r}")
    if not isinstance(config.get("METRICS_PRIVATE", False), bool):
        raise ConfigError("IVR_METRICS_PRIVATE must be true or false, not "
                          f"{config['METRICS_PRIVATE']!r}")
    if config["ENV"] == "production":
        check_production(config)


def check_production(config: dict[str, Any]) -> None:
    """Production: no default or guessable secret, real Twilio credentials, https, /metrics
    behind a token or on a private address."""
    if config["SECRET_KEY"] == DEFAULT_SECRET_KEY or len(str(config["SECRET_KEY"])) < 16:
        raise ConfigError("IVR_SECRET_KEY must be set to a long random value in production")
    token = config["TWILIO_AUTH_TOKEN"]
    if not isinstance(token, str) or not AUTH_TOKEN.match(token):
        looks_like_key = isinstance(token, str) and API_KEY_SECRET.match(token)
        raise ConfigError(
            "IVR_TWILIO_AUTH_TOKEN must be the account's auth token in production (32 "
            "lower-case hex characters, from the Twilio console's Account Info)"
            + ("; an API key secret cannot check Twilio's webhook signatures"
               if looks_like_key else ""))
    if not ACCOUNT_SID.match(str(config["TWILIO_ACCOUNT_SID"])) or (
            config["TWILIO_ACCOUNT_SID"] == DEFAULTS["TWILIO_ACCOUNT_SID"]):
        raise ConfigError("IVR_TWILIO_ACCOUNT_SID must be the account's SID (AC + 32 hex "
                          "characters) in production")
    if not config["VALIDATE_SIGNATURE"]:
        raise ConfigError("IVR_VALIDATE_SIGNATURE cannot be turned off in production")
    url = str(config["PUBLIC_BASE_URL"] or "")
    if not is_https_url(url):
        raise ConfigError("IVR_PUBLIC_BASE_URL must be the https:// URL Twilio calls in "
                          f"production (for example https://support.example.com), not {url!r}")
    metrics_token = str(config.get("METRICS_TOKEN") or "")
    if metrics_token and len(metrics_token) < MIN_METRICS_TOKEN:
        raise ConfigError(f"IVR_METRICS_TOKEN must be at least {MIN_METRICS_TOKEN} characters")
    if not metrics_token and not config.get("METRICS_PRIVATE"):
        raise ConfigError("set IVR_METRICS_TOKEN (Prometheus sends it as a bearer token), or "
                          "IVR_METRICS_PRIVATE=true if /metrics is only reachable on a private "
                          "port or address")


def is_https_url(url: str) -> bool:
    """Whether `url` is an absolute https:// URL of a host (a path is allowed; no user, query
    or fragment)."""
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return (parts.scheme == "https" and port_ok and bool(HOST.match(parts.hostname or ""))
            and parts.username is None and not parts.query and not parts.fragment
            and url == url.strip() and "@" not in parts.netloc)


def _sqlalchemy_url(url: str) -> str:
    # Hosted PostgreSQL often hands out postgres:// URLs; use the psycopg 3 driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
