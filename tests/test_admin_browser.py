"""The admin pages in a real browser (Debian's chromium driven by Playwright) against gunicorn,
a real `ivr worker`, Redis, PostgreSQL and the Twilio stand-in.

An admin edits the live flow, sees a typo flagged at its line, fixes it and publishes: a call
that started before keeps the old menu while a new call hears the new one. The admin rolls
back, then places a test call on the simulator page and leaves a voicemail from a WAV, which
the worker turns into a ticket.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from flask import Flask
from sqlalchemy import select

from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.agents import create_agent
from ivr.simulator import Simulator
from ivr.simulator.stepwise import CallStep, continue_call, start_call
from tests.conftest import AUTH_TOKEN, DEMO_FLOW, app_config, empty_tables, gunicorn_server, publish
from tests.test_console_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    SECONDS,
    always_open,
    line_env,
    playwright_api,
    policy_watch,
    standin,
    wait_for,
)
from tests.test_worker_process import worker_process
from tests.voicemail_helpers import ACCOUNT_SID

pytestmark = pytest.mark.server

LINE = "+493012345678"
CALLER = "+4917612345678"
PASSWORD = "correct horse battery"
OLD_MENU = "For a password reset or a locked account, press 1."
NEW_MENU = "New menu. For a password reset or a locked account, press 1."


@pytest.fixture
def admin_line(database_url: str, redis_url: str, line_env: dict[str, str],  # noqa: F811
               tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """The demo line, always open, served by gunicorn; one admin, Rita."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    publish(app, always_open(DEMO_FLOW.read_text(encoding="utf-8")), by="cli")
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "rita", PASSWORD, display_name="Rita Root", role="admin")
        session.commit()
    try:
        with gunicorn_server(line_env, tmp_path) as base:
            yield app, base
    finally:
        empty_tables(app)


def heard(step: CallStep) -> str:
    return " ".join(event.text for event in step.events if event.kind == "say")


def phone(base: str) -> Simulator:
    return Simulator(base, AUTH_TOKEN, caller=CALLER, called=LINE, account_sid=ACCOUNT_SID)


def main_menu_of_a_new_call(base: str) -> str:
    """What a new call hears after choosing English (the live version's main menu)."""
    sim = phone(base)
    started = start_call(sim)
    assert started.state is not None and started.waiting == "gather"
    return heard(continue_call(sim, started.state, "1"))


def tone_wav(path: Path, seconds: float = 1.5) -> Path:
    rate = 8000
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)
    buffer = io.BytesIO()
    soundfile.write(buffer, tone, rate, format="WAV", subtype="PCM_16")
    path.write_bytes(buffer.getvalue())
    return path


