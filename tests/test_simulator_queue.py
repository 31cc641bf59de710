"""A simulated caller waiting in a Twilio queue: the hold loop, keys and hang-ups while waiting,
and the line dequeuing the caller through the stand-in into a conference with an agent.

The line here is a small Flask app serving the TwiML documents of the queue design (enter,
wait, key, left, connect, talked) and checking Twilio's signatures like the real app; it
dequeues callers with the twilio library against the stand-in, as the agent webhooks do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from click.testing import CliRunner
from flask import Flask, Response, request
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse
from werkzeug.serving import make_server

from callbacks.settings import Settings
from callbacks.telephony import close_clients, twilio_client
from ivr.simulator import (
    HANGUP,
    CallTranscript,
    GatherPrompt,
    ScriptedCaller,
    ScriptError,
    Simulator,
    call_command,
    format_event,
)
from ivr.simulator.stepwise import continue_call, start_call
from ivr.standin import StandinServer

ACCOUNT = "AC" + "4" * 32
STANDIN_TOKEN = "standin-queue-token-0123456789"
TOKEN = "queue-test-auth-token-0123456789ab"
PUBLIC = "https://support.example.test"
CONNECT = f"{PUBLIC}/voice/queue/connect?s=en&live=7"
AGENT_PHONE = "+4930555011"
LINE_NUMBER = "+493012345678"
CALLER_PHONE = "+4930901820"


# --- the line: TwiML of the queue design, signatures checked ------------------------


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def line_app(standin: StandinServer, settings: dict[str, Any],
             log: list[dict[str, Any]]) -> Flask:
    """The queue webhooks of the design, with knobs in `settings` for each scenario."""
    app = Flask(__name__)
    validator = RequestValidator(TOKEN)

    def rest() -> Any:
        return twilio_client(Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                                      twilio_auth_token=STANDIN_TOKEN,
                                      twilio_api_base_url=standin.url))

    @app.before_request
    def check_signature() -> Response | None:
        query = request.query_string.decode()
        # The agent's leg is posted to the URL of the REST call, the caller's to the public one.
        root = request.host_url.rstrip("/") if request.path.startswith("/dialer") else PUBLIC
        url = root + request.path + (f"?{query}" if query else "")
        params = request.form.to_dict()
        log.append({"path": request.path, "args": request.args.to_dict(), "params": params})
        if not validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")):
            return Response("bad signature", status=403)
        return None

    def enqueue(response: VoiceResponse, action: bool = True) -> None:
        response.say("Please hold, the next agent will take your call.")
        response.enqueue(settings.get("queue", "servicedesk"),
                         action="/voice/queue/left?s=en" if action else None, method="POST",
                         wait_url=settings.get("wait_url", "/voice/queue/wait?s=en"),
                         wait_url_method="POST")

    @app.post("/voice")
    def voice() -> Response:
        r = VoiceResponse()
        enqueue(r)
        return _twiml(r)

    @app.post("/voice/no-action")
    def voice_no_action() -> Response:
        r = VoiceResponse()
        enqueue(r, action=False)
        r.say("Back from the queue.")
        r.hangup()
        return _twiml(r)

    @app.post("/voice/no-wait-url")
    def voice_no_wait_url() -> Response:
        r = VoiceResponse()
        r.enqueue("servicedesk", action="/voice/queue/left?s=en")
        return _twiml(r)

    @app.post("/voice/conference")
    def conference_outside_a_queue() -> Response:
        r = VoiceResponse()
        r.leave()
        dial = Dial()
        dial.conference("room-1")
        r.append(dial)
        r.say("After the conference.")
        r.hangup()
        return _twiml(r)

    @app.post("/voice/queue/wait")
    def wait() -> Response:
        form = request.form
        passes = settings["passes"] = settings.get("passes", 0) + 1
        line_does = settings.get("on_pass", {}).get(passes)
        if line_does == "dequeue":
            rest().queues(form["QueueSid"]).members(form["CallSid"]).update(
                url=CONNECT, method="POST")
        elif line_does == "complete":
            rest().calls(form["CallSid"]).update(status="completed")
        elif line_does == "twiml":
            rest().calls(form["CallSid"]).update(
                twiml="<Response><Say>Moved to another line.</Say><Hangup/></Response>")
        elif line_does == "reset":
            standin.reset()
        elif line_does == "ring":  # an agent is free: ring their phone for this caller
            agent = f"{request.host_url}dialer/live/agent?" + urlencode(
                {"offer": "1", "queue": form["QueueSid"], "caller": form["CallSid"]})
            rest().calls.create(to=AGENT_PHONE, from_=LINE_NUMBER, url=agent,
                                status_callback=f"{request.host_url}dialer/live/agent-status")
        r = VoiceResponse()
        if settings.get("wait_leaves"):
            r.leave()
            return _twiml(r)
        if settings.get("wait_dials"):
            r.dial("+4930111222")
            return _twiml(r)
        r.say(f"You are number {form['QueuePosition']} in line.")
        if settings.get("music_only"):
            r.play("https://cdn.example.test/hold.mp3")
            return _twiml(r)
        gather = Gather(num_digits=1, action="/voice/queue/key?s=en", timeout=5)
        gather.say("Press 1 to be called back and keep your place, 2 for voicemail.")
        gather.pause(length=30)
        r.append(gather)
        return _twiml(r)

    @app.post("/voice/queue/key")
    def key() -> Response:
        r = VoiceResponse()
        if request.form.get("Digits") in ("1", "2"):
            r.leave()
        else:
            r.redirect("/voice/queue/wait?s=en")
        return _twiml(r)

    @app.post("/voice/queue/left")
    def left() -> Response:
        r = VoiceResponse()
        result = request.form["QueueResult"]
        if result == "leave":
            r.say("We will call you back. Goodbye.")
            r.hangup()
        elif result in ("redirected", "bridged"):
            connect(r)
        elif result == "queue-full":
            r.say("All lines are busy.")
            r.hangup()
        return _twiml(r)

    def connect(r: VoiceResponse) -> None:
        dial = Dial(action="/voice/queue/talked?s=en")
        dial.conference("live-7", beep=False, end_conference_on_exit=True)
        r.append(dial)

    @app.post("/voice/queue/connect")
    def connect_view() -> Response:
        r = VoiceResponse()
        connect(r)
        return _twiml(r)

    @app.post("/voice/queue/talked")
    def talked() -> Response:
        r = VoiceResponse()
        r.say("Thank you for calling the service desk.")
        r.hangup()
        return _twiml(r)

    @app.post("/voice/status")
    @app.post("/dialer/live/agent-status")
    @app.post("/dialer/agent-status")
    def status() -> Response:
        return Response(status=204)

    @app.post("/dialer/live/agent")
    def agent_answered() -> Response:
        r = VoiceResponse()
        try:
            rest().queues(request.args["queue"]).members(request.args["caller"]).update(
                url=CONNECT, method="POST")
        except TwilioRestException as gone:
            if gone.status != 404:
                raise
            r.say("The caller has hung up.")
            r.hangup()
            return _twiml(r)
        r.say("Caller from Berlin about password, waited 2 minutes, priority P2.")
        dial = Dial()
        dial.conference("live-7", start_conference_on_enter=True, end_conference_on_exit=True)
        r.append(dial)
        return _twiml(r)

    @app.post("/dialer/agent")
    def agent_for_callback() -> Response:
        r = VoiceResponse()
        r.say("Callback for ticket 42, network.")
        r.dial(CALLER_PHONE, action=f"{request.host_url}dialer/bridged")
        return _twiml(r)

    @app.post("/dialer/bridged")
    def bridged() -> Response:
        r = VoiceResponse()
        r.say(f"The caller's phone: {request.form['DialCallStatus']}.")
        return _twiml(r)

    return app


@pytest.fixture(scope="module")
def standin() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT, STANDIN_TOKEN) as server:
        yield server
    close_clients()


@pytest.fixture(scope="module")
def line_server(standin: StandinServer) -> Iterator[tuple[str, dict[str, Any],
                                                          list[dict[str, Any]]]]:
    settings: dict[str, Any] = {}
    log: list[dict[str, Any]] = []
    http = make_server("127.0.0.1", 0, line_app(standin, settings, log), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", settings, log
    finally:
        http.shutdown()
        thread.join(timeout=5)


@dataclass
class Line:
    """The running line: its URL, the scenario's knobs, and every request it received."""

    url: str
    settings: dict[str, Any]
    log: list[dict[str, Any]]


