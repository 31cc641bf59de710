"""The chaos run's short form (benchmarks/chaos.py --short): calls keep coming while Redis is
restarted and flushed, a worker is killed mid-transcription, PostgreSQL connections are cut and
Twilio fails or stalls; callers also wait in line for two agents who sometimes let their phone
ring out; afterwards nothing is lost and nothing was done twice, live callers included."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from benchmarks.chaos import FAULT_KINDS
from tests.conftest import ADMIN_URL, REPORTS, ROOT

pytestmark = pytest.mark.server


def test_the_short_chaos_run_loses_nothing_and_does_nothing_twice(
        request: pytest.FixtureRequest) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "chaos.py"), "--short",
         "--admin-url", ADMIN_URL],
        capture_output=True, text=True, timeout=280, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output = run.stdout + run.stderr
    assert "=== chaos report ===" in run.stdout, output[-6000:]
    # Shown at the end of the test run's output, passed or not (tests/conftest.py).
    request.config.stash[REPORTS].append(
        "chaos run, short form\n" + run.stdout[run.stdout.index("=== chaos report ==="):])
    lines = [line for line in run.stdout.splitlines() if line.startswith("CHAOS_COUNTS ")]
    assert len(lines) == 1, output[-6000:]
    counts = json.loads(lines[0].removeprefix("CHAOS_COUNTS "))

    assert counts["calls_placed"] >= 10, output[-6000:]
    assert counts["voicemails"] >= 5 and counts["callback_requests"] >= 2, counts
    assert counts["lost"] == 0, output[-6000:]
    assert counts["duplicates"] == 0, output[-6000:]
    assert counts["application_errors"] == 0, output[-6000:]
    assert counts["converged"], output[-6000:]
    assert counts["voicemails_with_one_ticket"] == counts["voicemails"], counts
    assert set(counts["callback_requests_by_status"]) <= {"pending", "done", "unreachable"}
    assert set(counts["faults_injected"]) == set(FAULT_KINDS), counts["faults_injected"]
    assert counts["live_callers"] >= 3 and counts["live_bridged"] >= 1, counts
    assert counts["live_lost"] == 0 and counts["live_duplicated"] == 0, counts["live_detail"]
    assert counts["live_detail"]["stuck_samples"] >= 10, counts["live_detail"]
    assert run.returncode == 0, output[-6000:]
