"""The REST API part of the stand-in: Twilio's resources under /2010-04-01/Accounts/{AC}/.

Messages (create, list, fetch), Calls (create, fetch, update), Recordings (media, delete), Queues
(create, list, fetch, update, delete) and their Members (list, fetch, dequeue), with Twilio's
URLs, JSON shapes, list pages and error bodies.
"""

from __future__ import annotations

import math
import re
from typing import Any, Final

from flask import Flask, Response, request

from ivr.standin.queues import QueueBook, QueueError
from ivr.standin.shapes import (
    API_PREFIX,
    API_VERSION,
    bad_parameter,
    json_response,
    list_page,
    new_sid,
    not_found,
    resource_name,
    rfc2822_now,
    twilio_error,
)
from ivr.standin.state import (
    AUDIO_TYPES,
    ENDED_STATUSES,
    RINGING_STATUSES,
    CallUpdate,
    StandinCall,
    StandinMessage,
    StandinState,
    current_state,
)

RECORDING_NAME: Final = re.compile(r"^(RE[0-9a-fA-F]{32})(?:\.([A-Za-z0-9]+))?$")
E164: Final = re.compile(r"^\+[1-9][0-9]{6,14}$")
NOT_A_NUMBER: Final = ("client:", "sip:")
"""Call targets that are not phone numbers (Twilio Client identities, SIP URIs)."""
_CALL_STATUS_UPDATES: Final = ("canceled", "completed")


def register_rest_api(app: Flask) -> None:
    """Add the REST resources' routes to the stand-in app."""
    api = f"/{API_VERSION}/Accounts/<account>"
    rules: list[tuple[str, Any, list[str]]] = [
        ("Messages.json", create_message, ["POST"]),
        ("Messages.json", list_messages, ["GET"]),
        ("Messages/<name>", fetch_message, ["GET"]),
        ("Calls.json", create_call, ["POST"]),
        ("Calls/<name>", call_instance, ["GET", "POST"]),
        ("Recordings/<name>", recording_media, ["GET", "DELETE"]),
        ("Queues.json", create_queue, ["POST"]),
        ("Queues.json", list_queues, ["GET"]),
        ("Queues/<name>", queue_instance, ["GET", "POST", "DELETE"]),
        ("Queues/<queue>/Members.json", list_members, ["GET"]),
        ("Queues/<queue>/Members/<name>", member_instance, ["GET", "POST"]),
    ]
    for path, view, methods in rules:
        app.add_url_rule(f"{api}/{path}", endpoint=f"{view.__name__}", view_func=view,
                         methods=methods)


# --- messages ----------------------------------------------------------------------


def create_message(account: str) -> Response:
    """POST Messages.json: accept an SMS (nothing is delivered)."""
    form = request.form
    to, from_ = form.get("To", ""), form.get("From") or form.get("MessagingServiceSid", "")
    body = form.get("Body", "")
    if not to:
        return twilio_error(400, 21604, "A 'To' phone number is required.")
    if not E164.match(to):
        return invalid_to(to)
    if not from_:
        return twilio_error(400, 21603, "A 'From' phone number is required.")
    if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
        return twilio_error(400, 21602, "Message body is required.")
    if current_state().is_opted_out(to):  # the number texted STOP: Twilio refuses
        return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
    sid, now = new_sid("SM"), rfc2822_now()
    uri = f"{API_PREFIX}{account}/Messages/{sid}"
    resource = {
        "account_sid": account, "api_version": API_VERSION, "body": body,
        "date_created": now, "date_sent": None, "date_updated": now,
        "direction": "outbound-api", "error_code": None, "error_message": None,
        "from": form.get("From"), "messaging_service_sid": form.get("MessagingServiceSid"),
        "num_media": str(len(form.getlist("MediaUrl"))),
        "num_segments": str(max(1, math.ceil(len(body) / 153)) if len(body) > 160 else 1),
        "price": None, "price_unit": "USD", "sid": sid,
        "status": "queued" if form.get("From") else "accepted",
        "subresource_uris": {"media": f"{uri}/Media.json"}, "to": to, "uri": f"{uri}.json",
    }
    current_state().add_message(StandinMessage(sid, to, from_, body, form.get("StatusCallback"),
                                               form.to_dict(), resource))
    return json_response(resource, 201)


