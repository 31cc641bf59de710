"""A loopback stand-in for Twilio's REST API: a development and test tool, never for production.

It answers the part of api.twilio.com this project uses (Messages, Calls, Recordings) with
Twilio's URLs, Basic auth, JSON shapes and error bodies, so the official `twilio` library talks
to it unchanged once `TWILIO_API_BASE_URL` points here. Everything it receives is kept in memory
and can be inspected or steered under `/_standin/` (no auth: bind it to loopback only):

    GET  /_standin/messages | /_standin/calls | /_standin/deleted | /_standin/requests
    PUT  /_standin/recordings/RE...[.wav|.mp3]    body = the audio Twilio would serve
    POST /_standin/faults   {"path": regex, "status": 500, "times": 2, "delay_seconds": 0}
    POST /_standin/opt-outs {"number": "+49...", "opted_out": true}   as if they texted STOP
    POST /_standin/reset

Like Twilio, it refuses a message to a number that opted out (HTTP 400, error 21610).

`StandinServer` runs it on a free loopback port in a background thread (tests, benchmarks);
`standin_command` is `ivr standin`.
"""

from __future__ import annotations

import hmac
import math
import os
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import TracebackType
from typing import Any, Final

import click
from flask import Flask, Response, current_app, has_app_context, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

API_VERSION: Final = "2010-04-01"
DEFAULT_PORT: Final = 5099
_API_PREFIX: Final = f"/{API_VERSION}/Accounts/"
_ACCOUNT_IN_PATH: Final = re.compile(rf"^/{API_VERSION}/Accounts/([^/]+)(/|$)")
_RECORDING_NAME: Final = re.compile(r"^(RE[0-9a-fA-F]{32})(?:\.([A-Za-z0-9]+))?$")
_RECORDING_SID: Final = re.compile(r"^RE[0-9a-fA-F]{32}$")
_AUDIO_TYPES: Final = {"wav": "audio/x-wav", "mp3": "audio/mpeg"}
_EXTENSION_OF_TYPE: Final = {"audio/mpeg": "mp3", "audio/mp3": "mp3"}
_ERROR_TITLES: Final = {400: "Bad Request", 401: "Authenticate", 403: "Forbidden",
                        404: "Not Found", 405: "Method Not Allowed", 429: "Too Many Requests",
                        500: "Internal Server Error", 502: "Bad Gateway",
                        503: "Service Unavailable", 504: "Gateway Timeout"}


# --- what the stand-in saw ---------------------------------------------------------


@dataclass(frozen=True)
class StandinMessage:
    """An SMS the stand-in accepted (nothing is delivered)."""

    sid: str
    to: str
    from_: str
    body: str
    status_callback: str | None
    params: dict[str, str]
    resource: dict[str, Any]


@dataclass(frozen=True)
class StandinCall:
    """An outbound call the stand-in accepted (nobody is dialed)."""

    sid: str
    to: str
    from_: str
    url: str | None
    twiml: str | None
    status_callback: str | None
    params: dict[str, str]
    resource: dict[str, Any]


@dataclass(frozen=True)
class StandinRequest:
    """One request to the REST API part (not /_standin/), as received."""

    method: str
    path: str


@dataclass
class Fault:
    """Failures to inject: the next `times` requests whose path matches `path` (a regex)."""

    path: str
    status: int | None = 500
    times: int = 1
    delay_seconds: float = 0.0
    method: str | None = None
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path)
        self.method = self.method.upper() if self.method else None
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status (100-599) or null, not {self.status}")
        if self.times < 1:
            raise ValueError(f"times must be at least 1, not {self.times}")
        if not 0 <= self.delay_seconds <= 3600:
            raise ValueError(f"delay_seconds must be between 0 and 3600, not {self.delay_seconds}")


