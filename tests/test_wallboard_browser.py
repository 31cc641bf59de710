"""The wallboard and the call list's live rows in a real browser (Debian's chromium driven by
Playwright) against gunicorn, a real `ivr worker` process, Redis, PostgreSQL and the Twilio
stand-in. Callers are played by the phone simulator through the real webhooks and wait in the
stand-in's queues; the agent's phone is played like `ivr answer` does.

Ana (English) and Bo (German) are signed in but away, so two callers wait in line beside a
callback; the wallboard and the call list show them without a reload, with their waits
ticking. Ana makes herself available in the console: the worker rings her, she answers, and
the English caller leaves the list and the wallboard counts an answer; the German caller
hangs up and the wallboard counts an abandonment.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callbacks.workqueue.agents import create_agent
from callbacks.workqueue.skills import set_skills
from ivr.simulator import ScriptedCaller, Simulator
from ivr.simulator.events import CallTranscript
from ivr.simulator.outbound import play_outbound_call
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
from tests.test_console_browser import (
    CHROMIUM,
    SECONDS,
    _browser_or_skip,
    always_open,
    policy_watch,
    wait_for,
)
from tests.test_live_queue import LineCaller
from tests.test_routing_concurrency import worker
from tests.voicemail_helpers import ACCOUNT_SID

pytestmark = pytest.mark.server

LINE = "+493012345678"
ANA_PHONE = "+4930555031"
PASSWORD = "correct horse battery"
ELAPSED = re.compile(r"^\d+:\d\d$")


@pytest.fixture
def playwright_api() -> Any:
    return _browser_or_skip()


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def line(database_url: str, redis_url: str, standin: StandinServer,
         tmp_path: Path) -> Iterator[tuple[Flask, str, dict[str, str]]]:
    """The demo line, always open, served by gunicorn; Ana (en, preview) and Bo (de) signed
    in but away, Cleo signed out. Yields the app, the line's URL and the worker's settings."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    publish(app, always_open(DEMO_FLOW.read_text(encoding="utf-8")))
    with app.extensions["ivr.sessions"]() as session:
        for username, name, phone, languages, state in (
                ("ana", "Ana Lima", ANA_PHONE, {"en": 3}, "away"),
                ("bo", "Bo Berg", "+4930555032", {"de": 3}, "away"),
                ("cleo", "Cleo Park", "+4930555033", {"pl": 3}, "offline")):
            agent = create_agent(session, username, PASSWORD, display_name=name, phone=phone,
                                 dial_mode="preview")
            agent.availability = state
            set_skills(session, agent.id, languages=languages)
        session.commit()
    env = line_environment(database_url, redis_url, standin.url, SMS_FROM=LINE,
                           CALLBACK_FROM=LINE, WRAP_UP_SECONDS="600", SURVEY="false")
    try:
        with gunicorn_server(env, tmp_path) as base:
            yield app, base, {**env, "IVR_PUBLIC_BASE_URL": base}
    finally:
        empty_tables(app)


class Phone:
    """A caller in a thread, dialling the line through the simulator and waiting in line."""

    def __init__(self, base: str, standin: StandinServer, number: str, keys: list[str]) -> None:
        self.caller = LineCaller(keys)
        self.simulator = Simulator(base, AUTH_TOKEN, caller=number, called=LINE,
                                   account_sid=ACCOUNT_SID, standin_url=standin.url,
                                   wait_pace=0.3, max_wait_passes=2000)
        self.transcript: CallTranscript | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.transcript = self.simulator.run(self.caller)

    def ended(self, seconds: float = 30) -> CallTranscript:
        """The call's transcript once it is over."""
        self.thread.join(timeout=seconds)
        assert not self.thread.is_alive() and self.transcript is not None
        assert not self.transcript.failed, self.transcript.failures
        return self.transcript


def big(page: Any, tile: str) -> Any:
    """The large figure of a wallboard tile."""
    return page.get_by_test_id(tile).locator(".big")


def ticking(timer: Any) -> None:
    """The timer shows a running m:ss wait that goes up by itself between refreshes."""
    from playwright.sync_api import expect

    expect(timer).to_have_text(ELAPSED, timeout=5 * SECONDS)
    first = timer.inner_text()
    expect(timer).not_to_have_text(first, timeout=4 * SECONDS)
    minutes, seconds = timer.inner_text().split(":")
    before_minutes, before_seconds = first.split(":")
    assert int(minutes) * 60 + int(seconds) > int(before_minutes) * 60 + int(before_seconds)


