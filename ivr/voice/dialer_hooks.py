"""Twilio webhooks of callback calls: the agent answers, the caller is bridged, a leg ends.

The dialer (callbacks/workqueue/dialer.py) rings the agent first; when they pick up, Twilio fetches
/dialer/agent, which whispers who is waiting and dials the caller. Dial's action reports how
the bridge ended; the agent leg's status callback reports an agent who never answered or hung
up early. Every route checks Twilio's signature and answers the agent with TwiML whatever
happens; a repeated delivery changes nothing twice.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from twilio.twiml.voice_response import VoiceResponse

from callbacks import runtime
from callbacks.db import small_number
from callbacks.display_time import local_text, readers_zone
from callbacks.workqueue.dialer import agent_answered, agent_call_ended, caller_dial_ended
from ivr.db import answers_whatever_happens, get_session
from ivr.voice.signature import reject_unless_signed
from ivr.voice.twiml import twiml_response

log = logging.getLogger(__name__)
bp = Blueprint("dialer", __name__, url_prefix="/dialer")
AGENT_VOICE = {"language": "en-US"}


@bp.before_request
def only_twilio() -> None:
    """403 unless Twilio signed it; 400 without a CallSid or attempt; nothing written."""
    reject_unless_signed("CallSid")
    if small_number(request.args.get("attempt", "")) is None:
        abort(400, "attempt is missing")


def _attempt_id() -> int:
    attempt = small_number(request.args["attempt"])
    assert attempt is not None  # only_twilio refused the request otherwise
    return attempt


def _could_not_connect() -> Response:
    response = VoiceResponse()
    response.say("Sorry, the callback could not be connected. It stays in the queue.",
                 **AGENT_VOICE)
    response.hangup()
    return twiml_response(response)


_speaks_to_agent = answers_whatever_happens("dialer webhook", _could_not_connect)
"""Any failure still gives the agent a sentence and a clean hang-up, never an error."""


@bp.post("/agent")
@_speaks_to_agent
def agent_picked_up() -> Response:
    """The agent answered: whisper who is waiting and why, then dial the caller."""
    settings = runtime.settings()
    whisper = agent_answered(get_session(), settings, _attempt_id())
    response = VoiceResponse()
    if whisper is None:
        response.say("This callback has already been handled. Goodbye.", **AGENT_VOICE)
        response.hangup()
        return twiml_response(response)
    response.say(whisper.text, **AGENT_VOICE)
    dial = response.dial(
        caller_id=whisper.caller_id or None, timeout=whisper.timeout,
        action=f"{settings.public_base_url}/dialer/bridged?attempt={_attempt_id()}")
    dial.number(whisper.dial_number)
    return twiml_response(response)


@bp.post("/bridged")
@_speaks_to_agent
def bridge_ended() -> Response:
    """Dial's action: the caller talked, was busy, did not answer, or the call failed."""
    form = request.form
    duration = form.get("DialCallDuration", "")
    outcome = caller_dial_ended(get_session(), runtime.settings(), _attempt_id(),
                                form.get("DialCallStatus", "failed"),
                                small_number(duration, 7))
    response = VoiceResponse()
    if outcome is not None and outcome.outcome != "completed":
        if outcome.request_status == "unreachable":
            response.say("The caller did not answer. That was the last attempt: they will get "
                         "a text message, and the ticket is marked unreachable.", **AGENT_VOICE)
        elif outcome.next_try_at is not None:
            at = local_text(outcome.next_try_at, readers_zone(get_session()), "%H:%M")
            response.say(f"The caller did not answer. The next attempt is at {at}.",
                         **AGENT_VOICE)
    response.hangup()
    return twiml_response(response)


@bp.post("/agent-status")
@_speaks_to_agent
def agent_leg_status() -> Response:
    """The agent's call ended: if it never reached the caller, the request goes back."""
    outcome = agent_call_ended(get_session(), runtime.settings(), _attempt_id(),
                               request.form.get("CallStatus", ""))
    if outcome is not None:
        log.info("callback attempt %s ended before the bridge: %s", _attempt_id(), outcome)
    return Response(status=204)
