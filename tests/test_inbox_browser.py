"""The ticket inbox and a ticket's workflow in a real browser (Debian's chromium driven by
Playwright) against gunicorn, PostgreSQL, Redis, a real `ivr worker` and the Twilio stand-in:
filter and search, a new ticket appearing without a reload, overdue tickets standing out, and
each workflow action with its flash and the caller's texts showing up in the history; all of
it under the Content-Security-Policy, with no violation and no script error."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callbacks.db import utcnow
from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.agents import create_agent
from ivr.simulator import ScriptedCaller, Simulator
from ivr.standin import StandinServer
from tests.conftest import (
    AUTH_TOKEN,
    DEMO_FLOW,
    app_config,
    empty_tables,
    gunicorn_server,
    line_environment,
    publish,
)
from tests.speech_fixtures import shortest_clip
from tests.test_console_browser import CHROMIUM, SECONDS, always_open, policy_watch, sign_in
from tests.test_console_browser import playwright_api as playwright_api
from tests.test_worker_process import worker_process
from tests.voicemail_helpers import ACCOUNT_SID

pytestmark = pytest.mark.server

LINE = "+493012345678"
KATRIN = "+4915112345678"  # Katrin Schäfer in flows/directory.csv, a mobile number
OLGA = "+79031234567"  # Ольга Иванова
PASSWORD = "correct horse battery"


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def line_env(database_url: str, redis_url: str, standin: StandinServer) -> dict[str, str]:
    return line_environment(database_url, redis_url, standin.url, SMS_FROM=LINE,
                            DISPLAY_TIMEZONE="Europe/Berlin")


@contextlib.contextmanager
def served_desk(database_url: str, redis_url: str, line_env: dict[str, str], tmp_path: Path,
                tickets: Callable[[datetime], list[Ticket]]) -> Iterator[tuple[Flask, str]]:
    """The demo line, always open, served by gunicorn with agent Ana and `tickets(now)`;
    the tables are emptied afterwards."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    publish(app, always_open(DEMO_FLOW.read_text(encoding="utf-8")))
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "ana", PASSWORD, display_name="Ana Lima")
        session.add_all(tickets(utcnow()))
        session.commit()
    try:
        with gunicorn_server(line_env, tmp_path) as base:
            yield app, base
    finally:
        empty_tables(app)


