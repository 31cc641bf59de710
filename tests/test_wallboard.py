"""The wallboard and the live callers' report figures on seeded live calls, against values
worked out by hand: service level, answer speed and abandonment overall and by language, topic
and agent, callers waiting, agents by state, callbacks due; on PostgreSQL and on SQLite (the
demo); then the wallboard page, its fragment and its JSON for signed-in agents only, and the
report figures on the admin page with their CSV.

The clock is fixed at Thursday 2026-03-05 12:00 UTC (13:00 in Berlin)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from callbacks.db import make_engine, make_session_factory
from callbacks.priority import LivePolicy
from callbacks.reports import report_range
from callbacks.workqueue import service_level
from callbacks.workqueue.agents import create_agent, issue_api_token
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.service_level import AgentServiceFigures, ServiceFigures
from callbacks.workqueue.skills import set_skills
from callbacks.workqueue.wallboard import AgentsInState, LanguageLine, WaitingGroup, wallboard
from ivr.admin.report_figures import live_figures
from tests.conftest import app_config, empty_tables

ZONE = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
SINCE = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)  # 2026-03-02 00:00 in Berlin
UNTIL = datetime(2026, 3, 4, 23, 0, tzinfo=UTC)  # 2026-03-05 00:00 in Berlin
PASSWORD = "correct horse battery"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March 2026, in UTC."""
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


@dataclass
class Seeder:
    """Agents, live calls with their rings, and callbacks, written straight into SQL."""

    sessions: sessionmaker[Session]

    def agent(self, name: str, availability: str, languages: dict[str, int],
              active: bool = True) -> int:
        """An agent with a phone, in a state, speaking `languages`."""
        with self.sessions() as session:
            agent = create_agent(session, name, PASSWORD, display_name=name.title(),
                                 phone=f"+49305550{len(name)}{ord(name[0])}")
            agent.availability, agent.active = availability, active
            agent.availability_since = NOW - timedelta(minutes=ord(name[0]) % 7)
            set_skills(session, agent.id, languages=languages)
            session.commit()
            return agent.id

    def live(self, language: str, category: str, entered: datetime, status: str, *,
             target: int = 120, answered_after: int | None = None, agent: int | None = None,
             ended_after: int | None = None, rings: tuple[tuple[int, str], ...] = ()) -> int:
        """A live call that joined at `entered` with its rings ((agent, how it ended))."""
        with self.sessions() as session:
            call = LiveCall(
                call_sid=f"CA{uuid.uuid4().hex}", caller="+4915100000001", language=language,
                category=category, priority="P2", node="line", queue_name="servicedesk",
                status=status, entered_at=entered, due_at=entered + timedelta(seconds=target),
                overflow_at=entered + timedelta(minutes=10), last_seen_at=entered,
                agent_id=agent, updated_at=NOW,
                answered_at=entered + timedelta(seconds=answered_after)
                if answered_after is not None else None,
                ended_at=entered + timedelta(seconds=ended_after)
                if ended_after is not None else None,
                wait_seconds=answered_after if answered_after is not None else ended_after,
                offers=len(rings))
            session.add(call)
            session.flush()
            for n, (agent_id, stage) in enumerate(rings):
                session.add(LiveOffer(live_call_id=call.id, agent_id=agent_id, stage=stage,
                                      started_at=entered + timedelta(seconds=n + 1),
                                      ended_at=None if stage == "ringing_agent"
                                      else entered + timedelta(seconds=n + 2)))
            session.commit()
            return call.id

    def callback(self, status: str, due: datetime, available: datetime) -> None:
        """A callback request in `status`, due at `due`, dialable from `available`."""
        with self.sessions() as session:
            session.add(CallbackRequest(
                caller=f"+49151{uuid.uuid4().int % 10**8:08d}", category="vpn", language="de",
                priority="P2", first_call_sid="CA1", last_call_sid="CA1",
                first_contact_at=due - timedelta(hours=4), due_at=due, available_at=available,
                status=status))
            session.commit()


@pytest.fixture(params=["postgresql", "sqlite"])
def seeder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Seeder]:
    """An empty migrated database: the test database, or a SQLite file as the demo's."""
    from ivr.schema import upgrade

    if request.param == "postgresql":
        app: Flask = request.getfixturevalue("app")
        url = app.config["DATABASE_URL"]
    else:
        url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
        upgrade(url)
    engine = make_engine(url)
    yield Seeder(make_session_factory(engine))
    engine.dispose()