def list_messages(account: str) -> Response:
    """GET Messages.json: the texts sent, newest first, filtered by To and From like Twilio."""
    to, from_ = request.args.get("To"), request.args.get("From")
    found = [message.resource for message in reversed(current_state().messages())
             if (to is None or message.to == to) and (from_ is None or message.from_ == from_)]
    return list_page(found, "messages", f"{API_PREFIX}{account}/Messages.json",
                     lambda resource: resource)


def invalid_to(to: str) -> Response:
    """Twilio's answer to a malformed 'To' number, which quotes the number as Twilio does."""
    return twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def fetch_message(account: str, name: str) -> Response:
    """GET Messages/SM....json."""
    message = current_state().find_message(name.removesuffix(".json"))
    if message is None:
        return not_found()
    return json_response(message.resource)


# --- calls -------------------------------------------------------------------------


def create_call(account: str) -> Response:
    """POST Calls.json: accept an outbound call (nobody is dialed; `ivr answer` plays it)."""
    form = request.form
    to, from_ = form.get("To", ""), form.get("From", "")
    url, twiml = form.get("Url"), form.get("Twiml")
    if not to:
        return twilio_error(400, 21201, "No 'To' number is specified")
    if not to.startswith(NOT_A_NUMBER) and not E164.match(to):
        return invalid_to(to)
    if not from_:
        return twilio_error(400, 21213, "No 'From' number is specified")
    if not url and not twiml and not form.get("ApplicationSid"):
        return twilio_error(400, 21205, "Url parameter is required.")
    sid, now = new_sid("CA"), rfc2822_now()
    uri = f"{API_PREFIX}{account}/Calls/{sid}"
    resource = {
        "account_sid": account, "annotation": None, "answered_by": None,
        "api_version": API_VERSION, "caller_name": None, "date_created": now,
        "date_updated": now, "direction": "outbound-api", "duration": None, "end_time": None,
        "forwarded_from": None, "from": from_, "from_formatted": from_, "group_sid": None,
        "parent_call_sid": None, "phone_number_sid": None, "price": None, "price_unit": "USD",
        "queue_time": "0", "sid": sid, "start_time": None, "status": "queued",
        "subresource_uris": {name: f"{uri}/{path}.json" for name, path in (
            ("notifications", "Notifications"), ("recordings", "Recordings"),
            ("events", "Events"), ("payments", "Payments"))},
        "to": to, "to_formatted": to, "trunk_sid": None, "uri": f"{uri}.json",
    }
    current_state().add_call(StandinCall(sid, to, from_, url, twiml, form.get("StatusCallback"),
                                         form.to_dict(), resource))
    return json_response(resource, 201)


def call_resource(state: StandinState, account: str, sid: str) -> dict[str, Any] | None:
    """The call's resource with its current status: an outbound call, or a caller in a queue."""
    call = state.find_call(sid)
    status = state.call_status(sid)
    if call is not None:
        return {**call.resource, "status": status or call.resource["status"]}
    if not state.queues.knows(sid) and not state.call_updates(sid):
        return None
    uri = f"{API_PREFIX}{account}/Calls/{sid}"
    return {"account_sid": account, "api_version": API_VERSION, "direction": "inbound",
            "from": None, "to": None, "sid": sid, "status": status or "in-progress",
            "uri": f"{uri}.json"}


def call_instance(account: str, name: str) -> Response:
    """GET Calls/CA....json, or POST to update it (Status, Url [Method], Twiml)."""
    sid = resource_name(name)
    if sid is None:
        return not_found()
    state = current_state()
    resource = call_resource(state, account, sid)
    if resource is None:
        return not_found()
    if request.method == "GET":
        return json_response(resource)
    return _update_call(state, account, sid, str(resource["status"]))


