"""Twilio's REST API through the official library: SMS, outbound calls, recording downloads.

Every request goes to `Settings.twilio_api_base_url` (https://api.twilio.com in production, a
loopback stand-in in development and tests, see ivr/standin.py).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import requests
from requests import Request, Session
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from callbacks.settings import Settings

log = logging.getLogger(__name__)

API_VERSION: Final = "2010-04-01"
REST_TIMEOUT: Final = 30.0  # seconds; twilio's own default is to wait forever
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MEDIA_EXTENSIONS: Final = (".wav", ".mp3")
_TEXT_TYPES: Final = ("application/json", "application/problem+json", "application/xml")


# --- errors ------------------------------------------------------------------------


class TelephonyError(Exception):
    """A Twilio request failed; `retryable` says whether the same request may succeed later.

    The message is for the log and admins (it may name a setting to fix); `public` says the
    same for a ticket's history, which agents read: no settings, paths or commands.
    """

    def __init__(self, message: str, *, retryable: bool, status: int | None = None,
                 code: int | None = None, public: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.code = code
        self.public = public or message


class RecordingRefused(TelephonyError):
    """The recording URL is not a recording of our account on the configured Twilio API host."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class RecordingNotReady(TelephonyError):
    """Twilio answered 404: the recording may still be processing, so try again later."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True, status=404)


class DownloadFailed(TelephonyError):
    """The recording could not be fetched (network, Twilio outage, or refused credentials)."""


# --- the client --------------------------------------------------------------------


class MediaResponse(TwilioResponse):
    """A twilio `Response` that also keeps the body's bytes (recordings are binary)."""

    def __init__(self, status_code: int, body: bytes, headers: Mapping[str, str],
                 encoding: str | None) -> None:
        content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
        textual = content_type.startswith("text/") or content_type in _TEXT_TYPES
        text = body.decode(encoding or "utf-8", errors="replace") if textual else ""
        super().__init__(status_code, text, headers)
        self.body = body


class TelephonyHttpClient(TwilioHttpClient):
    """twilio's HTTP client, returning `MediaResponse`s so binary bodies survive."""

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> MediaResponse:
        """Send one request like `TwilioHttpClient.request`; the answer keeps its bytes."""
        if timeout is None:
            timeout = self.timeout
        elif timeout <= 0:
            raise ValueError(timeout)
        kwargs: dict[str, Any] = {"method": method.upper(), "url": url, "params": params,
                                  "headers": headers, "auth": auth, "hooks": self.request_hooks}
        if headers and headers.get("Content-Type") in ("application/json",
                                                       "application/scim+json"):
            kwargs["json"] = data
        else:
            kwargs["data"] = data
        self.log_request(kwargs)
        session = self.session or Session()
        prepared = session.prepare_request(Request(**kwargs))
        settings = session.merge_environment_settings(prepared.url, self.proxy, None, None, None)
        response = session.send(prepared, allow_redirects=allow_redirects, timeout=timeout,
                                **settings)
        self.log_response(response.status_code, response)
        return MediaResponse(response.status_code, response.content, response.headers,
                             response.encoding)


_clients: dict[tuple[int, str, str, str], Client] = {}
_clients_lock = threading.Lock()


def twilio_client(settings: Settings) -> Client:
    """The process's twilio `Client` for these settings, talking to the configured API host."""
    if not settings.twilio_account_sid or not settings.twilio_auth_token:
        raise TelephonyError("Twilio credentials are missing: set IVR_TWILIO_ACCOUNT_SID and "
                             "IVR_TWILIO_AUTH_TOKEN", retryable=False,
                             public="the line's Twilio account is not set up (an admin's job)")
    # Keyed by pid: an rq work horse forked from a worker must not share its parent's sockets.
    key = (os.getpid(), settings.twilio_account_sid, settings.twilio_auth_token,
           settings.twilio_api_base_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            for stale in [k for k in _clients if k[0] != key[0]]:
                del _clients[stale]
            client = _new_client(settings)
            _clients[key] = client
        return client


def close_clients() -> None:
    """Close and forget this process's cached clients (tests, shutdown)."""
    with _clients_lock:
        clients = [c for k, c in _clients.items() if k[0] == os.getpid()]
        _clients.clear()
    for client in clients:
        session = getattr(client.http_client, "session", None)
        if session is not None:
            session.close()


def _new_client(settings: Settings) -> Client:
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                    http_client=TelephonyHttpClient(timeout=REST_TIMEOUT))
    # Calls, Messages and Recordings live on the `api` domain; its base_url is the seam.
    client.api.base_url = settings.twilio_api_base_url.rstrip("/")
    # TWILIO_EDGE/TWILIO_REGION in the environment would rewrite the host; the base URL decides.
    client.edge = None
    client.region = None
    return client