def seed_range(seeder: Seeder) -> tuple[int, int]:
    """Live calls of 2026-03-02..04 in Berlin (and one after it); (ana, ben)."""
    ana = seeder.agent("ana", "available", {"en": 3})
    ben = seeder.agent("ben", "available", {"en": 2})
    # answered within target by Ana, after Ben's phone rang without an answer
    seeder.live("en", "password", at(2, 9), "done", answered_after=60, agent=ana,
                rings=((ben, "agent_no_answer"), (ana, "completed")))
    # answered late by Ana
    seeder.live("en", "password", at(2, 10), "done", answered_after=180, agent=ana,
                rings=((ana, "completed"),))
    # hung up within the target: counted as abandoned, left out of the service level
    seeder.live("de", "network", at(3, 9), "abandoned", target=60, ended_after=30)
    # hung up after the target, while Ana's phone rang for them
    seeder.live("de", "network", at(3, 9, 10), "abandoned", target=60, ended_after=300,
                rings=((ana, "caller_gone"),))
    # chose a callback after the target: missed
    seeder.live("en", "", at(4, 9), "to_callback", ended_after=200)
    # joined at 00:30 on 03-05 in Berlin: not in the range
    seeder.live("pl", "hardware", at(4, 23, 30), "done", answered_after=10, agent=ben)
    # answered within target by Ben
    seeder.live("en", "password", at(4, 11), "done", answered_after=100, agent=ben,
                rings=((ben, "completed"),))
    # overflowed within the target: left out of the service level
    seeder.live("en", "password", at(4, 11, 30), "overflowed", ended_after=50)
    # still waiting, past the target by now: missed
    seeder.live("ru", "vdi", at(4, 11, 50), "waiting")
    return ana, ben


def test_service_level_speed_and_abandonment_overall_and_by_language(seeder: Seeder) -> None:
    seed_range(seeder)
    with seeder.sessions() as session:
        assert service_level.overall(session, SINCE, UNTIL, NOW) == ServiceFigures(
            "all", callers=8, answered=3, average_answer_seconds=113.3, met=2, missed=4,
            abandoned=2)
        figures = service_level.by_language(session, SINCE, UNTIL, NOW)
    assert [f.label for f in figures] == ["en", "de", "ru"]
    english, german, russian = figures
    assert english == ServiceFigures("en", 5, 3, 113.3, 2, 2, 0)
    assert english.service_level_percent == 50.0 and english.abandoned_percent == 0.0
    assert german == ServiceFigures("de", 2, 0, None, 0, 1, 2)
    assert german.service_level_percent == 0.0 and german.abandoned_percent == 100.0
    assert russian == ServiceFigures("ru", 1, 0, None, 0, 1, 0)


def test_figures_by_topic_and_by_agent(seeder: Seeder) -> None:
    seed_range(seeder)
    with seeder.sessions() as session:
        topics = service_level.by_topic(session, SINCE, UNTIL, NOW)
        agents = service_level.by_agent(session, SINCE, UNTIL, NOW)
    assert topics == (ServiceFigures("password", 4, 3, 113.3, 2, 1, 0),
                      ServiceFigures("network", 2, 0, None, 0, 1, 2),
                      ServiceFigures("(no topic)", 1, 0, None, 0, 1, 0),
                      ServiceFigures("vdi", 1, 0, None, 0, 1, 0))
    assert topics[0].service_level_percent == 66.7
    assert agents == (
        AgentServiceFigures("Ana", rung=3, answered=2, average_answer_seconds=120.0, met=1,
                            missed=1, rings_unanswered=0, abandoned_while_ringing=1),
        AgentServiceFigures("Ben", rung=2, answered=1, average_answer_seconds=100.0, met=1,
                            missed=0, rings_unanswered=1, abandoned_while_ringing=0))
    assert [a.service_level_percent for a in agents] == [50.0, 100.0]


def test_an_empty_range_has_no_percentages(seeder: Seeder) -> None:
    with seeder.sessions() as session:
        nothing = service_level.overall(session, SINCE, UNTIL, NOW)
        assert service_level.by_agent(session, SINCE, UNTIL, NOW) == ()
    assert nothing == ServiceFigures("all", 0, 0, None, 0, 0, 0)
    assert nothing.service_level_percent is None and nothing.abandoned_percent is None