@pytest.fixture()
def line(line_server, standin) -> Line:
    url, settings, log = line_server
    settings.clear()
    log.clear()
    standin.reset()
    return Line(url, settings, log)


def simulator(url: str, standin: StandinServer | None, **options: Any) -> Simulator:
    options.setdefault("max_wait_passes", 5)
    return Simulator(url, TOKEN, account_sid=ACCOUNT, public_base_url=PUBLIC,
                     standin_url=standin.url if standin else None, **options)


def place(url: str, standin: StandinServer | None, script: list[str],
          **options: Any) -> CallTranscript:
    entry = options.pop("entry_path", "/voice")
    return simulator(url, standin, entry_path=entry, **options).run(ScriptedCaller(script))


def requests_to(log: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [entry for entry in log if entry["path"] == path]


def kinds(transcript: CallTranscript) -> list[str]:
    return [e.kind for e in transcript.events if e.kind not in ("request", "say", "pause",
                                                                 "play", "gather")]


# --- waiting -------------------------------------------------------------------------


def test_a_silent_caller_hears_each_pass_then_gives_up_after_the_last(line, standin):

    transcript = place(line.url, standin, [], max_wait_passes=3)

    assert not transcript.failed, transcript.failures
    waits = requests_to(line.log, "/voice/queue/wait")
    assert len(waits) == 3 and all(w["params"]["QueuePosition"] == "1" for w in waits)
    queue_sids = {w["params"]["QueueSid"] for w in waits}
    assert len(queue_sids) == 1 and queue_sids.pop().startswith("QU")
    times = [int(w["params"]["QueueTime"]) for w in waits]
    assert times == sorted(times) and times[-1] > times[0]
    assert {w["params"]["CurrentQueueSize"] for w in waits} == {"1"}
    assert all(w["params"]["AvgQueueTime"].isdigit() for w in waits)
    [left] = requests_to(line.log, "/voice/queue/left")
    assert left["params"]["QueueResult"] == "hangup"
    assert int(left["params"]["QueueTime"]) >= times[-1]
    assert left["params"]["CallStatus"] == "completed"
    assert [e["path"] for e in line.log][-1] == "/voice/status"
    assert transcript.said().count("You are number 1 in line.") == 3
    assert kinds(transcript) == ["enqueue", "wait", "wait", "wait", "hangup", "leave", "status"]
    assert standin.queues.whereabouts(transcript.call_sid) is None


def test_the_wait_url_hears_the_callers_place_from_the_standin(line, standin):
    for n in range(2):
        standin.queues.join("servicedesk", "CA" + str(n) * 32)

    place(line.url, standin, [], max_wait_passes=1)

    [wait] = requests_to(line.log, "/voice/queue/wait")
    assert (wait["params"]["QueuePosition"], wait["params"]["CurrentQueueSize"]) == ("3", "3")


def test_pressing_1_after_two_silent_passes_leaves_through_the_action(line, standin):

    transcript = place(line.url, standin, ["wait:2", "1"])

    assert not transcript.failed, transcript.failures
    assert len(requests_to(line.log, "/voice/queue/wait")) == 3
    [key] = requests_to(line.log, "/voice/queue/key")
    assert key["params"]["Digits"] == "1" and key["params"]["QueueSid"].startswith("QU")
    [left] = requests_to(line.log, "/voice/queue/left")
    assert left["params"]["QueueResult"] == "leave" and left["params"]["CallStatus"] == (
        "in-progress")
    assert transcript.said()[-1] == "We will call you back. Goodbye."
    leave = next(e for e in transcript.events if e.kind == "leave")
    assert leave.detail["result"] == "leave"
    assert standin.queues.whereabouts(transcript.call_sid) is None


def test_hanging_up_at_the_hold_loops_gather_abandons_the_queue(line, standin):

    transcript = place(line.url, standin, ["wait:1", "hangup"])

    assert not transcript.failed
    assert len(requests_to(line.log, "/voice/queue/wait")) == 2
    [left] = requests_to(line.log, "/voice/queue/left")
    assert left["params"]["QueueResult"] == "hangup"
    assert [e["path"] for e in line.log][-2:] == ["/voice/queue/left", "/voice/status"]
    hangup = next(e for e in transcript.events if e.kind == "hangup")
    assert hangup.detail["by"] == "caller"
    assert standin.queues.whereabouts(transcript.call_sid) is None


def test_other_keys_go_back_to_the_hold_loop(line, standin):

    transcript = place(line.url, standin, ["7", "hangup"])

    assert [e["path"] for e in line.log][:5] == ["/voice", "/voice/queue/wait", "/voice/queue/key",
                                            "/voice/queue/wait", "/voice/queue/left"]
    assert requests_to(line.log, "/voice/queue/wait")[1]["params"]["QueueSid"].startswith("QU")
    assert [e.detail["pass"] for e in transcript.events if e.kind == "wait"] == [1, 2]


def test_hold_music_without_a_gather_hangs_up_when_the_script_says(line, standin):
    line.settings["music_only"] = True

    transcript = place(line.url, standin, ["wait:2", "hangup"])

    assert len(requests_to(line.log, "/voice/queue/wait")) == 3
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "hangup"
    assert any(e.kind == "play" and e.text.endswith("hold.mp3") for e in transcript.events)


# --- dequeued by the line ------------------------------------------------------------


def test_dequeued_by_a_member_update_the_caller_talks_in_the_conference(line, standin):
    line.settings["on_pass"] = {2: "dequeue"}

    transcript = place(line.url, standin, [], dial_talk_seconds=95)

    assert not transcript.failed, transcript.failures
    paths = [e["path"] for e in line.log]
    assert paths == ["/voice", "/voice/queue/wait", "/voice/queue/wait", "/voice/queue/left",
                     "/voice/queue/connect", "/voice/queue/talked", "/voice/status"]
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "redirected"
    assert requests_to(line.log, "/voice/queue/connect")[0]["args"] == {"s": "en", "live": "7"}
    [talked] = requests_to(line.log, "/voice/queue/talked")
    assert talked["params"]["DialCallStatus"] == "completed"
    assert talked["params"]["DialCallDuration"] == "95"
    [conference] = [e for e in transcript.events if e.kind == "conference"]
    assert conference.text == "live-7" and conference.detail["talk_seconds"] == 95
    assert conference.detail["attributes"]["endConferenceOnExit"] == "true"
    assert transcript.said()[-1] == "Thank you for calling the service desk."
    assert kinds(transcript) == ["enqueue", "wait", "wait", "dequeue", "conference", "hangup",
                                 "status"]
    assert transcript.duration >= 95


def test_a_waiting_caller_is_dequeued_by_the_line_through_the_twilio_library(line, standin):
    sim = simulator(line.url, standin, max_wait_passes=200, wait_pace=0.02)
    result: dict[str, CallTranscript] = {}
    caller = threading.Thread(target=lambda: result.update(
        call=sim.run(ScriptedCaller([]))), daemon=True)
    caller.start()
    client = twilio_client(Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                                    twilio_auth_token=STANDIN_TOKEN,
                                    twilio_api_base_url=standin.url))
    deadline = time.monotonic() + 10
    while not (queues := client.queues.list()) or not queues[0].current_size:
        assert time.monotonic() < deadline, "the caller never joined the queue"
        time.sleep(0.02)
    [member] = client.queues(queues[0].sid).members.list()

    client.queues(queues[0].sid).members(member.call_sid).update(url=CONNECT, method="POST")
    caller.join(timeout=10)

    transcript = result["call"]
    assert transcript.call_sid == member.call_sid and not transcript.failed
    assert any(e.kind == "conference" for e in transcript.events)
    assert len(requests_to(line.log, "/voice/queue/wait")) < 200
    assert requests_to(line.log, "/voice/queue/connect")
    assert client.queues(queues[0].sid).fetch().current_size == 0


