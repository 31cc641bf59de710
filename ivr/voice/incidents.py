"""Open incidents on the phone: what menus that opt in announce, and callers asking for a text.

The open, announced incidents are read from SQL at most once every IVR_INCIDENT_CACHE_SECONDS
per process (a call step never waits for more than that one cheap query), with their words in
every language of the incidents file: the incident's own announcement where an agent wrote
one, else the file's, naming the incident's category. A failed lookup announces nothing; the
call goes on.
"""

from __future__ import annotations

import logging
import threading
import time

from flask import Flask, current_app
from sqlalchemy import select

from callbacks.incidents.grouping import subscribe
from callbacks.incidents.incident import Incident
from callbacks.incidents.settings import IncidentSettings
from callbacks.sms import can_receive_sms
from callbacks.tickets.optout import is_opted_out
from ivr.db import get_session
from routing.incident_menu import OpenIncidents
from routing.steps import Say, SubscribeToIncidents

log = logging.getLogger(__name__)
_lock = threading.Lock()
NONE = OpenIncidents(())


def open_incidents(app: Flask | None = None) -> OpenIncidents:
    """The incidents menus announce now (cached for IVR_INCIDENT_CACHE_SECONDS)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    cache: dict[str, tuple[float, OpenIncidents]] = app.extensions.setdefault(
        "ivr.incident_cache", {})
    now = time.monotonic()
    with _lock:
        cached = cache.get("open")
        if cached is not None and cached[0] > now:
            return cached[1]
    try:
        found = _look_up(app)
    except Exception:  # the menu works without its announcement
        log.warning("open incidents could not be looked up; none announced", exc_info=True)
        found = NONE
    with _lock:
        cache["open"] = (now + float(app.config["INCIDENT_CACHE_SECONDS"]), found)
    return found


def forget_open_incidents(app: Flask) -> None:
    """Look the incidents up again on the next call step (after this process changed one)."""
    with _lock:
        app.extensions.setdefault("ivr.incident_cache", {}).pop("open", None)


def _look_up(app: Flask) -> OpenIncidents:
    settings: IncidentSettings = app.extensions["ivr.incidents"]
    with app.extensions["ivr.sessions"]() as session:
        incidents = list(session.scalars(select(Incident).where(
            Incident.status == "open", Incident.announce.is_(True))
            .order_by(Incident.opened_at, Incident.id)))
    if not incidents:
        return NONE
    languages = dict.fromkeys(settings.languages)
    for incident in incidents:
        languages.update(dict.fromkeys(incident.announcement))
    announcement = {
        language: " ".join(
            incident.announcement.get(language) or settings.prompt(
                "announcement", language, topic=settings.topic(incident.category, language),
                title=incident.title)
            for incident in incidents)
        for language in languages}
    offer = {language: settings.prompt("subscribe", language, key="{key}")
             for language in settings.languages}
    return OpenIncidents(tuple(incident.id for incident in incidents), announcement, offer)


def subscribe_caller(step: SubscribeToIncidents, caller: str, call_sid: str) -> Say:
    """Note the caller for a text when the incidents are fixed; what they hear about it."""
    settings: IncidentSettings = current_app.extensions["ivr.incidents"]
    session = get_session()
    if not can_receive_sms(caller) or is_opted_out(session, caller):
        return _said(settings, "cannot_text", step.language)
    subscribed = subscribe(session, step.incident_ids, caller, step.language, call_sid)
    log.info("a caller subscribed to incidents %s", subscribed)
    return _said(settings, "subscribed", step.language)


def _said(settings: IncidentSettings, name: str, language: str) -> Say:
    spoken = language if language in settings.prompts[name] else "en"
    return Say(settings.prompt(name, spoken), spoken)
