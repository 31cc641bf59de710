"""`ivr answer` plays the agent's phone for calls the line placed through the stand-in: it
lists the ringing ones, answers the latest or a chosen one, whispers, talks in the live
caller's conference or bridges a callback, and reports the agent leg's end."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from werkzeug.serving import make_server

from callbacks.settings import Settings
from callbacks.telephony import close_clients, twilio_client
from ivr.simulator import CallTranscript, ScriptedCaller
from ivr.simulator.outbound import answer_command, play_outbound_call
from ivr.standin import StandinServer
from tests.test_simulator_queue import (
    ACCOUNT,
    AGENT_PHONE,
    LINE_NUMBER,
    STANDIN_TOKEN,
    TOKEN,
    Line,
    line_app,
    requests_to,
    simulator,
)


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT, STANDIN_TOKEN) as server:
        yield server
    close_clients()


@pytest.fixture(scope="module")
def line_server(standin: StandinServer) -> Iterator[Line]:
    line = Line("", {}, [])
    http = make_server("127.0.0.1", 0, line_app(standin, line.settings, line.log),
                       threaded=True)
    line.url = f"http://127.0.0.1:{http.server_port}"
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield line
    finally:
        http.shutdown()
        thread.join(timeout=5)


@pytest.fixture()
def line(line_server: Line, standin: StandinServer) -> Line:
    line_server.settings.clear()
    line_server.log.clear()
    standin.reset()
    return line_server


@pytest.fixture()
def client(standin: StandinServer) -> Any:
    return twilio_client(Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                                  twilio_auth_token=STANDIN_TOKEN,
                                  twilio_api_base_url=standin.url))


def ring(client: Any, line: Line, path: str, **query: str) -> str:
    """The line rings the agent's phone: a REST call whose Url is `path` on the line."""
    url = f"{line.url}{path}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                 if query else "")
    status = f"{line.url}{path.replace('/agent', '/agent-status')}"
    return str(client.calls.create(to=AGENT_PHONE, from_=LINE_NUMBER, url=url,
                                   status_callback=status).sid)


def answer(standin: StandinServer, *options: str) -> Any:
    return CliRunner().invoke(answer_command(), ["--standin", standin.url, "--token", TOKEN,
                                                 *options])


# --- the agent's side alone ----------------------------------------------------------


def test_list_shows_the_phones_ringing_now(line, standin, client):
    live = ring(client, line, "/dialer/live/agent", offer="3")
    callback = ring(client, line, "/dialer/agent", attempt="9")
    canceled = ring(client, line, "/dialer/live/agent", offer="4")
    client.calls(canceled).update(status="canceled")

    listed = answer(standin, "--list")

    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == 2 and not line.log  # nothing was answered
    assert lines[0].startswith(live) and "live offer 3" in lines[0] and "queued" in lines[0]
    assert lines[1].startswith(callback) and " callback " in lines[1]
    assert AGENT_PHONE in lines[0]


def test_answering_a_callback_whispers_and_bridges_the_caller(line, standin, client):
    sid = ring(client, line, "/dialer/agent", attempt="9")

    result = answer(standin, "--caller", "busy")

    assert result.exit_code == 0, result.output
    assert f"ringing {AGENT_PHONE} (callback call {sid})" in result.output
    assert "agent hears: Callback for ticket 42, network." in result.output
    assert "agent hears: The caller's phone: busy." in result.output
    [status] = requests_to(line.log, "/dialer/agent-status")
    assert status["params"]["CallStatus"] == "completed"
    assert standin.call_status(sid) == "completed"
    assert "no agent's phone is ringing" in answer(standin, "--list").output


def test_the_latest_ringing_call_is_answered_unless_one_is_chosen(line, standin, client):
    first = ring(client, line, "/dialer/agent", attempt="1")
    latest = ring(client, line, "/dialer/agent", attempt="2")

    chosen = answer(standin, "--call", first)
    default = answer(standin)

    assert first in chosen.output and latest in default.output
    assert [r["args"]["attempt"] for r in requests_to(line.log, "/dialer/agent")] == ["1", "2"]
    again = answer(standin, "--call", first)
    assert again.exit_code == 1 and "is completed, not ringing" in again.output
    nothing = answer(standin)
    assert nothing.exit_code == 1 and "no agent's phone is ringing" in nothing.output


