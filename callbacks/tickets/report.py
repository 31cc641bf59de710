"""Trend reports on tickets: how many are in each status, and the SLA met per priority.

Tickets count on the day they were created (ranges as in `callbacks.reports`).
- **By status**: the tickets created in the range, by the status they have now.
- **SLA met**: a ticket resolved (or closed) for the first time at or before its deadline.
  Missed: resolved late, or still open past its deadline now. Open tickets not yet due are
  shown as open and left out of the percentage, like tickets without a deadline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from callbacks.reports import ReportRange
from callbacks.tickets.ticket import Ticket, TicketEvent
from callbacks.tickets.workflow import DONE_STATUSES, STATUSES


@dataclass(frozen=True)
class TicketSla:
    """How many tickets of a priority were resolved by their deadline."""

    priority: str
    tickets: int
    met: int
    missed: int
    open: int

    @property
    def met_percent(self) -> float | None:
        """Met as a share of met + missed, in percent; None when nothing is decided yet."""
        decided = self.met + self.missed
        return round(100 * self.met / decided, 1) if decided else None


@dataclass(frozen=True)
class TicketReport:
    """Tickets created in a range: per status now, and the SLA per priority."""

    total: int
    by_status: tuple[tuple[str, int], ...]
    sla: tuple[TicketSla, ...]


def ticket_report(session: Session, rng: ReportRange, now: datetime) -> TicketReport:
    """The ticket figures of the tickets created in `rng`."""
    first_done = (
        select(TicketEvent.ticket_id, func.min(TicketEvent.at).label("done_at"))
        .where(TicketEvent.kind == "status",
               or_(*(TicketEvent.detail.like(f"% -> {status}%") for status in DONE_STATUSES)))
        .group_by(TicketEvent.ticket_id).subquery())
    rows = session.execute(
        select(Ticket.status, Ticket.priority, Ticket.due_at, first_done.c.done_at)
        .outerjoin(first_done, first_done.c.ticket_id == Ticket.id)
        .where(Ticket.created_at >= rng.since, Ticket.created_at < rng.until)).all()
    statuses: Counter[str] = Counter()
    sla: dict[str, Counter[str]] = {}
    for status, priority, due_at, done_at in rows:
        statuses[status] += 1
        counts = sla.setdefault(priority, Counter())
        counts["tickets"] += 1
        if due_at is None:
            continue
        if done_at is not None:
            counts["met" if done_at <= due_at else "missed"] += 1
        elif status not in DONE_STATUSES:
            counts["missed" if due_at < now else "open"] += 1
    order = {status: index for index, status in enumerate(STATUSES)}
    return TicketReport(
        total=len(rows),
        by_status=tuple(sorted(statuses.items(), key=lambda item: order.get(item[0], 99))),
        sla=tuple(TicketSla(priority, counts["tickets"], counts["met"], counts["missed"],
                            counts["open"]) for priority, counts in sorted(sla.items())))
