"""The loopback Twilio stand-in over real HTTP, and simulated calls that upload recordings to it."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import soundfile
from click.testing import CliRunner
from flask import Flask, Response, request
from twilio.twiml.voice_response import VoiceResponse
from werkzeug.serving import make_server

from callbacks.settings import Settings
from callbacks.telephony import close_clients, download_recording
from ivr.simulator import ScriptedCaller, Simulator, call_command
from ivr.standin import StandinServer, create_standin, standin_state
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "AC" + "5" * 32
TOKEN = "standin-test-token-0123456789"
SID = "RE" + "ab" * 16
APP_TOKEN = "app-signing-token-0123456789"
API = f"/2010-04-01/Accounts/{ACCOUNT}"


@pytest.fixture(scope="module")
def server() -> Iterator[StandinServer]:
    with StandinServer(ACCOUNT, TOKEN) as standin:
        yield standin
    close_clients()


@pytest.fixture()
def standin(server: StandinServer) -> StandinServer:
    server.reset()
    return server


@pytest.fixture()
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.auth = (ACCOUNT, TOKEN)
        yield session


def write_wav(path: Path, seconds: float, fmt: str = "WAV", subtype: str = "PCM_16") -> str:
    frames = int(8000 * seconds)
    with soundfile.SoundFile(path, "w", samplerate=8000, channels=1, format=fmt,
                             subtype=subtype) as out:
        out.buffer_write(bytes(range(0, 200, 2)) * (frames // 50), dtype="int16")
    return str(path)


# --- Twilio's authentication ---------------------------------------------------------


def test_requests_without_credentials_get_twilios_401(standin):
    response = requests.get(f"{standin.url}{API}/Recordings/{SID}.wav", timeout=5)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
    assert response.json()["code"] == 20003 and response.json()["status"] == 401


def test_wrong_token_gets_401(standin):
    response = requests.post(f"{standin.url}{API}/Messages.json", auth=(ACCOUNT, "wrong"),
                             data={"To": "+4930111", "From": "+4930222", "Body": "hi"},
                             timeout=5)

    assert response.status_code == 401
    assert standin.messages() == []


def test_another_accounts_resources_are_not_found(standin, http):
    response = http.post(f"{standin.url}/2010-04-01/Accounts/AC{'6' * 32}/Messages.json",
                         data={"To": "+4930111", "From": "+4930222", "Body": "hi"}, timeout=5)

    assert response.status_code == 404 and response.json()["code"] == 20404


def test_unknown_paths_answer_twilio_json(standin, http):
    response = http.get(f"{standin.url}{API}/Conferences.json", timeout=5)

    assert response.status_code == 404
    assert response.json()["more_info"] == "https://www.twilio.com/docs/errors/20404"


# --- recordings ----------------------------------------------------------------------


def test_recording_served_as_wav_with_and_without_extension(standin, http):
    put = requests.put(f"{standin.url}/_standin/recordings/{SID}", data=b"RIFF\x00\xff wav",
                       timeout=5)
    assert put.status_code == 201 and put.json() == {"sid": SID, "format": "wav", "bytes": 10}

    for suffix in (".wav", ""):
        response = http.get(f"{standin.url}{API}/Recordings/{SID}{suffix}", timeout=5)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "audio/x-wav"
        assert response.content == b"RIFF\x00\xff wav"


def test_mp3_only_when_stored_as_mp3(standin, http):
    standin.put_recording(SID, b"RIFF")
    assert http.get(f"{standin.url}{API}/Recordings/{SID}.mp3", timeout=5).status_code == 404

    put = requests.put(f"{standin.url}/_standin/recordings/{SID}", data=b"ID3\xff\xfb",
                       headers={"Content-Type": "audio/mpeg"}, timeout=5)
    response = http.get(f"{standin.url}{API}/Recordings/{SID}.mp3", timeout=5)

    assert put.json()["format"] == "mp3"
    assert response.status_code == 200 and response.content == b"ID3\xff\xfb"
    assert response.headers["Content-Type"] == "audio/mpeg"


def test_unknown_recording_is_twilios_404(standin, http):
    response = http.get(f"{standin.url}{API}/Recordings/{SID}.wav", timeout=5)

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == 20404 and body["status"] == 404 and SID in body["message"]


def test_delete_recording(standin, http):
    standin.put_recording(SID, b"RIFF")

    first = http.delete(f"{standin.url}{API}/Recordings/{SID}.json", timeout=5)
    again = http.delete(f"{standin.url}{API}/Recordings/{SID}.json", timeout=5)

    assert first.status_code == 204 and again.status_code == 404
    assert http.get(f"{standin.url}{API}/Recordings/{SID}", timeout=5).status_code == 404
    assert standin.deleted() == [SID] and standin.recordings() == []
    assert requests.get(f"{standin.url}/_standin/deleted", timeout=5).json() == [SID]


def test_upload_needs_a_recording_sid(standin):
    response = requests.put(f"{standin.url}/_standin/recordings/CA{'1' * 32}", data=b"x",
                            timeout=5)

    assert response.status_code == 400 and standin.recordings() == []


# --- messages and calls --------------------------------------------------------------


def test_message_is_accepted_like_twilio(standin, http):
    response = http.post(f"{standin.url}{API}/Messages.json", timeout=5, data={
        "To": "+4930111222", "From": "+4930555000", "Body": "Ticket 7",
        "StatusCallback": "https://ivr.example.test/sms-status"})

    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert body["status"] == "queued" and body["direction"] == "outbound-api"
    assert (body["to"], body["from"], body["body"]) == ("+4930111222", "+4930555000", "Ticket 7")
    assert body["account_sid"] == ACCOUNT
    assert body["uri"] == f"{API}/Messages/{body['sid']}.json"
    assert parsedate_to_datetime(body["date_created"]).tzinfo is not None
    [message] = standin.messages()
    assert message.sid == body["sid"]
    assert message.status_callback == "https://ivr.example.test/sms-status"
    listed = requests.get(f"{standin.url}/_standin/messages", timeout=5).json()
    assert [m["sid"] for m in listed] == [body["sid"]]
    assert listed[0]["params"]["Body"] == "Ticket 7"
    fetched = http.get(f"{standin.url}{body['uri']}", timeout=5)
    assert fetched.json() == body


@pytest.mark.parametrize(("form", "code"), [
    ({"From": "+4930555000", "Body": "x"}, 21604),
    ({"To": "+4930111222", "Body": "x"}, 21603),
    ({"To": "+4930111222", "From": "+4930555000"}, 21602),
])
def test_message_needs_to_from_and_body(standin, http, form, code):
    response = http.post(f"{standin.url}{API}/Messages.json", data=form, timeout=5)

    assert response.status_code == 400 and response.json()["code"] == code
    assert standin.messages() == []


def test_call_is_accepted_like_twilio(standin, http):
    response = http.post(f"{standin.url}{API}/Calls.json", timeout=5, data={
        "To": "+4930111222", "From": "+4930555000", "Url": "https://ivr.example.test/dial",
        "StatusCallback": "https://ivr.example.test/dial-status"})

    assert response.status_code == 201
    body = response.json()
    assert re.fullmatch(r"CA[0-9a-f]{32}", body["sid"]) and body["status"] == "queued"
    [call] = standin.calls()
    assert (call.sid, call.url, call.twiml) == (body["sid"], "https://ivr.example.test/dial",
                                                None)
    listed = requests.get(f"{standin.url}/_standin/calls", timeout=5).json()
    assert listed[0]["status_callback"] == "https://ivr.example.test/dial-status"


def test_call_with_twiml_and_without_url(standin, http):
    ok = http.post(f"{standin.url}{API}/Calls.json", timeout=5, data={
        "To": "+4930111222", "From": "+4930555000", "Twiml": "<Response/>"})
    missing = http.post(f"{standin.url}{API}/Calls.json", timeout=5, data={
        "To": "+4930111222", "From": "+4930555000"})

    assert ok.status_code == 201 and standin.calls()[0].twiml == "<Response/>"
    assert missing.status_code == 400 and len(standin.calls()) == 1


# --- faults, requests and reset ------------------------------------------------------


def test_faults_fail_the_next_matching_requests(standin, http):
    added = requests.post(f"{standin.url}/_standin/faults", timeout=5,
                          json={"path": r"/Messages\.json$", "status": 503, "times": 2})
    form = {"To": "+4930111222", "From": "+4930555000", "Body": "x"}

    statuses = [http.post(f"{standin.url}{API}/Messages.json", data=form, timeout=5)
                for _ in range(3)]

    assert added.status_code == 201
    assert [r.status_code for r in statuses] == [503, 503, 201]
    assert statuses[0].json()["code"] == 20503
    assert len(standin.messages()) == 1


def test_faults_before_authentication_and_only_for_their_method(standin, http):
    standin.put_recording(SID, b"RIFF")
    standin.inject_fault("/Recordings/", 500, method="delete")

    assert http.get(f"{standin.url}{API}/Recordings/{SID}", timeout=5).status_code == 200
    assert requests.delete(f"{standin.url}{API}/Recordings/{SID}.json",
                           timeout=5).status_code == 500
    assert http.delete(f"{standin.url}{API}/Recordings/{SID}.json", timeout=5).status_code == 204


def test_delay_only_fault_then_the_normal_answer(standin, http):
    standin.put_recording(SID, b"RIFF")
    requests.post(f"{standin.url}/_standin/faults", timeout=5,
                  json={"path": "Recordings", "status": None, "delay_seconds": 0.3})

    started = time.monotonic()
    response = http.get(f"{standin.url}{API}/Recordings/{SID}", timeout=5)

    assert response.status_code == 200 and response.content == b"RIFF"
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("spec", [
    {"status": 500}, {"path": "("}, {"path": "x", "status": 42}, {"path": "x", "times": 0},
    {"path": "x", "delay_seconds": -1}, {"path": "x", "times": "many"},
])
def test_bad_faults_are_refused(standin, spec):
    response = requests.post(f"{standin.url}/_standin/faults", json=spec, timeout=5)

    assert response.status_code == 400 and response.json()["message"]


def test_requests_are_counted_but_control_requests_are_not(standin, http):
    http.get(f"{standin.url}{API}/Recordings/{SID}", timeout=5)
    requests.get(f"{standin.url}/_standin/messages", timeout=5)

    listed = requests.get(f"{standin.url}/_standin/requests", timeout=5).json()
    assert listed == [{"method": "GET", "path": f"{API}/Recordings/{SID}"}]
    assert len(standin.requests()) == 1


def test_reset_forgets_everything(standin, http):
    standin.put_recording(SID, b"RIFF")
    standin.inject_fault("Messages", 500)
    http.post(f"{standin.url}{API}/Calls.json", timeout=5,
              data={"To": "+4930111222", "From": "+4930555000", "Twiml": "<Response/>"})

    assert requests.post(f"{standin.url}/_standin/reset", timeout=5).status_code == 204

    assert standin.calls() == [] and standin.recordings() == [] and standin.requests() == []
    form = {"To": "+4930111222", "From": "+4930555000", "Body": "x"}
    assert http.post(f"{standin.url}{API}/Messages.json", data=form, timeout=5).ok


# --- running it ----------------------------------------------------------------------


def test_server_stops_and_ends_pending_delays():
    standin = StandinServer(ACCOUNT, TOKEN)
    standin.put_recording(SID, b"RIFF")
    standin.inject_fault("Recordings", None, delay_seconds=60)
    answers: list[int] = []

    def fetch() -> None:
        answers.append(requests.get(standin.recording_url(SID), auth=(ACCOUNT, TOKEN),
                                    timeout=30).status_code)

    fetcher = threading.Thread(target=fetch)
    fetcher.start()
    time.sleep(0.2)
    standin.stop()
    fetcher.join(timeout=20)

    assert not fetcher.is_alive() and answers == [200]
    with pytest.raises(requests.ConnectionError):
        requests.get(standin.url + "/_standin/messages", timeout=5)
    standin.stop()  # a second stop is harmless


def test_app_needs_credentials():
    with pytest.raises(ValueError, match="account SID and auth token"):
        create_standin(ACCOUNT, "")


def test_standin_command_serves_with_the_configured_account(tmp_path):
    port = free_port()
    env = {**os.environ, "IVR_TWILIO_ACCOUNT_SID": ACCOUNT, "IVR_TWILIO_AUTH_TOKEN": TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-c", "from ivr.standin import standin_command; standin_command()",
         "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{url}/_standin/messages", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "the stand-in did not start"
                time.sleep(0.1)
        form = {"To": "+4930111222", "From": "+4930555000", "Body": "x"}
        wrong = requests.post(f"{url}{API}/Messages.json", data=form, auth=(ACCOUNT, "x"),
                              timeout=5)
        right = requests.post(f"{url}{API}/Messages.json", data=form, auth=(ACCOUNT, TOKEN),
                              timeout=5)
        assert (wrong.status_code, right.status_code) == (401, 201)
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0].decode()
    assert f"IVR_TWILIO_API_BASE_URL={url}" in output


def test_standin_command_reads_the_app_config():
    from ivr.standin.server import _credentials

    app = Flask(__name__)
    app.config.update(TWILIO_ACCOUNT_SID=ACCOUNT, TWILIO_AUTH_TOKEN=TOKEN)
    with app.app_context():
        assert _credentials() == (ACCOUNT, TOKEN)


def test_state_is_reachable_from_the_app():
    app = create_standin(ACCOUNT, TOKEN)
    client = app.test_client()

    client.put(f"/_standin/recordings/{SID}.wav", data=b"RIFF")

    assert standin_state(app).recording(SID, "wav") == b"RIFF"


# --- simulated calls upload their recordings -----------------------------------------


def voicemail_app(settings: dict[str, Any], log: list[dict[str, str]]) -> Flask:
    """Answers with <Record>; the action downloads the recording like our worker does."""
    app = Flask(__name__)

    def twiml(response: VoiceResponse) -> Response:
        return Response(str(response), mimetype="text/xml")

    @app.post("/voice")
    def voice() -> Response:
        r = VoiceResponse()
        r.say("Leave a message after the beep.")
        r.record(action="/recorded", max_length=int(request.args.get("max", 120)),
                 finish_on_key="#")
        r.say("No message recorded. Goodbye.")
        return twiml(r)

    @app.post("/recorded")
    def recorded() -> Response:
        log.append(request.form.to_dict())
        audio = download_recording(settings["telephony"], request.form["RecordingUrl"])
        settings["downloaded"] = audio
        r = VoiceResponse()
        r.say(f"Got {len(audio)} bytes.")
        r.hangup()
        return twiml(r)

    @app.post("/voice/status")
    def status() -> Response:
        return Response(status=204)

    return app


@pytest.fixture(scope="module")
def ivr_server() -> Iterator[tuple[str, dict[str, Any], list[dict[str, str]]]]:
    settings: dict[str, Any] = {}
    log: list[dict[str, str]] = []
    http_server = make_server("127.0.0.1", 0, voicemail_app(settings, log), threaded=True)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http_server.server_port}", settings, log
    finally:
        http_server.shutdown()
        thread.join(timeout=5)


@pytest.fixture()
def ivr(ivr_server, standin) -> tuple[str, dict[str, Any], list[dict[str, str]]]:
    url, settings, log = ivr_server
    settings.clear()
    log.clear()
    settings["telephony"] = Settings(database_url="sqlite://", twilio_account_sid=ACCOUNT,
                                     twilio_auth_token=TOKEN, twilio_api_base_url=standin.url)
    return url, settings, log


def simulate(ivr_url: str, standin: StandinServer, script: list[str], **options: Any):
    options.setdefault("recording_base_url", standin.url)
    simulator = Simulator(ivr_url, APP_TOKEN, account_sid=ACCOUNT, **options)
    return simulator.run(ScriptedCaller(script))


def test_recording_is_uploaded_and_the_app_downloads_it(ivr, standin, tmp_path):
    url, settings, log = ivr
    wav = write_wav(tmp_path / "message.wav", 2.0)

    transcript = simulate(url, standin, [f"wav:{wav}"], upload_recordings=True)

    assert not transcript.failed, transcript.failures
    [sid] = transcript.recordings
    original = Path(wav).read_bytes()
    assert standin.recordings() == [sid] and standin.recording(sid) == original
    assert log[0]["RecordingUrl"] == standin.recording_url(sid)
    assert settings["downloaded"] == original
    assert transcript.said()[-1] == f"Got {len(original)} bytes."
    result = [e for e in transcript.events if e.kind == "record"][-1]
    assert result.detail["uploaded_to"] == f"{standin.url}/_standin/recordings/{sid}"


def test_silence_uploads_nothing(ivr, standin):
    url, _, log = ivr

    transcript = simulate(url, standin, ["-"], upload_recordings=True)

    assert not transcript.failed
    assert standin.recordings() == [] and log == []
    assert transcript.said()[-1] == "No message recorded. Goodbye."


def test_no_upload_unless_asked(ivr, standin, tmp_path):
    url, _, log = ivr
    wav = write_wav(tmp_path / "message.wav", 1.0)

    transcript = simulate(url, standin, [f"wav:{wav}"])

    assert standin.recordings() == []
    assert log[0]["RecordingUrl"].startswith(standin.url)  # the app finds nothing there yet
    assert transcript.failed and transcript.failures[0].http_status == 500


def test_upload_is_clipped_at_max_length(ivr, standin, tmp_path):
    url, settings, _ = ivr
    wav = write_wav(tmp_path / "long.wav", 3.0)

    transcript = simulate(url, standin, [f"wav:{wav}"], upload_recordings=True,
                          entry_path="/voice?max=1")

    assert not transcript.failed, transcript.failures
    info = soundfile.info(io.BytesIO(settings["downloaded"]))
    assert info.format == "WAV" and info.duration == pytest.approx(1.0)


def test_other_audio_formats_are_uploaded_as_wav(ivr, standin, tmp_path):
    url, settings, _ = ivr
    flac = write_wav(tmp_path / "message.flac", 1.5, fmt="FLAC")

    transcript = simulate(url, standin, [f"wav:{flac}"], upload_recordings=True)

    assert not transcript.failed, transcript.failures
    info = soundfile.info(io.BytesIO(settings["downloaded"]))
    assert (info.format, info.subtype, info.frames) == ("WAV", "PCM_16", 12000)


def test_recording_left_by_hanging_up_is_uploaded(ivr, standin, tmp_path):
    url, settings, log = ivr
    wav = write_wav(tmp_path / "message.wav", 1.0)

    transcript = simulate(url, standin, [f"wav+hangup:{wav}"], upload_recordings=True)

    assert not transcript.failed
    assert settings["downloaded"] == Path(wav).read_bytes()
    assert len(log) == 1


def test_failed_upload_fails_the_call_before_the_action(ivr, standin, tmp_path):
    url, _, log = ivr
    wav = write_wav(tmp_path / "message.wav", 1.0)

    transcript = simulate(url, standin, [f"wav:{wav}"], upload_recordings=True,
                          recording_base_url=f"http://127.0.0.1:{free_port()}")

    assert transcript.failed and transcript.failures[0].detail["reason"] == "upload"
    assert log == []


def test_upload_never_goes_to_twilio():
    with pytest.raises(ValueError, match="stand-in"):
        Simulator("http://127.0.0.1:9", APP_TOKEN, upload_recordings=True)
    with pytest.raises(ValueError, match="http"):
        Simulator("http://127.0.0.1:9", APP_TOKEN, upload_recordings=True,
                  recording_base_url="ftp://127.0.0.1")


def test_call_command_with_standin(ivr, standin, tmp_path, monkeypatch):
    url, settings, _ = ivr
    for name in ("IVR_PUBLIC_BASE_URL", "IVR_TWILIO_ACCOUNT_SID", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IVR_TWILIO_ACCOUNT_SID", ACCOUNT)
    wav = write_wav(tmp_path / "message.wav", 1.0)

    result = CliRunner().invoke(call_command(), ["--url", url, "--token", APP_TOKEN,
                                                 "--record", wav, "--standin", standin.url])

    assert result.exit_code == 0, result.output
    assert "  ● recording 1.0 s (#), uploaded to the stand-in" in result.output
    assert settings["downloaded"] == Path(wav).read_bytes()
    assert len(standin.recordings()) == 1
