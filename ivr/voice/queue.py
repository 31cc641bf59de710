"""Twilio webhooks of callers waiting in line: the hold loop, keys pressed while waiting,
leaving the line, joining their agent, and the end of the conversation.

The caller joined with `<Enqueue waitUrl=/voice/queue/wait action=/voice/queue/left>` (see
calls.py and queue_entry.py). Each pass of the hold loop tells the caller their place and
expected wait from SQL (every `announce_every` seconds), offers keys 1 and 2, and plays the
hold music or a pause; a caller past the max wait, or with no qualified agent signed in any
more, leaves the line for the overflow. Every route checks Twilio's signature, changes SQL only
through guarded state changes (a repeated webhook changes nothing twice) and always answers
with TwiML that fits where the caller is: the hold loop never gets a voicemail apology.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, Response, current_app, request
from redis.exceptions import RedisError
from twilio.twiml.voice_response import VoiceResponse

from callbacks import runtime
from callbacks.db import small_number, utcnow
from callbacks.queues import nudge_sweep, redis_connection
from callbacks.workqueue.line import (
    estimated_minutes,
    free_agents_for,
    place_in_line,
    signed_in_agents_for,
)
from callbacks.workqueue.live_calls import (
    IN_LINE,
    live_call_by_sid,
    note_announced,
    record_wait_pass,
)
from callbacks.workqueue.router import (
    caller_joins_agent,
    caller_leaves_line,
    caller_left,
    caller_talked,
    conference,
)
from ivr.db import answers_whatever_happens, get_session
from ivr.voice.calls import (
    FOREIGN_POSITION,
    BadPosition,
    _advance,
    _after_conversation,
    _compiled,
    _state,
    never_fails,
)
from ivr.voice.signature import reject_unless_signed
from ivr.voice.twiml import (
    CallState,
    conference_join,
    hold_loop,
    pause,
    render,
    twiml_response,
)
from ivr.voice.twiml import (
    leave_line as leave_twiml,
)
from routing.flow import QueueNode
from routing.queue_node import hold_announcement, hold_offer, key_choice
from routing.queue_texts import offer_name
from routing.steps import Enqueue, QueueLeft, Say

log = logging.getLogger(__name__)
bp = Blueprint("voice_queue", __name__, url_prefix="/voice/queue")

ANNOUNCE_SLACK = timedelta(seconds=2)
"""A pass this close to `announce_every` after the last announcement announces again."""
BLIND_WAIT_SECONDS = 20 * 60
"""A hold loop that keeps failing lets the caller out after this long in line (the overflow,
or the apology), rather than holding them forever."""
RETRY_PAUSE = 5


@bp.before_request
def only_twilio() -> None:
    """403 unless Twilio signed it, 400 without a CallSid; nothing written."""
    reject_unless_signed("CallSid")


def _queue_node(state: CallState) -> QueueNode:
    node = _compiled(state.version_id).flow.nodes.get(state.position.node)
    if not isinstance(node, QueueNode):
        raise BadPosition(f"node '{state.position.node}' is not a queue node")
    return node


def _queue_seconds() -> int | None:
    value = request.form.get("QueueTime", "")
    return small_number(value, 6)


def _stay_in_line() -> Response:
    waited = _queue_seconds() or 0
    return twiml_response(leave_twiml() if waited >= BLIND_WAIT_SECONDS else pause(RETRY_PAUSE))


_holds_on = answers_whatever_happens("hold loop", _stay_in_line, quietly=FOREIGN_POSITION)
"""A hold-loop route that fails keeps the caller in line for another pass (TwiML that is
valid while queued), and lets them out once they have waited very long."""


@bp.post("/wait")
@_holds_on
def hold() -> Response:
    """The hold loop (Enqueue's waitUrl): place and wait, the offer, music; or out of line."""
    state = _state()
    node = _queue_node(state)
    flow = _compiled(state.version_id).flow
    session = get_session()
    moment = utcnow()
    call = record_wait_pass(session, request.form["CallSid"], request.form.get("QueueSid", ""),
                            moment)
    if call is None or call.status not in (*IN_LINE, "bridged"):
        session.commit()
        return twiml_response(leave_twiml())
    if call.status == "bridged":  # the agent answered: the dequeue is on its way
        session.commit()
        return twiml_response(pause(2))
    if call.status == "waiting" and (moment >= call.overflow_at
                                     or signed_in_agents_for(session, call.language) == 0):
        detail = ("waited the priority's max wait" if moment >= call.overflow_at
                  else "no agent who speaks the caller's language is signed in")
        left = caller_leaves_line(session, runtime.settings(), call.call_sid, "overflowed",
                                  moment, detail=detail, from_statuses=("waiting",))
        if left is not None and left.status == "overflowed":
            log.info("live call %s overflowed: %s", call.id, detail)
            return twiml_response(leave_twiml())
        return twiml_response(pause(1))  # an agent is being rung for the caller meanwhile
    announce = (call.announced_at is None or moment - call.announced_at
                >= timedelta(seconds=node.announce_every) - ANNOUNCE_SLACK)
    said: tuple[Say, ...] = ()
    free = call.status == "waiting" and free_agents_for(session, call.language) > 0
    if announce:
        place = place_in_line(session, call, moment)
        minutes = estimated_minutes(session, call, place, moment)
        said = hold_announcement(node, state.position.language, flow.default_language, place,
                                 minutes, first=call.announced_at is None)
        note_announced(session, call, moment)  # the last statement: its row lock is brief
    session.commit()
    if free:
        _nudge()
    offer = hold_offer(node, state.position.language, flow.default_language) if announce else None
    key_url = f"/voice/queue/key?{state.query()}" if offer_name(node) else None
    return twiml_response(hold_loop(flow, key_url, said, offer, node.hold_music,
                                    node.announce_every))


def _nudge() -> None:
    """A caller waits while an agent who speaks their language is free: route now (a lost
    routing job, or one that found the agent busy a moment ago)."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return
    try:
        nudge_sweep(redis_connection(url))
    except RedisError:
        log.warning("could not queue a routing sweep; the periodic sweep will route",
                    exc_info=True)


@bp.post("/key")
@_holds_on
def key_pressed() -> Response:
    """A key while waiting: 1 a callback that keeps the caller's place, 2 a voicemail."""
    state = _state()
    node = _queue_node(state)
    choice = key_choice(node, request.form.get("Digits", ""))
    again = VoiceResponse()
    again.redirect(f"/voice/queue/wait?{state.query()}", method="POST")
    if choice is None:
        return twiml_response(again)
    status = "to_callback" if choice == "callback" else "to_voicemail"
    call = caller_leaves_line(get_session(), runtime.settings(), request.form["CallSid"],
                              status, utcnow())
    if call is not None and call.status == status:
        return twiml_response(leave_twiml())
    return twiml_response(again)  # no longer waiting (on the way to an agent): carry on


@bp.post("/left")
@never_fails
def left_line() -> Response:
    """Enqueue's action: the caller is out of the line; the flow goes on (callback, voicemail,
    overflow), a hang-up is recorded as abandoned with its wait."""
    state = _state()
    result = request.form.get("QueueResult", "")
    way = caller_left(get_session(), runtime.settings(), request.form["CallSid"], result,
                      _queue_seconds(), utcnow())
    if way == "connect":
        return _connect(state, _live_call_id())
    return _advance(state, QueueLeft(way), "left", result or way)


def _live_call_id() -> int:
    call = live_call_by_sid(get_session(), request.form["CallSid"])
    if call is None:
        raise LookupError("no live call for this CallSid")
    return call.id


@bp.post("/connect")
@never_fails
def connect() -> Response:
    """The dequeued caller: into the conference with their agent (again, if asked twice)."""
    live = small_number(request.args.get("live", ""))
    if live is None:
        raise BadPosition("connect needs the live call's id")
    return _connect(_state(), live)


def _connect(state: CallState, live_call_id: int) -> Response:
    outcome = caller_joins_agent(get_session(), live_call_id, request.form["CallSid"], utcnow())
    if outcome == "talk":
        return twiml_response(conference_join(conference(live_call_id),
                                              action=f"/voice/queue/talked?{state.query()}"))
    if outcome == "requeue":  # the agent left first: back in line, first in line
        node = _queue_node(state)
        flow = _compiled(state.version_id).flow
        step = Enqueue(state.position, node.queue or flow.name, node.category, node.priority,
                       node.hold_music, node.announce_every)
        return twiml_response(render((step,), flow, state.version_id, state.seq))
    return _advance(state, QueueLeft("overflow"), "left", "no agent")


@bp.post("/talked")
@never_fails
def talked() -> Response:
    """The caller's conversation with their agent ended: the survey, or goodbye."""
    state = _state()
    caller_talked(get_session(), runtime.settings(), request.form["CallSid"], utcnow())
    return _after_conversation(state, request.form.get("DialCallStatus", "completed"),
                               QueueLeft("talked"))

