"""Incidents in a real browser (Debian's chromium driven by Playwright) against gunicorn,
PostgreSQL, Redis, a real `ivr worker` and the Twilio stand-in: tickets ticked in the inbox
survive its live refresh and are grouped into an incident; its page lists who is affected,
links and unlinks, switches the announcement and resolves, and then shows each caller's text
as sent; the incident list offers the desk's suggestion, opened with one click. No CSP
violation on the way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callbacks.tickets.ticket import Ticket
from ivr.standin import StandinServer
from tests.test_console_browser import CHROMIUM, SECONDS, policy_watch, sign_in
from tests.test_console_browser import playwright_api as playwright_api
from tests.test_inbox_browser import KATRIN, OLGA, served_desk
from tests.test_inbox_browser import line_env as line_env
from tests.test_inbox_browser import standin as standin
from tests.test_worker_process import worker_process

pytestmark = pytest.mark.server

JONAS = "+4917612345678"  # Jonas Becker


@pytest.fixture
def desk(database_url: str, redis_url: str, line_env: dict[str, str],
         tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The demo line served by gunicorn, three network and three outage tickets, Ana."""
    callers = [(KATRIN, "network", "de"), (OLGA, "network", "ru"), (JONAS, "network", "en"),
               (KATRIN, "outage", "de"), (OLGA, "outage", "ru"), (JONAS, "outage", "en")]

    def six(now: datetime) -> list[Ticket]:
        return [
            Ticket(call_sid=f"CA{n:032d}", caller=caller, language=language, category=category,
                   priority="P2", status="new", transcription="none", sms_sid="SM" + "0" * 32,
                   created_at=now - timedelta(minutes=1 + n), due_at=now + timedelta(hours=4))
            for n, (caller, category, language) in enumerate(callers)]

    with served_desk(database_url, redis_url, line_env, tmp_path, six) as served:
        yield served


def test_grouping_linking_and_resolving_an_incident_in_the_browser(
        playwright_api: Any, desk: tuple[Flask, str], line_env: dict[str, str],
        standin: StandinServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _app, base = desk
    with worker_process(line_env, tmp_path / "worker.log"), playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        problems = policy_watch(page)
        sign_in(page, base)
        page.get_by_test_id("inbox-link").click()
        expect(page.get_by_test_id("incident-suggestions")).to_contain_text(
            "3 outage tickets in the last 15 minutes, none in an open incident")
        for number in ("10001", "10002"):
            page.get_by_label(f"Select ticket {number}").check()
        page.wait_for_timeout(3 * SECONDS)  # longer than the live refresh: still ticked
        expect(page.get_by_label("Select ticket 10001")).to_be_checked()
        expect(page.get_by_label("Select ticket 10002")).to_be_checked()
        page.get_by_label("New incident's title").fill("VPN down in Berlin")
        page.locator("#group-category").select_option("network")
        page.get_by_test_id("group-into-incident").click()

        expect(page.locator("h1")).to_have_text("INC-10001: VPN down in Berlin")
        expect(page.locator(".flash")).to_have_text("Incident INC-10001 is open with 2 "
                                                    "ticket(s).")
        affected = page.get_by_test_id("affected-tickets").locator("tbody tr")
        expect(affected).to_have_count(2)
        expect(affected.first).to_contain_text("Katrin Schäfer")
        expect(affected.nth(1)).to_contain_text("Ольга Иванова")
        expect(page.get_by_test_id("incident-announce")).to_have_text("announced to callers")

        page.get_by_label("Ticket numbers").fill("10003")
        page.get_by_test_id("link").click()
        expect(affected).to_have_count(3)
        expect(affected.nth(2)).to_contain_text("Jonas Becker")
        page.get_by_role("button", name="Unlink ticket 10002").click()
        expect(affected).to_have_count(2)
        expect(page.get_by_test_id("affected-tickets")).not_to_contain_text("Ольга")

        page.get_by_test_id("announce-toggle").uncheck()
        page.get_by_test_id("save-announcement").click()
        expect(page.get_by_test_id("incident-announce")).to_have_text("not announced")

        page.get_by_label("Note for the callers' text (optional)").fill("Fixed at 10:40.")
        page.get_by_test_id("resolve").click()
        expect(page.locator(".flash")).to_have_text(
            "INC-10001 is resolved; 2 caller(s) get a text (once each).")
        expect(page.get_by_test_id("incident-status")).to_have_text("resolved")
        for _ in range(40):  # the worker sends the texts; the page shows how they ended
            if page.get_by_test_id("notice-counts").text_content() == "2 sent":
                break
            page.wait_for_timeout(SECONDS // 2)
            page.reload()
        expect(page.get_by_test_id("notice-counts")).to_have_text("2 sent")
        expect(page.get_by_test_id("notices").locator("[data-testid=notice-status]")).to_have_text(
            ["sent", "sent"])
        assert sorted(m.to for m in standin.messages()) == sorted([KATRIN, JONAS])

        page.get_by_test_id("incidents-link").click()
        expect(page.get_by_test_id("incident-list")).to_contain_text("INC-10001")
        expect(page.get_by_test_id("suggestion-text")).to_have_text(
            "3 outage tickets in the last 15 minutes, none in an open incident: open an "
            "incident?")
        page.get_by_test_id("open-suggested").click()
        expect(page.locator("h1")).to_have_text("INC-10002: Problem with one of our services")
        expect(page.get_by_test_id("affected-tickets").locator("tbody tr")).to_have_count(3)
        page.get_by_test_id("incidents-link").click()
        rows = page.get_by_test_id("incident-list").locator("tbody tr")
        expect(rows.first).to_contain_text("INC-10002")  # open ones first
        expect(rows.nth(1)).to_contain_text("resolved")

        page.goto(base + "/console/tickets/10002")
        page.get_by_test_id("link-ticket-incident").click()
        expect(page.get_by_test_id("ticket-incidents")).to_contain_text("INC-10002")
        browser.close()
    assert problems == []
