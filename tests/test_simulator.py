"""The phone-network simulator against a real HTTP server that checks Twilio signatures."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import soundfile
from click.testing import CliRunner
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.serving import make_server

from ivr.simulator import (
    DEFAULT_ACCOUNT_SID,
    HANGUP,
    CallEvent,
    CallTranscript,
    GatherPrompt,
    InteractiveCaller,
    Recording,
    RecordPrompt,
    ScriptedCaller,
    ScriptError,
    Simulator,
    Speech,
    call_command,
    format_event,
    scripted_caller_from_options,
)

TOKEN = "test-auth-token-0123456789abcdef"
PUBLIC = "https://ivr.example.com"


# --- a tiny IVR that answers with canned TwiML and checks signatures like our app -------


def _twiml(response: VoiceResponse) -> Response:
    return Response(str(response), mimetype="text/xml")


def make_app(settings: dict[str, Any], log: list[dict[str, Any]]) -> Flask:
    """A Flask app whose routes play one scenario each."""
    app = Flask(__name__)
    validator = RequestValidator(TOKEN)

    @app.before_request
    def check_signature() -> Response | None:
        root = settings.get("public") or request.host_url.rstrip("/")
        query = request.query_string.decode()
        url = root + request.path + (f"?{query}" if query else "")
        params = request.form.to_dict() if request.method == "POST" else {}
        log.append({"path": request.path, "query": request.args.to_dict(),
                    "method": request.method, "params": {**request.args, **params}})
        if not validator.validate(url, params, request.headers.get("X-Twilio-Signature", "")):
            return Response("bad signature", status=403)
        return None

    @app.route("/voice", methods=["POST"])
    def voice() -> Response:
        r = VoiceResponse()
        r.say("Welcome to the IT service desk.", language="en-US")
        gather = r.gather(input="dtmf speech", num_digits=1, timeout=6,
                          action="/voice/menu?step=1", hints="vpn, password")
        gather.say("Press 1 for VPN, 2 to leave a message, 3 for an agent.", language="en-US")
        r.say("We did not hear you. Goodbye.")
        r.hangup()
        return _twiml(r)

    @app.route("/voice/menu", methods=["GET", "POST"])
    def menu() -> Response:
        values = request.values
        choice = values.get("Digits") or ""
        if "vpn" in values.get("SpeechResult", "").lower():
            choice = "1"
        r = VoiceResponse()
        if choice == "1":
            r.say("VPN help.")
            r.redirect("/voice/vpn?from=menu")
        elif choice == "2":
            r.say("Leave a message after the beep.")
            r.record(action="/voice/recorded?box=it", max_length=120, finish_on_key="#",
                     recording_status_callback="/voice/recording-status")
            r.say("No message recorded. Goodbye.")
            r.hangup()
        elif choice == "3":
            r.dial("+4930111222", action="/voice/dialed", timeout=20)
        elif choice == "9":
            return Response("Internal Server Error", status=500)
        elif not choice:
            r.say("Sorry, no input.")
        else:
            r.say(f"You chose {choice}.")
        return _twiml(r)

    @app.route("/voice/vpn", methods=["POST"])
    def vpn() -> Response:
        r = VoiceResponse()
        r.say(f"Restart your VPN client (from {request.args.get('from')}).", language="de-DE")
        r.pause(length=2)
        return _twiml(r)

    @app.route("/voice/recorded", methods=["POST"])
    def recorded() -> Response:
        r = VoiceResponse()
        r.say("Thank you, your ticket is created.")
        r.hangup()
        return _twiml(r)

    @app.route("/voice/dialed", methods=["POST"])
    def dialed() -> Response:
        r = VoiceResponse()
        r.say(f"Dial status {request.form['DialCallStatus']}.")
        return _twiml(r)

    @app.route("/voice/dial-no-action", methods=["POST"])
    def dial_no_action() -> Response:
        r = VoiceResponse()
        dial = r.dial(timeout=15)
        dial.number("+4930111222")
        dial.client("agent-7")
        r.say("Nobody answered.")
        return _twiml(r)

    @app.route("/voice/on-empty", methods=["POST"])
    def on_empty() -> Response:
        r = VoiceResponse()
        r.gather(action="/voice/menu?step=empty", action_on_empty_result=True, timeout=3)
        r.say("Not reached.")
        return _twiml(r)

    @app.route("/voice/dtmf-only", methods=["POST"])
    def dtmf_only() -> Response:
        r = VoiceResponse()
        r.gather(action="/voice/menu", input="dtmf", timeout=2).say("Press a key.")
        r.say("Fell through.")
        return _twiml(r)

    @app.route("/voice/get-gather", methods=["POST"])
    def get_gather() -> Response:
        r = VoiceResponse()
        r.gather(action=f"{PUBLIC}/voice/menu?step=get", method="GET", num_digits=1)
        return _twiml(r)

    @app.route("/voice/hangup-first", methods=["POST"])
    def hangup_first() -> Response:
        r = VoiceResponse()
        r.say("Goodbye.")
        r.hangup()
        r.say("Never heard.")
        return _twiml(r)

    @app.route("/voice/error", methods=["POST"])
    def error() -> Response:
        return Response("Traceback (most recent call last): ...", status=500)

    @app.route("/voice/text", methods=["POST"])
    def text() -> Response:
        return Response("hello", mimetype="text/plain")

    @app.route("/voice/broken-xml", methods=["POST"])
    def broken_xml() -> Response:
        return Response("<Response><Say>unclosed</Response>", mimetype="text/xml")

    @app.route("/voice/html-root", methods=["POST"])
    def html_root() -> Response:
        return Response("<html><body>Sign in</body></html>", mimetype="text/xml")

    @app.route("/voice/loop", methods=["POST"])
    def loop() -> Response:
        r = VoiceResponse()
        r.say("Please hold.")
        r.redirect("/voice/loop")
        return _twiml(r)

    @app.route("/voice/status", methods=["POST"])
    @app.route("/voice/recording-status", methods=["POST"])
    def callback() -> Response:
        return Response(status=204)

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    settings: dict[str, Any] = {}
    log: list[dict[str, Any]] = []
    http = make_server("127.0.0.1", 0, make_app(settings, log), threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}", settings, log
    finally:
        http.shutdown()
        thread.join(timeout=5)


@pytest.fixture()
def base_url(server: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> str:
    url, settings, log = server
    settings.clear()
    log.clear()
    return url


@pytest.fixture()
def log(server: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return server[2]


@pytest.fixture()
def settings(server: tuple[str, dict[str, Any], list[dict[str, Any]]]) -> dict[str, Any]:
    return server[1]


@pytest.fixture()
def wav(tmp_path: Path) -> str:
    """Two seconds of 8 kHz mono silence, written without numpy."""
    path = tmp_path / "message.wav"
    with soundfile.SoundFile(path, "w", samplerate=8000, channels=1, subtype="PCM_16") as out:
        out.buffer_write(b"\x00\x00" * 16000, dtype="int16")
    return str(path)


def call(base_url: str, script: list[str], path: str = "/voice", **options: Any) -> CallTranscript:
    simulator = Simulator(base_url, options.pop("token", TOKEN), entry_path=path, **options)
    return simulator.run(ScriptedCaller(script))


def paths(log: list[dict[str, Any]]) -> list[str]:
    return [entry["path"] for entry in log]


def kinds(transcript: CallTranscript, kind: str) -> list[CallEvent]:
    return [event for event in transcript.events if event.kind == kind]


# --- signatures and URLs -------------------------------------------------------------


def test_every_request_is_signed_and_carries_twilio_parameters(base_url, log):
    transcript = call(base_url, ["1"])

    assert not transcript.failed
    assert paths(log) == ["/voice", "/voice/menu", "/voice/vpn", "/voice/status"]
    first, menu = log[0]["params"], log[1]["params"]
    assert first["CallStatus"] == "ringing" and menu["CallStatus"] == "in-progress"
    assert first["CallSid"] == transcript.call_sid and transcript.call_sid.startswith("CA")
    assert len(transcript.call_sid) == 34
    assert first["AccountSid"] == DEFAULT_ACCOUNT_SID
    assert first["From"] == first["Caller"] == "+4930901820"
    assert first["To"] == first["Called"] == "+493012345678"
    assert first["Direction"] == "inbound" and first["ApiVersion"] == "2010-04-01"
    assert first["FromCountry"] == first["ToCountry"] == "DE"
    assert menu["Digits"] == "1"
    assert log[1]["query"] == {"step": "1"}  # the action's query string was signed too


def test_redirect_resolves_relative_url_and_keeps_its_query(base_url, log):
    transcript = call(base_url, ["1"])

    assert transcript.said()[-1] == "Restart your VPN client (from menu)."
    redirect = kinds(transcript, "redirect")[0]
    assert redirect.url == f"{base_url}/voice/vpn?from=menu"
    say = kinds(transcript, "say")[-1]
    assert say.language == "de-DE"
    assert kinds(transcript, "hangup")[0].detail == {"by": "app", "reason": "end of document"}


def test_public_base_url_signs_public_urls_but_sends_to_base_url(base_url, settings, log):
    settings["public"] = PUBLIC
    transcript = call(base_url, ["1"], public_base_url=PUBLIC)

    assert not transcript.failed
    assert paths(log) == ["/voice", "/voice/menu", "/voice/vpn", "/voice/status"]
    assert kinds(transcript, "request")[1].url == f"{PUBLIC}/voice/menu?step=1"


def test_public_base_url_with_path_prefix(base_url, settings, log):
    settings["public"] = f"{PUBLIC}/hotline"
    transcript = call(base_url, [], path="/voice/hangup-first", public_base_url=f"{PUBLIC}/hotline")

    assert not transcript.failed
    assert paths(log) == ["/voice/hangup-first", "/voice/status"]
    assert kinds(transcript, "request")[0].url == f"{PUBLIC}/hotline/voice/hangup-first"


def test_signature_over_the_wrong_url_is_refused(base_url, settings):
    settings["public"] = PUBLIC
    transcript = call(base_url, ["1"])  # signs http://127.0.0.1 while the app expects PUBLIC

    assert transcript.failed
    assert transcript.failures[0].http_status == 403


def test_wrong_token_is_refused(base_url, log):
    transcript = call(base_url, ["1"], token="not-the-token")

    assert transcript.failed and transcript.failures[0].http_status == 403
    assert paths(log) == ["/voice"]  # no status callback after a failure


def test_gather_with_get_method_sends_parameters_in_the_query(base_url, settings, log):
    settings["public"] = PUBLIC
    transcript = call(base_url, ["7"], path="/voice/get-gather", public_base_url=PUBLIC)

    assert not transcript.failed
    assert log[1]["method"] == "GET"
    assert log[1]["query"]["step"] == "get" and log[1]["query"]["Digits"] == "7"
    assert transcript.said() == ["You chose 7."]


# --- Gather --------------------------------------------------------------------------


def test_gather_hears_nested_prompt_then_posts_digits(base_url, log):
    events: list[CallEvent] = []
    transcript = Simulator(base_url, TOKEN).run(ScriptedCaller(["12"]), on_event=events.append)

    assert events == transcript.events
    assert transcript.said()[:2] == [
        "Welcome to the IT service desk.",
        "Press 1 for VPN, 2 to leave a message, 3 for an agent.",
    ]
    listen, result = kinds(transcript, "gather")
    assert listen.detail["input"] == ("dtmf", "speech") and listen.detail["timeout"] == 6
    assert result.detail["digits"] == "1" and result.detail["discarded"] == "2"  # numDigits=1
    assert log[1]["params"]["Digits"] == "1"


def test_gather_posts_speech(base_url, log):
    transcript = call(base_url, ["say:my VPN is broken"])

    params = log[1]["params"]
    assert params["SpeechResult"] == "my VPN is broken" and float(params["Confidence"]) > 0
    assert "Digits" not in params
    assert "VPN help." in transcript.said()


def test_gather_silence_falls_through_to_the_next_verb(base_url, log):
    transcript = call(base_url, ["-"])

    assert transcript.said()[-1] == "We did not hear you. Goodbye."
    assert paths(log) == ["/voice", "/voice/status"]
    assert kinds(transcript, "hangup")[0].detail["verb"] == "Hangup"


def test_only_the_finish_key_counts_as_no_input(base_url, log):
    transcript = call(base_url, ["#"])

    assert transcript.said()[-1] == "We did not hear you. Goodbye."
    assert "/voice/menu" not in paths(log)


def test_action_on_empty_result_posts_without_digits(base_url, log):
    transcript = call(base_url, ["-"], path="/voice/on-empty")

    assert paths(log)[:2] == ["/voice/on-empty", "/voice/menu"]
    assert "Digits" not in log[1]["params"]
    assert transcript.said() == ["Sorry, no input."]


def test_speech_at_a_dtmf_only_gather_is_not_heard(base_url, log):
    transcript = call(base_url, ["say:hello"], path="/voice/dtmf-only")

    assert transcript.said() == ["Press a key.", "Fell through."]
    assert "does not listen for speech" in kinds(transcript, "gather")[1].detail["ignored"]


# --- Record --------------------------------------------------------------------------


def test_record_posts_action_then_recording_status_callback(base_url, log, wav):
    transcript = call(base_url, ["2", f"wav:{wav}"])

    assert not transcript.failed
    assert paths(log) == ["/voice", "/voice/menu", "/voice/recorded",
                          "/voice/recording-status", "/voice/status"]
    action, status = log[2]["params"], log[3]["params"]
    sid = action["RecordingSid"]
    assert sid.startswith("RE") and len(sid) == 34
    assert action["RecordingUrl"] == (
        f"https://api.twilio.com/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Recordings/{sid}")
    assert action["RecordingDuration"] == "2" and action["Digits"] == "#"
    assert log[2]["query"] == {"box": "it"}
    assert status["RecordingStatus"] == "completed" and status["RecordingSid"] == sid
    assert status["RecordingUrl"] == action["RecordingUrl"]
    assert status["RecordingDuration"] == "2" and status["RecordingChannels"] == "1"
    assert status["RecordingSource"] == "RecordVerb"
    assert status["CallSid"] == transcript.call_sid
    assert transcript.recordings == {sid: wav}
    assert transcript.said()[-1] == "Thank you, your ticket is created."
    assert kinds(transcript, "record")[1].detail["duration"] == pytest.approx(2.0)


def test_recording_base_url_is_configurable(base_url, log, wav):
    call(base_url, ["2", f"wav:{wav}"], recording_base_url="http://127.0.0.1:9/twilio")

    assert log[2]["params"]["RecordingUrl"].startswith(
        "http://127.0.0.1:9/twilio/2010-04-01/Accounts/")


def test_empty_recording_skips_the_action(base_url, log):
    transcript = call(base_url, ["2", "-"])

    assert paths(log) == ["/voice", "/voice/menu", "/voice/status"]
    assert transcript.said()[-1] == "No message recorded. Goodbye."
    assert transcript.recordings == {}


def test_hanging_up_after_a_recording_still_delivers_it(base_url, log, wav):
    transcript = call(base_url, ["2", f"wav+hangup:{wav}"])

    assert paths(log) == ["/voice", "/voice/menu", "/voice/recorded",
                          "/voice/recording-status", "/voice/status"]
    assert log[2]["params"]["Digits"] == "hangup"
    assert log[2]["params"]["CallStatus"] == "completed"
    assert "Thank you, your ticket is created." not in transcript.said()  # TwiML ignored
    assert kinds(transcript, "hangup")[0].detail["by"] == "caller"


# --- Dial ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, "completed"), ("dial:answered", "completed"), ("dial:busy", "busy"),
     ("dial:no-answer", "no-answer"), ("dial:failed", "failed")],
)
def test_dial_posts_its_outcome_to_the_action(base_url, log, token, status):
    transcript = call(base_url, ["3"] + ([token] if token else []))

    params = log[2]["params"]
    assert log[2]["path"] == "/voice/dialed"
    assert params["DialCallStatus"] == status and params["DialCallSid"].startswith("CA")
    assert (params["DialCallDuration"] != "0") == (status == "completed")
    assert transcript.said()[-1] == f"Dial status {status}."
    assert kinds(transcript, "dial")[0].text == "+4930111222"


def test_dial_without_action(base_url, log):
    answered = call(base_url, [], path="/voice/dial-no-action")
    busy = call(base_url, ["dial:busy"], path="/voice/dial-no-action")

    assert kinds(answered, "dial")[0].text == "+4930111222, client:agent-7"
    assert "Nobody answered." not in answered.said()
    assert kinds(answered, "hangup")[0].detail["reason"] == "dial completed"
    assert busy.said() == ["Nobody answered."]


# --- endings and failures --------------------------------------------------------------


def test_hangup_ends_the_call_and_status_callback_reports_it(base_url, log):
    transcript = call(base_url, [], path="/voice/hangup-first")

    assert transcript.said() == ["Goodbye."]
    status = log[-1]["params"]
    assert log[-1]["path"] == "/voice/status"
    assert status["CallStatus"] == "completed" and int(status["CallDuration"]) >= 0
    assert status["Timestamp"].endswith("+0000")
    assert kinds(transcript, "status")[0].http_status == 204


def test_call_duration_adds_speech_timeouts_and_recordings(base_url, log, wav):
    transcript = call(base_url, ["2", f"wav:{wav}"])

    assert transcript.duration > 2.0
    assert log[-1]["params"]["CallDuration"] == str(round(transcript.duration))


def test_status_callback_can_be_turned_off(base_url, log):
    transcript = call(base_url, [], path="/voice/hangup-first", send_status=False)

    assert paths(log) == ["/voice/hangup-first"]
    assert kinds(transcript, "status")[0].detail["posted"] is False


def test_caller_hangup_ends_the_call(base_url, log):
    transcript = call(base_url, ["hangup"])

    assert paths(log) == ["/voice", "/voice/status"]
    assert kinds(transcript, "hangup")[0].detail == {"by": "caller"}


def test_scripted_caller_hangs_up_when_the_script_runs_out(base_url, log):
    transcript = call(base_url, [])

    assert paths(log) == ["/voice", "/voice/status"]
    assert kinds(transcript, "hangup")[0].text == "caller hung up"
    assert not transcript.failed


@pytest.mark.parametrize(
    ("path", "script", "reason", "http_status"),
    [
        ("/voice/error", [], "http-status", 500),
        ("/voice", ["9"], "http-status", 500),
        ("/voice/text", [], "content-type", 200),
        ("/voice/broken-xml", [], "not-xml", 200),
        ("/voice/html-root", [], "not-response", 200),
        ("/voice/nowhere", [], "http-status", 404),
    ],
)
def test_application_errors_fail_the_call(base_url, log, path, script, reason, http_status):
    transcript = call(base_url, script, path=path)

    assert transcript.failed
    failure = transcript.failures[0]
    assert failure.detail["reason"] == reason and failure.http_status == http_status
    assert transcript.events[-1] is failure
    assert "/voice/status" not in paths(log)


def test_http_500_is_visible_with_its_body(base_url):
    transcript = call(base_url, [], path="/voice/error")

    failure = transcript.failures[0]
    assert format_event(failure) == "  ✗ HTTP 500 from /voice/error"
    assert "Traceback" in failure.detail["body"]


def test_unreachable_app_fails_the_call():
    transcript = call("http://127.0.0.1:9", [], timeout=2.0)

    assert transcript.failures[0].detail["reason"] == "connection"


def test_request_loop_guard(base_url, log):
    transcript = call(base_url, [], path="/voice/loop", max_requests=5)

    assert transcript.failed and transcript.requests == 5
    assert transcript.failures[0].detail["reason"] == "max-requests"
    assert len(log) == 5


# --- callers and scripts --------------------------------------------------------------


def _prompt() -> GatherPrompt:
    return GatherPrompt(url="http://x/voice", input=("dtmf",), timeout=5, num_digits=None,
                        finish_on_key="#", language="en-US", hints=None, heard=())


def _record_prompt() -> RecordPrompt:
    return RecordPrompt(url="http://x/voice", max_length=60, timeout=5, finish_on_key="#",
                        heard=())


def test_scripted_caller_from_press_and_say():
    caller = scripted_caller_from_options("1,3", ["vpn", "password"], None)

    assert caller.remaining == ["1", "3", "say:vpn", "say:password"]
    assert [caller.gather(_prompt()) for _ in range(5)] == [
        "1", "3", Speech("vpn"), Speech("password"), HANGUP]


def test_scripted_caller_from_full_script(wav):
    caller = scripted_caller_from_options(None, [], f"1,say:vpn,-,dial:busy,wav:{wav},hangup")

    assert caller.gather(_prompt()) == "1"
    assert caller.gather(_prompt()) == Speech("vpn")
    assert caller.gather(_prompt()) is None
    assert caller.dial(["+49301"]) == "busy"
    assert caller.dial(["+49301"]) == "completed"  # no dial token next: the default
    assert caller.record(_record_prompt()) == Recording(wav)
    assert caller.record(_record_prompt()) is HANGUP


def test_scripted_caller_rejects_bad_scripts():
    with pytest.raises(ScriptError, match="token 2 'x'"):
        ScriptedCaller(["1", "x"])
    with pytest.raises(ScriptError, match="dial:"):
        ScriptedCaller(["dial:maybe"])
    with pytest.raises(ScriptError, match="--script"):
        scripted_caller_from_options("1", [], "1,2")
    with pytest.raises(ScriptError, match="no such file"):
        ScriptedCaller(["wav:/nonexistent/message.wav"])
    with pytest.raises(ScriptError, match="came at a <Gather>"):
        ScriptedCaller(["dial:busy"]).gather(_prompt())


def test_default_recording_is_used_at_the_first_record(base_url, log, wav):
    caller = scripted_caller_from_options("2", [], None, recording=wav, dial_default="busy")
    transcript = Simulator(base_url, TOKEN).run(caller)

    assert log[2]["path"] == "/voice/recorded"
    assert list(transcript.recordings.values()) == [wav]


def test_interactive_caller_reads_keys_words_silence_and_hangup():
    answers = iter(["12#", "reset my password", "", "hangup"])
    asked: list[str] = []

    def input_fn(question: str) -> str:
        asked.append(question)
        return next(answers)

    caller = InteractiveCaller(input_fn=input_fn, print_fn=lambda line: None)
    results = [caller.gather(_prompt()) for _ in range(4)]

    assert results == ["12#", Speech("reset my password"), None, HANGUP]
    assert asked[0] == "Press keys (or type words, empty = silence, 'hangup'): "


def test_interactive_caller_records_the_given_file_then_asks(wav):
    answers = iter(["/nonexistent.wav", wav, ""])
    printed: list[str] = []
    caller = InteractiveCaller(input_fn=lambda q: next(answers), print_fn=printed.append,
                               recording=wav)

    assert caller.record(_record_prompt()) == Recording(wav)
    assert caller.record(_record_prompt()) == Recording(wav)
    assert caller.record(_record_prompt()) is None
    assert printed == [f"  (recording {wav})", "  no such file: /nonexistent.wav"]


def test_interactive_caller_asks_dial_outcome_until_valid():
    answers = iter(["maybe", "no-answer"])
    printed: list[str] = []
    caller = InteractiveCaller(input_fn=lambda q: next(answers), print_fn=printed.append)

    assert caller.dial(["+4930111"]) == "no-answer"
    assert printed == ["  unknown outcome 'maybe'"]


# --- printing --------------------------------------------------------------------------


def test_format_event_lines(base_url, wav):
    transcript = call(base_url, ["2", f"wav:{wav}"])
    lines = [format_event(event) for event in transcript.events if event.kind != "request"]

    assert lines[:4] == [
        "  [en-US] Welcome to the IT service desk.",
        "  [en-US] Press 1 for VPN, 2 to leave a message, 3 for an agent.",
        "  ... waiting for keys or speech (timeout 6s)",
        "  > pressed 2",
    ]
    assert "  ● recording 2.0 s (#)" in lines
    assert lines[-1].startswith("  ☎ call completed after ")


def test_format_event_examples():
    dial = CallEvent("dial", "+4930111222", detail={"outcome": "completed"})
    busy = CallEvent("dial", "+4930111222", detail={"outcome": "no-answer"})
    speech = CallEvent("gather", "vpn", detail={"phase": "result", "speech": "vpn",
                                                "confidence": 0.9})
    say = CallEvent("say", "Willkommen beim IT-Service-Desk.", language="de-DE")

    assert format_event(dial) == "  ☎ dialing +4930111222, answered"
    assert format_event(busy) == "  ☎ dialing +4930111222, no answer"
    assert format_event(speech) == '  > said "vpn" (confidence 0.90)'
    assert format_event(say) == "  [de-DE] Willkommen beim IT-Service-Desk."


# --- the `call` command ------------------------------------------------------------------


def test_call_command_plays_a_scripted_call(base_url, log, monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("IVR_PUBLIC_BASE_URL", raising=False)
    result = CliRunner().invoke(call_command(), ["--url", base_url, "--token", TOKEN,
                                                 "--press", "1"])

    assert result.exit_code == 0, result.output
    assert "  [en-US] Welcome to the IT service desk." in result.output
    assert "  > pressed 1" in result.output
    assert "  [de-DE] Restart your VPN client (from menu)." in result.output
    assert paths(log)[-1] == "/voice/status"


def test_call_command_takes_token_from_environment_and_records(base_url, log, wav, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.delenv("IVR_PUBLIC_BASE_URL", raising=False)
    result = CliRunner().invoke(call_command(), ["--url", base_url, "--script", "2",
                                                 "--record", wav, "--verbose"])

    assert result.exit_code == 0, result.output
    assert "  ● recording 2.0 s (#)" in result.output
    assert "  → POST /voice/recorded?box=it (record): 200" in result.output


def test_call_command_exits_1_when_the_call_fails(base_url, monkeypatch):
    monkeypatch.delenv("IVR_PUBLIC_BASE_URL", raising=False)
    result = CliRunner().invoke(call_command(), ["--url", base_url, "--token", "wrong",
                                                 "--press", "1", "--quiet"])

    assert result.exit_code == 1
    assert "✗ HTTP 403 from /voice" in result.output


def test_call_command_needs_a_token(base_url, monkeypatch):
    for name in ("TWILIO_AUTH_TOKEN", "IVR_TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(call_command(), ["--url", base_url, "--press", "1"])

    assert result.exit_code == 2
    assert "no auth token" in result.output


@pytest.mark.parametrize(
    ("script", "message"),
    [("1,bogus", "script token 2 'bogus'"), ("dial:busy", "'dial:busy' came at a <Gather>")],
)
def test_call_command_reports_script_errors(base_url, monkeypatch, script, message):
    monkeypatch.delenv("IVR_PUBLIC_BASE_URL", raising=False)
    result = CliRunner().invoke(call_command(), ["--url", base_url, "--token", TOKEN,
                                                 "--script", script])

    assert result.exit_code == 2
    assert message in result.output