class StandinState:
    """Everything the stand-in holds, behind one lock (the server is threaded)."""

    def __init__(self, account_sid: str, auth_token: str) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.stopping = threading.Event()  # wakes injected delays when the server stops
        self._lock = threading.Lock()
        self._messages: list[StandinMessage] = []
        self._calls: list[StandinCall] = []
        self._deleted: list[str] = []
        self._requests: list[StandinRequest] = []
        self._recordings: dict[str, dict[str, bytes]] = {}
        self._faults: list[Fault] = []
        self._opted_out: set[str] = set()

    def set_opted_out(self, number: str, opted_out: bool = True) -> None:
        """Twilio's opt-out list: a number that texted STOP (or START again)."""
        with self._lock:
            if opted_out:
                self._opted_out.add(number)
            else:
                self._opted_out.discard(number)

    def is_opted_out(self, number: str) -> bool:
        """Whether Twilio would refuse to text `number` (error 21610)."""
        with self._lock:
            return number in self._opted_out

    def messages(self) -> list[StandinMessage]:
        """The SMS accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def calls(self) -> list[StandinCall]:
        """The calls accepted so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def deleted(self) -> list[str]:
        """The SIDs of deleted recordings, in order."""
        with self._lock:
            return list(self._deleted)

    def requests(self) -> list[StandinRequest]:
        """Every REST API request received, in order (including refused ones)."""
        with self._lock:
            return list(self._requests)

    def put_recording(self, sid: str, data: bytes, audio_format: str = "wav") -> None:
        """Provide the audio Twilio would serve for recording `sid` (wav or mp3)."""
        if not _RECORDING_SID.match(sid):
            raise ValueError(f"{sid!r} is not a recording SID (RE + 32 hex digits)")
        if audio_format not in _AUDIO_TYPES:
            raise ValueError(f"audio_format must be one of {sorted(_AUDIO_TYPES)}")
        with self._lock:
            self._recordings.setdefault(sid, {})[audio_format] = bytes(data)

    def recordings(self) -> list[str]:
        """The SIDs of the recordings held now."""
        with self._lock:
            return list(self._recordings)

    def recording(self, sid: str, audio_format: str) -> bytes | None:
        """The stored audio of `sid` in `audio_format`, if any."""
        with self._lock:
            return self._recordings.get(sid, {}).get(audio_format)

    def delete_recording(self, sid: str) -> bool:
        """Forget recording `sid`; False when there was none."""
        with self._lock:
            if self._recordings.pop(sid, None) is None:
                return False
            self._deleted.append(sid)
            return True

    def add_fault(self, fault: Fault) -> None:
        """Fail the next matching requests."""
        with self._lock:
            self._faults.append(fault)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """The first fault matching this request, used up once."""
        with self._lock:
            for fault in self._faults:
                if fault.method not in (None, method) or not fault.pattern.search(path):
                    continue
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def record_request(self, method: str, path: str) -> None:
        """Note one REST API request."""
        with self._lock:
            self._requests.append(StandinRequest(method, path))

    def add_message(self, message: StandinMessage) -> None:
        """Keep an accepted SMS."""
        with self._lock:
            self._messages.append(message)

    def add_call(self, call: StandinCall) -> None:
        """Keep an accepted call."""
        with self._lock:
            self._calls.append(call)

    def find_message(self, sid: str) -> StandinMessage | None:
        """The SMS with this SID."""
        with self._lock:
            return next((m for m in self._messages if m.sid == sid), None)

    def find_call(self, sid: str) -> StandinCall | None:
        """The call with this SID."""
        with self._lock:
            return next((c for c in self._calls if c.sid == sid), None)

    def reset(self) -> None:
        """Forget messages, calls, recordings, deletions, requests, faults and opt-outs."""
        with self._lock:
            for items in (self._messages, self._calls, self._deleted, self._requests,
                          self._faults):
                items.clear()
            self._recordings.clear()
            self._opted_out.clear()


# --- the app -----------------------------------------------------------------------