def test_a_caller_who_hung_up_cannot_be_dequeued_any_more(line, standin):

    transcript = place(line.url, standin, ["hangup"])
    queue_sid = requests_to(line.log, "/voice/queue/wait")[0]["params"]["QueueSid"]
    client = twilio_client(Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                                    twilio_auth_token=STANDIN_TOKEN,
                                    twilio_api_base_url=standin.url))

    with pytest.raises(TwilioRestException) as refused:
        client.queues(queue_sid).members(transcript.call_sid).update(url=CONNECT)
    assert refused.value.status == 404 and refused.value.code == 20404


def test_the_line_ending_a_waiting_call_hangs_it_up(line, standin):
    line.settings["on_pass"] = {2: "complete"}

    transcript = place(line.url, standin, [])

    assert len(requests_to(line.log, "/voice/queue/wait")) == 2
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "hangup"
    hangup = next(e for e in transcript.events if e.kind == "hangup")
    assert hangup.detail["by"] == "line"
    assert [e["path"] for e in line.log][-1] == "/voice/status"


def test_a_call_update_with_twiml_plays_that_twiml(line, standin):
    line.settings["on_pass"] = {1: "twiml"}

    transcript = place(line.url, standin, [])

    assert transcript.said()[-1] == "Moved to another line."
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "redirected"
    assert not requests_to(line.log, "/voice/queue/connect")


