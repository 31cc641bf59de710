"""What background work needs to know, as one typed value built from the app config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Database, Redis, Twilio and speech settings shared by the web app and the workers."""

    database_url: str
    redis_url: str = ""
    twilio_account_sid: str = "AC00000000000000000000000000000000"
    twilio_auth_token: str = ""
    twilio_api_base_url: str = "https://api.twilio.com"
    sms_from: str = ""
    speech_models: dict[str, str] = field(default_factory=dict)
    models_dir: str = "instance/models"
    keywords_file: str = "flows/keywords.yaml"
    priorities_file: str = "flows/priorities.yaml"
    directory_file: str = "flows/directory.csv"
    delete_recordings: bool = False
    max_voicemail_seconds: int = 600
    speech_threads: int = 1
    reconcile_seconds: int = 60
    heartbeat_seconds: int = 30

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
            delete_recordings=bool(config.get("DELETE_RECORDINGS", False)),
            max_voicemail_seconds=int(config.get("MAX_VOICEMAIL_SECONDS", 600)),
            speech_threads=int(config.get("SPEECH_THREADS", 1)),
            reconcile_seconds=int(config.get("RECONCILE_SECONDS", 60)),
            heartbeat_seconds=int(config.get("HEARTBEAT_SECONDS", 30)),
        )
