"""The call simulator page: an admin places a test call against any stored flow version.

The server plays the call with the same simulator as `ivr call` (ivr/simulator), one input per
request: the webhooks are signed like Twilio's and answered by this app in-process, and the
paused call travels to the page and back as a signed token, so any web process takes the
next step. A test voicemail's WAV goes to the Twilio stand-in, where the worker fetches it.
A test call that reaches a queue waits at the stand-in (when there is one), where the line can
dequeue it: the page shows its place after each pass of the hold loop and lets the admin press
keys, keep waiting or hang up.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Response, current_app, jsonify, render_template, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from callbacks.db import small_number
from callbacks.flowstore import FlowPublication, compiled_version, list_versions
from ivr.admin.blueprint import bp
from ivr.auth import admin_required, signed_in_agent
from ivr.db import get_session
from ivr.simulator import (
    DEFAULT_CALLED,
    DEFAULT_CALLER,
    HANGUP,
    QueueWait,
    Recording,
    Simulator,
    Speech,
)
from ivr.simulator.console import format_event
from ivr.simulator.inprocess import IN_PROCESS_BASE_URL, in_process_session
from ivr.simulator.network import CallEvent
from ivr.simulator.stepwise import CallState, CallStep, continue_call, start_call

TOKEN_MAX_AGE = 3600
MAX_WAV_BYTES = 10 * 1024 * 1024
DIAL_CHOICES = ("completed", "busy", "no-answer", "failed")


def standin_url() -> str | None:
    """The Twilio stand-in recordings can be uploaded to, or None when the line talks to Twilio."""
    base = str(current_app.config["TWILIO_API_BASE_URL"]).rstrip("/")
    host = (urlsplit(base).hostname or "").lower()
    if not host or host == "twilio.com" or host.endswith(".twilio.com"):
        return None
    return base


@bp.get("/simulator")
@admin_required
def simulator_page() -> str:
    """The simulator: version, language and caller; then keypad, typed speech and a WAV."""
    session = get_session()
    versions = list_versions(session)
    ever_published = set(session.scalars(select(FlowPublication.version_id)))
    languages = {v.id: compiled_version(session, v.id).flow.languages for v in versions}
    all_languages = sorted({language for found in languages.values() for language in found})
    return render_template("admin/simulator.html", versions=versions, languages=languages,
                           ever_published=ever_published,
                           all_languages=all_languages,
                           default_caller=DEFAULT_CALLER, dial_choices=DIAL_CHOICES,
                           standin=standin_url(), me=signed_in_agent())


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="admin-simulator")


def _simulator(call: dict[str, Any]) -> Simulator:
    """The simulator for one test call, posting to this app in-process, signed like Twilio."""
    config = current_app.config
    query = {"v": call["version"], **({"l": call["language"]} if call["language"] else {})}
    standin = standin_url()
    return Simulator(
        IN_PROCESS_BASE_URL, config["TWILIO_AUTH_TOKEN"], caller=call["caller"],
        called=call["called"], account_sid=config["TWILIO_ACCOUNT_SID"],
        entry_path="/voice/test?" + urlencode(query),
        public_base_url=config["PUBLIC_BASE_URL"] or IN_PROCESS_BASE_URL,
        recording_base_url=standin or config["TWILIO_API_BASE_URL"],
        upload_recordings=standin is not None,
        standin_url=standin,
        session=in_process_session(current_app._get_current_object()),  # type: ignore[attr-defined]
    )


def _bad(message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = 400
    return response


@bp.post("/simulator/start")
@admin_required
def simulator_start() -> Response:
    """Place a test call against version `version_id`; the call until it first waits."""
    form = request.form
    version_id = form.get("version_id", "")
    wanted = small_number(version_id)
    if wanted is None:
        return _bad("choose a flow version")
    version = next((v for v in list_versions(get_session()) if v.id == wanted), None)
    if version is None:
        return _bad(f"there is no flow version with id {version_id}")
    flow = compiled_version(get_session(), version.id).flow
    dial = form.get("dial", "completed")
    call = {"version": version.id, "language": form.get("language", "").strip(),
            "caller": form.get("caller", "").strip() or DEFAULT_CALLER,
            "called": flow.numbers[0] if flow.numbers else DEFAULT_CALLED}
    try:
        simulator = _simulator(call)
    except ValueError as exc:
        return _bad(str(exc))
    step = start_call(simulator, dial if dial in DIAL_CHOICES else "completed")
    return _answer(step, call)


@bp.post("/simulator/input")
@admin_required
def simulator_input() -> Response:
    """The caller's next input (keys, speech, silence, a WAV or hang-up); the call until it
    waits again or ends."""
    try:
        payload = _serializer().loads(request.form.get("token", ""), max_age=TOKEN_MAX_AGE)
    except BadSignature:
        return _bad("this test call has expired; start a new one")
    call, state = payload["call"], CallState.from_dict(payload["state"])
    kind, value = request.form.get("kind", ""), request.form.get("value", "").strip()
    if kind == "recording":
        return _record(call, state)
    answer: Any
    if kind == "keys" and value and set(value) <= set("0123456789*#"):
        answer = value
    elif kind == "speech" and value:
        answer = Speech(value)
    elif kind == "silence":
        answer = None
    elif kind == "hangup":
        answer = HANGUP
    else:
        return _bad("send keys (0-9, * and #), words, silence, a recording or hang up")
    if state.waiting in ("record", "wait") and kind in ("keys", "speech"):
        answer = None  # keys or words at a <Record> or over hold music are not heard
    return _answer(continue_call(_simulator(call), state, answer), call)


def _record(call: dict[str, Any], state: CallState) -> Response:
    """Leave the uploaded WAV as the voicemail at the waiting <Record>."""
    if state.waiting != "record":
        return _bad("the call is not recording now")
    if standin_url() is None:
        return _bad("no Twilio stand-in is configured (IVR_TWILIO_API_BASE_URL), so the "
                    "worker could not fetch a test voicemail")
    upload = request.files.get("wav")
    if upload is None or not upload.filename:
        return _bad("choose a WAV file")
    audio = upload.read(MAX_WAV_BYTES + 1)
    if len(audio) > MAX_WAV_BYTES:
        return _bad("the WAV file is larger than 10 MiB")
    handle, path = tempfile.mkstemp(suffix=".wav")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(audio)
        try:
            step = continue_call(_simulator(call), state, Recording(path))
        except ValueError as exc:  # not audio the simulator can read
            return _bad(str(exc))
    finally:
        os.unlink(path)
    return _answer(step, call)


def _answer(step: CallStep, call: dict[str, Any]) -> Response:
    """The step as JSON: each request with its TwiML and what the caller heard."""
    token = None
    if step.state is not None:
        token = _serializer().dumps({"call": call, "state": step.state.to_dict()})
    prompt: dict[str, Any] | None = None
    if step.prompt is not None:
        prompt = {key: getattr(step.prompt, key) for key in
                  ("timeout", "num_digits", "finish_on_key", "input", "language", "max_length")
                  if hasattr(step.prompt, key)}
        wait = step.prompt if isinstance(step.prompt, QueueWait) else getattr(
            step.prompt, "queue", None)
        if wait is not None:
            prompt["queue"] = {"name": wait.queue, "position": wait.position,
                               "size": wait.size, "seconds": wait.seconds,
                               "passes": wait.passes}
    return jsonify({
        "entries": _entries(step.events), "waiting": step.waiting, "prompt": prompt,
        "token": token, "over": step.waiting is None, "duration": round(step.duration, 1),
        "failures": [event.text for event in step.failures]})


def _entries(events: list[CallEvent]) -> list[dict[str, Any]]:
    """Events grouped by the webhook request that produced them."""
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] = {"request": None, "twiml": None, "heard": [], "notes": []}
    for event in events:
        if event.kind == "request":
            current = {"request": format_event(event).strip(), "purpose": event.text,
                       "status": event.http_status, "twiml": event.detail.get("twiml"),
                       "heard": [], "notes": []}
            entries.append(current)
            continue
        if not entries:
            entries.append(current)
        if event.kind == "say":
            current["heard"].append({"text": event.text, "language": event.language})
        else:
            current["notes"].append(format_event(event).strip())
    return entries

