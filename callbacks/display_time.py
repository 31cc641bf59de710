"""The time zone people read and hear times in: the console, ticket histories, the agent's
whisper. IVR_DISPLAY_TIMEZONE, else the zone of the published default flow's (first)
calendar, else UTC. Times are stored in UTC; only what a person reads is converted."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from callbacks.flowstore import compiled_version, published_version_for_number

log = logging.getLogger(__name__)
UTC_ZONE = ZoneInfo("UTC")


def display_zone(session: Session, configured: str = "", default_flow: str = "") -> ZoneInfo:
    """The zone times are shown in (see the module docstring for the order)."""
    if configured:
        try:
            return ZoneInfo(configured)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("IVR_DISPLAY_TIMEZONE %r is not a known time zone; using UTC",
                        configured)
            return UTC_ZONE
    version_id = published_version_for_number(session, "", default_flow or None)
    if version_id is None:
        return UTC_ZONE
    calendars = compiled_version(session, version_id).calendars
    return next((hours.zone for hours in calendars.values()), UTC_ZONE)


def local_text(moment: datetime, zone: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """A stored (UTC) moment as people read it in `zone`, by default with the zone's
    abbreviation (10:30 CET), so a history line stands on its own."""
    return moment.astimezone(zone).strftime(fmt)


def readers_zone(session: Session) -> ZoneInfo:
    """`display_zone` with the settings of this process (the desk, the dialer and the jobs)."""
    from callbacks import runtime

    settings = runtime.settings()
    return display_zone(session, settings.display_timezone, settings.default_flow)
