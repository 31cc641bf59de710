"""Texts to an incident's callers when it is resolved: one per number, sent at most once.

Resolving makes one `IncidentNotice` per number in the resolving transaction; once that
commits, one job per notice is queued (`incident-notice-<id>`), and the reconciler queues again
any notice whose job Redis lost (`requeue_incident_notices`). A job claims its notice before
it asks Twilio: it locks the row, writes the words and the sender and moves it to `sending`,
and commits. Only then is the text sent, and the outcome recorded: `sent` (with the Message
SID), `skipped` (the number cannot receive texts, or it opted out with STOP) or `failed`
(Twilio refused for good).

A job that finds its notice already `sending` follows a run that was cut off between the claim
and the outcome (a worker killed, a timeout): whether Twilio took that text is unknown, so it
first asks Twilio's message log for a text with the same words to the same number since the
claim. Found, it is recorded as sent and nothing goes out again; not found, the text is sent.
A claim younger than the longest a request to Twilio can take (`IN_FLIGHT`) is left alone
until it is older, so a request still on its way is never doubled.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from redis import Redis
from sqlalchemy import event as sql_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import record_after_the_fact, utcnow
from callbacks.incidents.incident import FINAL_NOTICE_STATES, Incident, IncidentNotice
from callbacks.queues import SMS_RETRY, URGENT, enqueue_unique
from callbacks.sms import sms_text, sms_texts
from callbacks.telephony import REST_TIMEOUT, TelephonyError, find_sent_message
from callbacks.tickets.caller_texts import line_called, why_not_textable
from callbacks.tickets.optout import OptedOut, send_text

log = logging.getLogger(__name__)

PENDING = "ivr.incident_notices"
"""Where a session keeps the incidents whose notices are queued when it commits."""
SEND_JOB = "callbacks.incidents.notices.send_incident_notice"
IN_FLIGHT = timedelta(seconds=REST_TIMEOUT + 5)
"""A claim younger than this may still have its request to Twilio on the way."""
LATE_AFTER = timedelta(days=1)
"""Notices older than this are not sent late any more (like texts about ticket events)."""
_SPACES = re.compile(r"[ \t]{2,}")


def notice_job_id(notice_id: int) -> str:
    """The job id of the text of one notice."""
    return f"incident-notice-{notice_id}"


def after_commit(session: Session, incident_id: int) -> None:
    """Queue the notices of `incident_id` once `session` commits (nothing on rollback)."""
    session.info.setdefault(PENDING, []).append(incident_id)


@sql_event.listens_for(Session, "after_commit")
def _queue_committed(session: Session) -> None:
    incidents = session.info.pop(PENDING, None)
    if not incidents:
        return
    try:
        with runtime.sessions()() as reader:
            ids = list(reader.scalars(select(IncidentNotice.id).where(
                IncidentNotice.incident_id.in_(incidents),
                IncidentNotice.status == "pending").order_by(IncidentNotice.id)))
        queue_incident_notices(runtime.redis(), ids)
    except Exception:
        # Redis away (or no worker configured): the reconciler queues them from SQL.
        log.warning("could not queue the notices of incidents %s; the reconciler will",
                    incidents, exc_info=True)


@sql_event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(PENDING, None)


def queue_incident_notices(connection: Redis, notice_ids: Iterable[int]) -> list[int]:
    """Queue the text of each notice (once: a queued or running job stays)."""
    queued = []
    for notice_id in notice_ids:
        if enqueue_unique(connection, URGENT, SEND_JOB, notice_job_id(notice_id), notice_id,
                          retry=SMS_RETRY, timeout=90,
                          description=f"{SEND_JOB}(notice {notice_id})"):
            queued.append(notice_id)
    return queued


def compose_notice(incident: Incident, language: str) -> str:
    """The text telling a caller speaking `language` that the incident is fixed."""
    topic = runtime.incident_settings().topic(incident.category, language)
    body = sms_text("incident_resolved", language, number=incident.number, title=incident.title,
                    topic=topic, note=incident.resolution.strip())
    return _SPACES.sub(" ", body).strip()


def notice_language(language: str) -> str:
    """The language a caller speaking `language` gets the text in."""
    return sms_texts().language_of("incident_resolved", language)


def send_incident_notice(notice_id: int) -> str | None:
    """Job: text one caller that the incident is fixed, at most once; the outcome is kept."""
    from callbacks.jobs import RetryLater

    settings = runtime.settings()
    with runtime.sessions()() as session:
        notice = session.get(IncidentNotice, notice_id, with_for_update=True)
        if notice is None or notice.status in FINAL_NOTICE_STATES:
            return None  # no such notice, or it ended already
        if notice.status == "sending":
            claimed = notice.claimed_at or notice.created_at
            if utcnow() - claimed < IN_FLIGHT:
                raise RetryLater(f"notice {notice_id}: an earlier try may still be on its way")
            try:
                sid = find_sent_message(settings, notice.phone, notice.sender, notice.body,
                                        claimed - timedelta(minutes=1))
            except TelephonyError as error:
                raise RetryLater(f"notice {notice_id}: {error}") from error
            if sid is not None:
                _finish(notice, "sent", f"({notice.language}): {sid}, found at Twilio after an "
                        "interrupted try", sid)
                session.commit()
                return sid
        reason = why_not_textable(session, notice.phone, _sender(session, notice.phone))
        if reason:
            _finish(notice, "skipped", reason)
            session.commit()
            return None
        incident = session.get(Incident, notice.incident_id)
        assert incident is not None
        language = notice_language(notice.language)
        notice.body = compose_notice(incident, language)
        notice.sender = _sender(session, notice.phone) or ""
        notice.status, notice.claimed_at = "sending", utcnow()
        notice.attempts += 1
        phone, body, sender = notice.phone, notice.body, notice.sender
        session.commit()
    try:
        sid = send_text(settings, phone, body, from_=sender)
    except OptedOut as refused:
        _record(notice_id, "skipped", str(refused))
        return None
    except TelephonyError as error:
        if error.retryable:  # the next try asks Twilio first whether this one got through
            raise RetryLater(str(error)) from error
        _record(notice_id, "failed", error.public)
        return None
    _record(notice_id, "sent", f"({language}): {sid}", sid)
    return sid


def requeue_incident_notices(session: Session, connection: Redis, settled_before: datetime,
                             alive: Callable[[Redis, str], bool],
                             forget: Callable[[Redis, str], None]) -> list[int]:
    """Queue again the notices without an outcome whose job is gone (Redis lost it, or its
    worker died)."""
    requeued: list[int] = []
    waiting = session.scalars(select(IncidentNotice.id).where(
        IncidentNotice.status.in_(("pending", "sending")),
        IncidentNotice.created_at > utcnow() - LATE_AFTER,
        IncidentNotice.created_at < settled_before).order_by(IncidentNotice.id)).all()
    for notice_id in waiting:
        job_id = notice_job_id(notice_id)
        if alive(connection, job_id):
            continue
        forget(connection, job_id)
        if queue_incident_notices(connection, [notice_id]):
            requeued.append(notice_id)
    return requeued


def _sender(session: Session, phone: str) -> str | None:
    """The number a text to `phone` comes from: IVR_SMS_FROM, else the number they dialled."""
    return runtime.settings().sms_from or line_called(session, phone)


def _finish(notice: IncidentNotice, status: str, detail: str, sid: str | None = None) -> None:
    notice.status, notice.detail, notice.finished_at = status, detail[:500], utcnow()
    if sid is not None:
        notice.message_sid = sid


def _record(notice_id: int, status: str, detail: str, sid: str | None = None) -> None:
    def write(session: Session) -> None:
        notice = session.get(IncidentNotice, notice_id, with_for_update=True)
        if notice is not None and notice.status == "sending":
            _finish(notice, status, detail, sid)

    record_after_the_fact(runtime.sessions(), write)