@pytest.fixture
def desk(database_url: str, redis_url: str, line_env: dict[str, str],
         tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The demo line served by gunicorn, two tickets waiting, and an agent, Ana."""
    def two(now: datetime) -> list[Ticket]:
        return [
            Ticket(call_sid="CA" + "1" * 32, caller=KATRIN, language="de", category="hardware",
                   priority="P2", status="new", transcription="done",
                   transcript="Mein Drucker druckt seit gestern nicht mehr",
                   sms_sid="SM" + "0" * 32, due_at=now - timedelta(hours=1)),
            Ticket(call_sid="CA" + "2" * 32, caller=OLGA, language="ru", category="network",
                   priority="P3", status="new", transcription="done",
                   transcript="Не работает интернет в переговорной",
                   sms_sid="SM" + "0" * 32, due_at=now + timedelta(hours=3)),
        ]

    with served_desk(database_url, redis_url, line_env, tmp_path, two) as served:
        yield served


def test_the_inbox_filters_searches_and_shows_a_new_ticket_without_a_reload(
        playwright_api: Any, desk: tuple[Flask, str], standin: StandinServer) -> None:
    from playwright.sync_api import expect

    _app, base = desk
    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        violations = policy_watch(page)  # every page must work under the CSP
        sign_in(page, base)
        page.get_by_test_id("inbox-link").click()
        expect(page.locator("h1")).to_have_text("Tickets")
        rows = page.locator("#inbox tr[data-ticket]")
        expect(rows).to_have_count(2)
        expect(rows.first).to_contain_text("Katrin Schäfer")  # P2 before P3
        expect(rows.first).to_have_class("prio-p2 overdue")
        expect(rows.first.locator(".overdue-mark")).to_have_text("overdue")
        expect(rows.nth(1).locator(".overdue-mark")).to_have_count(0)

        search = page.get_by_role("searchbox", name="Search")
        search.fill("Druckers")  # German genitive, found by its stem
        page.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-ticket", "10001")
        search.fill("интернета")  # Russian genitive
        page.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Ольга Иванова")
        page.get_by_role("link", name="Reset").click()
        page.get_by_label("Priority").select_option("P3")
        page.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_have_attribute("data-ticket", "10002")
        page.get_by_role("link", name="Reset").click()
        expect(rows).to_have_count(2)

        page.evaluate("window.notReloaded = true")
        # A caller says nothing at the menus and leaves a voicemail: a third ticket.
        clip = shortest_clip()
        call = Simulator(base, AUTH_TOKEN, caller="+4917612345678", called=LINE,
                         account_sid=ACCOUNT_SID, recording_base_url=standin.url,
                         upload_recordings=True).run(
            ScriptedCaller(["1", "-", "-", "-", f"wav:{clip.path}"]))
        assert not call.failed, call.failures
        expect(rows).to_have_count(3, timeout=10 * SECONDS)  # the live refresh brought it
        assert page.evaluate("window.notReloaded") is True
        expect(page.locator("#ticket-10003")).to_contain_text("Jonas Becker")
        expect(page.get_by_test_id("inbox-count")).to_have_text("3 tickets")
        assert violations == []
        browser.close()


def test_a_tickets_workflow_actions_in_the_browser(
        playwright_api: Any, desk: tuple[Flask, str], line_env: dict[str, str],
        standin: StandinServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    app, base = desk
    worker_env = {**line_env, "IVR_PUBLIC_BASE_URL": base}
    with worker_process(worker_env, tmp_path / "worker.log"), playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        violations = policy_watch(page)  # every page must work under the CSP
        sign_in(page, base)
        page.goto(f"{base}/console/tickets/10001")
        status = page.get_by_test_id("ticket-status")
        expect(status).to_have_text("new")
        expect(page.get_by_test_id("preview-in_progress")).to_have_text(
            "IT-Service-Desk: Wir bearbeiten Ihr Ticket 10001. [your note]")

        page.get_by_test_id("take").click()
        expect(page.locator(".flash-ok")).to_have_text(
            "You took ticket 10001. The caller will get a text in German.")
        expect(status).to_have_text("assigned")
        expect(page.get_by_test_id("ticket-assignee")).to_have_text("Ana Lima")

        page.get_by_role("button", name="Start work").click()
        expect(page.locator(".flash-ok")).to_contain_text("Ticket 10001 is now in progress.")
        expect(status).to_have_text("in progress")

        page.get_by_role("button", name="Resolve").click()  # without the note it needs
        expect(page.locator(".flash-error")).to_have_text("write a short note for the caller")
        expect(status).to_have_text("in progress")

        page.get_by_label("Internal note, or reply to the caller").fill("Bitte neu starten.")
        page.get_by_role("button", name="Reply to the caller by SMS").click()
        expect(page.locator(".flash-ok")).to_contain_text("The caller will get a text in German.")

        page.get_by_label("Note for the caller").fill("Treiber neu installiert.")
        page.get_by_role("button", name="Resolve").click()
        expect(page.locator(".flash-ok")).to_contain_text("Ticket 10001 is now resolved.")
        expect(status).to_have_text("resolved")
        expect(page.get_by_role("button", name="Reopen")).to_be_visible()

        history = page.locator("#ticket-story ol.history")
        expect(history.locator("li[data-kind=sms_sent]")).to_have_count(
            4, timeout=30 * SECONDS)  # assigned, in progress, reply, resolved: live
        expect(history.locator("li[data-kind=reply]")).to_contain_text("Bitte neu starten.")
        assert violations == []
        browser.close()

    bodies = [message.body for message in standin.messages() if message.to == KATRIN]
    assert len(bodies) == 4
    assert bodies[2] == "IT-Service-Desk, Ticket 10001: Bitte neu starten."
    assert bodies[3].startswith("IT-Service-Desk: Ihr Ticket 10001 ist gelöst. "
                                "Treiber neu installiert.")
    with app.extensions["ivr.sessions"]() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and ticket.status == "resolved"