def test_an_agent_who_does_not_answer_reports_no_answer(line, standin, client):
    sid = ring(client, line, "/dialer/live/agent", offer="1", queue="QU1", caller="CA1")

    result = answer(standin, "--agent", "no-answer")

    assert result.exit_code == 0 and "agent leg no-answer" in result.output
    assert not requests_to(line.log, "/dialer/live/agent")
    [status] = requests_to(line.log, "/dialer/live/agent-status")
    assert status["params"]["CallStatus"] == "no-answer"
    assert standin.call_status(sid) == "no-answer"


def test_a_call_the_line_canceled_only_hears_canceled(line, standin, client):
    sid = ring(client, line, "/dialer/live/agent", offer="1", queue="QU1", caller="CA1")
    client.calls(sid).update(status="canceled")

    by_default = answer(standin)
    chosen = answer(standin, "--call", sid)

    assert by_default.exit_code == 1
    assert chosen.exit_code == 0 and "canceled by the line" in chosen.output
    assert not requests_to(line.log, "/dialer/live/agent")
    [status] = requests_to(line.log, "/dialer/live/agent-status")
    assert status["params"]["CallStatus"] == "canceled"


def test_answering_a_live_call_whose_caller_hung_up(line, standin, client):
    ring(client, line, "/dialer/live/agent", offer="1", queue="QU" + "0" * 32,
         caller="CA" + "0" * 32)

    result = answer(standin)

    assert "agent hears: The caller has hung up." in result.output
    assert "conference" not in result.output


def test_an_unknown_call_or_a_missing_stand_in_is_refused(line, standin):
    unknown = answer(standin, "--call", "CA" + "1" * 32)
    missing = CliRunner().invoke(answer_command(), ["--standin", "http://127.0.0.1:9"])

    assert unknown.exit_code == 1 and "knows no call" in unknown.output
    assert missing.exit_code == 1 and "no stand-in" in missing.output


# --- a live caller and an agent, both simulated ---------------------------------------


def wait_for_ringing(standin: StandinServer) -> str:
    deadline = time.monotonic() + 10
    while True:
        ringing = [c for c in standin.calls() if standin.call_status(c.sid) == "queued"]
        if ringing:
            return ringing[-1].sid
        assert time.monotonic() < deadline, "no agent's phone rang"
        time.sleep(0.02)


def test_a_waiting_caller_and_the_agent_who_answers_meet_in_the_conference(line, standin):
    line.settings["on_pass"] = {1: "ring"}
    sim = simulator(line.url, standin, max_wait_passes=300, wait_pace=0.02,
                    dial_talk_seconds=80)
    result: dict[str, CallTranscript] = {}
    caller = threading.Thread(target=lambda: result.update(call=sim.run(ScriptedCaller([]))),
                              daemon=True)
    caller.start()
    agent_call = wait_for_ringing(standin)

    answered = answer(standin, "--talk", "80")
    caller.join(timeout=10)

    assert answered.exit_code == 0, answered.output
    assert f"(live call {agent_call})" in answered.output
    assert "agent hears: Caller from Berlin about password" in answered.output
    assert "talking with the caller in conference live-7 for 80 s" in answered.output
    transcript = result["call"]
    assert not transcript.failed, transcript.failures
    [conference] = [e for e in transcript.events if e.kind == "conference"]
    assert conference.text == "live-7"
    left = requests_to(line.log, "/voice/queue/left")
    assert [r["params"]["QueueResult"] for r in left] == ["redirected"]
    [status] = requests_to(line.log, "/dialer/live/agent-status")
    assert status["params"]["CallStatus"] == "completed"
    assert status["params"]["CallDuration"] == "80"
    assert standin.call_status(agent_call) == "completed"


def test_play_outbound_call_reports_to_the_stand_in(line, standin, client):
    sid = ring(client, line, "/dialer/agent", attempt="5")
    posted: list[tuple[str, dict[str, str]]] = []

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        posted.append((url, params))
        response = requests.post(url, data=params, headers=headers, timeout=10)
        return response.status_code, response.text

    transcript = play_outbound_call(standin.calls()[-1], TOKEN, post=post,
                                    standin_url=standin.url)

    assert transcript.heard[0] == "Callback for ticket 42, network."
    assert [p["CallStatus"] for _, p in posted] == ["in-progress", "in-progress", "completed"]
    shown = requests.get(f"{standin.url}/_standin/calls/{sid}", timeout=5).json()
    assert [u["status"] for u in shown["updates"]] == ["in-progress", "completed"]
