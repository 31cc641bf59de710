"""Twilio's Messaging webhook: a caller replies to a survey text with a score from 1 to 5.

Checked like the voice routes (a forged or unsigned request gets 403 and writes nothing) and
answered with TwiML whatever happens: thanks in the caller's language, a short hint when a
survey waits but the reply is no score, and nothing at all when no survey waits (the line is
not a chat) or the text is an opt-out keyword that Twilio handles itself.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from callbacks.sms import sms_text
from callbacks.survey import answer_by_sms
from ivr.db import get_session, once_more_if_dropped
from ivr.voice.signature import reject_unless_signed
from ivr.voice.twiml import twiml_response

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")

OPT_OUT_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit",
                              "start", "unstop", "yes", "help", "info"})
"""Twilio answers these itself (opt-out and help); a second reply from us would confuse."""


@bp.before_request
def only_twilio() -> None:
    """403 unless Twilio signed it, 400 without a MessageSid; nothing written."""
    reject_unless_signed("MessageSid")


@bp.post("")
@once_more_if_dropped
def incoming_sms() -> Response:
    """An inbound text: a survey score is kept once and thanked for; anything else gets a hint."""
    form = request.form
    body = form.get("Body", "")
    reply = MessagingResponse()
    if body.strip().lower() in OPT_OUT_KEYWORDS:
        return twiml_response(str(reply))
    session = get_session()
    try:
        answer = answer_by_sms(session, form.get("From", ""), body, form["MessageSid"])
        session.commit()
    except Exception:
        log.exception("survey reply %s could not be recorded", form["MessageSid"])
        session.rollback()
        return twiml_response(str(reply))
    if answer.outcome == "recorded":
        log.info("survey reply %s recorded", form["MessageSid"])
    if answer.outcome in ("recorded", "repeated"):
        reply.message(sms_text("survey_thanks", answer.language))
    elif answer.outcome == "not_a_score":
        reply.message(sms_text("survey_help", answer.language))
    return twiml_response(str(reply))
