"""The Twilio side of a simulated call: signed webhook requests and the walk over TwiML verbs."""

from __future__ import annotations

import io
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final, Literal
from urllib.parse import urlencode, urljoin, urlsplit

import phonenumbers
import requests
from twilio.request_validator import RequestValidator

from ivr.simulator.callers import (
    DIAL_OUTCOMES,
    HANGUP,
    KEYS,
    Caller,
    GatherPrompt,
    Recording,
    RecordPrompt,
    Speech,
)

DEFAULT_CALLER: Final = "+4930901820"
DEFAULT_CALLED: Final = "+493012345678"
DEFAULT_ACCOUNT_SID: Final = "AC" + "0" * 32
TWILIO_API_BASE_URL: Final = "https://api.twilio.com"
API_VERSION: Final = "2010-04-01"

# Rough call-time model: what the caller spends listening, ringing and talking.
_CHARS_PER_SECOND = 14.0
_PLAY_SECONDS = 3.0
_KEY_SECONDS = 0.5
_RING_SECONDS = 5.0
# TwiML verbs Twilio knows but the simulator does not model: reported and skipped.
_UNMODELLED_VERBS = frozenset(
    {"Connect", "Echo", "Enqueue", "Leave", "Message", "Pay", "Prompt", "Queue", "Refer", "Sms",
     "Start", "Stop"}
)
_TWIML_CONTENT_TYPES = frozenset({"text/xml", "application/xml", "text/html"})

EventKind = Literal[
    "request", "say", "play", "pause", "gather", "record", "dial", "redirect", "hangup",
    "failure", "status", "skip",
]


# --- what happened -----------------------------------------------------------------


@dataclass
class CallEvent:
    """One thing that happened on the call: a request, a verb heard, an input, an ending."""

    kind: EventKind
    text: str = ""
    language: str | None = None
    url: str | None = None
    http_status: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class CallTranscript:
    """Everything a simulated call did, in order."""

    call_sid: str
    events: list[CallEvent] = field(default_factory=list)
    recordings: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0

    def said(self) -> list[str]:
        """All texts spoken by <Say>, in order."""
        return [event.text for event in self.events if event.kind == "say"]

    @property
    def failures(self) -> list[CallEvent]:
        """The failure events (HTTP errors, invalid TwiML, loops)."""
        return [event for event in self.events if event.kind == "failure"]

    @property
    def failed(self) -> bool:
        """Whether Twilio would have played its "application error" or logged a webhook error."""
        return bool(self.failures)

    @property
    def requests(self) -> int:
        """How many HTTP requests the call made."""
        return sum(1 for event in self.events if event.kind == "request")


# --- the simulator -----------------------------------------------------------------


