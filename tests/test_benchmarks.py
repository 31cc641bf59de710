"""The benchmarks still run: each with its smallest options as a subprocess, exit 0 and its
summary printed (figures are never judged here: tests assert behaviour, not speed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ADMIN_URL, ROOT

pytestmark = pytest.mark.server


def run_benchmark(script: str, *options: str) -> str:
    """Run benchmarks/`script` with `options`; its output, once it exited 0."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--admin-url", ADMIN_URL, *options],
        capture_output=True, text=True, timeout=180, cwd=ROOT, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    return run.stdout


def test_the_routing_benchmark_runs_and_prints_its_summary() -> None:
    out = run_benchmark("routing.py", "--items", "200", "--agents", "20", "--samples", "20",
                        "--rounds", "1", "--rings", "5")
    assert "EXPLAIN (ANALYZE, BUFFERS) of the claim for one agent:" in out
    for line in ("assign, bare SQL (psycopg, same statement)",
                 "assign, project (assign_next on the claim engine)",
                 "agent available -> phone rung (worker, stand-in)",
                 "for reference: a trivial rq job, enqueue -> done"):
        assert re.search(rf"{re.escape(line)}\s+\d+\s+[\d.]+ ms\s+[\d.]+ ms", out), (line, out)
    assert "problem:" not in out
    assert re.search(r"^dropped database ivr_bench_routing_\w+$", out, re.M), out[-2000:]


def test_the_outbox_benchmark_runs_and_prints_its_summary() -> None:
    out = run_benchmark("outbox.py", "--quick")
    assert "outbox benchmark: 10 tickets x 2 events x 2 connectors" in out
    for name in ("outbox round 1", "bare round 1", "outbox live"):
        assert re.search(rf"^{name}\s+40\s+[\d.]+\s+[\d.]+", out, re.M), (name, out)
    assert re.search(r"^outbox / bare loop throughput per round: .*median [\d.]+x", out, re.M)
    assert "deliveries tried more than once:" in out
