"""Twilio's Messaging webhook: STOP and START, and replies to a survey text (a score 1 to 5).

Checked like the voice routes (a forged or unsigned request gets 403 and writes nothing) and
answered with TwiML whatever happens. An opt-out keyword (STOP, UNSUBSCRIBE, ...) records the
number's opt-out and an opt-in keyword (START, UNSTOP, YES) ends it; HELP and INFO change
nothing. Twilio answers all of these itself, so they get no reply from us. Otherwise: thanks
in the caller's language for a score, a short hint when a survey waits but the reply is no
score, and nothing at all when no survey waits (the line is not a chat) or the number opted
out.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, request
from twilio.twiml.messaging_response import MessagingResponse

from callbacks.sms import sms_text
from callbacks.survey import answer_by_sms
from callbacks.tickets.optout import is_opted_out, keyword_kind, record_keyword
from ivr.db import get_session, once_more_if_dropped
from ivr.voice.signature import reject_unless_signed
from ivr.voice.twiml import twiml_response

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")

@bp.before_request
def only_twilio() -> None:
    """403 unless Twilio signed it, 400 without a MessageSid; nothing written."""
    reject_unless_signed("MessageSid")


@bp.post("")
@once_more_if_dropped
def incoming_sms() -> Response:
    """An inbound text: a survey score is kept once and thanked for; anything else gets a hint."""
    form = request.form
    body, caller = form.get("Body", ""), form.get("From", "")
    reply = MessagingResponse()
    session = get_session()
    keyword = keyword_kind(body, form.get("OptOutType", ""))
    if keyword is not None:
        # Twilio replies to these itself; we only keep the number's choice.
        record_keyword(session, caller, keyword, body)
        session.commit()
        log.info("opt-out keyword %s recorded (%s)", form["MessageSid"], keyword)
        return twiml_response(str(reply))
    try:
        answer = answer_by_sms(session, caller, body, form["MessageSid"])
        opted_out = is_opted_out(session, caller)
        session.commit()
    except Exception:
        log.exception("survey reply %s could not be recorded", form["MessageSid"])
        session.rollback()
        return twiml_response(str(reply))
    if answer.outcome == "recorded":
        log.info("survey reply %s recorded", form["MessageSid"])
    if opted_out:
        return twiml_response(str(reply))  # STOP means no text of ours, not even thanks
    if answer.outcome in ("recorded", "repeated"):
        reply.message(sms_text("survey_thanks", answer.language))
    elif answer.outcome == "not_a_score":
        reply.message(sms_text("survey_help", answer.language))
    return twiml_response(str(reply))
