"""Length limits on the Twilio form fields the line stores or acts on.

Twilio's own values are short (a SID is 34 characters, a number at most 16); anything longer is
junk or an attack, even with a valid signature (a leaked token, a misbehaving proxy). After the
signature is checked against the form as sent, each field is cut to its limit; what a caller
typed or said keeps a note in the call log that it was cut, and how long it was, and every cut
is logged as a warning (the field names and lengths, never their values).
"""

from __future__ import annotations

import logging
import math
from typing import Final

from flask import g, request
from werkzeug.datastructures import ImmutableMultiDict

log = logging.getLogger(__name__)

FIELD_LIMITS: Final = {
    "Digits": 64,
    "SpeechResult": 1000,
    "Confidence": 32,
    "From": 64, "To": 64, "Caller": 64, "Called": 64,
    "CallStatus": 32, "DialCallStatus": 32, "RecordingStatus": 32,
    "CallDuration": 16, "DialCallDuration": 16, "RecordingDuration": 16,
    "RecordingUrl": 512, "RecordingSid": 64, "AccountSid": 64,
    "Body": 1600,  # Twilio's own limit for an SMS body
}
"""Characters kept of each field; the SIDs the gate needs are refused when too long instead."""
OTHER_FIELD_LIMIT: Final = 4096
"""Fields the line never reads are cut too, so nothing downstream meets a megabyte."""


def cap_form() -> None:
    """Cut the current request's over-long form fields (remembering their original lengths)
    and drop NUL characters, which PostgreSQL's text cannot hold."""
    form = request.form
    cut: dict[str, int] = {}
    nul = False
    for name, value in form.items(multi=True):
        if len(value) > FIELD_LIMITS.get(name, OTHER_FIELD_LIMIT):
            cut[name] = max(cut.get(name, 0), len(value))
        nul = nul or "\x00" in value
    if not cut and not nul:
        return
    capped = [(name, value.replace("\x00", "")[:FIELD_LIMITS.get(name, OTHER_FIELD_LIMIT)])
              for name, value in form.items(multi=True)]
    request.__dict__["form"] = ImmutableMultiDict(capped)  # werkzeug caches `form` there
    if cut:
        g.cut_fields = cut
        log.warning("over-long fields cut on %s: %s", request.path, ", ".join(
            f"{name} ({length} characters, {FIELD_LIMITS.get(name, OTHER_FIELD_LIMIT)} kept)"
            for name, length in sorted(cut.items())))


def with_cut_note(name: str, value: str) -> str:
    """`value` as stored: with a note when the field `name` was cut to its limit."""
    received = g.get("cut_fields", {}).get(name)
    if received is None:
        return value
    return f"{value} [cut: {received} characters received, {FIELD_LIMITS[name]} kept]"


def confidence(text: str | None) -> float | None:
    """Twilio's speech Confidence (0.0-1.0), or None when missing or not such a number."""
    try:
        value = float(text or "")
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None