def test_admin_edits_publishes_rolls_back_and_simulates(
        playwright_api: Any, admin_line: tuple[Flask, str],  # noqa: F811
        line_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect

    app, base = admin_line
    # A call that starts on version 1 and waits at the language menu during the publish.
    early = phone(base)
    waiting = start_call(early)
    assert "For English, press 1." in heard(waiting) and waiting.state is not None

    worker_env = {**line_env, "IVR_PUBLIC_BASE_URL": base}
    with (worker_process(worker_env, tmp_path / "worker.log"), playwright_api() as pw):
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        violations = policy_watch(page)
        page.goto(base + "/console/sign-in")
        page.get_by_label("User name").fill("rita")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("link", name="Admin").click()
        page.get_by_role("link", name="it-support").click()
        editor = page.get_by_label("Flow YAML")
        expect(editor).to_be_visible()
        source = editor.input_value()
        assert source.count("    next: check_hours\n") == 1

        # A typo: flagged at its line and column while typing, with a suggestion.
        typo_line = source[:source.index("    next: check_hours\n")].count("\n") + 1
        editor.fill(source.replace("    next: check_hours\n", "    next: check_hour\n"))
        problem = page.locator("#problems li").first
        expect(problem).to_contain_text(f"line {typo_line}, column 11", timeout=10 * SECONDS)
        expect(problem).to_contain_text("did you mean 'check_hours'?")
        expect(page.locator(f"#gutter .err[data-line='{typo_line}']")).to_have_count(1)

        # Fixed, with a new main menu text; the diff shows the change, then publish.
        editor.fill(source.replace(OLD_MENU, NEW_MENU))
        expect(page.locator("#validation-status")).to_have_text("Valid.", timeout=10 * SECONDS)
        expect(page.locator("#problems li")).to_have_count(0)
        page.get_by_role("button", name="Diff with live").click()
        expect(page.locator("#diff")).to_contain_text("+        New menu. For a password")
        page.get_by_role("button", name="Publish").click()
        expect(page.locator(".flash-ok")).to_contain_text("Published it-support version 2")
        expect(page.get_by_test_id("published-it-support")).to_contain_text(
            "version 2, published")
        expect(page.get_by_test_id("published-it-support")).to_contain_text("by rita")

        # The call in progress keeps version 1; a new call takes version 2.
        old = heard(continue_call(early, waiting.state, "1"))
        assert OLD_MENU in old and "New menu." not in old
        wait_for(lambda: NEW_MENU in main_menu_of_a_new_call(base), 10, "the new menu")

        # Roll back to version 1, recorded as rita's: asked first, and "Cancel" changes nothing.
        asked: list[str] = []

        def decline(dialog: Any) -> None:
            asked.append(dialog.message)
            dialog.dismiss()

        page.once("dialog", decline)
        page.get_by_role("button", name="Make version 1 live").click()
        expect(page.get_by_test_id("published-it-support")).to_contain_text("version 2")
        assert asked == ["Make it-support version 1 live? New calls get it at once; calls in "
                         "progress keep their version."]
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Make version 1 live").click()
        expect(page.locator(".flash-ok")).to_contain_text("it-support version 1 is live again")
        rollback = page.locator("table.history tr[data-action=rollback]")
        expect(rollback).to_contain_text("rita")
        wait_for(lambda: "New menu." not in main_menu_of_a_new_call(base), 10, "the old menu")

        # A test call on the simulator page: English, password, voicemail from a WAV.
        page.goto(base + "/admin/simulator")
        expect(page.locator("#no-standin")).to_have_count(0)
        expect(page.get_by_role("group", name="Keypad")).to_be_hidden()  # no call yet
        expect(page.get_by_label("Flow version")).to_contain_text(
            "it-support version 2 (published before)")
        page.get_by_label("Flow version").select_option(label="it-support version 1 (live)")
        page.get_by_label("Language").select_option("en")
        page.get_by_role("button", name="Place test call").click()
        log = page.locator("#sim-log")
        expect(log).to_contain_text("Welcome to the IT Service Desk.", timeout=10 * SECONDS)
        expect(log.locator("pre.twiml").first).to_contain_text("<Gather")
        for keys in ("1", "1"):
            page.get_by_role("group", name="Keypad").get_by_role("button", name=keys,
                                                                 exact=True).click()
            page.get_by_role("button", name="Send keys").click()
            expect(page.locator("#sim-waiting")).to_contain_text("listening")
        expect(log).to_contain_text("To leave a voicemail, press 2.")
        page.get_by_label("Keys").fill("2")
        page.get_by_role("button", name="Send keys").click()
        expect(page.locator("#sim-waiting")).to_contain_text("Recording after the beep")
        page.get_by_label("Voicemail (WAV)").set_input_files(str(tone_wav(tmp_path / "t.wav")))
        page.get_by_role("button", name="Leave voicemail").click()
        expect(log).to_contain_text("uploaded to the stand-in", timeout=10 * SECONDS)
        expect(log.locator(".sim-end")).to_contain_text("Call over")
        expect(log).to_contain_text("ticket")
        assert violations == []
        browser.close()

        def transcribed() -> Ticket | None:
            with app.extensions["ivr.sessions"]() as session:
                ticket = session.scalar(select(Ticket).where(Ticket.voicemail_id.is_not(None)))
                if ticket is not None and ticket.transcription != "pending":
                    return ticket
            return None

        ticket = wait_for(transcribed, 60, "the test voicemail's ticket")
    assert ticket.caller == "+4930901820"  # the simulator page's default caller
    assert ticket.category == "password"
    assert ticket.transcription in ("no_speech", "no_model", "done")