class Simulator:
    """Plays Twilio against the web app at `base_url`; one `run` is one phone call."""

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        *,
        caller: str = DEFAULT_CALLER,
        called: str = DEFAULT_CALLED,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        call_sid: str | None = None,
        entry_path: str = "/voice",
        status_path: str = "/voice/status",
        public_base_url: str | None = None,
        recording_base_url: str = TWILIO_API_BASE_URL,
        upload_recordings: bool = False,
        send_status: bool = True,
        max_requests: int = 200,
        dial_talk_seconds: int = 60,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        urls = [("base_url", base_url), ("public_base_url", public_base_url)]
        if upload_recordings:
            urls.append(("recording_base_url", recording_base_url))
        for name, url in urls:
            if url is not None and urlsplit(url).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, not {url!r}")
        if not auth_token:
            raise ValueError("auth_token is empty; the app would answer 403")
        recording_host = (urlsplit(recording_base_url).hostname or "").lower()
        if upload_recordings and (recording_host == "twilio.com"
                                  or recording_host.endswith(".twilio.com")):
            raise ValueError("upload_recordings needs the URL of a Twilio stand-in "
                             f"(ivr standin), not {recording_base_url}")
        self.base_url = base_url.rstrip("/")
        self.public_base_url = (public_base_url or base_url).rstrip("/")
        self.caller = caller
        self.called = called
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.entry_url = _join_root(self.public_base_url, entry_path)
        self.status_url = _join_root(self.public_base_url, status_path)
        self.recording_base_url = recording_base_url.rstrip("/")
        # Put each recording's audio on the Twilio stand-in (ivr/standin.py) the URL points to.
        self.upload_recordings = upload_recordings
        self.send_status = send_status
        self.max_requests = max_requests
        self.dial_talk_seconds = dial_talk_seconds
        self.session = session or requests.Session()
        self.timeout = timeout
        self.validator = RequestValidator(auth_token)
        self._countries = (_country(caller), _country(called))

    def run(
        self, caller: Caller, on_event: Callable[[CallEvent], None] | None = None
    ) -> CallTranscript:
        """Place one call: `caller` answers the input points, `on_event` sees each event."""
        return _Call(self, caller, on_event).run()

    def transport_url(self, public_url: str) -> str:
        """Where a request for `public_url` is sent: the public prefix mapped to `base_url`."""
        prefix = self.public_base_url
        if prefix != self.base_url and public_url.startswith(prefix):
            rest = public_url[len(prefix):]
            if rest == "" or rest[0] in "/?#":
                return self.base_url + rest
        return public_url

    def call_params(self, call_sid: str, status: str) -> dict[str, str]:
        """Twilio's standard parameters of an inbound call's webhooks."""
        from_country, to_country = self._countries
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid,
            "CallStatus": status,
            "Called": self.called,
            "CalledCity": "",
            "CalledCountry": to_country,
            "CalledState": "",
            "CalledZip": "",
            "Caller": self.caller,
            "CallerCity": "",
            "CallerCountry": from_country,
            "CallerState": "",
            "CallerZip": "",
            "Direction": "inbound",
            "From": self.caller,
            "FromCity": "",
            "FromCountry": from_country,
            "FromState": "",
            "FromZip": "",
            "To": self.called,
            "ToCity": "",
            "ToCountry": to_country,
            "ToState": "",
            "ToZip": "",
        }


@dataclass(frozen=True)
class _Request:
    url: str  # the public URL: what Twilio requests and signs
    method: str
    params: dict[str, str]
    purpose: str
    call_params: bool = True
    callbacks: tuple[_Request, ...] = ()  # sent after this request is answered, like Twilio


class _Ended:
    """The call is over."""


_ENDED: Final = _Ended()
_Outcome = _Request | _Ended | None


class _CallFailed(Exception):
    pass


