"""The admin's agent pages in a real browser (Debian's chromium driven by Playwright) against
gunicorn and PostgreSQL: an admin creates an agent with skills, edits them, deactivates and
reactivates the account, resets its password, unlocks a slowed sign-in and signs the agent out
everywhere, after which a copied session cookie no longer works. No CSP violation on the way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from callbacks.workqueue.agents import create_agent
from tests.conftest import app_config, empty_tables, gunicorn_server
from tests.test_console_browser import (  # noqa: F401 (fixtures)
    CHROMIUM,
    SECONDS,
    line_env,
    playwright_api,
    policy_watch,
    standin,
)

pytestmark = pytest.mark.server

PASSWORD = "correct horse battery"
BEN_PASSWORD = "ben's first passphrase"


@pytest.fixture
def admin_line(database_url: str, redis_url: str, line_env: dict[str, str],  # noqa: F811
               tmp_path: Path) -> Iterator[tuple[Flask, str]]:
    """gunicorn serving the app; one admin, Rita."""
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    with app.extensions["ivr.sessions"]() as session:
        create_agent(session, "rita", PASSWORD, display_name="Rita Root", role="admin")
        session.commit()
    try:
        with gunicorn_server(line_env, tmp_path) as base:
            yield app, base
    finally:
        empty_tables(app)


def sign_in(page: Any, base: str, username: str, password: str) -> int:
    """Fill in the sign-in form; the status of its answer."""
    page.goto(base + "/console/sign-in")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    status: int = posted.value.status
    return status


def test_an_admin_manages_an_agent_account_in_the_browser(
        playwright_api: Any, admin_line: tuple[Flask, str]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    _app, base = admin_line
    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        admin = browser.new_page()
        violations = policy_watch(admin)
        assert sign_in(admin, base, "rita", PASSWORD) == 303
        admin.get_by_role("link", name="Admin").click()
        admin.get_by_role("navigation", name="Admin").get_by_role("link", name="Agents").click()
        expect(admin.get_by_role("heading", name="Agents", exact=True)).to_be_visible()

        # Create Ben with skills and a typed password.
        admin.get_by_label("User name").fill("ben")
        form = admin.locator("form.agent-form")
        form.get_by_label("Name", exact=True).fill("Ben Ode")
        form.get_by_label("Phone").fill("+49 30 555 021")
        form.get_by_label("Dial mode").select_option("preview")
        form.get_by_label("Languages").fill("de:3, en")
        form.get_by_label("Topics").fill("password:2")
        form.get_by_label("Initial password").fill(BEN_PASSWORD)
        admin.get_by_role("button", name="Create account").click()
        expect(admin.locator(".flash-ok")).to_contain_text("Account ben created")
        row = admin.locator("tr[data-agent=ben]")
        expect(row.locator(".languages")).to_have_text("de:3, en:2")
        expect(row.locator(".topics")).to_have_text("password:2")
        expect(row.locator(".availability")).to_have_text("offline")

        # Ben signs in; a copy of his cookie (another browser) works too.
        ben_context = browser.new_context()
        ben = ben_context.new_page()
        assert sign_in(ben, base, "ben", BEN_PASSWORD) == 303
        expect(ben.get_by_test_id("agent-name")).to_have_text("Ben Ode")
        copied = browser.new_context()
        copied.add_cookies([cookie for cookie in ben_context.cookies()
                            if cookie["name"] == "session"])
        assert copied.request.get(base + "/console/", max_redirects=0).status == 200

        # Edit his skills and dial mode.
        row.get_by_role("link", name="ben").click()
        edit = admin.locator("form.agent-form")
        edit.get_by_label("Languages").fill("pl:3, de:1")
        edit.get_by_label("Dial mode").select_option("progressive")
        admin.get_by_role("button", name="Save changes").click()
        expect(admin.locator(".flash-ok")).to_contain_text(
            "Saved ben: dial mode, languages.")
        expect(edit.get_by_label("Languages")).to_have_value("de:1, pl:3")
        agent_url = admin.url

        # Sign out everywhere (asked first): Ben's session and the copy end.
        admin.once("dialog", lambda dialog: dialog.accept())
        admin.get_by_role("button", name="Sign out everywhere").click()
        expect(admin.locator(".flash-ok")).to_contain_text("ben is signed out everywhere.")
        after = copied.request.get(base + "/console/", max_redirects=0)
        assert after.status == 302 and "/console/sign-in" in after.headers["location"]
        ben.reload()
        expect(ben.get_by_role("heading", name="Sign in")).to_be_visible()

        # Two wrong passwords: Ben has to wait; the admin sees it and unlocks him.
        for _ in range(2):
            assert sign_in(ben, base, "ben", "not his password") == 401
        assert sign_in(ben, base, "ben", BEN_PASSWORD) == 429
        expect(ben.get_by_role("alert")).to_contain_text("Please wait")
        admin.goto(agent_url)
        expect(admin.get_by_test_id("sign-in-state")).to_contain_text("waits")
        admin.get_by_role("button", name="Unlock sign-in").click()
        expect(admin.locator(".flash-ok")).to_contain_text("ben may sign in again at once.")
        expect(admin.get_by_test_id("sign-in-state")).to_have_text("no recent failed attempts")
        assert sign_in(ben, base, "ben", BEN_PASSWORD) == 303

        # Deactivate (asked first), then reactivate.
        admin.once("dialog", lambda dialog: dialog.accept())
        admin.get_by_role("button", name="Deactivate").click()
        expect(admin.get_by_test_id("account-state")).to_have_text("deactivated")
        ben.reload()
        expect(ben.get_by_role("heading", name="Sign in")).to_be_visible()
        assert sign_in(ben, base, "ben", BEN_PASSWORD) == 401
        admin.get_by_role("button", name="Reactivate").click()
        expect(admin.get_by_test_id("account-state")).to_have_text("active")

        # Reset the password: generated and shown once; the old one stops working.
        admin.get_by_role("button", name="Reset password").click()
        generated = admin.get_by_test_id("generated-password").inner_text()
        assert re.fullmatch(r"[A-Za-z0-9_-]{16}", generated)
        assert sign_in(ben, base, "ben", generated) == 303
        assert sign_in(browser.new_page(), base, "ben", BEN_PASSWORD) == 401  # the old one

        admin.goto(base + "/admin/agents")
        history = admin.locator("table.account-history")
        for action in ("created", "edited", "signed out everywhere", "unlocked", "deactivated",
                       "reactivated", "password reset"):
            expect(history).to_contain_text(action)
        assert violations == []
        browser.close()
