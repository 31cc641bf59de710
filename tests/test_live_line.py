"""A live caller and an agent through real processes: gunicorn answers the calls, an `ivr
worker` process routes and rings, the stand-in plays Twilio's REST API and queues, `ivr call`'s
simulator is the caller and `ivr answer` the agent's phone."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from callbacks.workqueue.agents import Agent, create_agent
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.skills import set_skills
from ivr.simulator import ScriptedCaller, Simulator
from ivr.simulator.events import CallTranscript
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, LINE, gunicorn_server, line_environment, publish
from tests.test_live_queue import ALWAYS_OPEN
from tests.test_routing_concurrency import wait_for, worker

pytestmark = pytest.mark.server


@pytest.fixture
def line(app: Flask, database_url: str, redis_url: str, standin: StandinServer,
         tmp_path: Path) -> Iterator[str]:
    """gunicorn and one `ivr worker` on the demo line (always open); yields the line's URL."""
    standin.reset()
    publish(app, ALWAYS_OPEN)
    with app.extensions["ivr.sessions"]() as session:
        ana = create_agent(session, "ana", "correct horse battery", phone="+4930555010")
        ana.availability = "available"
        set_skills(session, ana.id, languages={"en": 3})
        session.commit()
    env = line_environment(database_url, redis_url, standin.url, SURVEY="false",
                           CALLBACK_FROM=LINE)
    with gunicorn_server(env, tmp_path) as base, \
            worker({**env, "IVR_PUBLIC_BASE_URL": base}, tmp_path / "worker.log"):
        yield base


def test_a_caller_waits_in_line_and_talks_to_the_agent_whose_phone_the_worker_rang(
        line: str, app: Flask, standin: StandinServer) -> None:
    simulator = Simulator(line, AUTH_TOKEN, caller="+442071838750", called=LINE,
                          standin_url=standin.url, wait_pace=0.2, max_wait_passes=300)
    result: dict[str, CallTranscript] = {}
    caller = threading.Thread(
        target=lambda: result.update(call=simulator.run(ScriptedCaller(["1", "1", "1"]))),
        daemon=True)
    caller.start()
    wait_for(lambda: [c for c in standin.calls() if c.to == "+4930555010"], 30,
             "the worker to ring the agent")

    ivr = Path(sys.executable).with_name("ivr")
    answered = subprocess.run(
        [str(ivr), "answer", "--standin", standin.url, "--token", AUTH_TOKEN, "--stay", "2"],
        capture_output=True, text=True, timeout=60, check=False, env=dict(os.environ))
    caller.join(timeout=30)

    assert answered.returncode == 0, answered.stderr
    assert "agent hears: Caller on the line:" in answered.stdout
    assert "speaking English, about password, priority P2" in answered.stdout
    transcript = result["call"]
    assert not transcript.failed, transcript.failures
    said = transcript.said()
    assert "Connecting you to the next available agent." in said
    assert "You are number 1 in line." in said
    conference = [e for e in transcript.events if e.kind == "conference"]
    assert conference and conference[0].text.startswith("live-")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with app.extensions["ivr.sessions"]() as session:
            call = session.scalar(select(LiveCall))
            offer = session.scalar(select(LiveOffer))
            agent = session.scalar(select(Agent))
        if call is not None and call.status == "done" and agent is not None \
                and agent.availability == "wrap_up":
            break
        time.sleep(0.2)
    assert call is not None and offer is not None and agent is not None
    assert (call.status, offer.stage, agent.availability) == ("done", "completed", "wrap_up")
    assert call.agent_id == agent.id and call.wait_seconds is not None