# --- recordings --------------------------------------------------------------------


def download_recording(settings: Settings, recording_url: str, *, timeout: float = 30) -> bytes:
    """The audio of a recording of our account, fetched from the configured Twilio API host."""
    url = _recording_media_url(settings, recording_url)
    client = twilio_client(settings)
    sid = url.rsplit("/", 1)[-1].split(".")[0]
    try:
        # Twilio may redirect to its media storage; requests drops credentials on a new host.
        response = client.http_client.request(
            "GET", url, auth=(settings.twilio_account_sid, settings.twilio_auth_token),
            headers={"Accept": "audio/*"}, timeout=timeout, allow_redirects=True)
    except requests.Timeout as exc:
        raise DownloadFailed(f"recording {sid}: no answer from Twilio within {timeout:g} s",
                             retryable=True) from exc
    except requests.RequestException as exc:
        raise DownloadFailed(f"recording {sid}: cannot reach Twilio ({type(exc).__name__})",
                             retryable=True) from exc
    status = response.status_code
    if status == 200:
        body: bytes = response.body
        return body
    if status == 404:
        raise RecordingNotReady(f"recording {sid}: Twilio answered 404 (not processed yet?)")
    if status in (401, 403):
        log.error("Twilio refused our credentials (HTTP %s) downloading a recording", status)
        raise DownloadFailed(f"recording {sid}: Twilio answered {status}; check "
                             "IVR_TWILIO_ACCOUNT_SID and IVR_TWILIO_AUTH_TOKEN",
                             retryable=False, status=status,
                             public=f"Twilio refused the line's credentials ({status})")
    raise DownloadFailed(f"recording {sid}: Twilio answered HTTP {status}",
                         retryable=_retryable_status(status), status=status)


def delete_recording(settings: Settings, recording_sid: str) -> None:
    """Delete a recording from Twilio; one that is already gone counts as deleted."""
    try:
        with _asking_twilio(f"deleting recording {recording_sid}"):
            twilio_client(settings).recordings(recording_sid).delete()
    except TelephonyError as error:
        if error.status != 404:
            raise
        log.info("recording %s was already deleted", recording_sid)


def _recording_media_url(settings: Settings, recording_url: str) -> str:
    """`recording_url` as a media URL, or RecordingRefused when it is not one of ours."""
    base = urlsplit(settings.twilio_api_base_url)
    expected = (base.scheme.lower(), (base.hostname or "").lower(),
                base.port or _DEFAULT_PORTS.get(base.scheme.lower()))
    try:
        parts = urlsplit(recording_url)
        host = (parts.hostname or "").lower()
        scheme = parts.scheme.lower()
        actual = (scheme, host, parts.port or _DEFAULT_PORTS.get(scheme))
    except ValueError:  # a malformed netloc or port
        parts, host, actual = None, "", None
    if parts is None or actual != expected or parts.username is not None:
        log.warning("refused to download a recording from %r: not the configured Twilio API "
                    "host", host[:100] or "?")
        raise RecordingRefused("the recording URL is not on the configured Twilio API host")
    prefix = re.escape(f"{base.path.rstrip('/')}/{API_VERSION}/Accounts/"
                       f"{settings.twilio_account_sid}/Recordings/")
    match = re.fullmatch(prefix + r"(RE[0-9a-fA-F]{32})(\.[A-Za-z0-9]+)?", parts.path)
    if (match is None or parts.query or parts.fragment
            or (match.group(2) or ".wav").lower() not in _MEDIA_EXTENSIONS):
        log.warning("refused to download a recording from %r: not a recording of the "
                    "configured account", host[:100])
        raise RecordingRefused("the recording URL is not a recording of the configured account")
    path = parts.path if match.group(2) else parts.path + ".wav"  # Twilio's default is WAV
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


# --- messages and calls ------------------------------------------------------------


def send_sms(settings: Settings, to: str, body: str, from_: str | None = None) -> str:
    """Send an SMS (from `settings.sms_from` unless `from_` is given); returns the Message SID."""
    sender = from_ or settings.sms_from
    if not sender:
        raise TelephonyError("no SMS sender: set IVR_SMS_FROM", retryable=False,
                             public="the line has no number to send texts from (an admin "
                                    "has to set one up)")
    with _asking_twilio("sending an SMS"):
        message = twilio_client(settings).messages.create(to=to, from_=sender, body=body)
    return str(message.sid)