def _update_call(state: StandinState, account: str, sid: str, current: str) -> Response:
    """A call update as Twilio takes it: end the call, or have it go on with other TwiML."""
    form = request.form
    status, url, twiml = form.get("Status") or None, form.get("Url") or None, form.get("Twiml")
    method = (form.get("Method") or "POST").upper()
    if status is not None and status not in _CALL_STATUS_UPDATES:
        return bad_parameter(f"Status must be canceled or completed, not {status!r}")
    if status is None and url is None and not twiml:
        return bad_parameter("Give Status, Url or Twiml to update a call")
    if method not in ("GET", "POST"):
        return bad_parameter(f"Method must be GET or POST, not {method}")
    if current in ENDED_STATUSES:
        if status is not None:  # ending an ended call changes nothing
            return json_response(call_resource(state, account, sid))
        return twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
    new_status = None
    if status is not None:
        if current in RINGING_STATUSES:
            new_status = "canceled"
        elif status == "completed":
            new_status = "completed"
    state.update_call(sid, CallUpdate(new_status, url, method if url else None, twiml, "line"))
    if new_status is not None or url or twiml:
        state.queues.redirect(sid, url=url, method=method, twiml=twiml,
                              hangup=new_status is not None)
    return json_response(call_resource(state, account, sid))


# --- recordings --------------------------------------------------------------------


def recording_media(account: str, name: str) -> Response:
    """GET a recording's audio (.wav default, .mp3 when stored), or DELETE it."""
    match = RECORDING_NAME.match(name)
    if match is None:
        return not_found()
    sid, extension = match.group(1), (match.group(2) or "").lower()
    state = current_state()
    if request.method == "DELETE":
        if extension not in ("", "json") or not state.delete_recording(sid):
            return not_found()
        return Response(status=204)
    audio_format = extension or "wav"  # Twilio serves WAV when no extension is given
    data = state.recording(sid, audio_format) if audio_format in AUDIO_TYPES else None
    if data is None:
        return not_found()
    return Response(data, status=200, mimetype=AUDIO_TYPES[audio_format])


# --- queues and members ------------------------------------------------------------


def _book() -> QueueBook:
    return current_state().queues


def _size_param(name: str) -> int | None:
    value = request.form.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise QueueError(f"{name} must be an integer, not {value!r}") from exc


def _refused(error: QueueError) -> Response:
    return twilio_error(error.status, error.code, str(error))


def create_queue(account: str) -> Response:
    """POST Queues.json: a new queue named FriendlyName."""
    try:
        resource = _book().create(request.form.get("FriendlyName", ""), _size_param("MaxSize"))
    except QueueError as error:
        return _refused(error)
    return json_response(resource, 201)


def list_queues(account: str) -> Response:
    """GET Queues.json: the account's queues, a page at a time."""
    return list_page(_book().queue_resources(), "queues",
                     f"{API_PREFIX}{account}/Queues.json", lambda resource: resource)


def queue_instance(account: str, name: str) -> Response:
    """GET, POST (update) or DELETE Queues/QU....json."""
    sid = resource_name(name)
    if sid is None:
        return not_found()
    book = _book()
    if request.method == "DELETE":
        try:
            deleted = book.delete(sid)
        except QueueError as error:
            return _refused(error)
        return Response(status=204) if deleted else not_found()
    if request.method == "POST":
        try:
            resource = book.update(sid, request.form.get("FriendlyName"), _size_param("MaxSize"))
        except QueueError as error:
            return _refused(error)
    else:
        resource = book.queue_resource(sid)
    return json_response(resource) if resource is not None else not_found()


def list_members(account: str, queue: str) -> Response:
    """GET Queues/QU.../Members.json: the calls waiting, front first."""
    members = _book().member_resources(queue)
    if members is None:
        return not_found()
    return list_page(members, "queue_members",
                     f"{API_PREFIX}{account}/Queues/{queue}/Members.json",
                     lambda resource: resource)


def member_instance(account: str, queue: str, name: str) -> Response:
    """GET a member (Call SID or Front), or POST Url [Method] to dequeue it there."""
    member = resource_name(name)
    if member is None:
        return not_found()
    book = _book()
    if request.method == "GET":
        resource = book.member_resource(queue, member)
        return json_response(resource) if resource is not None else not_found()
    url = request.form.get("Url", "")
    method = (request.form.get("Method") or "POST").upper()
    if not url:
        return bad_parameter("Url is required")
    if method not in ("GET", "POST"):
        return bad_parameter(f"Method must be GET or POST, not {method}")
    resource = book.dequeue(queue, member, url, method)
    return json_response(resource) if resource is not None else not_found()
