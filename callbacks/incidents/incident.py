"""Incidents: one problem many callers have (a VPN outage), the tickets and callbacks linked to
it, the callers who asked by phone to be texted when it is fixed, and one notice per number.

An `IncidentNotice` is made for each number when the incident resolves, unique per incident and
number: it is the record that the caller is texted exactly once, however many of their tickets
are linked and whether they also subscribed.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callbacks.db import Base, UTCDateTime, small_number, utcnow

NUMBER_PREFIX = "INC-"
NUMBER_BASE = 10000
"""Incident numbers are the id plus this, like ticket numbers: INC-10001 is the first."""
STATUSES = ("open", "resolved")
NOTICE_STATES = ("pending", "sending", "sent", "skipped", "failed")
"""pending: made on resolve; sending: claimed by a job that is about to ask Twilio (or was cut
off while asking); sent, skipped (opted out, cannot receive texts), failed: final."""
FINAL_NOTICE_STATES = ("sent", "skipped", "failed")


class Incident(Base):
    """A problem that affects many callers, opened by an agent and resolved once."""

    __tablename__ = "incidents"
    __table_args__ = (CheckConstraint("status IN ('open', 'resolved')", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category: Mapped[str] = mapped_column(String(32), default="other")
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    opened_by: Mapped[str] = mapped_column(String(128))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_by: Mapped[str] = mapped_column(String(128), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(Text, default="")
    """The agent's note on resolving; it goes into the callers' text."""
    announce: Mapped[bool] = mapped_column(Boolean, default=True)
    """While open, menus that opt in announce it to callers."""
    announcement_json: Mapped[str] = mapped_column(Text, default="{}")
    """Custom words per language ({"en": "..."}); languages left out use incidents.yaml's."""

    @property
    def number(self) -> str:
        """The number agents and callers see."""
        return incident_number(self.id)

    @property
    def announcement(self) -> dict[str, str]:
        """The custom announcement per language (empty: the settings file's wording)."""
        try:
            value = json.loads(self.announcement_json or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


class IncidentTicket(Base):
    """A ticket linked to an incident."""

    __tablename__ = "incident_tickets"
    __table_args__ = (UniqueConstraint("incident_id", "ticket_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"),
                                           index=True)
    linked_by: Mapped[str] = mapped_column(String(128), default="system")
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentCallback(Base):
    """A callback request linked to an incident (its ticket, if it has one, is shown too)."""

    __tablename__ = "incident_callbacks"
    __table_args__ = (UniqueConstraint("incident_id", "callback_request_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    callback_request_id: Mapped[int] = mapped_column(
        ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True)
    linked_by: Mapped[str] = mapped_column(String(128), default="system")
    linked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentSubscriber(Base):
    """A caller who pressed the menu's key to be texted when the incident is fixed."""

    __tablename__ = "incident_subscribers"
    __table_args__ = (UniqueConstraint("incident_id", "phone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    phone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    call_sid: Mapped[str] = mapped_column(String(64), default="")
    subscribed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentNotice(Base):
    """The text telling one number that the incident is fixed: made once, sent at most once."""

    __tablename__ = "incident_notices"
    __table_args__ = (
        UniqueConstraint("incident_id", "phone"),
        CheckConstraint("status IN ('pending', 'sending', 'sent', 'skipped', 'failed')",
                        name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    phone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="en")
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text, default="")
    """The words sent (set when claimed, so a repeat can be recognised at Twilio)."""
    sender: Mapped[str] = mapped_column(String(64), default="")
    message_sid: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


def incident_number(incident_id: int) -> str:
    """The public number of an incident id ('INC-10001')."""
    return f"{NUMBER_PREFIX}{NUMBER_BASE + incident_id}"


def incident_id_from_number(number: str) -> int | None:
    """The id behind 'INC-10001' (or '10001'), or None if it cannot be one."""
    digits = number.strip().upper().removeprefix(NUMBER_PREFIX).lstrip("#")
    value = small_number(digits)
    if value is None or value <= NUMBER_BASE:
        return None
    return value - NUMBER_BASE
