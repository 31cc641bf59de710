"""The web app's logging: JSON or text lines, each tagged with its request and Twilio call.

Twilio's webhooks name their call (CallSid) or text (MessageSid) in the form body.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import uuid

from flask import Flask, request

from callbacks.logs import bind_log_context, clear_log_context, configure_logging
from ivr.requests import FORM_TYPE

WEBHOOK_BLUEPRINTS = frozenset({"voice", "dialer", "sms"})
"""The blueprints Twilio posts to (ivr/voice/: calls.py, dialer_hooks.py, sms_hooks.py)."""


_SID = re.compile(r"[A-Za-z0-9]{1,64}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_PROCESS_TAG = uuid.uuid4().hex[:12]
"""Request ids made here are this random tag and a counter: unique, without a random draw
(a system call) on every request. A forked worker draws its own tag (`_new_process_tag`)."""
_serial = itertools.count(1)


def _new_process_tag() -> None:
    global _PROCESS_TAG
    _PROCESS_TAG = uuid.uuid4().hex[:12]


os.register_at_fork(after_in_child=_new_process_tag)


def init_app(app: Flask) -> None:
    """Set up the process's log lines (IVR_LOG_FORMAT, IVR_LOG_LEVEL) and tag each request's."""
    configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    # The twilio library logs every REST request's URL and headers at INFO.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
    # Registered before any other hook, so even a rejected request's lines are tagged.
    app.before_request_funcs.setdefault(None, []).insert(0, _tag_request)
    app.teardown_request(_untag_request)


def webhook_sids() -> tuple[str | None, str | None]:
    """The CallSid and MessageSid of the Twilio webhook being handled (None where absent, and
    for other routes).

    Read from the form, which the signature check needs next anyway (parsed once, cheaply:
    ivr/requests.py); nothing is trusted here, it only labels the log lines.
    """
    if (request.blueprint not in WEBHOOK_BLUEPRINTS
            or not request.environ.get("CONTENT_TYPE", "").startswith(FORM_TYPE)):
        return None, None
    form = request.form
    return _sid(form.get("CallSid")), _sid(form.get("MessageSid"))


def _sid(value: str | None) -> str | None:
    return value if value and _SID.fullmatch(value) else None


def _tag_request() -> None:
    """Bind this request's id (the router's X-Request-Id, else a new one) and its call."""
    given = request.environ.get("HTTP_X_REQUEST_ID")
    request_id = (given if given and _REQUEST_ID.fullmatch(given)
                  else f"{_PROCESS_TAG}-{next(_serial):x}")
    call_sid, message_sid = webhook_sids()
    bind_log_context(request_id=request_id, call_sid=call_sid, message_sid=message_sid)


def _untag_request(_error: BaseException | None) -> None:
    clear_log_context()