class _Call:
    """The state of one simulated call."""

    def __init__(
        self, sim: Simulator, caller: Caller, on_event: Callable[[CallEvent], None] | None
    ) -> None:
        self.sim = sim
        self.caller = caller
        self.on_event = on_event
        self.transcript = CallTranscript(call_sid=sim.call_sid or _sid("CA"))
        self.seconds = 0.0
        self.heard: list[str] = []
        self.status = "ringing"
        self.verbs: dict[str, Callable[[ET.Element, str], _Outcome]] = {
            "Say": self._say, "Play": self._play, "Pause": self._pause, "Gather": self._gather,
            "Record": self._record, "Dial": self._dial, "Redirect": self._redirect,
            "Hangup": self._hangup, "Reject": self._hangup,
        }

    def run(self) -> CallTranscript:
        request: _Request | None = _Request(self.sim.entry_url, "POST", {}, "entry")
        try:
            while request is not None:
                document = self._fetch(request)
                self.status = "in-progress"
                request = self._walk(document, request.url)
        except _CallFailed:  # already a failure event: the call stops, as Twilio's would
            pass
        else:
            self._finish()
        self.transcript.duration = self.seconds
        return self.transcript

    # --- events and HTTP ---

    def _emit(self, event: CallEvent) -> None:
        self.transcript.events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def _fail(self, reason: str, text: str, url: str | None = None,
              http_status: int | None = None, **detail: Any) -> _CallFailed:
        self._emit(CallEvent("failure", text, url=url, http_status=http_status,
                             detail={"reason": reason, **detail}))
        return _CallFailed(text)

    def _send(self, request: _Request) -> requests.Response:
        params = dict(request.params)
        if request.call_params:
            params = {**self.sim.call_params(self.transcript.call_sid, self.status), **params}
        url, data, signed = request.url, params, params
        if request.method == "GET":  # Twilio sends GET parameters in the query string
            url = url + ("&" if urlsplit(url).query else "?") + urlencode(params)
            data, signed = {}, {}
        headers = {
            "X-Twilio-Signature": self.sim.validator.compute_signature(url, signed),
            "I-Twilio-Idempotency-Token": str(uuid.uuid4()),
            "User-Agent": "TwilioProxy/1.1",
        }
        transport_url = self.sim.transport_url(url)
        detail = {"method": request.method, "purpose": request.purpose, "params": params,
                  "transport_url": transport_url}
        try:
            response = self.sim.session.request(
                request.method, transport_url, data=data or None, headers=headers,
                timeout=self.sim.timeout, allow_redirects=False,
            )
        except requests.RequestException as exc:
            self._emit(CallEvent("request", request.purpose, url=url, detail=detail))
            raise self._fail("connection", f"no answer from {_short(url)}: {exc}", url) from exc
        self._emit(CallEvent("request", request.purpose, url=url,
                             http_status=response.status_code, detail=detail))
        if not 200 <= response.status_code < 300:
            raise self._fail("http-status", f"HTTP {response.status_code} from {_short(url)}",
                             url, response.status_code, body=response.text[:2000])
        return response

    def _fetch(self, request: _Request) -> ET.Element:
        if self.transcript.requests >= self.sim.max_requests:
            raise self._fail("max-requests", f"more than {self.sim.max_requests} requests: "
                             f"the call flow loops (last {_short(request.url)})", request.url)
        try:
            response = self._send(request)
            return self._parse(response, request.url)
        finally:
            for callback in request.callbacks:
                self._post_callback(callback)

    def _post_callback(self, request: _Request) -> int | None:
        try:
            return self._send(request).status_code
        except _CallFailed:  # already recorded; callbacks do not change what the caller hears
            return None

    def _parse(self, response: requests.Response, url: str) -> ET.Element:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in _TWIML_CONTENT_TYPES and not content_type.endswith("+xml"):
            raise self._fail("content-type", f"{content_type or 'no Content-Type'} from "
                             f"{_short(url)}, not TwiML", url, response.status_code,
                             body=response.text[:2000])
        try:
            root = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise self._fail("not-xml", f"invalid XML from {_short(url)}: {exc}", url,
                             response.status_code, body=response.text[:2000]) from exc
        if root.tag != "Response":
            raise self._fail("not-response", f"<{root.tag}> from {_short(url)}: TwiML must be "
                             "a <Response>", url, response.status_code)
        return root

    # --- the TwiML walk ---

    def _walk(self, document: ET.Element, url: str) -> _Request | None:
        for element in document:
            outcome = self._verb(element, url)
            if isinstance(outcome, _Request):
                return outcome
            if outcome is _ENDED:
                return None
        self._emit(CallEvent("hangup", "end of TwiML", url=url,
                             detail={"by": "app", "reason": "end of document"}))
        return None

    def _verb(self, element: ET.Element, url: str) -> _Outcome:
        handler = self.verbs.get(element.tag)
        if handler is not None:
            return handler(element, url)
        if element.tag in _UNMODELLED_VERBS:
            self._emit(CallEvent("skip", f"<{element.tag}> is not simulated; skipped", url=url,
                                 detail={"verb": element.tag, "attributes": dict(element.attrib)}))
            return None
        raise self._fail("invalid-twiml", f"unknown TwiML verb <{element.tag}> in {_short(url)}",
                         url)

    def _say(self, element: ET.Element, url: str) -> _Outcome:
        text = _text(element)
        loop = _int(element.get("loop"), 1)
        self.seconds += max(len(text) / _CHARS_PER_SECOND, 0.5) * max(loop, 1)
        self.heard.append(text)
        self._emit(CallEvent("say", text, language=element.get("language") or "en-US", url=url,
                             detail={"voice": element.get("voice"), "loop": loop}))
        return None

    def _play(self, element: ET.Element, url: str) -> _Outcome:
        source = _text(element)
        loop = _int(element.get("loop"), 1)
        self.seconds += _PLAY_SECONDS * max(loop, 1)
        self._emit(CallEvent("play", urljoin(url, source) if source else "", url=url,
                             detail={"digits": element.get("digits"), "loop": loop}))
        return None

    def _pause(self, element: ET.Element, url: str) -> _Outcome:
        length = _int(element.get("length"), 1)
        self.seconds += length
        self._emit(CallEvent("pause", url=url, detail={"length": length}))
        return None

    def _gather(self, element: ET.Element, url: str) -> _Outcome:
        for child in element:
            if child.tag not in ("Say", "Play", "Pause"):
                raise self._fail("invalid-twiml", f"<{child.tag}> cannot be nested in <Gather> "
                                 f"({_short(url)})", url)
            self._verb(child, url)
        modes = tuple((element.get("input") or "dtmf").split())
        prompt = GatherPrompt(
            url=url, input=modes, timeout=_int(element.get("timeout"), 5),
            num_digits=_int(element.get("numDigits"), 0) or None,
            finish_on_key=element.get("finishOnKey", "#"),
            language=element.get("language") or "en-US", hints=element.get("hints"),
            heard=self._take_heard(),
        )
        action = urljoin(url, element.get("action") or "")
        method = (element.get("method") or "POST").upper()
        self._emit(CallEvent("gather", language=prompt.language, url=url, detail={
            "phase": "listen", "input": modes, "timeout": prompt.timeout,
            "num_digits": prompt.num_digits, "finish_on_key": prompt.finish_on_key,
            "hints": prompt.hints, "action": action}))
        answer = self.caller.gather(prompt)
        if answer is HANGUP:
            return self._caller_hung_up(url)
        params, result = self._gather_result(answer, prompt)
        self._emit(CallEvent("gather", result.pop("text"), language=prompt.language, url=url,
                             detail={"phase": "result", **result}))
        if params or element.get("actionOnEmptyResult") == "true":
            return _Request(action, method, params, "gather")
        return None  # no input: Twilio goes on with the verb after </Gather>

    def _gather_result(
        self, answer: str | Speech | None, prompt: GatherPrompt
    ) -> tuple[dict[str, str], dict[str, Any]]:
        if isinstance(answer, Speech):
            self.seconds += len(answer.text) / _CHARS_PER_SECOND + 1.0
            if "speech" not in prompt.input:
                return {}, {"text": "", "ignored": f'said "{answer.text}" but this <Gather> '
                            "does not listen for speech"}
            return ({"SpeechResult": answer.text, "Confidence": str(answer.confidence)},
                    {"text": answer.text, "speech": answer.text,
                     "confidence": answer.confidence})
        if not answer:
            self.seconds += prompt.timeout
            return {}, {"text": ""}
        if not set(answer) <= KEYS:
            raise ValueError(f"caller pressed {answer!r}; keys are 0-9, * and #")
        self.seconds += len(answer) * _KEY_SECONDS
        if "dtmf" not in prompt.input:
            self.seconds += prompt.timeout
            return {}, {"text": "", "ignored": f"pressed {answer} but this <Gather> listens "
                        "for speech only"}
        digits, finished_on_key, discarded = _collect_digits(
            answer, prompt.num_digits, prompt.finish_on_key)
        if not finished_on_key and not (prompt.num_digits and len(digits) >= prompt.num_digits):
            self.seconds += prompt.timeout  # Twilio waits for more keys until the timeout
        result = {"text": digits, "digits": digits, "finished_on_key": finished_on_key,
                  "discarded": discarded}
        if not digits:  # only the finish key: Twilio treats it as no input
            return {}, result
        return {"Digits": digits, "FinishedOnKey": finished_on_key}, result

    def _record(self, element: ET.Element, url: str) -> _Outcome:
        max_length = _int(element.get("maxLength"), 3600) or 3600
        prompt = RecordPrompt(url=url, max_length=max_length,
                              timeout=_int(element.get("timeout"), 5),
                              finish_on_key=element.get("finishOnKey", "1234567890*#"),
                              heard=self._take_heard())
        action = urljoin(url, element.get("action") or "")
        method = (element.get("method") or "POST").upper()
        callback = element.get("recordingStatusCallback")
        callback_url = urljoin(url, callback) if callback else None
        callback_method = (element.get("recordingStatusCallbackMethod") or "POST").upper()
        callback_events = (element.get("recordingStatusCallbackEvent") or "completed").split()
        self._emit(CallEvent("record", url=url, detail={
            "phase": "listen", "max_length": max_length, "timeout": prompt.timeout,
            "finish_on_key": prompt.finish_on_key, "action": action,
            "recording_status_callback": callback_url}))
        answer = self.caller.record(prompt)
        if answer is HANGUP:
            return self._caller_hung_up(url)
        recording = answer if isinstance(answer, Recording | None) else Recording(str(answer))
        seconds = _audio_seconds(recording.path) if recording else 0.0
        sid = _sid("RE")

        def status_callback(status: str, extra: dict[str, str]) -> _Request | None:
            if callback_url is None or status not in callback_events:
                return None
            params = {"AccountSid": self.sim.account_sid, "CallSid": self.transcript.call_sid,
                      "RecordingSid": sid, "RecordingStatus": status,
                      "RecordingSource": "RecordVerb", "RecordingChannels": "1", **extra}
            return _Request(callback_url, callback_method, params, "recording-status",
                            call_params=False)

        if recording is None or seconds <= 0:
            self.seconds += prompt.timeout
            self._emit(CallEvent("record", url=url, detail={"phase": "result", "duration": 0.0,
                                                            "path": None}))
            absent = status_callback("absent", {"RecordingDuration": "0"})
            if absent is not None:
                self._post_callback(absent)
            return None  # an empty recording: Twilio skips the action and goes on
        clipped = min(seconds, float(max_length))
        self.seconds += clipped + 1.0
        recording_url = (f"{self.sim.recording_base_url}/{API_VERSION}/Accounts/"
                         f"{self.sim.account_sid}/Recordings/{sid}")
        self.transcript.recordings[sid] = recording.path
        uploaded_to = None
        if self.sim.upload_recordings:
            uploaded_to = self._upload(sid, recording.path, clipped)
        if recording.hangup:
            finished = "hangup"
        elif clipped < seconds:
            finished = "max-length"
        else:  # the caller presses a finish key, or stays silent until the timeout
            finished = _finish_key(prompt.finish_on_key) or "timeout"
        self._emit(CallEvent("record", url=url, detail={
            "phase": "result", "duration": clipped, "path": recording.path, "sid": sid,
            "recording_url": recording_url, "finished": finished, "uploaded_to": uploaded_to}))
        recorded = {"RecordingUrl": recording_url, "RecordingDuration": str(max(1, round(clipped)))}
        started = status_callback("in-progress", {"RecordingUrl": recording_url,
                                                  "RecordingStartTime": _timestamp()})
        if started is not None:
            self._post_callback(started)
        completed = status_callback("completed", {**recorded, "RecordingStartTime": _timestamp()})
        callbacks = (completed,) if completed is not None else ()
        params = {**recorded, "RecordingSid": sid}
        if finished not in ("max-length", "timeout"):
            params["Digits"] = finished
        if not recording.hangup:
            return _Request(action, method, params, "record", callbacks=callbacks)
        # The caller hung up: Twilio still requests the action but ignores its TwiML.
        self.status = "completed"
        try:
            self._send(_Request(action, method, params, "record"))
        finally:
            for request in callbacks:
                self._post_callback(request)
        return self._caller_hung_up(url)

    def _upload(self, sid: str, path: str, seconds: float) -> str:
        """PUT the recording's WAV to the stand-in, so the app can download it like Twilio's."""
        url = f"{self.sim.recording_base_url}/_standin/recordings/{sid}"
        try:
            audio = _wav_bytes(path, seconds)
            response = self.sim.session.put(url, data=audio, timeout=self.sim.timeout,
                                            headers={"Content-Type": "audio/x-wav"})
        except requests.RequestException as exc:
            raise self._fail("upload", f"cannot upload recording {sid} to {_short(url)}: {exc}",
                             url) from exc
        if not 200 <= response.status_code < 300:
            raise self._fail("upload", f"HTTP {response.status_code} uploading recording {sid} "
                             f"to {_short(url)}", url, response.status_code,
                             body=response.text[:2000])
        return url

    def _dial(self, element: ET.Element, url: str) -> _Outcome:
        numbers = [_text(child) if child.tag == "Number" else f"{child.tag.lower()}:{_text(child)}"
                   for child in element] or ([_text(element)] if _text(element) else [])
        timeout = _int(element.get("timeout"), 30)
        action = element.get("action")
        answer = self.caller.dial(numbers)
        if answer is HANGUP:
            return self._caller_hung_up(url)
        outcome = answer.lower()
        if outcome not in DIAL_OUTCOMES:
            raise ValueError(f"dial outcome {answer!r}: use one of {DIAL_OUTCOMES}")
        status = "completed" if outcome in ("completed", "answered") else outcome
        talk = self.sim.dial_talk_seconds if status == "completed" else 0
        self.seconds += {"completed": _RING_SECONDS + talk, "busy": 2.0, "no-answer": timeout,
                         "failed": 1.0}[status]
        action_url = urljoin(url, action) if action is not None else None
        self._emit(CallEvent("dial", ", ".join(numbers), url=url, detail={
            "outcome": status, "timeout": timeout, "action": action_url,
            "caller_id": element.get("callerId"), "talk_seconds": talk}))
        if action_url is not None:
            params = {"DialCallStatus": status, "DialCallSid": _sid("CA"),
                      "DialCallDuration": str(talk)}
            return _Request(action_url, (element.get("method") or "POST").upper(), params, "dial")
        if status == "completed":
            self._emit(CallEvent("hangup", "caller hung up after the conversation", url=url,
                                 detail={"by": "caller", "reason": "dial completed"}))
            return _ENDED
        return None  # not connected and no action: Twilio goes on with the next verb

    def _redirect(self, element: ET.Element, url: str) -> _Outcome:
        target = _text(element)
        if not target:
            raise self._fail("invalid-twiml", f"<Redirect> without a URL in {_short(url)}", url)
        target_url = urljoin(url, target)
        method = (element.get("method") or "POST").upper()
        self._emit(CallEvent("redirect", target_url, url=target_url, detail={"method": method}))
        return _Request(target_url, method, {}, "redirect")

    def _hangup(self, element: ET.Element, url: str) -> _Outcome:
        detail = {"by": "app", "verb": element.tag}
        if element.tag == "Reject":
            detail["reason"] = element.get("reason") or "rejected"
        self._emit(CallEvent("hangup", f"<{element.tag}>", url=url, detail=detail))
        return _ENDED

    # --- endings ---

    def _caller_hung_up(self, url: str) -> _Ended:
        self._emit(CallEvent("hangup", "caller hung up", url=url, detail={"by": "caller"}))
        return _ENDED

    def _take_heard(self) -> tuple[str, ...]:
        heard, self.heard = tuple(self.heard), []
        return heard

    def _finish(self) -> None:
        self.status = "completed"
        duration = round(self.seconds)
        detail: dict[str, Any] = {"duration": self.seconds, "posted": self.sim.send_status}
        http_status = None
        if self.sim.send_status:
            params = {"CallDuration": str(duration), "Timestamp": _timestamp(),
                      "CallbackSource": "call-progress-events", "SequenceNumber": "0"}
            http_status = self._post_callback(
                _Request(self.sim.status_url, "POST", params, "status"))
        self._emit(CallEvent("status", "completed", url=self.sim.status_url,
                             http_status=http_status, detail=detail))


# --- helpers -----------------------------------------------------------------------


def _sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _timestamp() -> str:
    return format_datetime(datetime.now(UTC))


def _text(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _join_root(root: str, path: str) -> str:
    if urlsplit(path).scheme:
        return path
    return root + "/" + path.lstrip("/")


def _short(url: str | None) -> str:
    if not url:
        return "?"
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _country(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number)) or ""
    except phonenumbers.NumberParseException:
        return ""


def _collect_digits(keys: str, num_digits: int | None, finish_on_key: str) -> tuple[str, str, str]:
    digits = ""
    for index, key in enumerate(keys):
        if finish_on_key and key in finish_on_key:
            return digits, key, keys[index + 1:]
        digits += key
        if num_digits and len(digits) >= num_digits:
            return digits, "", keys[index + 1:]
    return digits, "", ""


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
