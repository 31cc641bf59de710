"""Twilio webhooks of an agent's phone rung for a caller waiting in line.

The router (callbacks/workqueue/router.py) rings the agent with `?offer=N` in both URLs. When
the agent picks up, Twilio fetches /dialer/live/agent: the caller is dequeued into a conference
and the agent hears who is waiting before joining it. The agent leg's status callback reports
a ring nobody answered (the caller stays first in line, the agent is set away) or the end of
the conversation (the agent wraps up). Every route checks Twilio's signature and answers the
agent with TwiML whatever happens; a repeated delivery changes nothing twice.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, request
from twilio.twiml.voice_response import VoiceResponse

from callbacks import runtime
from callbacks.db import small_number, utcnow
from callbacks.workqueue.router import agent_answered_live, agent_leg_ended_live
from ivr.db import answers_whatever_happens, get_session
from ivr.voice.signature import reject_unless_signed
from ivr.voice.twiml import conference_join, twiml_response

log = logging.getLogger(__name__)
bp = Blueprint("live_dialer", __name__, url_prefix="/dialer/live")
AGENT_VOICE = {"language": "en-US"}
SAID_TO_AGENT = {
    "caller_gone": "The caller has hung up. You are free for the next call.",
    "failed": "Sorry, the caller could not be connected. They stay first in line.",
    "handled": "This call has already been handled. Goodbye.",
}


@bp.before_request
def only_twilio() -> None:
    """403 unless Twilio signed it; 400 without a CallSid or offer; nothing written."""
    reject_unless_signed("CallSid")
    if small_number(request.args.get("offer", "")) is None:
        abort(400, "offer is missing")


def _offer_id() -> int:
    offer = small_number(request.args["offer"])
    assert offer is not None  # only_twilio refused the request otherwise
    return offer


def _failed_for_agent() -> Response:
    return _say_and_hang_up(SAID_TO_AGENT["failed"])


_speaks_to_agent = answers_whatever_happens("live dialer webhook", _failed_for_agent)
"""Any failure still gives the agent a sentence and a clean hang-up, never an error."""


def _say_and_hang_up(text: str) -> Response:
    response = VoiceResponse()
    response.say(text, **AGENT_VOICE)
    response.hangup()
    return twiml_response(response)


@bp.post("/agent")
@_speaks_to_agent
def agent_picked_up() -> Response:
    """The agent answered: whisper who is waiting, then join the caller in the conference."""
    answer = agent_answered_live(get_session(), runtime.settings(), _offer_id(),
                                 request.form["CallSid"], utcnow())
    if answer.outcome != "connect":
        return _say_and_hang_up(SAID_TO_AGENT.get(answer.outcome, SAID_TO_AGENT["handled"]))
    whisper = VoiceResponse()
    whisper.say(answer.whisper, **AGENT_VOICE)  # the caller joins while the agent listens
    return twiml_response(conference_join(answer.conference, before=whisper))


@bp.post("/agent-status")
@_speaks_to_agent
def agent_leg_status() -> Response:
    """The agent's call ended: a ring nobody answered, or the end of the conversation."""
    outcome = agent_leg_ended_live(get_session(), runtime.settings(), _offer_id(),
                                   request.form.get("CallStatus", ""), utcnow())
    if outcome is not None:
        log.info("live offer %s ended: %s", _offer_id(), outcome)
    return Response(status=204)
