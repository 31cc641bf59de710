"""What background jobs run with: settings, database sessions, Redis and speech models.

A worker configures this once in its parent process (loading the speech models there), so
jobs in forked work horses inherit it instead of loading anything per job.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from callbacks.db import make_claim_engine, make_engine, make_session_factory
from callbacks.queues import redis_connection
from callbacks.settings import Settings

if TYPE_CHECKING:
    from callbacks.delivery.settings import DeliverySettings
    from callbacks.directory import Directory
    from callbacks.incidents.settings import IncidentSettings
    from callbacks.priority import PriorityPolicy
    from callbacks.tickets.texts import SmsTexts
    from speech.keywords import KeywordRules
    from speech.models import ModelRegistry


class NotConfigured(RuntimeError):
    """A job ran in a process that was not started by `ivr worker`."""


_lock = threading.Lock()
_settings: Settings | None = None
_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None
_engine_pid = 0
_claim_engine: Engine | None = None
_claim_engine_pid = 0
_models: ModelRegistry | None = None
_from_files: dict[tuple[str, str], Any] = {}
T = TypeVar("T")


def configure(settings: Settings) -> None:
    """Set the settings jobs use in this process (and forget what was built from old ones;
    loaded speech models stay when the model settings did not change)."""
    global _settings, _engine, _sessions, _models, _claim_engine
    with _lock:
        old, _settings = _settings, settings
        for engine in (_engine, _claim_engine):
            if engine is not None:
                engine.dispose()
        _engine = _sessions = _claim_engine = None
        same_models = old is not None and (old.speech_models, old.models_dir) == (
            settings.speech_models, settings.models_dir)
        if not same_models:
            _models = None


def settings() -> Settings:
    """The configured settings."""
    if _settings is None:
        raise NotConfigured("jobs must run in `ivr worker`, which configures the runtime")
    return _settings


def sessions() -> sessionmaker[Session]:
    """Database sessions for this process (a forked process gets fresh connections)."""
    global _engine, _sessions, _engine_pid
    with _lock:
        if _engine is not None and _engine_pid != os.getpid():
            # Connections opened by the parent must not be shared with a forked child.
            _engine.dispose(close=False)
            _engine_pid = os.getpid()
        if _engine is None:
            _engine = make_engine(settings().database_url, pool_size=2, max_overflow=2)
            _sessions = make_session_factory(_engine)
            _engine_pid = os.getpid()
        assert _sessions is not None
        return _sessions


def claim_engine() -> Engine:
    """The engine claims run on (`make_claim_engine`: autocommit, one statement per claim)."""
    global _claim_engine, _claim_engine_pid
    with _lock:
        if _claim_engine is not None and _claim_engine_pid != os.getpid():
            _claim_engine.dispose(close=False)
            _claim_engine_pid = os.getpid()
        if _claim_engine is None:
            _claim_engine = make_claim_engine(settings().database_url)
            _claim_engine_pid = os.getpid()
        return _claim_engine


def redis() -> Redis:
    """The Redis the job queues live in."""
    return redis_connection(settings().redis_url)


def models() -> ModelRegistry:
    """The speech model registry of this process."""
    global _models
    from speech.models import ModelRegistry, model_paths

    with _lock:
        if _models is None:
            _models = ModelRegistry(model_paths(settings().speech_models, settings().models_dir))
        return _models


def priority_policy() -> PriorityPolicy:
    """The callback priority levels and SLA targets."""
    from callbacks.priority import load_policy

    return _file_once("priorities_file", load_policy)


def directory() -> Directory:
    """The caller directory."""
    from callbacks.directory import load_directory

    return _file_once("directory_file", load_directory)


def delivery() -> DeliverySettings:
    """The connectors tickets are delivered to (none when no delivery file is set)."""
    from callbacks.delivery.settings import load_delivery

    return _file_once("delivery_file", load_delivery)


def keyword_rules() -> KeywordRules:
    """The transcript keyword rules (category and priority per language)."""
    from speech.keywords import KeywordRules

    return _file_once("keywords_file", KeywordRules.load)


def sms_texts() -> SmsTexts:
    """The texts to callers (SMS) per name and language."""
    from callbacks.tickets.texts import load_texts

    return _file_once("texts_file", load_texts)


def incident_settings() -> IncidentSettings:
    """When incidents are suggested, the topics' names and the menu's words about them."""
    from callbacks.incidents.settings import load_incident_settings

    return _file_once("incidents_file", load_incident_settings)


def _file_once(setting: str, load: Callable[[str], T]) -> T:
    """What `load` makes of the file a setting names, read once per process and file."""
    path = getattr(settings(), setting)
    with _lock:
        key = (setting, path)
        if key not in _from_files:
            _from_files[key] = load(path)
        loaded: T = _from_files[key]
        return loaded
