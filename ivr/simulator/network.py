"""The Twilio side of a simulated call: signed webhook requests and the walk over TwiML verbs."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, Final
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
    Speech,
)
from ivr.simulator.events import (
    API_VERSION,
    ENDED,
    CallEvent,
    CallFailed,
    CallTranscript,
    Ended,
    EventKind,
    Outcome,
    Request,
    int_attribute,
    join_root,
    new_sid,
    short_url,
    text_of,
    timestamp,
)
from ivr.simulator.recording import record_verb
from ivr.simulator.waiting import WAIT_VERBS, QueueContext, QueueLine, enter_queue, leave_verb

__all__ = ["API_VERSION", "DEFAULT_ACCOUNT_SID", "DEFAULT_CALLED", "DEFAULT_CALLER",
           "DEFAULT_MAX_WAIT_PASSES", "TWILIO_API_BASE_URL", "CallEvent", "CallTranscript",
           "EventKind", "Simulator"]

DEFAULT_CALLER: Final = "+4930901820"
DEFAULT_CALLED: Final = "+493012345678"
DEFAULT_ACCOUNT_SID: Final = "AC" + "0" * 32
TWILIO_API_BASE_URL: Final = "https://api.twilio.com"

# Rough call-time model: what the caller spends listening, ringing and talking.
_CHARS_PER_SECOND = 14.0
_PLAY_SECONDS = 3.0
_KEY_SECONDS = 0.5
_RING_SECONDS = 5.0
# TwiML verbs Twilio knows but the simulator does not model: reported and skipped.
_UNMODELLED_VERBS = frozenset(
    {"Connect", "Echo", "Message", "Pay", "Prompt", "Queue", "Refer", "Sms", "Start", "Stop"}
)
_TWIML_CONTENT_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
DEFAULT_MAX_WAIT_PASSES: Final = 40


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
        standin_url: str | None = None,
        max_wait_passes: int = DEFAULT_MAX_WAIT_PASSES,
        wait_pace: float = 0.0,
    ) -> None:
        urls = [("base_url", base_url), ("public_base_url", public_base_url),
                ("standin_url", standin_url)]
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
        if max_wait_passes < 1:
            raise ValueError(f"max_wait_passes must be at least 1, not {max_wait_passes}")
        if wait_pace < 0:
            raise ValueError(f"wait_pace must not be negative, not {wait_pace}")
        self.base_url = base_url.rstrip("/")
        self.public_base_url = (public_base_url or base_url).rstrip("/")
        self.caller = caller
        self.called = called
        self.account_sid = account_sid
        self.call_sid = call_sid
        self.entry_url = join_root(self.public_base_url, entry_path)
        self.status_url = join_root(self.public_base_url, status_path)
        self.recording_base_url = recording_base_url.rstrip("/")
        # Put each recording's audio on the Twilio stand-in (ivr/standin.py) the URL points to.
        self.upload_recordings = upload_recordings
        self.send_status = send_status
        self.max_requests = max_requests
        self.dial_talk_seconds = dial_talk_seconds
        self.session = session or requests.Session()
        self.timeout = timeout
        # Callers who reach <Enqueue> wait at this stand-in, where the line can dequeue them.
        self.standin_url = standin_url.rstrip("/") if standin_url else None
        self.max_wait_passes = max_wait_passes
        self.wait_pace = wait_pace  # real seconds between passes of a hold loop
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


class _Call:
    """The state of one simulated call."""

    def __init__(
        self, sim: Simulator, caller: Caller, on_event: Callable[[CallEvent], None] | None
    ) -> None:
        self.sim = sim
        self.caller = caller
        self.on_event = on_event
        self.transcript = CallTranscript(call_sid=sim.call_sid or new_sid("CA"))
        self.seconds = 0.0
        self.heard: list[str] = []
        self.status = "ringing"
        # Where the walk is: the document, its URL and the verb (a paused call resumes there).
        self.document_text = ""
        self.current_url = sim.entry_url
        self.index = 0
        self.seconds_before_verb = 0.0
        # Set while the caller waits in a queue (ivr/simulator/waiting.py).
        self.queue: QueueContext | None = None
        self.line = (QueueLine(sim.standin_url, sim.session, sim.timeout)
                     if sim.standin_url else None)
        self.gathered_in_pass = False
        self.queue_requests = 0
        self.verbs: dict[str, Callable[[ET.Element, str], Outcome]] = {
            "Say": self._say, "Play": self._play, "Pause": self._pause, "Gather": self._gather,
            "Dial": self._dial, "Redirect": self._redirect, "Hangup": self._hangup,
            "Reject": self._hangup,
            "Record": lambda element, url: record_verb(self, element, url),
            "Enqueue": lambda element, url: enter_queue(self, element, url),
            "Leave": lambda element, url: leave_verb(self, element, url),
        }

    def run(self) -> CallTranscript:
        request: Request | None = Request(self.sim.entry_url, "POST", {}, "entry")
        try:
            while request is not None:
                document = self._fetch(request)
                self.status = "in-progress"
                request = self._walk(document, request.url)
        except CallFailed:  # already a failure event: the call stops, as Twilio's would
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
              http_status: int | None = None, **detail: Any) -> CallFailed:
        self._emit(CallEvent("failure", text, url=url, http_status=http_status,
                             detail={"reason": reason, **detail}))
        return CallFailed(text)

    def _send(self, request: Request) -> requests.Response:
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
            raise self._fail("connection", f"no answer from {short_url(url)}: {exc}", url) from exc
        self._emit(CallEvent("request", request.purpose, url=url,
                             http_status=response.status_code, detail=detail))
        if not 200 <= response.status_code < 300:
            raise self._fail("http-status", f"HTTP {response.status_code} from {short_url(url)}",
                             url, response.status_code, body=response.text[:2000])
        return response

    def _fetch(self, request: Request) -> ET.Element:
        if request.twiml is not None:  # TwiML given inline: Twilio plays it without a request
            return self._parse_twiml(request.twiml.encode(), request.url, None)
        if self.queue is not None:  # a hold loop is bounded by max_wait_passes instead
            self.queue_requests += 1
        elif self.transcript.requests - self.queue_requests >= self.sim.max_requests:
            raise self._fail("max-requests", f"more than {self.sim.max_requests} requests: "
                             f"the call flow loops (last {short_url(request.url)})", request.url)
        try:
            response = self._send(request)
            return self._parse(response, request.url)
        finally:
            for callback in request.callbacks:
                self._post_callback(callback)

    def _post_callback(self, request: Request) -> int | None:
        try:
            return self._send(request).status_code
        except CallFailed:  # already recorded; callbacks do not change what the caller hears
            return None

    def _parse(self, response: requests.Response, url: str) -> ET.Element:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in _TWIML_CONTENT_TYPES and not content_type.endswith("+xml"):
            raise self._fail("content-type", f"{content_type or 'no Content-Type'} from "
                             f"{short_url(url)}, not TwiML", url, response.status_code,
                             body=response.text[:2000])
        return self._parse_twiml(response.content, url, response.status_code)

    def _parse_twiml(self, content: bytes, url: str, http_status: int | None) -> ET.Element:
        text = content.decode("utf-8", errors="replace")
        try:
            root = ET.fromstring(content)
        except ET.ParseError as exc:
            raise self._fail("not-xml", f"invalid XML from {short_url(url)}: {exc}", url,
                             http_status, body=text[:2000]) from exc
        if root.tag != "Response":
            raise self._fail("not-response", f"<{root.tag}> from {short_url(url)}: TwiML must be "
                             "a <Response>", url, http_status)
        self.document_text = text
        return root

    # --- the TwiML walk ---

    def _walk(self, document: ET.Element, url: str, start: int = 0) -> Request | None:
        """Play a document from verb `start`: the next request, or None when the call ends."""
        outcome = self._walk_verbs(document, url, start)
        if isinstance(outcome, Request):
            return outcome
        if outcome is None:
            self._emit(CallEvent("hangup", "end of TwiML", url=url,
                                 detail={"by": "app", "reason": "end of document"}))
        return None

    def _walk_verbs(self, document: ET.Element, url: str, start: int = 0) -> Outcome:
        """Play verbs from `start` until one leads elsewhere; None when the document ran out."""
        self.current_url = url
        verbs = list(document)
        for index in range(start, len(verbs)):
            self.index, self.seconds_before_verb = index, self.seconds
            outcome = self._verb(verbs[index], url)
            if outcome is not None:
                return outcome
        self.index, self.seconds_before_verb = len(verbs), self.seconds
        return None

    def _verb(self, element: ET.Element, url: str) -> Outcome:
        if self.queue is not None and element.tag not in WAIT_VERBS:
            raise self._fail("invalid-twiml", f"<{element.tag}> is not allowed in a queue's "
                             f"hold loop ({short_url(url)})", url)
        handler = self.verbs.get(element.tag)
        if handler is not None:
            return handler(element, url)
        if element.tag in _UNMODELLED_VERBS:
            self._emit(CallEvent("skip", f"<{element.tag}> is not simulated; skipped", url=url,
                                 detail={"verb": element.tag, "attributes": dict(element.attrib)}))
            return None
        raise self._fail("invalid-twiml", f"unknown TwiML verb <{element.tag}> in {short_url(url)}",
                         url)

    def _say(self, element: ET.Element, url: str) -> Outcome:
        text = text_of(element)
        loop = int_attribute(element.get("loop"), 1)
        self.seconds += max(len(text) / _CHARS_PER_SECOND, 0.5) * max(loop, 1)
        self.heard.append(text)
        self._emit(CallEvent("say", text, language=element.get("language") or "en-US", url=url,
                             detail={"voice": element.get("voice"), "loop": loop}))
        return None

    def _play(self, element: ET.Element, url: str) -> Outcome:
        source = text_of(element)
        loop = int_attribute(element.get("loop"), 1)
        self.seconds += _PLAY_SECONDS * max(loop, 1)
        self._emit(CallEvent("play", urljoin(url, source) if source else "", url=url,
                             detail={"digits": element.get("digits"), "loop": loop}))
        return None

    def _pause(self, element: ET.Element, url: str) -> Outcome:
        length = int_attribute(element.get("length"), 1)
        self.seconds += length
        self._emit(CallEvent("pause", url=url, detail={"length": length}))
        return None

    def _gather(self, element: ET.Element, url: str) -> Outcome:
        for child in element:
            if child.tag not in ("Say", "Play", "Pause"):
                raise self._fail("invalid-twiml", f"<{child.tag}> cannot be nested in <Gather> "
                                 f"({short_url(url)})", url)
            self._verb(child, url)
        modes = tuple((element.get("input") or "dtmf").split())
        prompt = GatherPrompt(
            url=url, input=modes, timeout=int_attribute(element.get("timeout"), 5),
            num_digits=int_attribute(element.get("numDigits"), 0) or None,
            finish_on_key=element.get("finishOnKey", "#"),
            language=element.get("language") or "en-US", hints=element.get("hints"),
            heard=self._take_heard(),
            queue=self.queue.wait(self.seconds) if self.queue is not None else None,
        )
        self.gathered_in_pass = self.gathered_in_pass or self.queue is not None
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
            return Request(action, method, params, "gather")
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

    def _dial(self, element: ET.Element, url: str) -> Outcome:
        conference = next((child for child in element if child.tag == "Conference"), None)
        if conference is not None:
            return self._conference(element, conference, url)
        numbers = [text_of(child) if child.tag == "Number"
                   else f"{child.tag.lower()}:{text_of(child)}"
                   for child in element] or ([text_of(element)] if text_of(element) else [])
        timeout = int_attribute(element.get("timeout"), 30)
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
            params = {"DialCallStatus": status, "DialCallSid": new_sid("CA"),
                      "DialCallDuration": str(talk)}
            return Request(action_url, (element.get("method") or "POST").upper(), params, "dial")
        if status == "completed":
            self._emit(CallEvent("hangup", "caller hung up after the conversation", url=url,
                                 detail={"by": "caller", "reason": "dial completed"}))
            return ENDED
        return None  # not connected and no action: Twilio goes on with the next verb

    def _conference(self, dial: ET.Element, conference: ET.Element, url: str) -> Outcome:
        """`<Dial><Conference>`: the caller talks in the room (with the agent who joins it)."""
        name = text_of(conference)
        talk = self.sim.dial_talk_seconds
        self.seconds += talk
        action = dial.get("action")
        action_url = urljoin(url, action) if action is not None else None
        self._emit(CallEvent("conference", name, url=url, detail={
            "talk_seconds": talk, "action": action_url,
            "attributes": dict(conference.attrib)}))
        if action_url is None:
            return None  # the conference ended: Twilio goes on with the next verb
        params = {"DialCallStatus": "completed", "DialCallDuration": str(talk)}
        return Request(action_url, (dial.get("method") or "POST").upper(), params, "dial")

    def _redirect(self, element: ET.Element, url: str) -> Outcome:
        target = text_of(element)
        if not target:
            raise self._fail("invalid-twiml", f"<Redirect> without a URL in {short_url(url)}", url)
        target_url = urljoin(url, target)
        method = (element.get("method") or "POST").upper()
        self._emit(CallEvent("redirect", target_url, url=target_url, detail={"method": method}))
        return Request(target_url, method, {}, "redirect")

    def _hangup(self, element: ET.Element, url: str) -> Outcome:
        detail = {"by": "app", "verb": element.tag}
        if element.tag == "Reject":
            detail["reason"] = element.get("reason") or "rejected"
        self._emit(CallEvent("hangup", f"<{element.tag}>", url=url, detail=detail))
        return ENDED

    # --- endings ---

    def _caller_hung_up(self, url: str) -> Ended:
        self._emit(CallEvent("hangup", "caller hung up", url=url, detail={"by": "caller"}))
        return ENDED

    def _take_heard(self) -> tuple[str, ...]:
        heard, self.heard = tuple(self.heard), []
        return heard

    def _finish(self) -> None:
        self.status = "completed"
        duration = round(self.seconds)
        detail: dict[str, Any] = {"duration": self.seconds, "posted": self.sim.send_status}
        http_status = None
        if self.sim.send_status:
            params = {"CallDuration": str(duration), "Timestamp": timestamp(),
                      "CallbackSource": "call-progress-events", "SequenceNumber": "0"}
            http_status = self._post_callback(
                Request(self.sim.status_url, "POST", params, "status"))
        self._emit(CallEvent("status", "completed", url=self.sim.status_url,
                             http_status=http_status, detail=detail))


# --- helpers -----------------------------------------------------------------------


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
