"""Trend reports: every figure on a seeded data set against hand-computed values, the CSV of each
figure equal to its chart, and the reports only for admins.

The seeded range is Monday 2026-03-02 to Wednesday 2026-03-04 in Europe/Berlin (UTC+1 then), so
a call at 23:30 UTC belongs to the next local day and a call at 22:30 UTC on 03-01 to none.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from callbacks.calllog import Call, CallStep
from callbacks.reports import ReportRangeError, abandonment, call_volume, report_range
from callbacks.reports_followups import callback_report, satisfaction_report, voicemail_report
from callbacks.survey import SurveyAnswer
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail
from callbacks.workqueue.agents import create_agent
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from ivr.admin.report_figures import FIGURES
from tests.conftest import app_config, empty_tables, publish

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
RANGE = {"from": "2026-03-02", "to": "2026-03-04"}
PASSWORD = "correct horse battery"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March 2026, in UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def app(database_url: str, redis_url: str) -> Iterator[Flask]:
    """The app in Berlin time with a fixed clock, the seeded data set and two accounts."""
    from ivr import create_app

    application = create_app(app_config(database_url, REDIS_URL=redis_url,
                                        DISPLAY_TIMEZONE="Europe/Berlin", CLOCK=lambda: NOW))
    seed(application)
    yield application
    empty_tables(application)


def seed(app: Flask) -> None:
    """Calls with steps, callbacks with attempts, voicemails with tickets, survey answers."""
    version_id = publish(app).id
    with app.extensions["ivr.sessions"]() as session:
        ana = create_agent(session, "ana", PASSWORD, display_name="Ana Lima", role="admin")
        ben = create_agent(session, "ben", PASSWORD)
        session.flush()
        _seed_calls(session, version_id)
        _seed_callbacks(session)
        _seed_voicemails(session)
        _seed_survey(session, ana.id, ben.id)
        _seed_live_calls(session, ana.id)
        session.commit()


# (sid, started, language, ended, last node, outcome, steps: (event, node, input, path, outcome))
CALLS: list[tuple[str, datetime, str, bool, str, str | None, list[tuple[Any, ...]]]] = [
    ("C1", at(2, 8, 30), "en", True, "password_queue", "agent", [
        ("input", "choose_language", "1", "check_hours main_menu", None),
        ("input", "main_menu", "1", "password_tip password_menu", None),
        ("input", "password_menu", "1", "password_queue", "queue"),
        ("left", "password_queue", "completed", "", "agent")]),
    ("C2", at(2, 8, 45), "de", True, "network_menu", "abandoned", [
        ("input", "choose_language", "2", "check_hours main_menu", None),
        ("input", "main_menu", "speech:vpn", "network_tip network_menu", None)]),
    ("C3", at(2, 23, 30), "en", True, "general_voicemail", "voicemail", [
        ("input", "choose_language", "1", "check_hours after_hours", None),
        ("input", "after_hours", "1", "general_voicemail", "voicemail")]),
    ("C4", at(3, 13, 10), "pl", True, "choose_language", "abandoned", []),
    ("C5", at(3, 13, 50), "en", True, "password_callback", "callback", [
        ("input", "choose_language", "1", "check_hours main_menu", None),
        ("input", "main_menu", "1", "password_tip password_menu", None),
        ("input", "password_menu", "3", "password_callback", "callback")]),
    ("C6", at(1, 22, 30), "en", True, "choose_language", "abandoned", []),  # 03-01 local
    ("C7", at(4, 22, 59), "en", False, "general_queue", "queue", [
        ("input", "choose_language", "1", "check_hours main_menu", None),
        ("input", "main_menu", "7", "", None),
        ("input", "main_menu", "0", "general_queue", "queue")]),
    ("C8", at(4, 23, 30), "en", True, "choose_language", "abandoned", []),  # 03-05 local
    ("C9", at(4, 10, 0), "ru", True, "goodbye", "hangup", [
        ("input", "choose_language", "4", "check_hours main_menu", None),
        ("input", "main_menu", "1", "password_tip password_menu", None),
        ("input", "password_menu", "9", "goodbye", "hangup")]),
]


def _seed_calls(session: Any, version_id: int) -> None:
    for sid, started, language, ended, last_node, outcome, steps in CALLS:
        session.add(Call(call_sid=sid, caller="+4917612345678", flow_version_id=version_id,
                         language=language, status="completed" if ended else "in-progress",
                         outcome=outcome, last_node=last_node, started_at=started,
                         ended_at=started.replace(minute=59) if ended else None))
        session.add(CallStep(call_sid=sid, seq=0, at=started, event="start", node="welcome",
                             path="welcome choose_language"))
        for seq, (event, node, given, path, step_outcome) in enumerate(steps, start=1):
            session.add(CallStep(call_sid=sid, seq=seq, at=started, event=event, node=node,
                                 input=given, path=path, outcome=step_outcome))


# (priority, status, first contact, due, closed, attempts: (started, stage))
REQUESTS: list[tuple[str, str, datetime, datetime, datetime | None,
                     list[tuple[datetime, str]]]] = [
    ("P1", "done", at(2, 9), at(2, 9, 15), at(2, 9, 10), [(at(2, 9, 5), "completed")]),
    ("P1", "done", at(2, 10), at(2, 10, 15), at(2, 10, 40),
     [(at(2, 10, 20), "caller_no_answer"), (at(2, 10, 35), "completed")]),
    ("P2", "unreachable", at(3, 8), at(3, 9), at(3, 11),
     [(at(3, 8, 10), "caller_busy"), (at(3, 8, 40), "caller_no_answer"),
      (at(3, 9, 30), "caller_no_answer")]),
    ("P2", "pending", at(3, 9), at(3, 10), None, []),
    ("P3", "pending", at(4, 12), at(6, 12), None, [(at(4, 12, 30), "agent_no_answer")]),
    ("P3", "cancelled", at(4, 13), at(4, 17), at(4, 14), []),
    ("P2", "done", at(4, 7), at(4, 8), at(4, 7, 50), [(at(4, 7, 45), "completed")]),
    ("P1", "pending", at(1, 20), at(1, 20, 15), None, []),  # before the range, still waiting
]


def _seed_callbacks(session: Any) -> None:
    for n, (priority, status, first, due, closed, attempts) in enumerate(REQUESTS, start=1):
        request = CallbackRequest(
            caller=f"+49176000000{n:02d}", category="password", language="en",
            priority=priority, first_call_sid=f"CB{n}", status=status, first_contact_at=first,
            due_at=due, available_at=first, closed_at=closed, attempts=len(attempts))
        session.add(request)
        session.flush()
        for number, (started, stage) in enumerate(attempts, start=1):
            session.add(CallbackAttempt(request_id=request.id, number=number, stage=stage,
                                        started_at=started, ended_at=started))


# (created, ticket category or None for no ticket yet, transcription)
VOICEMAILS = [
    (at(2, 10), "hardware", "done"),
    (at(3, 11), "hardware", "no_speech"),
    (at(4, 9), "password", "done"),
    (at(4, 15), None, ""),
    (at(5, 12), "network", "done"),  # 03-05 local: outside
]


def _seed_voicemails(session: Any) -> None:
    for n, (created, category, transcription) in enumerate(VOICEMAILS, start=1):
        voicemail = Voicemail(recording_sid=f"RE{n}", call_sid=f"CV{n}", language="en",
                              recording_url="https://api.twilio.com/x", duration_seconds=20,
                              state="done" if category else "recorded", created_at=created)
        session.add(voicemail)
        session.flush()
        if category is not None:
            session.add(Ticket(voicemail_id=voicemail.id, call_sid=f"CV{n}", category=category,
                               transcription=transcription, created_at=created,
                               updated_at=created))
    session.add(Ticket(call_sid="CB1", category="password", transcription="none",
                       created_at=at(2, 9), updated_at=at(2, 9)))  # a callback's: no voicemail


def _seed_survey(session: Any, ana: int, ben: int) -> None:
    answers = [  # (agent, category, score, answered, question)
        (ana, "hardware", 5, at(2, 12), "overall"),
        (ana, "hardware", 4, at(3, 12), "overall"),
        (ana, "password", 3, at(4, 12), "overall"),
        (ben, "password", 2, at(3, 15), "overall"),
        (None, "", 1, at(4, 16), "overall"),
        (ana, "hardware", 1, at(3, 12), "resolved"),  # another question
        (ben, "password", 5, at(5, 10), "overall"),  # 03-05 local: outside
    ]
    for n, (agent_id, category, score, answered, question) in enumerate(answers, start=1):
        session.add(SurveyAnswer(subject=f"call:CS{n}", agent_id=agent_id, channel="keypad",
                                 question=question, score=score, category=category,
                                 language="en", answered_at=answered))


def _seed_live_calls(session: Any, agent_id: int) -> None:
    """Two callers on the line: one answered by Ana in 40 s, one who hung up after 3 minutes
    (their own figures are checked in tests/test_wallboard.py)."""
    for n, (entered, status, waited) in enumerate(
            [(at(2, 9), "done", 40), (at(3, 14), "abandoned", 180)], start=1):
        session.add(LiveCall(
            call_sid=f"CL{n}", caller="+4917612345678", language="en", category="password",
            priority="P2", node="password_queue", queue_name="servicedesk", status=status,
            entered_at=entered, due_at=entered + timedelta(minutes=2),
            overflow_at=entered + timedelta(minutes=10), last_seen_at=entered,
            answered_at=entered + timedelta(seconds=waited) if status == "done" else None,
            ended_at=entered + timedelta(seconds=waited + 60),
            agent_id=agent_id if status == "done" else None, wait_seconds=waited))
        session.flush()
        if status == "done":
            session.add(LiveOffer(live_call_id=n, agent_id=agent_id, stage="completed",
                                  started_at=entered, ended_at=entered))


def seeded_range() -> Any:
    return report_range(date(2026, 3, 2), date(2026, 3, 4), ZONE)


def sign_in(client: FlaskClient, username: str) -> None:
    page = client.get("/console/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    answer = client.post("/console/sign-in", data={"username": username, "password": PASSWORD,
                                                   "csrf_token": token.group(1)})
    assert answer.status_code == 303


# ---- each figure against hand-computed values ----------------------------------------------

def test_calls_per_hour_day_branch_and_language(app: Flask) -> None:
    with app.extensions["ivr.sessions"]() as session:
        volume = call_volume(session, seeded_range())
    assert volume.total == 7  # C6 and C8 fall on local days outside the range
    expected_hours = [0] * 24
    for hour, n in ((0, 1), (9, 2), (11, 1), (14, 2), (23, 1)):
        expected_hours[hour] = n
    assert list(volume.by_hour) == expected_hours
    assert volume.by_day == ((date(2026, 3, 2), 2), (date(2026, 3, 3), 3), (date(2026, 3, 4), 2))
    assert [(c.label, c.count) for c in volume.by_branch] == [
        ("password", 3), ("(no choice)", 1), ("agent", 1), ("network", 1), ("voicemail", 1)]
    assert [(c.label, c.count) for c in volume.by_language] == [
        ("en", 4), ("de", 1), ("pl", 1), ("ru", 1)]
    assert not volume.truncated


def test_abandonment_by_last_node(app: Flask) -> None:
    with app.extensions["ivr.sessions"]() as session:
        left = abandonment(session, seeded_range())
    # Ended: C1-C5 and C9 (C7 is still on the line). C9's flow said goodbye itself.
    assert (left.ended, left.abandoned, left.percent) == (6, 2, 33.3)
    assert [(c.label, c.count) for c in left.by_node] == [("choose_language", 1),
                                                          ("network_menu", 1)]


def test_callback_sla_times_and_oldest_waiting(app: Flask) -> None:
    with app.extensions["ivr.sessions"]() as session:
        report = callback_report(session, seeded_range(), NOW)
    sla = {s.priority: (s.requests, s.met, s.missed, s.waiting, s.cancelled, s.met_percent)
           for s in report.sla}
    assert sla == {"P1": (2, 1, 1, 0, 0, 50.0), "P2": (3, 1, 2, 0, 0, 33.3),
                   "P3": (2, 0, 0, 1, 1, None)}
    times = {t.priority: (t.dialled, t.median_minutes, t.p90_minutes, t.successes,
                          t.attempts_per_success) for t in report.times}
    assert times == {"P1": (2, 12.5, 20.0, 2, 1.5), "P2": (2, 27.5, 45.0, 1, 1.0),
                     "P3": (1, 30.0, 30.0, 0, None), "all": (5, 20.0, 45.0, 3, 1.33)}
    oldest = [(o.priority, o.request_id, o.waiting_minutes) for o in report.oldest]
    assert oldest == [("P1", 8, 88 * 60), ("P2", 4, 51 * 60), ("P3", 5, 24 * 60)]


def test_voicemails_by_category_and_transcription(app: Flask) -> None:
    with app.extensions["ivr.sessions"]() as session:
        report = voicemail_report(session, seeded_range())
    assert report.total == 4
    assert [(c.label, c.count) for c in report.by_category] == [
        ("hardware", 2), ("(no ticket)", 1), ("password", 1)]
    assert [(c.label, c.count) for c in report.by_transcription] == [
        ("done", 2), ("no_speech", 1), ("pending", 1)]


def test_tickets_by_status_and_their_sla(app: Flask) -> None:
    from sqlalchemy import select

    from callbacks.tickets.report import ticket_report
    from callbacks.tickets.ticket import TicketEvent

    plan = {  # call: (priority, due, status now, status changes)
        "CV1": ("P1", at(2, 11), "resolved", [(at(2, 10, 30), "new -> resolved: fixed")]),
        "CV2": ("P2", at(3, 12), "closed", [(at(3, 15), "in_progress -> resolved: late"),
                                             (at(4, 9), "resolved -> closed")]),
        "CV3": ("P2", at(6, 9), "in_progress", []),  # not due yet: open
        "CB1": ("P3", at(2, 13), "new", []),  # open past its deadline: missed
        "CV5": ("P1", at(5, 13), "new", []),  # created 03-05: outside the range
    }
    with app.extensions["ivr.sessions"]() as session:
        for ticket in session.scalars(select(Ticket)):
            priority, due, status, changes = plan[ticket.call_sid]
            ticket.priority, ticket.due_at, ticket.status = priority, due, status
            for moment, detail in changes:
                session.add(TicketEvent(ticket_id=ticket.id, kind="status", detail=detail,
                                        at=moment))
        session.commit()
        report = ticket_report(session, seeded_range(), NOW)
    assert report.total == 4
    assert report.by_status == (("new", 1), ("in_progress", 1), ("resolved", 1), ("closed", 1))
    assert [(s.priority, s.tickets, s.met, s.missed, s.open, s.met_percent)
            for s in report.sla] == [("P1", 1, 1, 0, 0, 100.0), ("P2", 2, 0, 1, 1, 0.0),
                                     ("P3", 1, 0, 1, 0, 0.0)]
    client = app.test_client()
    sign_in(client, "ana")
    assert csv_rows(client, "ticket-sla")[1:] == [["P1", "100.0", "1", "1", "0", "0"],
                                                  ["P2", "0.0", "2", "0", "1", "1"],
                                                  ["P3", "0.0", "1", "0", "1", "0"]]


def test_satisfaction_per_agent_and_category(app: Flask) -> None:
    with app.extensions["ivr.sessions"]() as session:
        report = satisfaction_report(session, seeded_range())
    assert report.answers == 5
    assert [(g.label, g.answers, g.average) for g in report.by_agent] == [
        ("Ana Lima", 3, 4.0), ("(no agent)", 1, 1.0), ("ben", 1, 2.0)]
    assert [(g.label, g.answers, g.average) for g in report.by_category] == [
        ("hardware", 2, 4.5), ("password", 2, 2.5), ("other", 1, 1.0)]


def test_a_range_is_checked() -> None:
    with pytest.raises(ReportRangeError, match="after it ends"):
        report_range(date(2026, 3, 4), date(2026, 3, 2), ZONE)
    with pytest.raises(ReportRangeError, match="at most 366 days"):
        report_range(date(2025, 1, 1), date(2026, 3, 2), ZONE)


# ---- the page and the CSV downloads ------------------------------------------------------

def page_charts(html: str) -> dict[str, Any]:
    found = re.search(r'<script id="report-charts" type="application/json">(.*?)</script>',
                      html, re.S)
    assert found is not None
    charts: dict[str, Any] = json.loads(found.group(1))
    return charts


def csv_rows(client: FlaskClient, slug: str) -> list[list[str]]:
    answer = client.get(f"/admin/reports/{slug}.csv", query_string=RANGE)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "text/csv"
    assert f'filename="{slug}_2026-03-02_2026-03-04.csv"' in answer.headers[
        "Content-Disposition"]
    return list(csv.reader(io.StringIO(answer.get_data(as_text=True))))


def chart_equals_csv(chart: dict[str, Any], rows: list[list[str]]) -> None:
    """The chart's labels are the CSV's first column; each dataset is its column."""
    header, body = rows[0], rows[1:]
    assert chart["labels"] == [row[0] for row in body]
    for dataset in chart["datasets"]:
        column = header.index(dataset["label"])
        assert [("" if v is None else str(v)) for v in dataset["data"]] == [
            row[column] for row in body]


def test_the_page_charts_every_figure_and_each_csv_matches(app: Flask) -> None:
    client = app.test_client()
    sign_in(client, "ana")
    answer = client.get("/admin/reports", query_string=RANGE)
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "chart.umd.min.js" in html and "cdn" not in html.lower()
    assert answer.headers["Cache-Control"] == "private, no-store"
    charts = page_charts(html)
    assert set(charts) == set(FIGURES)
    for slug in FIGURES:
        assert f'data-chart="{slug}"' in html
        chart_equals_csv(charts[slug], csv_rows(client, slug))
    assert csv_rows(client, "calls-by-day") == [
        ["day", "calls"], ["2026-03-02", "2"], ["2026-03-03", "3"], ["2026-03-04", "2"]]
    assert csv_rows(client, "callback-sla")[1:] == [
        ["P1", "50.0", "2", "1", "1", "0", "0"], ["P2", "33.3", "3", "1", "2", "0", "0"],
        ["P3", "", "2", "0", "0", "1", "1"]]
    assert csv_rows(client, "satisfaction-agents") == [
        ["agent", "answers", "average_score"], ["Ana Lima", "3", "4.0"],
        ["(no agent)", "1", "1.0"], ["ben", "1", "2.0"]]
    assert csv_rows(client, "oldest-waiting")[1] == ["P1", "5280", "8", "2026-03-01 20:00:00"]
    assert csv_rows(client, "live-by-language")[1:] == [
        ["en", "2", "1", "40.0", "50.0", "1", "1", "1", "50.0"]]
    assert csv_rows(client, "live-by-agent")[1:] == [
        ["Ana Lima", "1", "1", "40.0", "100.0", "1", "0", "0", "0"]]


def test_default_range_is_the_last_seven_days_and_bad_dates_are_explained(app: Flask) -> None:
    client = app.test_client()
    sign_in(client, "ana")
    html = client.get("/admin/reports").get_data(as_text=True)
    assert 'value="2026-02-27"' in html and 'value="2026-03-05"' in html
    assert page_charts(html)["calls-by-day"]["labels"][0] == "2026-02-27"
    bad = client.get("/admin/reports", query_string={"from": "March", "to": "2026-03-04"})
    assert bad.status_code == 400
    assert "&#39;from&#39; must be a date like 2026-03-01" in bad.get_data(as_text=True)
    backwards = client.get("/admin/reports/calls-by-day.csv",
                           query_string={"from": "2026-03-04", "to": "2026-03-02"})
    assert backwards.status_code == 400 and b"after it ends" in backwards.data
    assert client.get("/admin/reports/no-such-figure.csv").status_code == 404


ROUTES = ["/admin/reports", *(f"/admin/reports/{slug}.csv" for slug in FIGURES)]


@pytest.mark.parametrize("path", ROUTES)
def test_an_agent_is_refused_every_report(app: Flask, path: str) -> None:
    client = app.test_client()
    sign_in(client, "ben")
    assert client.get(path, query_string=RANGE).status_code == 403


@pytest.mark.parametrize("path", ROUTES)
def test_anonymous_visitors_are_sent_to_sign_in(app: Flask, path: str) -> None:
    answer = app.test_client().get(path, query_string=RANGE)
    assert answer.status_code == 302
    assert "/console/sign-in" in answer.headers["Location"]


def test_a_bearer_token_of_an_agent_is_refused_too(app: Flask) -> None:
    from callbacks.workqueue.agents import Agent, issue_api_token

    with app.extensions["ivr.sessions"]() as session:
        ben = session.query(Agent).filter_by(username="ben").one()
        token = issue_api_token(ben)
        session.commit()
    answer = app.test_client().get("/admin/reports/calls-by-day.csv",
                                   headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 403