def test_the_wallboard_and_the_call_list_follow_callers_as_they_join_are_answered_and_hang_up(
        playwright_api: Any, line: tuple[Flask, str, dict[str, str]],
        standin: StandinServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _, base, worker_env = line
    phones: list[Phone] = []
    with worker(worker_env, tmp_path / "worker.log"), playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context()
        board = context.new_page()
        violations = policy_watch(board)
        board.goto(base + "/console/")
        board.get_by_label("User name").fill("ana")
        board.get_by_label("Password").fill(PASSWORD)
        board.get_by_role("button", name="Sign in").click()
        board.get_by_test_id("wallboard-link").click()
        expect(big(board, "waiting-total")).to_have_text("0")
        expect(board.locator("[data-state=away]")).to_contain_text("Ana Lima")
        expect(board.locator("[data-state=away]")).to_contain_text("Bo Berg")
        expect(board.locator("[data-state=offline]")).to_contain_text("Cleo Park")
        expect(board.get_by_test_id("current-call")).to_contain_text("Not taking calls (away)")
        board.evaluate("window.notReloaded = true")

        # A callback through the menus (English, password, callback, as soon as possible,
        # this number), then two callers who ask for an agent: English about a password,
        # German about the network.
        callback = Simulator(base, AUTH_TOKEN, caller="+4917612345678", called=LINE,
                             account_sid=ACCOUNT_SID).run(ScriptedCaller(["1", "1", "3", "1",
                                                                          "1"]))
        assert not callback.failed, callback.failures
        expect(big(board, "callbacks-due")).to_have_text("1 / 0", timeout=10 * SECONDS)
        english = Phone(base, standin, "+442071838750", ["1", "1", "1"])
        phones.append(english)
        german = Phone(base, standin, "+4915112345678", ["2", "2", "1"])
        phones.append(german)

        expect(big(board, "waiting-total")).to_have_text("2", timeout=20 * SECONDS)
        by_language = board.get_by_test_id("by-language")
        expect(by_language.locator("tr[data-language=en] td.count")).to_have_text("1")
        expect(by_language.locator("tr[data-language=de] td.count")).to_have_text("1")
        by_topic = board.get_by_test_id("by-topic")
        expect(by_topic.locator("tr[data-topic=password] td.count")).to_have_text("1")
        expect(by_topic.locator("tr[data-topic=network] td.count")).to_have_text("1")
        ticking(board.get_by_test_id("longest-wait").locator(".timer"))
        assert board.evaluate("window.notReloaded") is True

        # The call list: both callers on the line beside the callback, waits ticking.
        calls = context.new_page()
        violations += policy_watch(calls)
        calls.goto(base + "/console/")
        live_rows = calls.locator("#call-list tr[data-live-call]")
        expect(live_rows).to_have_count(2)
        expect(calls.locator("#call-list tr[data-callback]")).to_have_count(1)
        english_row = live_rows.filter(has_text="speaks English")
        expect(english_row).to_contain_text("on the line now")
        expect(english_row).to_contain_text("password")
        expect(english_row).to_contain_text("waiting on the line")
        ticking(english_row.locator("[data-testid=wait-timer]"))

        # Ana is ready: the worker rings her phone for the English caller; she answers.
        calls.get_by_label("Availability").select_option("available")
        calls.get_by_role("button", name="Set").click()
        expect(calls.locator(".flash-ok")).to_contain_text("You are now available")
        calls.evaluate("window.notReloaded = true")
        ring = wait_for(lambda: [c for c in standin.calls() if c.to == ANA_PHONE], 20,
                        "the worker to ring Ana for the English caller")[0]
        answered = threading.Thread(target=play_outbound_call, args=(ring, AUTH_TOKEN),
                                    kwargs={"standin_url": standin.url, "stay_seconds": 3},
                                    daemon=True)
        answered.start()
        heard = english.ended()
        assert any(e.kind == "conference" for e in heard.events), heard.said()
        answered.join(timeout=30)

        expect(live_rows).to_have_count(1, timeout=10 * SECONDS)  # answered: off the list
        expect(live_rows).to_contain_text("speaks German")
        expect(calls.locator("#call-list tr[data-callback]")).to_have_count(1)
        assert calls.evaluate("window.notReloaded") is True
        expect(big(board, "waiting-total")).to_have_text("1", timeout=10 * SECONDS)
        expect(board.get_by_test_id("answer-speed")).to_contain_text("1 answered today")
        expect(board.get_by_test_id("service-level")).to_contain_text("100.0 %")
        expect(board.locator("[data-state=wrap_up]")).to_contain_text("Ana Lima",
                                                                       timeout=10 * SECONDS)
        expect(by_language.locator("tr[data-language=en] td.count")).to_have_text("0")

        # The German caller gives up.
        german.caller.leave.set()
        german.ended()
        expect(big(board, "abandoned")).to_have_text("1", timeout=10 * SECONDS)
        expect(board.get_by_test_id("abandoned")).to_contain_text("50.0 % of 2")
        expect(big(board, "waiting-total")).to_have_text("0")
        expect(big(board, "longest-wait")).to_have_text("-")
        expect(live_rows).to_have_count(0, timeout=10 * SECONDS)
        assert board.evaluate("window.notReloaded") is True
        assert violations == []
        browser.close()
    for phone in phones:
        phone.caller.leave.set()
