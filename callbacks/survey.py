"""Satisfaction surveys: the questions, who is asked, and the answers by keypad or SMS reply.

Answers are rows of `survey_answers`, one per question per subject and channel: a keypad answer's
subject is the call ('call:CA…'), an SMS answer's is what the text asked about ('ticket:7', or
'callback:3' for a callback without a ticket). The first answer counts: a Twilio retry, a key
pressed again or a second SMS reply to the same question changes nothing, so reports never count
a caller twice and never see a score flip after the fact.

Texts sent by SMS are `survey_invitations`, one per subject (so one survey SMS per ticket); a
reply belongs to the caller's most recent invitation of the last seven days.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.calllog import normalize_number
from callbacks.db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.workqueue.agents import Agent
from callbacks.workqueue.callback_requests import CallbackRequest

CHANNELS = ("keypad", "sms")
KEYPAD_QUESTIONS = ("overall", "resolved")
"""Asked in this order at the end of a call."""
SMS_QUESTION = "overall"
"""A text asks one question only: replies carry no question key."""
SMS_WINDOW = timedelta(days=7)
"""How long a survey SMS waits for its reply."""
KEYPAD_TIMEOUT = 6
"""Seconds the line waits for a key after a question."""

KEYPAD_TEXTS: dict[str, dict[str, str]] = {
    "intro": {
        "en": "Thank you for calling. One short question before you go.",
        "de": "Vielen Dank für Ihren Anruf. Noch eine kurze Frage zum Schluss.",
        "pl": "Dziękujemy za telefon. Jeszcze jedno krótkie pytanie.",
        "ru": "Спасибо за звонок. Ещё один короткий вопрос.",
    },
    "overall": {
        "en": "How satisfied are you with the help you got? Press 1 for not at all, up to 5 "
        "for very satisfied.",
        "de": "Wie zufrieden sind Sie mit der Hilfe? Drücken Sie 1 für gar nicht bis 5 für "
        "sehr zufrieden.",
        "pl": "Jak bardzo jest Pan lub Pani zadowolony z pomocy? Proszę nacisnąć od 1, wcale, "
        "do 5, bardzo zadowolony.",
        "ru": "Насколько вы довольны полученной помощью? Нажмите от 1, совсем не доволен, "
        "до 5, очень доволен.",
    },
    "resolved": {
        "en": "Was your problem solved? Press 1 for not at all, up to 5 for completely.",
        "de": "Wurde Ihr Problem gelöst? Drücken Sie 1 für gar nicht bis 5 für vollständig.",
        "pl": "Czy problem został rozwiązany? Proszę nacisnąć od 1, wcale, do 5, całkowicie.",
        "ru": "Ваша проблема решена? Нажмите от 1, совсем нет, до 5, полностью.",
    },
    "invalid": {
        "en": "Please press a key from 1 to 5.",
        "de": "Bitte drücken Sie eine Taste von 1 bis 5.",
        "pl": "Proszę nacisnąć klawisz od 1 do 5.",
        "ru": "Пожалуйста, нажмите клавишу от 1 до 5.",
    },
    "thanks": {
        "en": "Thank you for your feedback. Goodbye.",
        "de": "Vielen Dank für Ihre Rückmeldung. Auf Wiederhören.",
        "pl": "Dziękujemy za opinię. Do widzenia.",
        "ru": "Спасибо за ваш отзыв. До свидания.",
    },
    "goodbye": {
        "en": "Thank you for calling. Goodbye.",
        "de": "Vielen Dank für Ihren Anruf. Auf Wiederhören.",
        "pl": "Dziękujemy za telefon. Do widzenia.",
        "ru": "Спасибо за звонок. До свидания.",
    },
}

_SCORE = re.compile(r"^\s*([1-5])(?![0-9])")
_OFF = frozenset({"", "0", "false", "no", "off"})
_ON = frozenset({"1", "true", "yes", "on", "all"})


def keypad_text(name: str, language: str) -> str:
    """A sentence of the keypad survey in `language` (English if not translated)."""
    texts = KEYPAD_TEXTS[name]
    return texts.get(language) or texts["en"]


def parse_score(text: str) -> int | None:
    """The score 1-5 a key or a reply starts with ('4', ' 5 ', '4 thanks'), else None."""
    match = _SCORE.match(text)
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class SurveyPolicy:
    """Who is asked (IVR_SURVEY): everyone, nobody, or the callers of some flows by keypad."""

    enabled: bool = True
    flows: frozenset[str] = field(default_factory=frozenset)
    """Flows whose callers hear the keypad survey; empty: every flow."""

    @classmethod
    def from_setting(cls, value: Any) -> SurveyPolicy:
        """true/false, or flow names ('it-support,sales' or a list): keypad for those only."""
        if isinstance(value, bool):
            return cls(enabled=value)
        if isinstance(value, int):
            return cls(enabled=value != 0)
        names = value.split(",") if isinstance(value, str) else list(value or [])
        cleaned = [str(name).strip() for name in names if str(name).strip()]
        if not cleaned or (len(cleaned) == 1 and cleaned[0].lower() in _OFF):
            return cls(enabled=False)
        if len(cleaned) == 1 and cleaned[0].lower() in _ON:
            return cls(enabled=True)
        return cls(enabled=True, flows=frozenset(cleaned))

    def keypad_for(self, flow_name: str) -> bool:
        """Whether callers of this flow hear the survey after talking to an agent."""
        return self.enabled and (not self.flows or flow_name in self.flows)


class SurveyAnswer(Base):
    """One answer to one question, by keypad at the end of a call or by SMS reply."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("subject", "channel", "question"),
        CheckConstraint("score BETWEEN 1 AND 5", name="score_range"),
        CheckConstraint("channel IN ('keypad', 'sms')", name="channel"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(80))
    """What was rated: 'call:<CallSid>' (keypad), 'ticket:<id>' or 'callback:<id>' (SMS)."""
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"),
                                                  index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"),
                                                 index=True)
    call_sid: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(8))
    question: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    message_sid: Mapped[str | None] = mapped_column(String(64), index=True)
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class SurveyInvitation(Base):
    """A survey SMS: whom it asked, about what, and whether it went out."""

    __tablename__ = "survey_invitations"
    __table_args__ = (Index("ix_survey_invitations_caller_sent", "caller", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(80), unique=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="SET NULL"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    call_sid: Mapped[str] = mapped_column(String(64), default="")
    caller: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="")
    category: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending (to send), sent, or failed (Twilio refused it for good)."""
    message_sid: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class Answer:
    """What a caller answered, with everything the row attaches it to."""

    subject: str
    channel: str
    question: str
    score: int
    ticket_id: int | None = None
    agent_id: int | None = None
    call_sid: str = ""
    category: str = ""
    language: str = ""
    message_sid: str | None = None
    answered_at: datetime | None = None


def record_answer(session: Session, answer: Answer) -> bool:
    """Store an answer unless its question was answered already; whether it is new."""
    if answer.channel not in CHANNELS:
        raise ValueError(f"channel is one of {', '.join(CHANNELS)}")
    if answer.question not in KEYPAD_QUESTIONS:
        raise ValueError(f"unknown survey question {answer.question!r}")
    if not 1 <= answer.score <= 5:
        raise ValueError("a score is 1 to 5")
    values = {**dataclasses.asdict(answer), "answered_at": answer.answered_at or utcnow()}
    # RETURNING tells whether this insert made the row (an ORM session's rowcount is -1)
    inserted = session.execute(
        insert_ignoring_duplicates(session, SurveyAnswer.__table__,
                                   ["subject", "channel", "question"]).values(**values)
        .returning(SurveyAnswer.__table__.c.id)).first()
    return inserted is not None


def record_keypad_answer(session: Session, call_sid: str, question: str, score: int,
                         language: str, dialled: Sequence[str], transfer_node: str) -> bool:
    """A key pressed after a transfer: attached to the call's ticket and agent when known.

    The agent is known when the transfer rang one number that is an agent's phone (Dial's
    action does not say which of several numbers answered). Without a ticket, the category is
    the transfer node the caller came through, without its '_transfer' suffix (the reference
    flow names them per topic: 'network_transfer' is 'network').
    """
    ticket = session.scalar(select(Ticket).where(Ticket.call_sid == call_sid)
                            .order_by(Ticket.id.desc()).limit(1))
    agent_id = None
    if len(dialled) == 1:
        agent_id = session.scalar(select(Agent.id).where(
            Agent.phone == normalize_number(dialled[0])).order_by(Agent.id).limit(1))
    return record_answer(session, Answer(
        subject=f"call:{call_sid}", channel="keypad", question=question, score=score,
        ticket_id=ticket.id if ticket else None, agent_id=agent_id, call_sid=call_sid,
        category=ticket.category if ticket else transfer_node.removesuffix("_transfer"),
        language=language))


def open_invitation(session: Session, *, ticket: Ticket | None,
                    request: CallbackRequest | None,
                    agent_id: int | None) -> SurveyInvitation | None:
    """The survey SMS to send about a ticket (or a ticketless callback); None if it went out.

    One per subject: a ticket surveyed after its callback is not surveyed again when resolved.
    """
    if ticket is not None:
        subject, caller, call_sid = f"ticket:{ticket.id}", ticket.caller, ticket.call_sid
        language, category = ticket.language, ticket.category
    elif request is not None:
        subject, caller = f"callback:{request.id}", request.dial_number or request.caller
        call_sid, language, category = request.first_call_sid, request.language, request.category
    else:
        return None
    session.execute(insert_ignoring_duplicates(
        session, SurveyInvitation.__table__, ["subject"]).values(
        subject=subject, ticket_id=ticket.id if ticket is not None else None,
        request_id=request.id if request is not None else None, agent_id=agent_id,
        call_sid=call_sid, caller=normalize_number(caller), language=language or "en",
        category=category, status="pending", created_at=utcnow()))
    invitation = session.scalar(select(SurveyInvitation).where(
        SurveyInvitation.subject == subject).with_for_update())
    return invitation if invitation is not None and invitation.status == "pending" else None


def invitation_sent(session: Session, invitation_id: int, message_sid: str | None,
                    ok: bool = True) -> None:
    """Note that a survey SMS went out (its replies count from now) or failed for good."""
    invitation = session.get(SurveyInvitation, invitation_id)
    if invitation is not None:
        invitation.status = "sent" if ok else "failed"
        invitation.message_sid = message_sid
        invitation.sent_at = utcnow() if ok else None


def pending_sms_survey(session: Session, caller: str,
                       now: datetime | None = None) -> SurveyInvitation | None:
    """The caller's most recent survey SMS of the last seven days, or None."""
    since = (now or utcnow()) - SMS_WINDOW
    return session.scalar(
        select(SurveyInvitation)
        .where(SurveyInvitation.caller == normalize_number(caller),
               SurveyInvitation.status == "sent", SurveyInvitation.sent_at >= since)
        .order_by(SurveyInvitation.sent_at.desc(), SurveyInvitation.id.desc()).limit(1))


