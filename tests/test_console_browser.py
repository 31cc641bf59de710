"""The agents' console in a real browser (Debian's chromium driven by Playwright) against
gunicorn, a real `ivr worker` process, Redis, PostgreSQL and the Twilio stand-in.

An agent signs in, a simulated caller asks for a callback, the row appears without a reload,
the agent clicks Call, the stand-in's call is played (agent and caller answer), the agent
resolves it with a note, and the ticket page shows the resolution and then the status SMS the
worker sent.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callbacks.db import utcnow
from callbacks.tickets.ticket import Ticket
from callbacks.voicemail import Voicemail, VoicemailAudio
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
from tests.test_worker_process import worker_process
from tests.voicemail_helpers import ACCOUNT_SID

pytestmark = pytest.mark.server

CHROMIUM = Path("/usr/bin/chromium")
LINE = "+493012345678"
CALLER = "+4917612345678"  # Jonas Becker (Finance) in flows/directory.csv, a mobile number
AGENT_PHONE = "+4930555030"
PASSWORD = "correct horse battery"
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)
SECONDS = 1000  # Playwright counts milliseconds


def _browser_or_skip() -> Any:
    """Playwright's sync API, or a skip when chromium is missing outside CI (a failure in CI)."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(f"{CHROMIUM} (apt-get install chromium; bin/test does it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (pip install -e '.[dev]')")
    if missing:
        reason = "browser tests need " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return sync_playwright


@pytest.fixture
def playwright_api() -> Any:
    return _browser_or_skip()


_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + event.blockedURI);
});
"""


def policy_watch(page: Any) -> list[str]:
    """What the page reports breaking the Content-Security-Policy, and script errors: every
    page in these tests must work under the policy, so the list must stay empty."""
    problems: list[str] = []
    page.add_init_script(_REPORT_VIOLATIONS)

    def console(message: Any) -> None:
        if message.type == "error" and ("CSP violation" in message.text
                                        or "Content Security Policy" in message.text):
            problems.append(message.text)

    def response(answer: Any) -> None:
        if (answer.request.resource_type == "document" and answer.status < 300
                and "content-security-policy" not in answer.headers):
            problems.append(f"{answer.url} was served without a Content-Security-Policy")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("response", response)
    return problems


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def line_env(database_url: str, redis_url: str, standin: StandinServer) -> dict[str, str]:
    """IVR_* settings shared by gunicorn and the worker."""
    return line_environment(database_url, redis_url, standin.url, SMS_FROM=LINE,
                            CALLBACK_FROM=LINE, WRAP_UP_SECONDS="600")


def always_open(flow_yaml: str) -> str:
    """The demo flow with the desk open around the clock, so the menu offers callbacks."""
    return (flow_yaml.replace('mon-fri: "08:00-18:00"', 'mon-sun: "00:00-24:00"')
            .replace("holidays: {country: DE, subdivision: BE}\n", "")
            .replace("    closed:\n      - 2026-12-24\n      - 2026-12-31\n", ""))


@pytest.fixture
def line(database_url: str, redis_url: str, line_env: dict[str, str],
         tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The demo line, always open, served by gunicorn; one preview agent, Ana, available."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    publish(app, always_open(DEMO_FLOW.read_text(encoding="utf-8")))
    with app.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, "ana", PASSWORD, display_name="Ana Lima",
                             phone=AGENT_PHONE, dial_mode="preview")
        agent.availability = "available"
        session.commit()
    try:
        with gunicorn_server(line_env, tmp_path) as base:
            yield app, base
    finally:
        empty_tables(app)


def wait_for(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def sign_in(page: Any, base: str, password: str = PASSWORD) -> Any:
    """Fill in the sign-in form; the response to the form's POST."""
    page.goto(base + "/console/")
    page.get_by_label("User name").fill("ana")
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    return posted.value


