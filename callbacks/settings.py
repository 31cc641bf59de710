"""What background work needs to know, as one typed value built from the app config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from callbacks.survey import SurveyPolicy


@dataclass(frozen=True)
class Settings:
    """Database, Redis, Twilio and speech settings shared by the web app and the workers."""

    database_url: str
    redis_url: str = ""  # a redis:// URL or a redis+sentinel:// address (callbacks/redis_client)
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    sms_from: str = ""
    speech_models: dict[str, str] = field(default_factory=dict)
    models_dir: str = "instance/models"
    keywords_file: str = "flows/keywords.yaml"
    priorities_file: str = "flows/priorities.yaml"
    directory_file: str = "flows/directory.csv"
    texts_file: str = "flows/texts.yaml"
    default_flow: str = "it-support"
    delivery_file: str = ""  # connectors to the company's ticket system; empty: none
    incidents_file: str = "flows/incidents.yaml"
    delete_recordings: bool = False
    max_voicemail_seconds: int = 600
    speech_threads: int = 1
    reconcile_seconds: int = 60
    heartbeat_seconds: int = 30
    public_base_url: str = ""
    callback_from: str = ""
    callback_max_attempts: int = 3
    callback_retry_minutes: tuple[int, ...] = (10, 30, 120)
    wrap_up_seconds: int = 60
    dial_timeout_seconds: int = 25
    survey: SurveyPolicy = field(default_factory=SurveyPolicy)
    display_timezone: str = ""

    @classmethod
    def from_config(cls, config: Any) -> Settings:
        """Settings from a Flask-style config mapping (keys as in ivr/config.py)."""
        return cls(
            database_url=config["DATABASE_URL"],
            redis_url=config.get("REDIS_URL", ""),
            twilio_account_sid=config.get("TWILIO_ACCOUNT_SID", ""),
            twilio_auth_token=config.get("TWILIO_AUTH_TOKEN", ""),
            twilio_api_base_url=config.get("TWILIO_API_BASE_URL", "https://api.twilio.com"),
            sms_from=config.get("SMS_FROM", ""),
            speech_models=dict(config.get("SPEECH_MODELS") or {}),
            models_dir=config.get("MODELS_DIR", "instance/models"),
            keywords_file=config.get("KEYWORDS_FILE", "flows/keywords.yaml"),
            priorities_file=config.get("PRIORITIES_FILE", "flows/priorities.yaml"),
            directory_file=config.get("DIRECTORY_FILE", "flows/directory.csv"),
            texts_file=config.get("TEXTS_FILE", "flows/texts.yaml"),
            delivery_file=config.get("DELIVERY_FILE", ""),
            incidents_file=config.get("INCIDENTS_FILE") or "flows/incidents.yaml",
            delete_recordings=bool(config.get("DELETE_RECORDINGS", False)),
            max_voicemail_seconds=int(config.get("MAX_VOICEMAIL_SECONDS", 600)),
            speech_threads=int(config.get("SPEECH_THREADS", 1)),
            reconcile_seconds=int(config.get("RECONCILE_SECONDS", 60)),
            heartbeat_seconds=int(config.get("HEARTBEAT_SECONDS", 30)),
            public_base_url=str(config.get("PUBLIC_BASE_URL", "")).rstrip("/"),
            callback_from=config.get("CALLBACK_FROM", "") or config.get("SMS_FROM", ""),
            callback_max_attempts=int(config.get("CALLBACK_MAX_ATTEMPTS", 3)),
            callback_retry_minutes=_minutes(config.get("CALLBACK_RETRY_MINUTES", "10,30,120")),
            wrap_up_seconds=int(config.get("WRAP_UP_SECONDS", 60)),
            dial_timeout_seconds=int(config.get("DIAL_TIMEOUT_SECONDS", 25)),
            survey=SurveyPolicy.from_setting(config.get("SURVEY", True)),
            display_timezone=str(config.get("DISPLAY_TIMEZONE", "") or ""),
            default_flow=str(config.get("DEFAULT_FLOW", "it-support") or "it-support"),
        )


def _minutes(value: Any) -> tuple[int, ...]:
    """'10,30,120' (or a list) as a tuple of whole minutes."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    minutes = tuple(int(str(part).strip()) for part in parts if str(part).strip())
    if not minutes or min(minutes) < 0:
        raise ValueError("IVR_CALLBACK_RETRY_MINUTES must list minutes, for example 10,30,120")
    return minutes