def create_standin(account_sid: str, auth_token: str) -> Flask:
    """The stand-in app for one account; its state is `standin_state(app)`."""
    if not account_sid or not auth_token:
        raise ValueError("the stand-in needs the account SID and auth token to check")
    app = Flask(__name__)
    state = StandinState(account_sid, auth_token)
    app.extensions["ivr.standin"] = state
    app.before_request(_before_api_request)
    app.register_error_handler(404, lambda _: _error(404, 20404, "The requested resource "
                                                     f"{request.path} was not found"))
    app.register_error_handler(405, lambda _: _error(405, 20004, "Method not allowed"))
    api = f"/{API_VERSION}/Accounts/<account>"
    app.add_url_rule(f"{api}/Messages.json", view_func=_create_message, methods=["POST"])
    app.add_url_rule(f"{api}/Messages/<name>", view_func=_fetch_message, methods=["GET"])
    app.add_url_rule(f"{api}/Calls.json", view_func=_create_call, methods=["POST"])
    app.add_url_rule(f"{api}/Calls/<name>", view_func=_fetch_call, methods=["GET"])
    app.add_url_rule(f"{api}/Recordings/<name>", view_func=_recording_media,
                     methods=["GET", "DELETE"])
    app.add_url_rule("/_standin/messages", view_func=_list_messages)
    app.add_url_rule("/_standin/calls", view_func=_list_calls)
    app.add_url_rule("/_standin/deleted", view_func=_list_deleted)
    app.add_url_rule("/_standin/requests", view_func=_list_requests)
    app.add_url_rule("/_standin/recordings/<name>", view_func=_upload_recording,
                     methods=["PUT"])
    app.add_url_rule("/_standin/faults", view_func=_add_fault, methods=["POST"])
    app.add_url_rule("/_standin/opt-outs", view_func=_set_opt_out, methods=["POST"])
    app.add_url_rule("/_standin/reset", view_func=_reset, methods=["POST"])
    return app


def standin_state(app: Flask) -> StandinState:
    """The state of a stand-in app made by `create_standin`."""
    state: StandinState = app.extensions["ivr.standin"]
    return state


def _state() -> StandinState:
    return standin_state(current_app)


def _before_api_request() -> Response | None:
    """Faults, Basic auth and the account check, as Twilio does them, for REST API paths."""
    if request.path.startswith("/_standin/"):
        return None
    state = _state()
    state.record_request(request.method, request.path)
    fault = state.take_fault(request.method, request.path)
    if fault is not None:
        if fault.delay_seconds:
            state.stopping.wait(fault.delay_seconds)
        if fault.status:
            return _error(fault.status, 20000 + fault.status,
                          _ERROR_TITLES.get(fault.status, "Injected failure"))
    auth = request.authorization
    if (auth is None or auth.type != "basic"
            or not _same(auth.username or "", state.account_sid)
            or not _same(auth.password or "", state.auth_token)):
        response = _error(401, 20003, "Authenticate",
                          detail="Your AccountSid or AuthToken was incorrect.")
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response
    match = _ACCOUNT_IN_PATH.match(request.path)
    if match is None or match.group(1) != state.account_sid:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    return None


def _create_message(account: str) -> Response:
    form = request.form
    to, from_ = form.get("To", ""), form.get("From") or form.get("MessagingServiceSid", "")
    body = form.get("Body", "")
    if not to:
        return _error(400, 21604, "A 'To' phone number is required.")
    if not from_:
        return _error(400, 21603, "A 'From' phone number is required.")
    if not body and not form.get("MediaUrl") and not form.get("ContentSid"):
        return _error(400, 21602, "Message body is required.")
    if _state().is_opted_out(to):
        return _error(400, 21610, "Attempt to send to unsubscribed recipient")
    sid, now = _sid("SM"), _now()
    uri = f"{_API_PREFIX}{account}/Messages/{sid}"
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
    _state().add_message(StandinMessage(sid, to, from_, body, form.get("StatusCallback"),
                                        form.to_dict(), resource))
    return _json(resource, 201)


def _fetch_message(account: str, name: str) -> Response:
    message = _state().find_message(name.removesuffix(".json"))
    if message is None:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    return _json(message.resource)