def test_a_stand_in_that_forgot_the_caller_gets_them_back_in_line(line, standin):
    line.settings["on_pass"] = {1: "reset", 2: "dequeue"}

    transcript = place(line.url, standin, [])

    assert not transcript.failed, transcript.failures
    assert any(e.kind == "conference" for e in transcript.events)


def test_an_unreachable_stand_in_fails_the_call(line):
    sim = Simulator(line.url, TOKEN, public_base_url=PUBLIC, standin_url="http://127.0.0.1:9")

    transcript = sim.run(ScriptedCaller([]))

    assert transcript.failures[0].detail["reason"] == "standin"
    assert not requests_to(line.log, "/voice/queue/wait")


# --- other ways out ------------------------------------------------------------------


def test_leave_without_an_action_goes_on_after_enqueue(line, standin):
    line.settings["wait_leaves"] = True

    transcript = place(line.url, standin, [], entry_path="/voice/no-action")

    assert transcript.said() == ["Please hold, the next agent will take your call.",
                                 "Back from the queue."]
    assert not requests_to(line.log, "/voice/queue/left")
    assert standin.queues.whereabouts(transcript.call_sid) is None


def test_a_full_queue_turns_the_caller_away_through_the_action(line, standin):
    standin.queues.create("servicedesk", max_size=1)
    standin.queues.join("servicedesk", "CA" + "9" * 32)

    transcript = place(line.url, standin, [])

    assert not requests_to(line.log, "/voice/queue/wait")
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "queue-full"
    assert transcript.said()[-1] == "All lines are busy."


