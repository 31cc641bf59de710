"""Voicemails: a recording exists in SQL from the moment Twilio reports it, exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, LargeBinary, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow

STATES = ("recorded", "processing", "done", "failed")
"""recorded: waiting for its job; processing: a job has it; done: ticket complete; failed:
retries used up (still a ticket, still visible, retried by an agent or `ivr voicemail retry`)."""


class Voicemail(Base):
    """A caller's recorded message and where it stands on its way to a complete ticket."""

    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id"))
    node: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    recording_url: Mapped[str] = mapped_column(String(512))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="recorded", index=True)
    category_hint: Mapped[str | None] = mapped_column(String(32))
    priority_hint: Mapped[str | None] = mapped_column(String(8))
    wants_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL", use_alter=True), index=True)
    """A message added to an existing ticket by a repeat caller (None: it opens its own)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class VoicemailAudio(Base):
    """The recording's bytes, kept in SQL so every worker and web process can serve them."""

    __tablename__ = "voicemail_audio"

    voicemail_id: Mapped[int] = mapped_column(
        ForeignKey("voicemails.id", ondelete="CASCADE"), primary_key=True
    )
    content_type: Mapped[str] = mapped_column(String(64), default="audio/x-wav")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class RecordingReport:
    """What Twilio says about a finished recording, and what the flow's node asked for."""

    recording_sid: str
    call_sid: str
    recording_url: str
    duration_seconds: int
    flow_version_id: int | None
    node: str
    language: str
    category_hint: str | None = None
    priority_hint: str | None = None
    wants_callback: bool = False
    ticket_id: int | None = None
    """The existing ticket this message adds to (a repeat caller keyed in its number)."""


def store_recording(session: Session, report: RecordingReport) -> tuple[Voicemail, bool]:
    """Write the voicemail row (once per RecordingSid); returns it and whether it is new."""
    inserted = session.scalar(
        insert_ignoring_duplicates(session, Voicemail.__table__, ["recording_sid"]).values(
            recording_sid=report.recording_sid,
            call_sid=report.call_sid,
            flow_version_id=report.flow_version_id,
            node=report.node,
            language=report.language,
            recording_url=report.recording_url,
            duration_seconds=report.duration_seconds,
            state="recorded",
            category_hint=report.category_hint,
            priority_hint=report.priority_hint,
            wants_callback=report.wants_callback,
            ticket_id=report.ticket_id,
            attempts=0,
            created_at=utcnow(),
            updated_at=utcnow(),
        ).returning(Voicemail.__table__.c.id)  # whether this report made the row
    )
    voicemail = session.scalar(
        select(Voicemail).where(Voicemail.recording_sid == report.recording_sid)
    )
    assert voicemail is not None
    return voicemail, inserted is not None


def store_audio(session: Session, voicemail_id: int, data: bytes,
                content_type: str = "audio/x-wav") -> None:
    """Keep the recording's bytes (replacing an earlier partial copy)."""
    existing = session.get(VoicemailAudio, voicemail_id)
    if existing is None:
        session.add(VoicemailAudio(voicemail_id=voicemail_id, data=data,
                                   content_type=content_type))
    else:
        existing.data = data
        existing.content_type = content_type
        existing.stored_at = utcnow()


def stored_audio(session: Session, voicemail_id: int) -> bytes | None:
    """The stored recording, if it was downloaded already."""
    return session.scalar(
        select(VoicemailAudio.data).where(VoicemailAudio.voicemail_id == voicemail_id)
    )
