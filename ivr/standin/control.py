"""Inspection and control of the stand-in under /_standin/ (no auth: bind it to loopback).

    GET    /_standin/messages | /_standin/calls | /_standin/deleted | /_standin/requests
    GET    /_standin/calls/CA...            a call: status, url, twiml and the updates made
    POST   /_standin/calls/CA...            {"status": "in-progress"}: the network reports
    PUT    /_standin/recordings/RE...[.wav|.mp3]    body = the audio Twilio would serve
    POST   /_standin/queues/{name}/members  {"call_sid": "CA..."}: a caller reached <Enqueue>
    GET    /_standin/queues/members/CA...   where the caller waits, or where it was dequeued to
    DELETE /_standin/queues/members/CA...   the caller left (hung up, or <Leave>)
    POST   /_standin/faults   {"path": regex, "status": 500, "times": 2, "delay_seconds": 0}
    POST   /_standin/opt-outs {"number": "+49...", "opted_out": true}   as if they texted STOP
    POST   /_standin/reset

Like Twilio, the stand-in refuses a message to a number that opted out (HTTP 400, error 21610).

The simulator plays the phone network: it registers callers in queues, asks after each pass
of the hold loop whether the line dequeued them, and reports how the calls it plays go on.
"""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any, Final

from flask import Flask, Response, request

from ivr.standin.queues import QueueError
from ivr.standin.rest import RECORDING_NAME, call_resource
from ivr.standin.shapes import json_response
from ivr.standin.state import (
    AUDIO_TYPES,
    ENDED_STATUSES,
    CallUpdate,
    Fault,
    StandinCall,
    StandinMessage,
    current_state,
)

_EXTENSION_OF_TYPE: Final = {"audio/mpeg": "mp3", "audio/mp3": "mp3"}
_NETWORK_STATUSES: Final = frozenset({"queued", "ringing", "in-progress", "completed", "busy",
                                      "no-answer", "failed", "canceled"})


def register_control(app: Flask) -> None:
    """Add the /_standin/ routes to the stand-in app."""
    rules: list[tuple[str, Any, list[str]]] = [
        ("/_standin/messages", list_messages, ["GET"]),
        ("/_standin/calls", list_calls, ["GET"]),
        ("/_standin/calls/<sid>", call_progress, ["GET", "POST"]),
        ("/_standin/deleted", list_deleted, ["GET"]),
        ("/_standin/requests", list_requests, ["GET"]),
        ("/_standin/recordings/<name>", upload_recording, ["PUT"]),
        ("/_standin/queues/<path:name>/members", join_queue, ["POST"]),
        ("/_standin/queues/members/<call_sid>", queue_member, ["GET", "DELETE"]),
        ("/_standin/faults", add_fault, ["POST"]),
        ("/_standin/opt-outs", set_opt_out, ["POST"]),
        ("/_standin/reset", reset, ["POST"]),
    ]
    for path, view, methods in rules:
        app.add_url_rule(path, endpoint=f"standin_{view.__name__}", view_func=view,
                         methods=methods)


def _message(text: str, status: int) -> Response:
    return json_response({"message": text}, status)


def list_messages() -> Response:
    """The SMS accepted so far, with their parameters."""
    return json_response([_record(message) for message in current_state().messages()])


def list_calls() -> Response:
    """The outbound calls accepted so far, with their parameters and current status."""
    state = current_state()
    return json_response([{**_record(call), "status": state.call_status(call.sid)}
                          for call in state.calls()])


def call_progress(sid: str) -> Response:
    """GET: a call's status, URL, TwiML and updates; POST: the network reports its status."""
    state = current_state()
    account = state.account_sid
    if request.method == "POST":
        spec = request.get_json(silent=True)
        status = spec.get("status") if isinstance(spec, dict) else None
        if status not in _NETWORK_STATUSES:
            return _message(f'send JSON like {{"status": "in-progress"}}; statuses: '
                            f"{', '.join(sorted(_NETWORK_STATUSES))}", 400)
        if call_resource(state, account, sid) is None:
            return _message(f"no call {sid}", 404)
        state.update_call(sid, CallUpdate(status, None, None, None, "network"))
    resource = call_resource(state, account, sid)
    if resource is None:
        return _message(f"no call {sid}", 404)
    call = state.find_call(sid)
    updates = state.call_updates(sid)
    url, method, twiml = (call.url, "POST", call.twiml) if call else (None, None, None)
    if call is not None:
        method = call.params.get("Method", "POST").upper()
    for update in updates:
        if update.url or update.twiml:
            url, method, twiml = update.url, update.method, update.twiml
    record = _record(call) if call is not None else {**resource, "params": {}}
    return json_response({**record, "status": resource["status"], "url": url,
                          "method": method, "twiml": twiml,
                          "updates": [asdict(update) for update in updates]})