def seed_today(seeder: Seeder) -> None:
    """The desk at 13:00 in Berlin on 2026-03-05: callers waiting, agents, callbacks."""
    ana = seeder.agent("ana", "on_call", {"en": 3, "de": 2})
    seeder.agent("ben", "available", {"en": 2})
    seeder.agent("cleo", "away", {"pl": 3})
    seeder.agent("dan", "offline", {"de": 1})
    seeder.agent("eve", "available", {"en": 1}, active=False)
    seeder.live("en", "password", at(5, 11, 50), "waiting")  # due 11:52: past its target
    seeder.live("en", "network", at(5, 11, 58), "offered", rings=((ana, "ringing_agent"),))
    seeder.live("de", "password", at(5, 11, 59), "waiting")
    seeder.live("", "", at(5, 11, 55), "waiting", target=600)
    seeder.live("en", "password", at(4, 23, 30), "done", answered_after=30, target=60)
    seeder.live("de", "network", at(5, 8), "abandoned", ended_after=60)
    seeder.live("en", "password", at(4, 22), "abandoned", ended_after=600)  # yesterday
    seeder.callback("pending", due=NOW + timedelta(hours=1), available=NOW - timedelta(hours=1))
    seeder.callback("pending", due=NOW - timedelta(hours=1), available=NOW + timedelta(hours=1))
    seeder.callback("claimed", due=NOW - timedelta(minutes=5), available=NOW)
    seeder.callback("done", due=NOW - timedelta(hours=2), available=NOW)


def test_the_wallboard_shows_the_desk_now_and_today(seeder: Seeder) -> None:
    seed_today(seeder)
    with seeder.sessions() as session:
        board = wallboard(session, NOW, ZONE, LivePolicy())
    assert board.day.isoformat() == "2026-03-05"
    assert board.waiting == 4 and board.longest_since == at(5, 11, 50)
    assert board.by_language == (
        LanguageLine("en", 2, at(5, 11, 50), agents_signed_in=2, agents_free=1),
        LanguageLine("", 1, at(5, 11, 55), agents_signed_in=3, agents_free=1),
        LanguageLine("de", 1, at(5, 11, 59), agents_signed_in=1, agents_free=0),
        LanguageLine("pl", 0, None, agents_signed_in=1, agents_free=0))
    assert board.by_topic == (WaitingGroup("password", 2, at(5, 11, 50)),
                              WaitingGroup("", 1, at(5, 11, 55)),
                              WaitingGroup("network", 1, at(5, 11, 58)))
    assert board.agents == (AgentsInState("available", ("Ben",)),
                            AgentsInState("on_call", ("Ana",)),
                            AgentsInState("wrap_up", ()), AgentsInState("away", ("Cleo",)),
                            AgentsInState("offline", ("Dan",)))
    assert board.today == ServiceFigures("all", callers=6, answered=1,
                                         average_answer_seconds=30.0, met=1, missed=1,
                                         abandoned=1)
    assert board.today.abandoned_percent == 16.7
    assert board.targets == (("P1", 60), ("P2", 120), ("P3", 180), ("P4", 300))
    assert (board.callbacks_due_now, board.callbacks_overdue) == (1, 2)


def test_an_empty_desk_shows_zeros(seeder: Seeder) -> None:
    with seeder.sessions() as session:
        board = wallboard(session, NOW, ZONE, LivePolicy())
    assert (board.waiting, board.longest_since, board.by_language, board.by_topic) == (
        0, None, (), ())
    assert board.today.service_level_percent is None
    assert (board.callbacks_due_now, board.callbacks_overdue) == (0, 0)


# --- through the web app ------------------------------------------------------------