def _create_call(account: str) -> Response:
    form = request.form
    to, from_ = form.get("To", ""), form.get("From", "")
    url, twiml = form.get("Url"), form.get("Twiml")
    if not to:
        return _error(400, 21201, "No 'To' number is specified")
    if not from_:
        return _error(400, 21213, "No 'From' number is specified")
    if not url and not twiml and not form.get("ApplicationSid"):
        return _error(400, 21205, "Url parameter is required.")
    sid, now = _sid("CA"), _now()
    uri = f"{_API_PREFIX}{account}/Calls/{sid}"
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
    _state().add_call(StandinCall(sid, to, from_, url, twiml, form.get("StatusCallback"),
                                  form.to_dict(), resource))
    return _json(resource, 201)


def _fetch_call(account: str, name: str) -> Response:
    call = _state().find_call(name.removesuffix(".json"))
    if call is None:
        return _error(404, 20404, f"The requested resource {request.path} was not found")
    return _json(call.resource)


def _recording_media(account: str, name: str) -> Response:
    match = _RECORDING_NAME.match(name)
    not_found = _error(404, 20404, f"The requested resource {request.path} was not found")
    if match is None:
        return not_found
    sid, extension = match.group(1), (match.group(2) or "").lower()
    if request.method == "DELETE":
        if extension not in ("", "json") or not _state().delete_recording(sid):
            return not_found
        return Response(status=204)
    audio_format = extension or "wav"  # Twilio serves WAV when no extension is given
    data = _state().recording(sid, audio_format) if audio_format in _AUDIO_TYPES else None
    if data is None:
        return not_found
    return Response(data, status=200, mimetype=_AUDIO_TYPES[audio_format])


# --- inspection and control (no auth: a loopback tool) -----------------------------


def _list_messages() -> Response:
    return _json([_record(message) for message in _state().messages()])


def _list_calls() -> Response:
    return _json([_record(call) for call in _state().calls()])


def _list_deleted() -> Response:
    return _json(_state().deleted())


def _list_requests() -> Response:
    return _json([asdict(item) for item in _state().requests()])


def _upload_recording(name: str) -> Response:
    match = _RECORDING_NAME.match(name)
    if match is None:
        return _json({"message": f"{name!r} is not a recording SID (RE + 32 hex digits)"}, 400)
    content_type = (request.mimetype or "").lower()
    audio_format = (match.group(2) or _EXTENSION_OF_TYPE.get(content_type, "wav")).lower()
    if audio_format not in _AUDIO_TYPES:
        return _json({"message": f"format must be one of {sorted(_AUDIO_TYPES)}"}, 400)
    data = request.get_data(cache=False)
    _state().put_recording(match.group(1), data, audio_format)
    return _json({"sid": match.group(1), "format": audio_format, "bytes": len(data)}, 201)


def _add_fault() -> Response:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or not isinstance(spec.get("path"), str):
        return _json({"message": 'send JSON like {"path": "/Recordings/", "status": 500}'}, 400)
    try:
        fault = Fault(path=spec["path"], status=spec.get("status", 500) or None,
                      times=int(spec.get("times", 1)),
                      delay_seconds=float(spec.get("delay_seconds", 0)),
                      method=spec.get("method"))
    except (re.error, TypeError, ValueError) as exc:
        return _json({"message": f"bad fault: {exc}"}, 400)
    _state().add_fault(fault)
    return _json({"path": fault.path, "status": fault.status, "times": fault.times,
                  "delay_seconds": fault.delay_seconds, "method": fault.method}, 201)


def _set_opt_out() -> Response:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or not isinstance(spec.get("number"), str):
        return _json({"message": 'send JSON like {"number": "+4915...", "opted_out": true}'},
                     400)
    opted_out = bool(spec.get("opted_out", True))
    _state().set_opted_out(spec["number"], opted_out)
    return _json({"number": spec["number"], "opted_out": opted_out}, 201)


def _reset() -> Response:
    _state().reset()
    return Response(status=204)


# --- helpers -----------------------------------------------------------------------


def _record(item: StandinMessage | StandinCall) -> dict[str, Any]:
    return {**item.resource, "status_callback": item.status_callback, "params": item.params}