def test_agent_calls_back_and_resolves_in_the_browser(
        playwright_api: Any, line: tuple[Flask, str], line_env: dict[str, str],
        standin: StandinServer, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from ivr.simulator.outbound import play_outbound_call

    app, base = line
    worker_env = {**line_env, "IVR_PUBLIC_BASE_URL": base}
    with (worker_process(worker_env, tmp_path / "worker.log"), playwright_api() as pw):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        violations = policy_watch(page)
        sign_in(page, base)
        expect(page.get_by_test_id("agent-name")).to_have_text("Ana Lima")
        expect(page.locator(".agent-mode")).to_contain_text("preview")
        expect(page.locator("#call-list")).to_contain_text("Nobody is waiting")
        page.evaluate("window.notReloaded = true")

        # A caller asks for a callback through the menus: English, password, callback, as
        # soon as possible, on the number they are calling from.
        call = Simulator(base, AUTH_TOKEN, caller=CALLER, called=LINE, account_sid=ACCOUNT_SID
                         ).run(ScriptedCaller(["1", "1", "3", "1", "1"]))
        assert not call.failed, call.failures
        assert any("call you back" in said for said in call.said())

        row = page.locator("#call-list tr[data-callback]")
        expect(row).to_have_count(1, timeout=10 * SECONDS)  # the live refresh brought it
        assert page.evaluate("window.notReloaded") is True
        expect(row).to_contain_text("Jonas Becker")
        expect(row).to_contain_text(CALLER)
        expect(row).to_contain_text("password")
        expect(row.locator(".status")).to_contain_text("waiting")
        request_id = int(row.get_attribute("data-callback") or 0)

        row.get_by_role("button", name="Call Jonas Becker now").click()
        expect(page.locator(".flash-ok")).to_contain_text(f"Calling your phone {AGENT_PHONE}")
        expect(page.get_by_test_id("agent-availability")).to_contain_text("on call")
        expect(row.locator(".status")).to_contain_text("dialling by Ana Lima")
        agent_leg = wait_for(standin.calls, 10, "the call to the agent")[0]
        assert agent_leg.to == AGENT_PHONE

        heard = play_outbound_call(agent_leg, AUTH_TOKEN)  # agent and caller answer
        assert "Jonas Becker" in " ".join(heard.heard)
        assert heard.dialled == [CALLER]
        expect(row).to_have_count(0, timeout=10 * SECONDS)  # done: off the list, live

        page.goto(f"{base}/console/callbacks/{request_id}")
        expect(page.get_by_test_id("callback-status")).to_have_text("done")
        expect(page.locator("tr[data-stage=completed]")).to_have_count(1)
        page.get_by_label("Note for the caller").fill("Password reset; sign in again.")
        page.get_by_role("button", name="Resolve the callback to Jonas Becker").click()
        expect(page.locator(".flash-ok")).to_contain_text(f"Callback {request_id} resolved")

        page.get_by_role("link", name=re.compile(r"#100\d\d")).first.click()
        expect(page.locator("h1")).to_contain_text("Ticket #")
        history = page.locator("#ticket-story ol.history")
        expect(history.locator("li[data-kind=status]")).to_contain_text(
            "-> resolved: Password reset; sign in again.")
        # The worker sends the status SMS a moment later; the page shows it without a reload.
        status_sms = history.locator("li[data-kind=status] ~ li[data-kind=sms_sent]",
                                     has_text="resolved (")
        expect(status_sms).to_have_count(1, timeout=30 * SECONDS)
        assert violations == []
        browser.close()

    with app.extensions["ivr.sessions"]() as session:
        ticket = session.get(Ticket, 1)
        assert ticket is not None and ticket.status == "resolved"
    status_texts = [m.body for m in standin.messages()
                    if m.to == CALLER and "Password reset; sign in again." in m.body]
    assert len(status_texts) == 1 and ticket.number in status_texts[0]


def test_sign_in_failure_csrf_audio_and_sign_out_in_the_browser(
        playwright_api: Any, line: tuple[Flask, str]) -> None:
    from playwright.sync_api import expect

    app, base = line
    with app.extensions["ivr.sessions"]() as session:
        voicemail = Voicemail(recording_sid="RE" + "2" * 32, call_sid="CA" + "2" * 32,
                              recording_url="https://api.twilio.com/x", language="en")
        session.add(voicemail)
        session.flush()
        session.add(VoicemailAudio(voicemail_id=voicemail.id, data=WAV))
        ticket = Ticket(voicemail_id=voicemail.id, call_sid=voicemail.call_sid, caller=CALLER,
                        language="en", category="hardware", transcript="my laptop is dead",
                        transcription="done", created_at=utcnow(), updated_at=utcnow())
        session.add(ticket)
        session.commit()
        number = ticket.number
    audio_url = f"{base}/console/tickets/{number}/audio"

    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        context = browser.new_context()
        page = context.new_page()
        violations = policy_watch(page)

        anonymous = context.request.get(audio_url, max_redirects=0)
        assert anonymous.status == 302 and "/console/sign-in" in anonymous.headers["location"]
        assert anonymous.body() != WAV

        refused = sign_in(page, base, password="wrong password!")
        assert refused.status == 401
        expect(page.get_by_role("alert")).to_have_text("Unknown user name or password.")

        assert sign_in(page, base).status == 303
        expect(page.get_by_test_id("agent-name")).to_have_text("Ana Lima")
        forged = context.request.post(f"{base}/console/availability",
                                      form={"availability": "away"}, max_redirects=0)
        assert forged.status == 400  # the session cookie alone is not enough

        page.goto(f"{base}/console/tickets/{number}")
        expect(page.locator("blockquote.transcript")).to_have_text("my laptop is dead")
        expect(page.locator("audio[controls]")).to_have_attribute(
            "src", f"/console/tickets/{number}/audio")
        served = context.request.get(audio_url)
        assert served.status == 200 and served.body() == WAV
        assert served.headers["cache-control"] == "private, no-store"

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        after = context.request.get(audio_url, max_redirects=0)
        assert after.status == 302
        assert violations == []
        browser.close()
