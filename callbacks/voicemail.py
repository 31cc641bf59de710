"""Voicemails: a recording exists in SQL from the moment Twilio reports it, exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, insert_ignoring_duplicates, utcnow


class Voicemail(Base):
    """A caller's recorded message and where it stands on its way to a ticket."""

    __tablename__ = "voicemails"

    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(String(64), unique=True)
    call_sid: Mapped[str] = mapped_column(String(64), index=True)
    flow_version_id: Mapped[int | None] = mapped_column(ForeignKey("flow_versions.id"))
    node: Mapped[str] = mapped_column(String(64), default="")
    language: Mapped[str] = mapped_column(String(8), default="")
    recording_url: Mapped[str] = mapped_column(String(512))
    duration_seconds: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="recorded")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class RecordingReport:
    """What Twilio's recording-status callback says about a finished recording."""

    recording_sid: str
    call_sid: str
    recording_url: str
    duration_seconds: int
    flow_version_id: int | None
    node: str
    language: str


def store_recording(session: Session, report: RecordingReport) -> tuple[Voicemail, bool]:
    """Write the voicemail row (once per RecordingSid); returns it and whether it is new."""
    result: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        insert_ignoring_duplicates(session, Voicemail.__table__, ["recording_sid"]).values(
            recording_sid=report.recording_sid,
            call_sid=report.call_sid,
            flow_version_id=report.flow_version_id,
            node=report.node,
            language=report.language,
            recording_url=report.recording_url,
            duration_seconds=report.duration_seconds,
            state="recorded",
            created_at=utcnow(),
        )
    )
    voicemail = session.scalar(
        select(Voicemail).where(Voicemail.recording_sid == report.recording_sid)
    )
    assert voicemail is not None
    return voicemail, bool(result.rowcount)
