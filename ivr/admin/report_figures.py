"""The reports page's figures: each report as a table that is charted, shown and exported.

One table feeds the chart, the HTML table under it and the CSV download, so the three always
show the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from callbacks.reports import Count, ReportRange, abandonment, call_volume
from callbacks.reports_followups import (
    ScoreGroup,
    callback_report,
    satisfaction_report,
    voicemail_report,
)
from callbacks.tickets.report import ticket_report
from callbacks.workqueue import service_level
from callbacks.workqueue.service_level import ServiceFigures

Cell = str | int | float | None


@dataclass(frozen=True)
class Figure:
    """One report figure: a table, the columns its chart draws, and how to read it."""

    slug: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    plotted: tuple[int, ...] = (1,)
    """Columns drawn as datasets; column 0 labels the x axis."""
    kind: str = "bar"
    note: str = ""
    right_axis: tuple[int, ...] = ()
    """Plotted columns drawn against a second scale on the right (seconds beside percents)."""

    def chart(self) -> dict[str, Any]:
        """The Chart.js data of the figure (labels and one dataset per plotted column)."""
        return {
            "type": self.kind,
            "labels": [str(row[0]) for row in self.rows],
            "datasets": [{"label": self.columns[i], "data": [row[i] for row in self.rows],
                          **({"axis": "right"} if i in self.right_axis else {})}
                         for i in self.plotted],
        }


Builder = Callable[[Session, ReportRange, datetime], list[Figure]]


def _count_rows(counts: tuple[Count, ...]) -> tuple[tuple[Cell, ...], ...]:
    return tuple((c.label, c.count) for c in counts)


def _score_rows(groups: tuple[ScoreGroup, ...]) -> tuple[tuple[Cell, ...], ...]:
    return tuple((g.label, g.answers, g.average) for g in groups)


def call_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """Calls per hour of day, per day, per menu branch and per language."""
    volume = call_volume(session, rng)
    cut = " Only the first calls of this range are counted: narrow it." if volume.truncated else ""
    return [
        Figure("calls-by-hour", "Calls per hour of day", ("hour", "calls"),
               tuple((f"{hour:02d}:00", n) for hour, n in enumerate(volume.by_hour)),
               note=f"{volume.total} calls, by the local hour they started.{cut}"),
        Figure("calls-by-day", "Calls per day", ("day", "calls"),
               tuple((day.isoformat(), n) for day, n in volume.by_day), kind="line"),
        Figure("calls-by-branch", "Calls by menu branch", ("branch", "calls"),
               _count_rows(volume.by_branch),
               note="The option chosen at the first menu answered; the language choice is "
                    "not a menu."),
        Figure("calls-by-language", "Calls by language", ("language", "calls"),
               _count_rows(volume.by_language)),
    ]


def abandonment_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """Where callers hung up in the IVR."""
    left = abandonment(session, rng)
    share = f" ({left.percent} %)" if left.percent is not None else ""
    return [Figure("abandonment", "Hung up in the IVR, by last node", ("node", "calls"),
                   _count_rows(left.by_node),
                   note=f"{left.abandoned} of {left.ended} ended calls{share} reached no agent, "
                        "voicemail or callback and were not ended by the flow.")]


LIVE_COLUMNS = ("callers", "answered", "avg_answer_seconds", "service_level_percent",
                "met_target", "missed_target", "abandoned", "abandoned_percent")
LIVE_NOTE = ("Callers count on the day they joined a line. Answer speed: seconds from joining "
             "to being answered. Service level: answered within the priority's target, of "
             "those answered or gone or waiting past it (callers who left unanswered within "
             "the target are left out). Abandoned: hung up while waiting, of all callers.")


def _service_rows(groups: tuple[ServiceFigures, ...]) -> tuple[tuple[Cell, ...], ...]:
    return tuple((g.label, g.callers, g.answered, g.average_answer_seconds,
                  g.service_level_percent, g.met, g.missed, g.abandoned, g.abandoned_percent)
                 for g in groups)


def live_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """Answer speed, service level and abandonment while waiting of live callers, by
    language, topic and agent."""
    since, until = rng.since, rng.until
    total = service_level.overall(session, since, until, now)
    summary = (f"{total.callers} callers joined a line, {total.answered} were answered"
               + (f", {total.service_level_percent} % within target" if
                  total.service_level_percent is not None else "")
               + (f", average answer {total.average_answer_seconds} s" if
                  total.average_answer_seconds is not None else "")
               + f"; {total.abandoned} hung up while waiting. ")
    plotted = (4, 8, 3)
    agents = service_level.by_agent(session, since, until, now)
    return [
        Figure("live-by-language", "Live callers by language: answer speed, service level, "
               "abandonment", ("language", *LIVE_COLUMNS),
               _service_rows(service_level.by_language(session, since, until, now)),
               plotted=plotted, right_axis=(3,), note=summary + LIVE_NOTE),
        Figure("live-by-topic", "Live callers by topic: answer speed, service level, "
               "abandonment", ("topic", *LIVE_COLUMNS),
               _service_rows(service_level.by_topic(session, since, until, now)),
               plotted=plotted, right_axis=(3,)),
        Figure("live-by-agent", "Live callers by agent: answer speed, service level, rings "
               "not answered, callers who hung up while ringing",
               ("agent", "rung", "answered", "avg_answer_seconds", "service_level_percent",
                "met_target", "missed_target", "rings_unanswered", "abandoned_while_ringing"),
               tuple((a.label, a.rung, a.answered, a.average_answer_seconds,
                      a.service_level_percent, a.met, a.missed, a.rings_unanswered,
                      a.abandoned_while_ringing) for a in agents),
               plotted=(4, 3), right_axis=(3,),
               note="Per agent: the rings of their phone for callers who joined in the range, "
                    "the callers they answered (answer speed, within target), rings they did "
                    "not answer (no answer, busy, failed) and callers who hung up while their "
                    "phone rang."),
    ]


def callback_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """SLA met per priority, time to first attempt, attempts per success, oldest waiting."""
    report = callback_report(session, rng, now)
    return [
        Figure("callback-sla", "Callbacks: SLA met per priority",
               ("priority", "sla_met_percent", "requests", "met", "missed", "waiting",
                "cancelled"),
               tuple((s.priority, s.met_percent, s.requests, s.met, s.missed, s.waiting,
                      s.cancelled) for s in report.sla),
               note="Met: done by the due time. Missed: done late, unreachable, or open past "
                    "due. Waiting (open, not yet due) and cancelled are left out."),
        Figure("callback-times", "Callbacks: minutes to the first attempt",
               ("priority", "median_minutes", "p90_minutes", "dialled", "successes",
                "attempts_per_success"),
               tuple((t.priority, t.median_minutes, t.p90_minutes, t.dialled, t.successes,
                      t.attempts_per_success) for t in report.times),
               plotted=(1, 2),
               note="From the first contact to the first dial; p90 is the nearest-rank 90th "
                    "percentile. Attempts per success: dials of the requests that reached "
                    "the caller."),
        Figure("oldest-waiting", "Callbacks: oldest waiting now, per priority",
               ("priority", "waiting_minutes", "request", "first_contact_utc"),
               tuple((o.priority, o.waiting_minutes, o.request_id,
                      o.first_contact_at.strftime("%Y-%m-%d %H:%M:%S")) for o in report.oldest),
               note="A snapshot of the open requests now, whatever the dates chosen."),
    ]


def voicemail_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """Voicemails per category and per transcription state."""
    report = voicemail_report(session, rng)
    return [
        Figure("voicemail-categories", "Voicemails by category", ("category", "voicemails"),
               _count_rows(report.by_category), note=f"{report.total} voicemails recorded."),
        Figure("voicemail-transcription", "Voicemails by transcription state",
               ("transcription", "voicemails"), _count_rows(report.by_transcription)),
    ]


def ticket_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """Tickets per status now, and the SLA met per priority."""
    report = ticket_report(session, rng, now)
    return [
        Figure("tickets-by-status", "Tickets by status now", ("status", "tickets"),
               tuple((status.replace("_", " "), n) for status, n in report.by_status),
               note=f"{report.total} tickets created in the range, by the status they have "
                    "now."),
        Figure("ticket-sla", "Tickets: SLA met per priority",
               ("priority", "sla_met_percent", "tickets", "met", "missed", "open"),
               tuple((s.priority, s.met_percent, s.tickets, s.met, s.missed, s.open)
                     for s in report.sla),
               note="Met: resolved or closed by the deadline the first time. Missed: resolved "
                    "late, or open past the deadline. Open (not yet due) is left out."),
    ]


def satisfaction_figures(session: Session, rng: ReportRange, now: datetime) -> list[Figure]:
    """Average survey score per agent and per category."""
    report = satisfaction_report(session, rng)
    return [
        Figure("satisfaction-agents", "Satisfaction per agent",
               ("agent", "answers", "average_score"), _score_rows(report.by_agent),
               plotted=(2,), note=f"{report.answers} survey answers, scores 1-5."),
        Figure("satisfaction-categories", "Satisfaction per category",
               ("category", "answers", "average_score"), _score_rows(report.by_category),
               plotted=(2,)),
    ]


SECTIONS: dict[str, Builder] = {
    "Calls": call_figures,
    "Abandonment": abandonment_figures,
    "Live callers": live_figures,
    "Callbacks": callback_figures,
    "Voicemails": voicemail_figures,
    "Tickets": ticket_figures,
    "Satisfaction": satisfaction_figures,
}
FIGURES: dict[str, Builder] = {
    "calls-by-hour": call_figures, "calls-by-day": call_figures,
    "calls-by-branch": call_figures, "calls-by-language": call_figures,
    "abandonment": abandonment_figures,
    "live-by-language": live_figures, "live-by-topic": live_figures,
    "live-by-agent": live_figures,
    "callback-sla": callback_figures, "callback-times": callback_figures,
    "oldest-waiting": callback_figures,
    "voicemail-categories": voicemail_figures, "voicemail-transcription": voicemail_figures,
    "tickets-by-status": ticket_figures, "ticket-sla": ticket_figures,
    "satisfaction-agents": satisfaction_figures, "satisfaction-categories": satisfaction_figures,
}
"""Each figure's slug (its CSV's name) and the report that builds it."""


def figure(session: Session, rng: ReportRange, now: datetime, slug: str) -> Figure | None:
    """One figure by slug, or None if there is no such figure."""
    builder = FIGURES.get(slug)
    if builder is None:
        return None
    return next(f for f in builder(session, rng, now) if f.slug == slug)
