"""A caller leaving a recording at `<Record>`: the audio's length and finish, its upload to
the Twilio stand-in, the action and the recording status callbacks, like Twilio's."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from typing import Any, Protocol
from urllib.parse import urljoin

import requests

from ivr.simulator.callers import HANGUP, Caller, Recording, RecordPrompt
from ivr.simulator.events import (
    API_VERSION,
    CallEvent,
    CallFailed,
    CallTranscript,
    Ended,
    Outcome,
    Request,
    int_attribute,
    new_sid,
    short_url,
    timestamp,
)


class RecordingSettings(Protocol):
    """The simulator settings a recording reads."""

    account_sid: str
    recording_base_url: str
    upload_recordings: bool
    session: requests.Session
    timeout: float


class RecordingCall(Protocol):
    """The parts of a simulated call a recording uses."""

    @property
    def sim(self) -> RecordingSettings: ...

    caller: Caller
    transcript: CallTranscript
    seconds: float
    status: str

    def _emit(self, event: CallEvent) -> None: ...

    def _fail(self, reason: str, text: str, url: str | None = None,
              http_status: int | None = None, **detail: Any) -> CallFailed: ...

    def _send(self, request: Request) -> requests.Response: ...

    def _post_callback(self, request: Request) -> int | None: ...

    def _caller_hung_up(self, url: str) -> Ended: ...

    def _take_heard(self) -> tuple[str, ...]: ...


def record_verb(call: RecordingCall, element: ET.Element, url: str) -> Outcome:
    """`<Record>`: the caller's recording, its upload to the stand-in, action and callbacks."""
    max_length = int_attribute(element.get("maxLength"), 3600) or 3600
    prompt = RecordPrompt(url=url, max_length=max_length,
                          timeout=int_attribute(element.get("timeout"), 5),
                          finish_on_key=element.get("finishOnKey", "1234567890*#"),
                          heard=call._take_heard())
    action = urljoin(url, element.get("action") or "")
    method = (element.get("method") or "POST").upper()
    callback = element.get("recordingStatusCallback")
    callback_url = urljoin(url, callback) if callback else None
    callback_method = (element.get("recordingStatusCallbackMethod") or "POST").upper()
    callback_events = (element.get("recordingStatusCallbackEvent") or "completed").split()
    call._emit(CallEvent("record", url=url, detail={
        "phase": "listen", "max_length": max_length, "timeout": prompt.timeout,
        "finish_on_key": prompt.finish_on_key, "action": action,
        "recording_status_callback": callback_url}))
    answer = call.caller.record(prompt)
    if answer is HANGUP:
        return call._caller_hung_up(url)
    recording = answer if isinstance(answer, Recording | None) else Recording(str(answer))
    seconds = _audio_seconds(recording.path) if recording else 0.0
    sid = new_sid("RE")

    def status_callback(status: str, extra: dict[str, str]) -> Request | None:
        if callback_url is None or status not in callback_events:
            return None
        params = {"AccountSid": call.sim.account_sid, "CallSid": call.transcript.call_sid,
                  "RecordingSid": sid, "RecordingStatus": status,
                  "RecordingSource": "RecordVerb", "RecordingChannels": "1", **extra}
        return Request(callback_url, callback_method, params, "recording-status",
                        call_params=False)

    if recording is None or seconds <= 0:
        call.seconds += prompt.timeout
        call._emit(CallEvent("record", url=url, detail={"phase": "result", "duration": 0.0,
                                                        "path": None}))
        absent = status_callback("absent", {"RecordingDuration": "0"})
        if absent is not None:
            call._post_callback(absent)
        return None  # an empty recording: Twilio skips the action and goes on
    clipped = min(seconds, float(max_length))
    call.seconds += clipped + 1.0
    recording_url = (f"{call.sim.recording_base_url}/{API_VERSION}/Accounts/"
                     f"{call.sim.account_sid}/Recordings/{sid}")
    call.transcript.recordings[sid] = recording.path
    uploaded_to = None
    if call.sim.upload_recordings:
        uploaded_to = _upload(call, sid, recording.path, clipped)
    if recording.hangup:
        finished = "hangup"
    elif clipped < seconds:
        finished = "max-length"
    else:  # the caller presses a finish key, or stays silent until the timeout
        finished = _finish_key(prompt.finish_on_key) or "timeout"
    call._emit(CallEvent("record", url=url, detail={
        "phase": "result", "duration": clipped, "path": recording.path, "sid": sid,
        "recording_url": recording_url, "finished": finished, "uploaded_to": uploaded_to}))
    recorded = {"RecordingUrl": recording_url, "RecordingDuration": str(max(1, round(clipped)))}
    started = status_callback("in-progress", {"RecordingUrl": recording_url,
                                              "RecordingStartTime": timestamp()})
    if started is not None:
        call._post_callback(started)
    completed = status_callback("completed", {**recorded, "RecordingStartTime": timestamp()})
    callbacks = (completed,) if completed is not None else ()
    params = {**recorded, "RecordingSid": sid}
    if finished not in ("max-length", "timeout"):
        params["Digits"] = finished
    if not recording.hangup:
        return Request(action, method, params, "record", callbacks=callbacks)
    # The caller hung up: Twilio still requests the action but ignores its TwiML.
    call.status = "completed"
    try:
        call._send(Request(action, method, params, "record"))
    finally:
        for request in callbacks:
            call._post_callback(request)
    return call._caller_hung_up(url)

def _upload(call: RecordingCall, sid: str, path: str, seconds: float) -> str:
    """PUT the recording's WAV to the stand-in, so the app can download it like Twilio's."""
    url = f"{call.sim.recording_base_url}/_standin/recordings/{sid}"
    try:
        audio = _wav_bytes(path, seconds)
        response = call.sim.session.put(url, data=audio, timeout=call.sim.timeout,
                                        headers={"Content-Type": "audio/x-wav"})
    except requests.RequestException as exc:
        raise call._fail("upload", f"cannot upload recording {sid} to {short_url(url)}: {exc}",
                         url) from exc
    if not 200 <= response.status_code < 300:
        raise call._fail("upload", f"HTTP {response.status_code} uploading recording {sid} "
                         f"to {short_url(url)}", url, response.status_code,
                         body=response.text[:2000])
    return url



def _finish_key(finish_on_key: str) -> str:
    if "#" in finish_on_key:
        return "#"
    return finish_on_key[:1]


def _wav_bytes(path: str, seconds: float) -> bytes:
    """The file's bytes when it is a WAV no longer than `seconds`, else a 16-bit WAV of it."""
    import soundfile

    try:
        with soundfile.SoundFile(path) as source:
            if source.format == "WAV" and source.frames <= seconds * source.samplerate:
                with open(path, "rb") as raw:
                    return raw.read()
            frames = min(source.frames, int(seconds * source.samplerate))
            pcm = source.buffer_read(frames, dtype="int16")
            out = io.BytesIO()
            with soundfile.SoundFile(out, "w", samplerate=source.samplerate,
                                     channels=source.channels, format="WAV",
                                     subtype="PCM_16") as sink:
                sink.buffer_write(pcm, dtype="int16")
            return out.getvalue()
    except (OSError, RuntimeError) as exc:  # libsndfile errors are RuntimeErrors
        raise ValueError(f"cannot read recording {path}: {exc}") from exc


def _audio_seconds(path: str) -> float:
    import soundfile  # only calls that record need it

    try:
        return float(soundfile.info(path).duration)
    except (OSError, RuntimeError) as exc:  # libsndfile errors are RuntimeErrors
        raise ValueError(f"cannot read recording {path}: {exc}") from exc