def find_sent_message(settings: Settings, to: str, from_: str, body: str,
                      since: datetime) -> str | None:
    """The SID of a text with exactly `body` that Twilio took for `to` (from `from_`, when it
    is a number) since `since`, or None: whether an interrupted send got through."""
    options: dict[str, Any] = {"to": to, "page_size": 50}
    if from_.startswith("+"):  # a messaging service picks its own number: not filtered by it
        options["from_"] = from_
    with _asking_twilio("listing messages"):
        for message in twilio_client(settings).messages.stream(**options):
            created = message.date_created
            if created is not None and created < since:
                return None  # newest first: nothing older can be the one
            if message.body == body:
                return str(message.sid)
    return None


def place_call(settings: Settings, to: str, from_: str, url: str,
               status_callback: str | None = None, timeout: int | None = None) -> str:
    """Start an outbound call whose TwiML comes from `url` (ringing at most `timeout` s);
    returns the Call SID."""
    options: dict[str, str | int] = {}
    if status_callback:
        options["status_callback"] = status_callback
    if timeout is not None:
        options["timeout"] = timeout
    with _asking_twilio("placing a call"):
        call = twilio_client(settings).calls.create(to=to, from_=from_, url=url, **options)
    return str(call.sid)


class MemberGone(TelephonyError):
    """The caller is no longer in the queue (hung up, or left it): nothing to dequeue."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, status=404)


def dequeue_member(settings: Settings, queue_sid: str, call_sid: str, url: str) -> None:
    """Take one caller out of a queue (Queue Member update): their call goes on at `url`."""
    action = f"dequeuing a member of queue {queue_sid}"
    try:
        with _asking_twilio(action):
            twilio_client(settings).queues(queue_sid).members(call_sid).update(url=url,
                                                                               method="POST")
    except TelephonyError as error:
        if error.status == 404:
            raise MemberGone(f"{action}: the caller is not in the queue") from error
        raise


def queue_sid_for(settings: Settings, friendly_name: str) -> str | None:
    """The SID of the queue with this name, or None if the account has none."""
    with _asking_twilio("listing queues"):
        for queue in twilio_client(settings).queues.stream(page_size=100):
            if queue.friendly_name == friendly_name:
                return str(queue.sid)
    return None


def call_status(settings: Settings, call_sid: str) -> str | None:
    """The call's status at Twilio now (queued, ringing, in-progress, completed, busy,
    no-answer, canceled, failed), or None when Twilio does not know the call."""
    try:
        with _asking_twilio("fetching a call"):
            call = twilio_client(settings).calls(call_sid).fetch()
    except TelephonyError as error:
        if error.status == 404:
            return None
        raise
    return str(call.status) if call.status is not None else None


def cancel_call(settings: Settings, call_sid: str) -> bool:
    """Stop a call that is still ringing; whether it is canceled now (False: it was answered,
    or ended some other way)."""
    try:
        with _asking_twilio("canceling a call"):
            call = twilio_client(settings).calls(call_sid).update(status="canceled")
    except TelephonyError as error:
        if error.status in (404, 400):  # gone, or no longer cancelable (answered, ended)
            return False
        raise
    return str(getattr(call, "status", "canceled")) == "canceled"


@contextmanager
def _asking_twilio(action: str) -> Iterator[None]:
    """Twilio's refusals and the network's failures inside, as one TelephonyError about
    `action` (its `status` is Twilio's HTTP status, None when no answer came)."""
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _rest_error(action, exc) from exc
    except (TwilioException, requests.RequestException) as exc:
        raise _transport_error(action, exc) from exc


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


_PHONE_NUMBER: Final = re.compile(r"\+?\d(?:[ ()./-]{0,2}\d){5,}")
"""Six or more digits, maybe with a '+' and separators: a phone number as Twilio quotes it."""


def redact_numbers(text: str) -> str:
    """`text` with every phone number replaced by '[number]' (Twilio's messages quote them,
    and these messages reach logs and ticket histories)."""
    return _PHONE_NUMBER.sub("[number]", text)


def _rest_error(action: str, exc: TwilioRestException | TwilioServiceException) -> TelephonyError:
    status = int(exc.status)
    code = exc.code if isinstance(exc.code, int) else None
    more = f", error {code} (https://www.twilio.com/docs/errors/{code})" if code else ""
    hint = "; check IVR_TWILIO_AUTH_TOKEN" if status in (401, 403) else ""
    said = redact_numbers(str(getattr(exc, "msg", "") or "").strip())[:200]
    quoted = f": {said}" if said else ""
    return TelephonyError(f"{action}: Twilio answered HTTP {status}{more}{quoted}{hint}",
                          retryable=_retryable_status(status), status=status, code=code,
                          public=f"{action}: Twilio answered HTTP {status}{more}{quoted}")


def _transport_error(action: str, exc: Exception) -> TelephonyError:
    retryable = isinstance(exc, requests.RequestException)
    return TelephonyError(f"{action}: {type(exc).__name__} talking to Twilio",
                          retryable=retryable)