def test_without_a_wait_url_twilios_own_hold_music_plays(line, standin):

    transcript = place(line.url, standin, [], entry_path="/voice/no-wait-url", max_wait_passes=2)

    music = [e for e in transcript.events if e.kind == "play"]
    assert len(music) == 2 and music[0].text == "Twilio's default hold music"
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueTime"] == "60"


def test_dial_and_record_are_not_allowed_in_a_hold_loop(line, standin):
    line.settings["wait_dials"] = True

    transcript = place(line.url, standin, [])

    assert transcript.failures[0].detail["reason"] == "invalid-twiml"
    assert "<Dial> is not allowed" in transcript.failures[0].text


def test_without_a_stand_in_the_caller_waits_alone(line):

    transcript = place(line.url, None, [], max_wait_passes=3)

    waits = requests_to(line.log, "/voice/queue/wait")
    assert len(waits) == 3 and {w["params"]["QueuePosition"] for w in waits} == {"1"}
    assert len({w["params"]["QueueSid"] for w in waits}) == 1
    enqueue = next(e for e in transcript.events if e.kind == "enqueue")
    assert enqueue.detail["standin"] is False
    assert "no stand-in" in format_event(enqueue)


def test_the_hold_loop_does_not_count_against_the_request_loop_guard(line, standin):

    transcript = place(line.url, standin, [], max_requests=5, max_wait_passes=12)

    assert not transcript.failed, transcript.failures
    assert len(requests_to(line.log, "/voice/queue/wait")) == 12


def test_a_conference_and_leave_outside_a_queue(line):
    transcript = place(line.url, None, [], entry_path="/voice/conference", dial_talk_seconds=12)

    assert not transcript.failed, transcript.failures
    skipped = next(e for e in transcript.events if e.kind == "skip")
    assert "<Leave> outside" in skipped.text
    conference = next(e for e in transcript.events if e.kind == "conference")
    assert conference.text == "room-1" and conference.detail["action"] is None
    assert transcript.said() == ["After the conference."] and transcript.duration >= 12


# --- scripts and the terminal --------------------------------------------------------


def test_wait_tokens_need_a_positive_count_and_a_queue():
    for bad in (["wait:0"], ["wait:x"], ["wait:"]):
        with pytest.raises(ScriptError, match="wait:N"):
            ScriptedCaller(bad)
    caller = ScriptedCaller(["wait:2"])

    prompt = GatherPrompt("u", ("dtmf",), 5, 1, "#", "en-US", None, ())
    with pytest.raises(ScriptError, match="came at a <Gather>"):
        caller.gather(prompt)


