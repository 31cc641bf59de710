"""Flow versions in SQL: publish atomically, list, roll back, and serve compiled versions."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base, UTCDateTime, utcnow
from routing.engine import CompiledFlow, compile_flow
from routing.flow import Flow
from routing.loader import parse_flow


class FlowVersion(Base):
    """One immutable version of a flow: its YAML source and the validated, compiled form."""

    __tablename__ = "flow_versions"
    __table_args__ = (UniqueConstraint("name", "number"), UniqueConstraint("name", "sha256"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    number: Mapped[int]
    filename: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    compiled_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128), default="")


class PublishedFlow(Base):
    """Which version of each flow answers new calls."""

    __tablename__ = "published_flows"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id"))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(128), default="")


class FlowPublication(Base):
    """The history of publishes and rollbacks: which version, when and by whom."""

    __tablename__ = "flow_publications"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("flow_versions.id"))
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    by: Mapped[str] = mapped_column(String(128), default="")


@dataclass(frozen=True)
class VersionSummary:
    """A line of `ivr flows list`."""

    id: int
    name: str
    number: int
    filename: str
    created_at: datetime
    created_by: str
    published: bool


class UnknownVersion(LookupError):
    """A version id or number that does not exist."""


def normalized_source(text: str) -> str:
    """A flow's text with every line ending as '\\n' (browsers send CRLF from a textarea)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def publish_flow(session: Session, text: str, filename: str, by: str = "") -> FlowVersion:
    """Validate `text` and make it the flow's published version in one transaction.

    Raises FlowInvalid (nothing written) when the flow has any problem. Publishing a source
    identical to an existing version (line endings aside) republishes that version instead of
    adding a copy.
    """
    text = normalized_source(text)
    flow = parse_flow(text, filename)
    with session.begin_nested() if session.in_transaction() else session.begin():
        _lock_flow_name(session, flow.name)
        version = _stored_version(session, flow, text, filename, by)
        _point_to(session, version, "publish", by)
    return version


def stored_copy(session: Session, text: str, filename: str) -> FlowVersion | None:
    """The stored version of the flow that holds exactly `text` (line endings aside), if any.

    Raises FlowInvalid when the text is no valid flow (nothing could hold it).
    """
    text = normalized_source(text)
    flow = parse_flow(text, filename)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return session.scalar(select(FlowVersion).where(FlowVersion.name == flow.name,
                                                    FlowVersion.sha256 == digest))


def save_draft(session: Session, text: str, filename: str, by: str = "") -> FlowVersion:
    """Validate `text` and store it as a version without publishing it (for test calls).

    Raises FlowInvalid (nothing written) when the flow has any problem; a source identical to
    an existing version (line endings aside) returns that version.
    """
    text = normalized_source(text)
    flow = parse_flow(text, filename)
    with session.begin_nested() if session.in_transaction() else session.begin():
        _lock_flow_name(session, flow.name)
        version = _stored_version(session, flow, text, filename, by)
    return version


def _stored_version(session: Session, flow: Flow, text: str, filename: str,
                    by: str) -> FlowVersion:
    """The version holding exactly `text`, added with the next number if there is none."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    version = session.scalar(
        select(FlowVersion).where(FlowVersion.name == flow.name, FlowVersion.sha256 == digest)
    )
    if version is None:
        last = session.scalar(
            select(func.max(FlowVersion.number)).where(FlowVersion.name == flow.name)
        )
        version = FlowVersion(name=flow.name, number=(last or 0) + 1, filename=filename,
                              source=text, sha256=digest, compiled_json=flow.model_dump_json(),
                              created_by=by)
        session.add(version)
        session.flush()
    return version


def rollback_flow(session: Session, name: str, number: int, by: str = "") -> FlowVersion:
    """Publish an earlier version of flow `name` again (its number as `ivr flows list` shows)."""
    with session.begin_nested() if session.in_transaction() else session.begin():
        _lock_flow_name(session, name)
        version = session.scalar(
            select(FlowVersion).where(FlowVersion.name == name, FlowVersion.number == number)
        )
        if version is None:
            raise UnknownVersion(f"flow '{name}' has no version {number}")
        _point_to(session, version, "rollback", by)
    return version


def list_versions(session: Session, name: str | None = None) -> list[VersionSummary]:
    """Every stored version, newest first, marking the published ones."""
    published = set(session.scalars(select(PublishedFlow.version_id)))
    query = select(FlowVersion).order_by(FlowVersion.name, FlowVersion.number.desc())
    if name:
        query = query.where(FlowVersion.name == name)
    return [
        VersionSummary(v.id, v.name, v.number, v.filename, v.created_at, v.created_by,
                       v.id in published)
        for v in session.scalars(query)
    ]


def publication_history(session: Session, name: str) -> list[tuple[FlowPublication, int]]:
    """Every publish and rollback of flow `name`, newest first, with the version's number."""
    rows = session.execute(
        select(FlowPublication, FlowVersion.number)
        .join(FlowVersion, FlowVersion.id == FlowPublication.version_id)
        .where(FlowPublication.name == name)
        .order_by(FlowPublication.at.desc(), FlowPublication.id.desc())
    ).all()
    return [(publication, number) for publication, number in rows]