def _json(payload: Any, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    return response


def _error(status: int, code: int, message: str, detail: str | None = None) -> Response:
    """An error body shaped like Twilio's, which the twilio library turns into exceptions."""
    body: dict[str, Any] = {"code": code, "message": message, "status": status,
                            "more_info": f"https://www.twilio.com/docs/errors/{code}"}
    if detail:
        body["detail"] = detail
    return _json(body, status)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _now() -> str:
    return format_datetime(datetime.now(UTC))


# --- running it --------------------------------------------------------------------


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class StandinServer:
    """The stand-in on a free loopback port in a background thread; a context manager."""

    def __init__(self, account_sid: str = "AC" + "0" * 32,
                 auth_token: str = "standin-auth-token-0123456789abcdef", *,
                 host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.app = create_standin(account_sid, auth_token)
        self.state = standin_state(self.app)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True,
            request_handler=_QuietRequestHandler if quiet else None)
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="twilio-standin", daemon=True)
        self._thread.start()

    def messages(self) -> list[StandinMessage]:
        """The SMS accepted so far."""
        return self.state.messages()

    def calls(self) -> list[StandinCall]:
        """The calls accepted so far."""
        return self.state.calls()

    def deleted(self) -> list[str]:
        """The SIDs of deleted recordings."""
        return self.state.deleted()

    def requests(self) -> list[StandinRequest]:
        """Every REST API request received (not /_standin/)."""
        return self.state.requests()

    def put_recording(self, sid: str, data: bytes, audio_format: str = "wav") -> None:
        """Provide the audio of recording `sid`."""
        self.state.put_recording(sid, data, audio_format)

    def recordings(self) -> list[str]:
        """The SIDs of the recordings held now."""
        return self.state.recordings()

    def recording(self, sid: str, audio_format: str = "wav") -> bytes | None:
        """The audio held for recording `sid`, if any."""
        return self.state.recording(sid, audio_format)

    def recording_url(self, sid: str) -> str:
        """The RecordingUrl Twilio would post for recording `sid` of this account."""
        return f"{self.url}{_API_PREFIX}{self.account_sid}/Recordings/{sid}"

    def inject_fault(self, path: str, status: int | None = 500, *, times: int = 1,
                     delay_seconds: float = 0.0, method: str | None = None) -> None:
        """Fail (or delay, with status None) the next `times` requests whose path matches."""
        self.state.add_fault(Fault(path, status, times, delay_seconds, method))

    def opt_out(self, number: str, opted_out: bool = True) -> None:
        """Put `number` on Twilio's opt-out list (or take it off): texts to it get 21610."""
        self.state.set_opted_out(number, opted_out)

    def reset(self) -> None:
        """Forget everything received, every pending fault and opt-out."""
        self.state.reset()

    def stop(self) -> None:
        """Stop serving; injected delays in progress end at once."""
        if self.state.stopping.is_set():
            return
        self.state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StandinServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _credentials() -> tuple[str, str]:
    """The account SID and auth token: the app's config, else IVR_* variables, else defaults."""
    from ivr.config import DEFAULTS

    if has_app_context():
        config = current_app.config
        return (str(config.get("TWILIO_ACCOUNT_SID") or DEFAULTS["TWILIO_ACCOUNT_SID"]),
                str(config.get("TWILIO_AUTH_TOKEN") or DEFAULTS["TWILIO_AUTH_TOKEN"]))
    return (os.environ.get("IVR_TWILIO_ACCOUNT_SID") or DEFAULTS["TWILIO_ACCOUNT_SID"],
            os.environ.get("IVR_TWILIO_AUTH_TOKEN") or DEFAULTS["TWILIO_AUTH_TOKEN"])


@click.command("standin")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep it loopback (/_standin/ has no auth).")
def standin_command(port: int, host: str) -> None:
    """Serve a loopback stand-in for Twilio's REST API (development and tests only)."""
    account_sid, auth_token = _credentials()
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: {host} is not loopback; anyone who can reach it can read the "
                   "SMS and calls it receives", err=True)
    server = make_server(host, port, create_standin(account_sid, auth_token), threaded=True)
    url = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}"
    click.echo(f"Twilio stand-in for account {account_sid} on {url}\n"
               f"Point the app and the workers at it:  IVR_TWILIO_API_BASE_URL={url}\n"
               f"Simulated calls upload their recordings:  ivr call --standin {url} ...")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
