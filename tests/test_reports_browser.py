"""The reports page in a real browser (Debian's chromium driven by Playwright) against gunicorn:
an admin signs in, opens the seeded range, Chart.js has drawn each chart with the seeded
numbers, and the CSV the page offers holds the same numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import app_config, empty_tables, gunicorn_server
from tests.test_console_browser import CHROMIUM, _browser_or_skip, policy_watch
from tests.test_reports import PASSWORD, RANGE, seed

pytestmark = pytest.mark.server

CHART_DATA = """slug => {
  const canvas = document.querySelector(`canvas[data-chart="${slug}"]`);
  const chart = Chart.getChart(canvas);
  if (!chart) return null;
  return {labels: chart.data.labels, data: chart.data.datasets.map(set => set.data),
          width: canvas.width, height: canvas.height};
}"""


@pytest.fixture
def playwright_api() -> Any:
    return _browser_or_skip()


@pytest.fixture
def reports_line(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[str]:
    """gunicorn on the seeded data set, days counted in Berlin time."""
    from ivr import create_app

    app: Flask = create_app(app_config(database_url, REDIS_URL=redis_url))
    seed(app)
    env = {"IVR_DATABASE_URL": database_url, "IVR_REDIS_URL": redis_url,
           "IVR_DISPLAY_TIMEZONE": "Europe/Berlin"}
    try:
        with gunicorn_server(env, tmp_path, workers=1) as base:
            yield base
    finally:
        empty_tables(app)


def test_an_admin_sees_charts_of_the_seeded_range_and_the_csv_matches(
        playwright_api: Any, reports_line: str) -> None:
    from playwright.sync_api import expect

    base = reports_line
    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page(accept_downloads=True)
        violations = policy_watch(page)
        page.goto(base + "/console/sign-in")
        page.get_by_label("User name").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()

        page.goto(f"{base}/admin/reports?from={RANGE['from']}&to={RANGE['to']}")
        expect(page.get_by_role("heading", name="Calls per day")).to_be_visible()
        page.wait_for_function("typeof Chart !== 'undefined' && Chart.getChart("
                               "document.querySelector('canvas[data-chart=\"calls-by-day\"]'))")
        by_day = page.evaluate(CHART_DATA, "calls-by-day")
        assert by_day["labels"] == ["2026-03-02", "2026-03-03", "2026-03-04"]
        assert by_day["data"] == [[2, 3, 2]]
        assert by_day["width"] > 0 and by_day["height"] > 0
        by_branch = page.evaluate(CHART_DATA, "calls-by-branch")
        assert by_branch["labels"][0] == "password" and by_branch["data"][0][0] == 3

        for slug in ("calls-by-day", "calls-by-branch", "satisfaction-agents"):
            drawn = page.evaluate(CHART_DATA, slug)
            with page.expect_download() as download:
                page.locator(f"#{slug} a.csv").click()
            rows = list(csv.reader(io.StringIO(
                Path(download.value.path()).read_text(encoding="utf-8"))))
            header, body = rows[0], rows[1:]
            assert drawn["labels"] == [row[0] for row in body], slug
            plotted = [i for i, name in enumerate(header) if i and name in (
                "calls", "average_score")]
            assert drawn["data"] == [[float(row[i]) if "." in row[i] else int(row[i])
                                      for row in body] for i in plotted], slug
        assert violations == []
        page.get_by_role("button", name="Sign out").click()  # the reports page has one too
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        assert page.goto(f"{base}/admin/reports").url.startswith(f"{base}/console/sign-in")
        browser.close()


def test_an_agent_gets_403_in_the_browser(playwright_api: Any, reports_line: str) -> None:
    base = reports_line
    with playwright_api() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        page.goto(base + "/console/sign-in")
        page.get_by_label("User name").fill("ben")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_load_state()
        answer = page.goto(f"{base}/admin/reports")
        assert answer is not None and answer.status == 403
        browser.close()