def list_deleted() -> Response:
    """The SIDs of deleted recordings, in order."""
    return json_response(current_state().deleted())


def list_requests() -> Response:
    """Every REST API request received, in order."""
    return json_response([asdict(item) for item in current_state().requests()])


def upload_recording(name: str) -> Response:
    """Store the audio Twilio would serve for a recording (the request body)."""
    match = RECORDING_NAME.match(name)
    if match is None:
        return _message(f"{name!r} is not a recording SID (RE + 32 hex digits)", 400)
    content_type = (request.mimetype or "").lower()
    audio_format = (match.group(2) or _EXTENSION_OF_TYPE.get(content_type, "wav")).lower()
    if audio_format not in AUDIO_TYPES:
        return _message(f"format must be one of {sorted(AUDIO_TYPES)}", 400)
    data = request.get_data(cache=False)
    current_state().put_recording(match.group(1), data, audio_format)
    return json_response({"sid": match.group(1), "format": audio_format, "bytes": len(data)},
                         201)


def join_queue(name: str) -> Response:
    """A caller reached <Enqueue>: the queue (made on demand) and where the caller stands."""
    spec = request.get_json(silent=True)
    call_sid = spec.get("call_sid") if isinstance(spec, dict) else None
    if not isinstance(call_sid, str) or not re.fullmatch(r"CA[0-9a-fA-F]{32}", call_sid):
        return _message('send JSON like {"call_sid": "CA" + 32 hex digits}', 400)
    try:
        where = current_state().queues.join(name, call_sid)
    except QueueError as error:
        return _message(str(error), error.status)
    return json_response(where, 201)


def queue_member(call_sid: str) -> Response:
    """GET: where the caller waits or was dequeued to; DELETE: the caller left the queue
    (`?status=completed`: by hanging up, so the call's resource says it is over)."""
    state = current_state()
    queues = state.queues
    if request.method == "DELETE":
        status = request.args.get("status")
        if status is not None and status not in ENDED_STATUSES:
            return _message(f"status must be one of {', '.join(sorted(ENDED_STATUSES))}", 400)
        if not queues.leave(call_sid):
            return _message(f"call {call_sid} is in no queue", 404)
        if status is not None:
            state.update_call(call_sid, CallUpdate(status=status, url=None, method=None,
                                                   twiml=None, by="network"))
        return Response(status=204)
    where = queues.whereabouts(call_sid)
    if where is None:
        return _message(f"call {call_sid} is in no queue", 404)
    return json_response(where)


def add_fault() -> Response:
    """Fail (or delay) the next REST requests whose path matches."""
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        return _message('send JSON like {"path": "/Recordings/", "status": 500}', 400)
    try:
        fault = Fault(path=spec["path"], status=spec.get("status", 500) or None,
                      times=int(spec.get("times", 1)),
                      delay_seconds=float(spec.get("delay_seconds", 0)),
                      method=spec.get("method"))
    except (re.error, TypeError, ValueError) as exc:
        return _message(f"bad fault: {exc}", 400)
    current_state().add_fault(fault)
    return json_response({"path": fault.path, "status": fault.status, "times": fault.times,
                          "delay_seconds": fault.delay_seconds, "method": fault.method}, 201)


def set_opt_out() -> Response:
    """Put a number on Twilio's opt-out list (or take it off): texts to it get 21610."""
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or not isinstance(spec.get("number"), str):
        return _message('send JSON like {"number": "+4915...", "opted_out": true}', 400)
    opted_out = bool(spec.get("opted_out", True))
    current_state().set_opted_out(spec["number"], opted_out)
    return json_response({"number": spec["number"], "opted_out": opted_out}, 201)


def reset() -> Response:
    """Forget everything received, every queue, opt-out and pending fault."""
    current_state().reset()
    return Response(status=204)


def _record(item: StandinMessage | StandinCall) -> dict[str, Any]:
    return {**item.resource, "status_callback": item.status_callback, "params": item.params}