@dataclass(frozen=True)
class SmsReply:
    """What an inbound text was: 'recorded', 'repeated', 'not_a_score' or 'no_survey'."""

    outcome: str
    language: str = "en"
    score: int | None = None


def answer_by_sms(session: Session, caller: str, body: str, message_sid: str,
                  now: datetime | None = None) -> SmsReply:
    """Record a reply to the caller's pending survey SMS; a repeated MessageSid changes nothing."""
    if message_sid and session.scalar(select(SurveyAnswer.id).where(
            SurveyAnswer.message_sid == message_sid).limit(1)) is not None:
        return SmsReply("repeated")
    invitation = pending_sms_survey(session, caller, now)
    if invitation is None:
        return SmsReply("no_survey")
    language = invitation.language or "en"
    score = parse_score(body)
    if score is None:
        return SmsReply("not_a_score", language)
    new = record_answer(session, Answer(
        subject=invitation.subject, channel="sms", question=SMS_QUESTION, score=score,
        ticket_id=invitation.ticket_id, agent_id=invitation.agent_id,
        call_sid=invitation.call_sid, category=invitation.category, language=language,
        message_sid=message_sid or None, answered_at=now))
    return SmsReply("recorded" if new else "repeated", language, score)


def resolving_agent_id(session: Session, ticket_id: int) -> int | None:
    """The agent who last resolved the ticket (its history names them), or None."""
    username = session.scalar(
        select(TicketEvent.by).where(TicketEvent.ticket_id == ticket_id,
                                     TicketEvent.kind == "status",
                                     TicketEvent.detail.like("% -> resolved%"))
        .order_by(TicketEvent.id.desc()).limit(1))
    if not username:
        return None
    return session.scalar(select(Agent.id).where(Agent.username == username))
