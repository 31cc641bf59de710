"""`.ci/run`: the CI entry point runs the suite with CI=true, so the browser and HAProxy tests
fail instead of skipping when chromium or haproxy is missing, whatever the runner sets."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_ci_script_runs_the_suite_with_ci_set_even_when_the_runner_does_not(
        tmp_path: Path) -> None:
    (tmp_path / ".ci").mkdir()
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    fake_test = tmp_path / "bin" / "test"  # stands in for the real suite: reports what it got
    fake_test.write_text('#!/usr/bin/env bash\necho "CI=${CI:-unset} args=$*"\n')
    fake_test.chmod(0o755)
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    result = subprocess.run([str(tmp_path / ".ci" / "run"), "-x"], env=env, cwd="/",
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CI=true args=-x"