@pytest.fixture
def desk(database_url: str, redis_url: str) -> Iterator[Flask]:
    """The app in Berlin time (and a fixed clock for the reports), with the seeded desk."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url, WTF_CSRF_ENABLED=False,
                                DISPLAY_TIMEZONE="Europe/Berlin", CLOCK=lambda: NOW))
    yield app
    empty_tables(app)


def _sign_in(app: Flask, username: str, role: str = "agent") -> FlaskClient:
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, username, PASSWORD, display_name=username.title(), role=role)
        session.commit()
    client = app.test_client()
    answer = client.post("/console/sign-in", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 303
    return client


def test_every_signed_in_agent_sees_the_wallboard_and_its_fragment(desk: Flask) -> None:
    seeder = Seeder(desk.extensions["ivr.sessions"])
    now = datetime.now(UTC)
    seeder.live("de", "password", now - timedelta(minutes=3), "waiting")
    seeder.live("de", "vdi", now - timedelta(minutes=1), "waiting")
    web = _sign_in(desk, "zoe")

    page = web.get("/console/wallboard")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'href="/console/wallboard"' in web.get("/console/").get_data(as_text=True)
    assert 'data-live="/console/wallboard/board"' in html
    assert re.search(r'data-testid="waiting-total">\s*<span class="big">2</span>', html)
    row = re.search(r'<tr data-language="de">(.*?)</tr>', html, re.S)
    assert row and "German" in row.group(1) and '<td class="count">2</td>' in row.group(1)
    assert 'data-topic="password"' in html and 'data-topic="vdi"' in html
    assert re.search(r'data-state="away">\s*<h2>Away <span class="count">1</span></h2>\s*'
                     r"<ul><li>Zoe</li>", html)  # signing in made Zoe away
    assert "targets: P1 1 min · P2 2 min · P3 3 min · P4 5 min" in html
    fragment = web.get("/console/wallboard/board").get_data(as_text=True)
    assert "<html" not in fragment and 'data-testid="longest-wait"' in fragment

    anonymous = desk.test_client().get("/console/wallboard")
    assert anonymous.status_code == 302 and "/console/sign-in" in anonymous.location


def test_the_wallboard_as_json(desk: Flask) -> None:
    seeder = Seeder(desk.extensions["ivr.sessions"])
    now = datetime.now(UTC)
    seeder.live("en", "network", now - timedelta(seconds=90), "waiting")
    with desk.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, "ann", PASSWORD, phone="+4930555099")
        agent.availability = "available"
        set_skills(session, agent.id, languages={"en": 2})
        token = issue_api_token(agent)
        session.commit()
    client = desk.test_client()
    assert client.get("/api/v1/wallboard").status_code == 401
    answer = client.get("/api/v1/wallboard", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    board = answer.get_json()
    assert board["waiting"] == 1
    assert board["by_language"] == [{"code": "en", "waiting": 1,
                                     "longest_since": board["longest_since"],
                                     "agents_signed_in": 1, "agents_free": 1}]
    assert board["by_topic"][0]["code"] == "network"
    assert board["agents"]["available"] == ["ann"]
    assert board["today"]["callers"] == 1 and board["today"]["service_level_percent"] is None
    assert board["targets"] == {"P1": 60, "P2": 120, "P3": 180, "P4": 300}
    assert board["day"] == now.astimezone(ZONE).date().isoformat()


def test_the_reports_chart_live_callers_by_language_topic_and_agent(desk: Flask) -> None:
    seed_range(Seeder(desk.extensions["ivr.sessions"]))
    web = _sign_in(desk, "root", role="admin")
    query = {"from": "2026-03-02", "to": "2026-03-04"}
    page = web.get("/admin/reports", query_string=query).get_data(as_text=True)
    assert "Live callers by language" in page and 'id="live-by-agent"' in page
    assert "8 callers joined a line, 3 were answered, 33.3 % within target" in page

    rows = list(csv.reader(io.StringIO(web.get("/admin/reports/live-by-language.csv",
                                               query_string=query).get_data(as_text=True))))
    assert rows[0] == ["language", "callers", "answered", "avg_answer_seconds",
                       "service_level_percent", "met_target", "missed_target", "abandoned",
                       "abandoned_percent"]
    assert rows[1:] == [["en", "5", "3", "113.3", "50.0", "2", "2", "0", "0.0"],
                        ["de", "2", "0", "", "0.0", "0", "1", "2", "100.0"],
                        ["ru", "1", "0", "", "0.0", "0", "1", "0", "0.0"]]
    agents = list(csv.reader(io.StringIO(web.get("/admin/reports/live-by-agent.csv",
                                                 query_string=query).get_data(as_text=True))))
    assert agents[1:] == [["Ana", "3", "2", "120.0", "50.0", "1", "1", "0", "1"],
                          ["Ben", "2", "1", "100.0", "100.0", "1", "0", "1", "0"]]
    topics = web.get("/admin/reports/live-by-topic.csv", query_string=query)
    assert topics.get_data(as_text=True).splitlines()[1].startswith("password,4,3,113.3,66.7")


def test_the_chart_draws_answer_speed_against_a_second_scale(desk: Flask) -> None:
    seed_range(Seeder(desk.extensions["ivr.sessions"]))
    with desk.extensions["ivr.sessions"]() as session:
        figures = live_figures(session, report_range(date(2026, 3, 2), date(2026, 3, 4), ZONE),
                               NOW)
    chart = figures[0].chart()
    assert [(d["label"], d.get("axis")) for d in chart["datasets"]] == [
        ("service_level_percent", None), ("abandoned_percent", None),
        ("avg_answer_seconds", "right")]
    assert chart["labels"] == ["en", "de", "ru"]