class PublishedLookup:
    """Which version answers a called number, cached for `ttl` seconds per process.

    New calls are the hot path; a publish or rollback in this process is seen at once,
    one in another process within `ttl` seconds. Calls in progress never look this up.
    """

    def __init__(self, ttl: float = 2.0) -> None:
        self.ttl = ttl
        self._cache: dict[tuple[str, str | None], tuple[float, int, int | None]] = {}

    def version_for(self, sessions: Callable[[], Session], called: str,
                    default: str | None) -> int | None:
        """The published version id for a call to `called` (see published_version_for_number)."""
        key = (called, default)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now and hit[1] == _generation:
            return hit[2]
        generation = _generation
        with sessions() as session:
            version_id = published_version_for_number(session, called, default)
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[key] = (now + self.ttl, generation, version_id)
        return version_id


_generation = 0
"""Bumped by every publish and rollback in this process, so its own lookups see them at once."""


def published_version_for_number(session: Session, called: str, default: str | None) -> int | None:
    """The version answering a call to `called`: the published flow listing that number, else
    the flow named `default`, else the only published flow."""
    rows = session.execute(select(PublishedFlow.name, PublishedFlow.version_id)).all()
    for _name, version_id in rows:
        if called and called in compiled_version(session, version_id).flow.numbers:
            return version_id
    by_name = dict(rows)
    if default in by_name:
        return by_name[default]
    return rows[0][1] if len(rows) == 1 else None


_cache: dict[int, CompiledFlow] = {}
_cache_lock = threading.Lock()


def cached_version(version_id: int) -> CompiledFlow | None:
    """The compiled flow of a version if this process has it already (no database needed)."""
    return _cache.get(version_id)


def compiled_version(session: Session, version_id: int) -> CompiledFlow:
    """The compiled flow of a version; versions are immutable, so each process compiles once."""
    cached = _cache.get(version_id)
    if cached is not None:
        return cached
    compiled_json = session.scalar(
        select(FlowVersion.compiled_json).where(FlowVersion.id == version_id)
    )
    if compiled_json is None:
        raise UnknownVersion(f"flow version id {version_id} does not exist")
    return _compile_cached(version_id, compiled_json)


def _compile_cached(version_id: int, compiled_json: str) -> CompiledFlow:
    cached = _cache.get(version_id)
    if cached is None:
        cached = compile_flow(Flow.model_validate_json(compiled_json))
        with _cache_lock:
            _cache[version_id] = cached
    return cached


def warm_cache(session: Session) -> int:
    """Compile every published version now (at start-up) so no call pays for it."""
    rows = session.execute(
        select(FlowVersion.id, FlowVersion.compiled_json).join(
            PublishedFlow, PublishedFlow.version_id == FlowVersion.id
        )
    ).all()
    for version_id, compiled_json in rows:
        _compile_cached(version_id, compiled_json)
    return len(rows)


def _lock_flow_name(session: Session, name: str) -> None:
    # Serialise publishes of one flow: PostgreSQL takes a transaction-scoped advisory lock;
    # SQLite has a single writer anyway.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(func.hashtext("flow:" + name))))


def _point_to(session: Session, version: FlowVersion, action: str, by: str) -> None:
    global _generation
    _generation += 1
    now = utcnow()
    current = session.get(PublishedFlow, version.name)
    if current is None:
        session.add(PublishedFlow(name=version.name, version_id=version.id, published_at=now,
                                  published_by=by))
    else:
        current.version_id = version.id
        current.published_at = now
        current.published_by = by
    session.add(FlowPublication(name=version.name, version_id=version.id, action=action, at=now,
                                by=by))


def clear_cache() -> None:
    """Forget compiled versions (for tests that recreate the database)."""
    with _cache_lock:
        _cache.clear()
