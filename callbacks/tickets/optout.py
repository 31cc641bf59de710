"""STOP and START: a caller who texts an opt-out keyword gets no text of ours until they opt in.

As Twilio's messaging conventions expect, a single-word reply STOP, STOPALL, UNSUBSCRIBE,
CANCEL, END or QUIT opts the number out and START, UNSTOP or YES opts it back in; HELP and INFO
change nothing. Twilio answers all of these itself (or with the Advanced Opt-Out replies of a
Messaging Service, which also tags the webhook with `OptOutType`), so we never reply to them.
A text Twilio refuses with error 21610 (the number opted out at Twilio) records the opt-out too.
Every text of ours goes out through `send_text`, which checks the list first: an opted-out
number is skipped, never texted.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Boolean, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks import runtime
from callbacks.calllog import normalize_number
from callbacks.db import (
    Base,
    UTCDateTime,
    insert_ignoring_duplicates,
    record_after_the_fact,
    utcnow,
)
from callbacks.settings import Settings
from callbacks.telephony import TelephonyError, send_sms

log = logging.getLogger(__name__)

OPT_OUT_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit"})
OPT_IN_KEYWORDS = frozenset({"start", "unstop", "yes"})
HELP_KEYWORDS = frozenset({"help", "info"})
TWILIO_OPTED_OUT = 21610
"""Twilio's error: the message cannot be sent because the recipient replied STOP."""
SKIPPED_DETAIL = "the caller opted out of texts (STOP)"


class SmsOptOut(Base):
    """A number's latest opt-out or opt-in: whether we may text it, and why."""

    __tablename__ = "sms_opt_outs"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(64), unique=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=True)
    keyword: Mapped[str] = mapped_column(String(32), default="")
    source: Mapped[str] = mapped_column(String(16), default="keyword")
    """'keyword' (the caller texted it to us) or 'twilio' (a send refused with 21610)."""
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OptedOut(Exception):
    """The number opted out of texts: nothing was sent."""


def keyword_kind(body: str, opt_out_type: str = "") -> str | None:
    """'stop', 'start' or 'help' for a keyword message (one word, any case), else None.

    Twilio's `OptOutType` (sent with Advanced Opt-Out, also for keywords added there in other
    languages) decides when it is given.
    """
    given = opt_out_type.strip().lower()
    if given in ("stop", "start", "help"):
        return given
    word = body.strip().lower()
    if word in OPT_OUT_KEYWORDS:
        return "stop"
    if word in OPT_IN_KEYWORDS:
        return "start"
    if word in HELP_KEYWORDS:
        return "help"
    return None


def record_keyword(session: Session, number: str, kind: str, keyword: str,
                   source: str = "keyword") -> None:
    """Note an opt-out ('stop') or opt-in ('start') for `number`; 'help' changes nothing."""
    if kind not in ("stop", "start") or not number.strip():
        return
    normalized, opted_out = normalize_number(number), kind == "stop"
    word, moment = keyword.strip().upper()[:32], utcnow()
    session.execute(insert_ignoring_duplicates(session, SmsOptOut.__table__, ["number"]).values(
        number=normalized, opted_out=opted_out, keyword=word, source=source, changed_at=moment))
    row = session.scalar(select(SmsOptOut).where(SmsOptOut.number == normalized)
                         .with_for_update())
    assert row is not None
    row.opted_out, row.keyword, row.source, row.changed_at = opted_out, word, source, moment


def is_opted_out(session: Session, number: str) -> bool:
    """Whether `number` opted out of our texts (and has not opted in since)."""
    if not number.strip():
        return False
    return bool(session.scalar(select(SmsOptOut.opted_out).where(
        SmsOptOut.number == normalize_number(number))))


def send_text(settings: Settings, to: str, body: str, from_: str | None = None) -> str:
    """Send an SMS unless `to` opted out; the Message SID. OptedOut when it did (also when
    Twilio refuses with 21610, which is then recorded); TelephonyError for other failures."""
    with runtime.sessions()() as session:
        if is_opted_out(session, to):
            raise OptedOut(SKIPPED_DETAIL)
    try:
        return send_sms(settings, to, body, from_=from_)
    except TelephonyError as error:
        if error.code != TWILIO_OPTED_OUT:
            raise
        log.info("Twilio refused a text: the number opted out (21610); noted")
        record_after_the_fact(runtime.sessions(), lambda session: record_keyword(
            session, to, "stop", "STOP", source="twilio"))
        raise OptedOut(f"{SKIPPED_DETAIL}; Twilio refused the text (error 21610)") from error
