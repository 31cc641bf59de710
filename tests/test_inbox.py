"""The ticket inbox on real PostgreSQL (and the SQLite fallback): every filter, search by
number, caller, directory name and transcript words (German and Russian inflected forms found
by their stem), ordering and pages, in the console and in the JSON API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from callbacks.db import make_engine, make_session_factory, utcnow
from callbacks.directory import load_directory
from callbacks.tickets.inbox import InboxFilter, InboxPage, inbox
from callbacks.tickets.ticket import Ticket
from callbacks.tickets.workflow import TicketError
from callbacks.workqueue.agents import create_agent, issue_api_token
from ivr.schema import upgrade
from ivr.standin import StandinServer
from tests.conftest import ROOT, desk_app

BERLIN = ZoneInfo("Europe/Berlin")
DIRECTORY = load_directory(ROOT / "flows" / "directory.csv")
JONAS = "+4917612345678"  # Jonas Becker in flows/directory.csv
PASSWORD = "correct horse battery"
NOW = utcnow()


@dataclass(frozen=True)
class Seed:
    """One ticket to store: its words, language and where it stands."""

    transcript: str
    language: str
    status: str = "new"
    category: str = "other"
    priority: str = "P3"
    caller: str = "+4915100000001"
    transcription: str = "done"
    assigned: str | None = None
    created_days_ago: int = 0
    due_in_hours: float | None = 4


SEEDS = {
    "druck": Seed("Mein Drucker im dritten Stock druckt seit gestern nicht mehr", "de",
                  category="hardware", priority="P3", assigned="ann", due_in_hours=-2),
    "printer": Seed("Не работает принтер на третьем этаже, очень нужно печатать", "ru",
                    category="hardware", priority="P2", caller=JONAS, due_in_hours=1),
    "vpn": Seed("My VPN keeps disconnecting every ten minutes", "en", category="network",
                priority="P1", assigned="ben", due_in_hours=0.25, created_days_ago=3),
    "haslo": Seed("Zapomniałem hasła do komputera", "pl", category="password",
                  priority="P2", due_in_hours=6, created_days_ago=10),
    "done": Seed("Outlook crashed, fixed by a reinstall", "en", status="resolved",
                 category="software", priority="P1", due_in_hours=-30),
    "silent": Seed("", "de", category="other", priority="P4", transcription="no_speech",
                   due_in_hours=None, status="waiting_for_caller"),
}
"""Numbers follow the order here: 10001 druck, 10002 printer, ... 10006 silent."""


def _store(session: Session, agents: dict[str, int]) -> dict[str, str]:
    numbers = {}
    for name, seed in SEEDS.items():
        created = NOW - timedelta(days=seed.created_days_ago)
        ticket = Ticket(call_sid=f"CA{name}", caller=seed.caller, language=seed.language,
                        category=seed.category, priority=seed.priority, status=seed.status,
                        transcription=seed.transcription, transcript=seed.transcript,
                        assigned_agent_id=agents.get(seed.assigned or ""), created_at=created,
                        updated_at=created, due_at=None if seed.due_in_hours is None
                        else NOW + timedelta(hours=seed.due_in_hours))
        session.add(ticket)
        session.flush()
        numbers[name] = ticket.number
    session.commit()
    return numbers


@pytest.fixture(scope="module")
def stocked(database_url: str, redis_server: Any) -> Iterator[tuple[Flask, dict[str, int]]]:
    """The app with the seeded tickets and two agents (ann, ben), for the whole module."""
    with StandinServer() as standin, desk_app(database_url, redis_server.url, standin,
                                               DISPLAY_TIMEZONE="Europe/Berlin") as app:
        with app.extensions["ivr.sessions"]() as session:
            agents = {}
            for name in ("ann", "ben"):
                agent = create_agent(session, name, PASSWORD, display_name=name.title())
                session.flush()
                agents[name] = agent.id
            _store(session, agents)
        yield app, agents


def _find(app: Flask, me: int | None = None, **wanted: Any) -> InboxPage:
    with app.extensions["ivr.sessions"]() as session:
        return inbox(session, InboxFilter(**wanted), me=me, directory=DIRECTORY, zone=BERLIN,
                     now=NOW)


def _names(page: InboxPage) -> list[str]:
    by_number = {f"{10001 + index}": name for index, name in enumerate(SEEDS)}
    return [by_number[row.number] for row in page.rows]


# --- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("words", "found"), [
    ("Druckers", ["druck"]),  # German genitive: stemmed like 'Drucker'
    ("drucken", ["druck"]),   # the verb's stem matches 'druckt'
    ("принтера", ["printer"]),  # Russian genitive of 'принтер'
    ("этажа", ["printer"]),
    ("disconnected", ["vpn"]),  # English stemming
    ("hasła", ["haslo"]),       # Polish: no stemmer in PostgreSQL, the exact word
    ("hasło", []),              # ... so another form is not found (the 'simple' fallback)
    ("Drucker VPN", []),        # every word must match
    ("Drucker OR VPN", ["druck", "vpn"]),
])
def test_transcript_words_are_found_in_each_tickets_language(
        stocked: tuple[Flask, dict[str, int]], words: str, found: list[str]) -> None:
    app, _ = stocked
    assert sorted(_names(_find(app, search=words, status="all"))) == sorted(found)


def test_search_finds_ticket_numbers_callers_and_directory_names(
        stocked: tuple[Flask, dict[str, int]]) -> None:
    app, _ = stocked
    assert _names(_find(app, search="10003", status="all")) == ["vpn"]
    assert _names(_find(app, search="#10003", status="all")) == ["vpn"]
    assert _names(_find(app, search="0176 12345678", status="all")) == ["printer"]
    assert _names(_find(app, search="jonas", status="all")) == ["printer"]
    assert _names(_find(app, search="Becker", status="all")) == ["printer"]
    assert _names(_find(app, search="nobody at all", status="all")) == []
    assert _names(_find(app, search="' OR 1=1 --", status="all")) == []  # just words


# --- filters ---------------------------------------------------------------------------------


def test_the_inbox_shows_open_tickets_by_default(stocked: tuple[Flask, dict[str, int]]) -> None:
    app, _ = stocked
    assert sorted(_names(_find(app))) == ["druck", "haslo", "printer", "silent", "vpn"]
    assert _names(_find(app, status="resolved")) == ["done"]
    assert len(_find(app, status="all").rows) == 6
    assert _names(_find(app, status="waiting_for_caller")) == ["silent"]


def test_every_filter(stocked: tuple[Flask, dict[str, int]]) -> None:
    app, agents = stocked
    assert sorted(_names(_find(app, category="hardware"))) == ["druck", "printer"]
    assert sorted(_names(_find(app, priority="P2"))) == ["haslo", "printer"]
    assert _names(_find(app, language="ru")) == ["printer"]
    assert _names(_find(app, me=agents["ann"], assigned="me")) == ["druck"]
    assert _names(_find(app, me=None, assigned="me")) == []
    assert sorted(_names(_find(app, assigned="unassigned"))) == ["haslo", "printer", "silent"]
    assert _names(_find(app, transcription="no_speech")) == ["silent"]
    today = NOW.astimezone(BERLIN).date()
    assert sorted(_names(_find(app, created_from=today - timedelta(days=3),
                               created_to=today - timedelta(days=1)))) == ["vpn"]
    assert "haslo" not in _names(_find(app, created_from=today - timedelta(days=5)))
    assert _names(_find(app, overdue=True, status="all")) == ["druck"]  # 'done' is resolved
    assert _names(_find(app, category="hardware", priority="P2", language="ru",
                        search="принтер")) == ["printer"]


def test_bad_filters_are_refused_with_a_reason() -> None:
    for bad, message in (({"status": "open-ish"}, "status is one of"),
                         ({"sort": "random"}, "sort is one of"),
                         ({"assigned": "him"}, "assigned is one of"),
                         ({"page": 0}, "pages start at 1"),
                         ({"per_page": 500}, "pages start at 1"),
                         ({"created_from": date(2026, 5, 2), "created_to": date(2026, 5, 1)},
                          "ends before it starts"),
                         ({"search": "a\x00b"}, "search for at most")):
        with pytest.raises(TicketError, match=message):
            InboxFilter(**bad)


# --- order and pages -------------------------------------------------------------------------


def test_sorted_by_priority_then_deadline_and_the_other_ways(
        stocked: tuple[Flask, dict[str, int]]) -> None:
    app, _ = stocked
    assert _names(_find(app, status="all")) == ["done", "vpn", "printer", "haslo", "druck",
                                                "silent"]
    assert _names(_find(app, status="all", sort="due")) == ["done", "druck", "vpn", "printer",
                                                            "haslo", "silent"]
    assert _names(_find(app, status="all", sort="newest"))[-2:] == ["vpn", "haslo"]
    assert _names(_find(app, status="all", sort="oldest"))[:2] == ["haslo", "vpn"]


def test_pages(stocked: tuple[Flask, dict[str, int]]) -> None:
    app, _ = stocked
    pages = [_find(app, status="all", per_page=4, page=page) for page in (1, 2, 3)]
    assert [page.pages for page in pages] == [2, 2, 2]
    assert [page.total for page in pages] == [6, 6, 6]
    assert _names(pages[0]) + _names(pages[1]) == _names(_find(app, status="all"))
    assert _names(pages[2]) == []


def test_overdue_rows_stand_out(stocked: tuple[Flask, dict[str, int]]) -> None:
    app, _ = stocked
    rows = {row.number: row for row in _find(app, status="all").rows}
    assert rows["10001"].overdue and not rows["10002"].overdue
    assert not rows["10005"].overdue  # resolved tickets are never overdue
    assert rows["10002"].caller_name == "Jonas Becker"
    assert rows["10001"].assigned_agent == "Ann"


# --- console and API -------------------------------------------------------------------------


def _signed_in(app: Flask) -> FlaskClient:
    client = app.test_client()
    page = client.get("/console/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    client.post("/console/sign-in", data={"username": "ann", "password": PASSWORD,
                                          "csrf_token": token.group(1)})
    return client


def test_the_console_inbox_filters_searches_and_refreshes_live(
        stocked: tuple[Flask, dict[str, int]]) -> None:
    app, _ = stocked
    client = _signed_in(app)
    call_list = client.get("/console/").get_data(as_text=True)
    assert 'href="/console/tickets/"' in call_list  # the inbox is in the top bar
    page = client.get("/console/tickets/?q=Druckers&status=all").get_data(as_text=True)
    assert 'id="ticket-10001"' in page and 'id="ticket-10002"' not in page
    assert 'class="prio-p3 overdue"' in page and "overdue" in page
    assert 'data-live="/console/tickets/list?q=Druckers&amp;status=all"' in page
    fragment = client.get("/console/tickets/list?q=Druckers&status=all").get_data(as_text=True)
    assert "<html" not in fragment and 'id="ticket-10001"' in fragment
    mine = client.get("/console/tickets/?assigned=me").get_data(as_text=True)
    assert 'id="ticket-10001"' in mine and 'id="ticket-10003"' not in mine
    paged = client.get("/console/tickets/?status=all&per_page=4&page=2").get_data(as_text=True)
    assert "page 2 of 2" in paged and 'rel="prev"' in paged
    bad = client.get("/console/tickets/?sort=random&from=yesterday").get_data(as_text=True)
    assert "showing the open tickets instead" in bad


def test_the_api_lists_tickets_with_the_same_filters(
        stocked: tuple[Flask, dict[str, int]]) -> None:
    app, agents = stocked
    with app.extensions["ivr.sessions"]() as session:
        from callbacks.workqueue.agents import Agent

        ann = session.get(Agent, agents["ann"])
        assert ann is not None
        token = issue_api_token(ann)
        session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    answer = client.get("/api/v1/tickets?q=принтера&status=all", headers=headers)
    assert answer.status_code == 200
    body = answer.get_json()
    assert [row["number"] for row in body["tickets"]] == ["10002"]
    assert body["tickets"][0]["caller_name"] == "Jonas Becker"
    assert (body["total"], body["page"], body["pages"]) == (1, 1, 1)
    mine = client.get("/api/v1/tickets?assigned=me", headers=headers).get_json()
    assert [row["number"] for row in mine["tickets"]] == ["10001"]
    assert mine["tickets"][0]["overdue"] is True
    for bad in ("sort=random", "per_page=0", "created_from=0", "status=open-ish", "colour=red"):
        refused = client.get(f"/api/v1/tickets?{bad}", headers=headers)
        assert refused.status_code == 422, bad
    backwards = client.get("/api/v1/tickets?created_from=2026-05-02&created_to=2026-05-01",
                           headers=headers)
    assert backwards.status_code == 400
    assert client.get("/api/v1/tickets").status_code == 401


# --- SQLite ----------------------------------------------------------------------------------


def test_on_sqlite_words_are_found_with_like(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inbox.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            _store(session, {})
            found = inbox(session, InboxFilter(search="Drucker", status="all"), me=None,
                          directory=DIRECTORY, zone=BERLIN, now=NOW)
            assert [row.number for row in found.rows] == ["10001"]
            assert [row.number for row in inbox(
                session, InboxFilter(search="100%", status="all"), me=None,
                directory=DIRECTORY, zone=BERLIN, now=NOW).rows] == []
            jonas = inbox(session, InboxFilter(search="Jonas", status="all"), me=None,
                          directory=DIRECTORY, zone=BERLIN, now=NOW)
            assert [row.number for row in jonas.rows] == ["10002"]
            ordered = inbox(session, InboxFilter(status="all"), me=None, directory=DIRECTORY,
                            zone=BERLIN, now=datetime.now(UTC))
            assert [row.number for row in ordered.rows][:2] == ["10005", "10003"]
    finally:
        engine.dispose()