def test_the_call_command_waits_in_a_queue_at_the_stand_in(line, standin):

    result = CliRunner().invoke(call_command(), [
        "--url", line.url, "--token", TOKEN, "--public-url", PUBLIC, "--standin", standin.url,
        "--script", "wait:1,hangup", "--wait-pace", "0"])

    assert result.exit_code == 0, result.output
    assert "⏳ waiting in queue servicedesk, position 1" in result.output
    assert "⏳ hold loop pass 2: position 1 of 1" in result.output
    assert "↩ hung up in queue servicedesk after" in result.output


def test_the_call_command_shows_a_dequeue_and_the_conference(line, standin):
    line.settings["on_pass"] = {1: "dequeue"}

    result = CliRunner().invoke(call_command(), [
        "--url", line.url, "--token", TOKEN, "--public-url", PUBLIC, "--standin", standin.url,
        "--wait-pace", "0", "--talk", "30"])

    assert result.exit_code == 0, result.output
    assert "☎ dequeued from servicedesk after" in result.output
    assert "/voice/queue/connect?s=en&live=7" in result.output
    assert "☎ talking in conference live-7 for 30 s" in result.output


def test_the_call_command_refuses_a_bad_max_wait(line):

    result = CliRunner().invoke(call_command(), ["--url", line.url, "--token", TOKEN,
                                                 "--max-wait-passes", "0"])

    assert result.exit_code == 2 and "max-wait-passes" in result.output


# --- step by step (the admin simulator page) -----------------------------------------


def test_a_stepwise_call_stops_at_each_hold_loop_gather_and_hangs_up(line, standin):
    sim = simulator(line.url, standin)

    first = start_call(sim)
    assert first.waiting == "gather" and first.prompt is not None
    assert first.prompt.queue is not None and first.prompt.queue.queue == "servicedesk"
    second = continue_call(sim, first.state, None)  # silence: the next pass
    assert second.waiting == "gather" and second.prompt.queue.passes == 2
    assert second.state is not None and second.state.queue is not None
    over = continue_call(sim, second.state, HANGUP)

    assert over.waiting is None and not over.failures
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "hangup"
    assert len(requests_to(line.log, "/voice/queue/wait")) == 2
    assert standin.queues.whereabouts(first.state.call_sid) is None


def test_a_stepwise_call_keeps_waiting_through_hold_music_until_dequeued(line, standin):
    line.settings["music_only"] = True
    line.settings["on_pass"] = {2: "dequeue"}
    sim = simulator(line.url, standin)

    first = start_call(sim)
    assert first.waiting == "wait" and first.prompt.passes == 1
    second = continue_call(sim, first.state, None)
    assert second.waiting == "wait"
    over = continue_call(sim, second.state, None)

    assert over.waiting is None and not over.failures
    assert [e.kind for e in over.events if e.kind in ("dequeue", "conference")] == [
        "dequeue", "conference"]
    assert requests_to(line.log, "/voice/queue/talked")


def test_a_stepwise_call_presses_1_while_waiting(line, standin):
    sim = simulator(line.url, standin)

    first = start_call(sim)
    over = continue_call(sim, first.state, "1")

    assert over.waiting is None
    assert [e.text for e in over.events if e.kind == "say"][-1] == (
        "We will call you back. Goodbye.")
    assert requests_to(line.log, "/voice/queue/left")[0]["params"]["QueueResult"] == "leave"


def test_a_stepwise_leave_without_action_goes_on_in_the_entry_document(line, standin):
    sim = simulator(line.url, standin, entry_path="/voice/no-action")

    first = start_call(sim)
    line.settings["wait_leaves"] = True
    over = continue_call(sim, first.state, None)

    assert over.waiting is None and not over.failures
    assert [e.text for e in over.events if e.kind == "say"][-1] == "Back from the queue."


def test_the_stand_in_answers_control_requests_for_queue_names_with_spaces(line, standin):
    line.settings["queue"] = "service desk/de"

    transcript = place(line.url, standin, ["hangup"])

    assert not transcript.failed, transcript.failures
    assert requests.get(f"{standin.url}/_standin/queues/members/{transcript.call_sid}",
                        timeout=5).status_code == 404
    assert [q["friendly_name"] for q in standin.queues.queue_resources()] == ["service desk/de"]
