"""Twilio request signatures, checked against the public URL that Twilio actually called."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, abort, current_app, request
from twilio.request_validator import RequestValidator

from ivr.voice.form_limits import cap_form

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Build the validator once; warn loudly when checking is turned off."""
    app.extensions["ivr.validator"] = RequestValidator(app.config["TWILIO_AUTH_TOKEN"])
    if not app.config["VALIDATE_SIGNATURE"]:
        log.warning(
            "!!! Twilio signature checking is OFF (IVR_VALIDATE_SIGNATURE=false): anyone can "
            "post to the voice webhooks. Use this only on a development machine. !!!"
        )


def public_url() -> str:
    """The URL Twilio signed: the configured public base URL plus this request's path and query.

    Behind a proxy or tunnel the Host header and scheme are not what Twilio used, so the
    configured base wins; without one, the URL as this server saw it is used.
    """
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    query = request.query_string.decode()
    if not base:
        return request.url
    path = request.path
    return f"{base}{path}?{query}" if query else f"{base}{path}"


MAX_SID_LENGTH = 64
"""Twilio's SIDs are 34 characters; the database keeps up to 64."""


def signed_by_twilio() -> bool:
    """Whether the current request carries a valid X-Twilio-Signature."""
    if not current_app.config["VALIDATE_SIGNATURE"]:
        return True
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    validator: RequestValidator = current_app.extensions["ivr.validator"]
    url = public_url()
    params = _Params(request.form.lists())
    # One HMAC over the URL as configured settles the usual case; validate() then also tries
    # the URL with and without its default port, on which Twilio's signing is inconsistent.
    if hmac.compare_digest(validator.compute_signature(url, params), signature):
        return True
    return bool(validator.validate(url, params, signature))


class _Params(dict[str, list[str]]):
    """Form values in the shape RequestValidator reads fastest (it asks for `getall`)."""

    def getall(self, name: str) -> list[str]:
        """Every value of a parameter."""
        return self[name]


def reject_unless_signed(required: str) -> None:
    """For Twilio's routes: 403 unless Twilio signed the request, 400 without the `required`
    parameter (CallSid, MessageSid); nothing is written either way. Then over-long fields
    are cut to their limits (ivr/voice/form_limits.py)."""
    if not signed_by_twilio():
        log.warning("rejected unsigned or forged webhook to %s", request.path)
        abort(403)
    value = request.form.get(required)
    if not value:
        abort(400, f"{required} is missing")
    if len(value) > MAX_SID_LENGTH or not value.isascii() or not value.isprintable():
        abort(400, f"{required} is not a Twilio SID")
    cap_form()
