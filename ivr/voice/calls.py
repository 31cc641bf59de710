"""Twilio voice webhooks: the entry URL, menu actions, recordings, transfers and call status.

Every route checks Twilio's signature first and answers with TwiML whatever happens inside:
a failure becomes an apology in the caller's language and a way to leave a voicemail.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, abort, current_app, request
from redis.exceptions import RedisError
from twilio.twiml.voice_response import VoiceResponse

from callbacks.calllog import StepRecord, normalize_number, record_status
from callbacks.db import small_number, utcnow
from callbacks.flowstore import (
    PublishedLookup,
    UnknownVersion,
    cached_version,
    compiled_version,
)
from callbacks.queues import enqueue_ticket_sms, enqueue_voicemail, redis_connection
from callbacks.survey import (
    KEYPAD_QUESTIONS,
    KEYPAD_TIMEOUT,
    SurveyPolicy,
    keypad_text,
    parse_score,
    record_keypad_answer,
)
from callbacks.tickets.ticket import (
    open_ticket_for_callback,
    open_ticket_for_voicemail,
    spoken_number,
    ticket_number,
)
from callbacks.tickets.workflow import start_sla
from callbacks.voicemail import RecordingReport, store_recording
from callbacks.workqueue.callback_intake import CallbackWish, ask_for_callback
from callbacks.workqueue.callback_requests import queue_place
from callbacks.workqueue.dialer import dial_when_due
from callbacks.workqueue.live_calls import live_call_by_sid
from ivr.db import answers_whatever_happens, call_log, get_session, once_more_if_dropped
from ivr.voice.form_limits import confidence, with_cut_note
from ivr.voice.incidents import open_incidents, subscribe_caller
from ivr.voice.messages import MESSAGES, locale_for, message
from ivr.voice.queue_entry import agent_phone_of, join_line_or_overflow
from ivr.voice.signature import reject_unless_signed
from ivr.voice.ticket_lookup import answer_lookup, keyed_ticket, ticket_in_url
from ivr.voice.twiml import CallState, apology, render_xml, spoken, twiml_response
from routing import engine
from routing.callback_choices import callback_calendar
from routing.callback_texts import queued_announcement
from routing.engine import BrokenFlowError, CompiledFlow, UnexpectedEvent
from routing.flow import CallbackNode, QueueNode, TicketNode, TransferNode, VoicemailNode
from routing.language import language_for_number
from routing.steps import (
    DialEnded,
    Digits,
    Enqueue,
    Event,
    Hangup,
    NoInput,
    Position,
    QueueLeft,
    Recorded,
    RequestCallback,
    Say,
    Speech,
    Step,
    SubscribeToIncidents,
    Turn,
)

log = logging.getLogger(__name__)
APOLOGY_LANGUAGES = list(MESSAGES["apology"])
bp = Blueprint("voice", __name__, url_prefix="/voice")
CALL_STATUSES = frozenset({"queued", "initiated", "ringing", "in-progress", "completed", "busy",
                           "failed", "no-answer", "canceled"})
"""The CallStatus values Twilio sends; anything else is refused, not stored."""


@bp.before_request
def only_twilio() -> None:
    """Every voice route: 403 unless Twilio signed it, 400 without a CallSid; nothing written."""
    reject_unless_signed("CallSid")


def now() -> datetime:
    """The clock webhooks route by (tests fix it through the CLOCK setting)."""
    clock: Callable[[], datetime] | None = current_app.config.get("CLOCK")
    return clock() if clock else datetime.now(UTC)  # the engine reads it in each calendar's zone


def _language() -> str:
    language = request.args.get("l", "")
    if language.isalpha() and len(language) <= 3:
        return language
    return language_for_number(request.form.get("From", ""), APOLOGY_LANGUAGES,
                               current_app.config["DEFAULT_LANGUAGE"])


def _apology_response() -> Response:
    language = _language()
    state = f"l={language}&n=apology"
    return twiml_response(apology(language, f"/voice/recording?{state}", f"/voice/saved?{state}"))


class BadPosition(ValueError):
    """The call's position in the URL is not one the line wrote (a version, node, language or
    step that does not exist, or an event that does not fit the node)."""


FOREIGN_POSITION = (BadPosition, UnexpectedEvent, UnknownVersion)
"""What a URL the line never wrote raises: the caller gets the apology, the log a warning."""


never_fails = answers_whatever_happens("webhook", _apology_response, quietly=FOREIGN_POSITION)
"""Turn any exception in a webhook into an apology with a voicemail, never an error."""


def _compiled(version_id: int) -> CompiledFlow:
    """A compiled flow version, from this process's cache when it can."""
    return cached_version(version_id) or compiled_version(get_session(), version_id)


def _state() -> CallState:
    """The call's position from the action URL; BadPosition if the line never wrote it."""
    args = request.args
    version, attempt, seq = (small_number(args.get(name, default))
                             for name, default in (("v", ""), ("a", "0"), ("s", "1")))
    if version is None or attempt is None or seq is None or not (args.get("n")
                                                                 and args.get("l")):
        raise BadPosition(f"no call position in {request.query_string[:200]!r}")
    return CallState(
        version_id=version,
        position=Position(args["n"], args["l"], attempt, args.get("c", ""), args.get("w", ""),
                          ticket_in_url(request.args)),
        seq=seq,
        heard=args.get("h") == "1",
    )


def _carry_out(turn: Turn, state: CallState, event: str, node: str, given: str | None,
               before: tuple[Step, ...] = ()) -> Response:
    """Log the turn (behind the request), note its side effects, and render it as TwiML.

    A caller who would join a line nobody who speaks their language can answer goes on to
    the queue node's overflow in the same answer (a turn of its own in the log).
    """
    call_sid = request.form["CallSid"]
    turn = answer_lookup(turn, _compiled(state.version_id), get_session(), now(),
                         request.form.get("From", ""), open_incidents(), state.heard)
    call_log().record_step(
        StepRecord(call_sid, state.seq, event, node, given, turn.path, turn.outcome, turn.language)
    )
    steps: list[Step] = list(before)
    for step in turn.steps:
        if isinstance(step, RequestCallback):
            steps.extend(_queue_callback(step, state.version_id, call_sid))
        elif isinstance(step, SubscribeToIncidents):
            steps.append(subscribe_caller(step, request.form.get("From", ""), call_sid))
        elif isinstance(step, Enqueue) and not join_line_or_overflow(step, state, call_sid,
                                                                     utcnow()):
            overflow = engine.advance(_compiled(state.version_id), step.position,
                                      QueueLeft("overflow"), now(), request.form.get("From", ""))
            return _carry_out(overflow, CallState(state.version_id, step.position, state.seq + 1,
                                                  state.heard or turn.announced),
                              "overflow", step.position.node, None, tuple(steps))
        else:
            steps.append(step)
    compiled = _compiled(state.version_id)
    return twiml_response(render_xml(tuple(steps), compiled.flow, state.version_id,
                                     state.seq + 1, state.heard or turn.announced))


def _queue_callback(step: RequestCallback, version_id: int, call_sid: str) -> tuple[Say, ...]:
    """Queue (or join) the caller's callback and its ticket; what the caller hears about it.

    Committed before the caller hears it; a repeated webhook finds the same request and
    ticket, and the ticket's SMS is queued only when the ticket is new.
    """
    compiled = _compiled(version_id)
    node = compiled.flow.nodes.get(step.node)
    if not isinstance(node, CallbackNode):
        raise BrokenFlowError(f"node '{step.node}' is not a callback node")
    calendar = callback_calendar(compiled.flow, node)
    hours = (compiled.calendars.get(calendar) if calendar
             else next(iter(compiled.calendars.values()), None))
    moment = now()
    session = get_session()
    # a caller who waited in line keeps their place: first contact when they joined it,
    # due no later than they were as a live caller
    waited = live_call_by_sid(session, call_sid, lock=True)
    kept = waited is not None and waited.status in ("to_callback", "overflowed")
    wish = CallbackWish(caller=request.form.get("From", ""), call_sid=call_sid,
                        language=step.language, category=step.category,
                        menu_priority=step.priority, dial_number=step.dial_number,
                        window=step.window or None,
                        first_contact_at=waited.entered_at if waited and kept else None,
                        due_by=waited.due_at if waited and kept else None)
    queued = ask_for_callback(session, wish, current_app.extensions["ivr.priorities"],
                              current_app.extensions["ivr.directory"], hours, moment)
    if queued is None:  # the engine only queues with a number to call: a broken promise
        raise RuntimeError(f"callback at node {step.node} has no number to call")
    if waited is not None and kept:
        waited.callback_request_id = queued.id
    ticket, new_ticket = open_ticket_for_callback(session, queued, call_sid)
    start_sla(ticket, current_app.extensions["ivr.priorities"], hours, moment)
    place = queue_place(session, queued)
    windowed = queued.available_at > moment
    expect = (queued.available_at if windowed else queued.due_at).astimezone(
        hours.zone if hours is not None else None)  # no calendar: the server's zone
    request_id, priority, ticket_id, number = queued.id, queued.priority, ticket.id, ticket.number
    session.commit()
    log.info("callback %s queued at node %s as %s, place %s, ticket %s", request_id, step.node,
             priority, place, number)
    if new_ticket:
        queue_ticket_sms(ticket_id, request.form.get("To", ""))
    if current_app.config["REDIS_URL"]:  # a free agent may take it right away
        dial_when_due(redis_connection(current_app.config["REDIS_URL"]), queued.available_at)
    return queued_announcement(node, step.language, compiled.flow.default_language, place,
                               expect, moment, windowed, spoken_number(number))


def queue_ticket_sms(ticket_id: int, line: str) -> None:
    """Queue the ticket's SMS, from `line` (the number called) unless IVR_SMS_FROM is set: the
    job needs no call log row, which is written behind the webhook. If Redis is down, the
    reconciler sends it later."""
    url = current_app.config["REDIS_URL"]
    if not url:
        log.warning("REDIS_URL is not set: the SMS of ticket %s waits for a worker", ticket_id)
        return
    try:
        enqueue_ticket_sms(redis_connection(url), ticket_id, normalize_number(line))
    except RedisError:
        log.exception("could not queue the SMS of ticket %s; the reconciler will", ticket_id)


@bp.post("")
@never_fails
def incoming_call() -> Response:
    """The number's Voice URL: a new call starts the published flow for the number called."""
    form = request.form
    lookup: PublishedLookup = current_app.extensions["ivr.published"]
    version_id = lookup.version_for(current_app.extensions["ivr.sessions"], form.get("To", ""),
                                    current_app.config["DEFAULT_FLOW"])
    if version_id is None:
        raise LookupError("no published flow answers this number; run `ivr flows publish`")
    return _start_call(version_id, None)


@bp.post("/test")
@never_fails
def test_call() -> Response:
    """A test call from the admin simulator: starts version `v` (published or a draft) in
    language `l` if the flow has it; signed like every voice route, so Twilio-or-admin only."""
    version = small_number(request.args.get("v", ""))
    if version is None:
        raise BadPosition("a test call names its flow version: /voice/test?v=<id>")
    return _start_call(version, request.args.get("l", ""))


def _start_call(version_id: int, language: str | None) -> Response:
    """Start a flow version: in `language` if the flow has it, else guessed from the caller."""
    form = request.form
    compiled = _compiled(version_id)
    flow = compiled.flow
    if language is None or language not in flow.languages:
        language = language_for_number(form.get("From", ""), flow.languages,
                                       flow.default_language)
    turn = engine.start(compiled, now(), language, form.get("From", ""),
                        incidents=open_incidents())
    call_log().open_call(form["CallSid"], form.get("From", ""), form.get("To", ""), version_id,
                         turn.language or language)
    state = CallState(version_id, Position(flow.start, language), seq=0)
    return _carry_out(turn, state, "start", flow.start, None)


@bp.post("/step")
@never_fails
def caller_input() -> Response:
    """A Gather's action: the caller pressed keys or spoke."""
    state = _state()
    form = request.form
    event: Event
    if form.get("Digits"):
        event, given = Digits(form["Digits"]), with_cut_note("Digits", form["Digits"])
    elif form.get("SpeechResult"):
        event = Speech(form["SpeechResult"], confidence(form.get("Confidence")))
        given = "speech:" + with_cut_note("SpeechResult", form["SpeechResult"])
    else:
        event, given = NoInput(), None
    return _advance(state, event, "input" if given else "silence", given)


@bp.post("/silence")
@never_fails
def caller_silent() -> Response:
    """Reached after a Gather that heard nothing."""
    return _advance(_state(), NoInput(), "silence", None)


@bp.post("/recorded")
@never_fails
def recording_finished() -> Response:
    """A Record's action: the voicemail and its ticket exist, the caller hears the number."""
    state = _state()
    language = state.position.language
    number = _receive_voicemail(state.version_id, state.position)
    compiled = _compiled(state.version_id)
    turn = engine.advance(compiled, state.position, Recorded(), now())
    said: list[Say] = []
    added = isinstance(compiled.flow.nodes.get(state.position.node), TicketNode)
    if number and not added:  # a message added to a ticket: the engine names the ticket
        said.append(Say(message("ticket_number", language, number=spoken_number(number)),
                        language))
    if turn.steps and isinstance(turn.steps[0], Hangup):
        said.append(Say(message("message_saved", language), language))
    turn = Turn((*said, *turn.steps), turn.path, turn.outcome, turn.language, turn.choice)
    recording_sid = request.form.get("RecordingSid")
    return _carry_out(turn, state, "recorded", state.position.node, recording_sid)


@bp.post("/dialed")
@never_fails
def transfer_finished() -> Response:
    """A Dial's action: the agent talked to the caller (who may rate it), or nobody answered."""
    status = request.form.get("DialCallStatus", "")
    state = _state()
    if status in ("completed", "answered"):
        return _after_conversation(state, status)
    return _advance(state, DialEnded(answered=False), "dial", status)


TALKED = DialEnded(answered=True)


def _after_conversation(state: CallState, status: str, event: Event = TALKED) -> Response:
    """The caller is still on the line after the agent: the survey instead of the hang-up."""
    compiled = _compiled(state.version_id)
    turn = engine.advance(compiled, state.position, event, now(), request.form.get("From", ""))
    survey = SurveyPolicy.from_setting(current_app.config["SURVEY"])
    if turn.steps != (Hangup(),) or not survey.keypad_for(compiled.flow.name):
        return _carry_out(turn, state, "dial", state.position.node, status)
    call_log().record_step(StepRecord(request.form["CallSid"], state.seq, "dial",
                                      state.position.node, status, turn.path, turn.outcome,
                                      turn.language))
    intro = keypad_text("intro", state.position.language)
    return _survey_question(state, KEYPAD_QUESTIONS[0], 0, intro)


def _survey_question(state: CallState, question: str, attempt: int, lead: str = "") -> Response:
    """Ask one survey question (one key); silence comes back to the same URL without Digits."""
    flow = _compiled(state.version_id).flow
    language = state.position.language
    position = dataclasses.replace(state.position, attempt=attempt)
    query = CallState(state.version_id, position, state.seq + 1).query()
    url = f"/voice/survey?{query}&q={question}"
    voice = flow.voices.get(language)
    say = {"language": voice.locale if voice is not None else locale_for(language)}
    if voice is not None and voice.voice:
        say["voice"] = voice.voice
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, timeout=KEYPAD_TIMEOUT, action=url,
                             method="POST", language=say["language"])
    gather.say(f"{lead} {keypad_text(question, language)}".strip(), **say)
    response.redirect(url, method="POST")
    return twiml_response(response)


@bp.post("/survey")
def survey_answer() -> Response:
    """A survey key: kept (once) with the call's ticket and agent, then the next question."""
    try:
        return _survey_step()
    except FOREIGN_POSITION as foreign:
        log.warning("survey step %s: %s; the caller hears goodbye", request.path, foreign)
        get_session().rollback()
        return twiml_response(spoken(keypad_text("goodbye", _language()), _language()))
    except Exception:
        log.exception("survey step %s failed; the caller hears goodbye", request.path)
        get_session().rollback()
        return twiml_response(spoken(keypad_text("goodbye", _language()), _language()))


@once_more_if_dropped
def _survey_step() -> Response:
    state = _state()
    question, language = request.args.get("q", ""), state.position.language
    if question not in KEYPAD_QUESTIONS:
        raise BadPosition(f"unknown survey question {question[:40]!r}")
    flow = _compiled(state.version_id).flow
    digits = request.form.get("Digits", "")
    score = parse_score(digits) if len(digits) == 1 else None
    if not digits or (score is None and state.position.attempt > 0):
        return twiml_response(spoken(keypad_text("goodbye", language), language, flow))
    if score is None:  # a wrong key: ask once more
        return _survey_question(state, question, 1, keypad_text("invalid", language))
    node = flow.nodes.get(state.position.node)
    dialled: list[str] = []
    topic = state.position.node
    session = get_session()
    if isinstance(node, TransferNode):
        dialled = [node.to] if node.to else flow.groups.get(node.group or "", [])
    elif isinstance(node, QueueNode):  # the agent who answered the caller in line
        dialled = agent_phone_of(session, request.form["CallSid"])
        topic = node.category or topic
    record_keypad_answer(session, request.form["CallSid"], question, score, language, dialled,
                         topic)
    session.commit()
    following = KEYPAD_QUESTIONS[KEYPAD_QUESTIONS.index(question) + 1:]
    if following:
        return _survey_question(state, following[0], 0)
    return twiml_response(spoken(keypad_text("thanks", language), language, flow))


def _advance(state: CallState, event: Event, kind: str, given: str | None) -> Response:
    compiled = _compiled(state.version_id)
    turn = engine.advance(compiled, state.position, event, now(), request.form.get("From", ""),
                          incidents=open_incidents(), heard=state.heard)
    return _carry_out(turn, state, kind, state.position.node, given)


@bp.post("/recording")
@once_more_if_dropped
def recording_status() -> Response:
    """Twilio's recording-status callback: the voicemail row exists from here on, once."""
    args = request.args
    _receive_voicemail(small_number(args.get("v", "")),
                       Position(args.get("n", ""), _language(), ticket=ticket_in_url(args)))
    return twiml_response(VoiceResponse())


def _receive_voicemail(version_id: int | None, position: Position) -> str | None:
    """Store the recording and its ticket (once), queue the work; the ticket's number.

    At a ticket node the recording is a repeat caller's message to the ticket they keyed in:
    it joins that ticket (no new ticket, no ticket SMS) once the voicemail job transcribes it.
    """
    form = request.form
    if not form.get("RecordingSid") or not form.get("RecordingUrl"):
        return None
    if form.get("RecordingStatus", "completed") not in ("completed", ""):
        return None  # "absent" or "failed": Twilio has no audio to give
    node = None
    if version_id is not None:
        node = _compiled(version_id).flow.nodes.get(position.node)
    duration = form.get("RecordingDuration", "0")
    session = get_session()
    added_to = keyed_ticket(session, position) if isinstance(node, TicketNode) else None
    voicemail, _new = store_recording(
        session,
        RecordingReport(
            recording_sid=form["RecordingSid"],
            call_sid=form["CallSid"],
            recording_url=form["RecordingUrl"],
            duration_seconds=small_number(duration, 7) or 0,
            flow_version_id=version_id,
            node=position.node,
            language=position.language,
            category_hint=node.category if isinstance(node, VoicemailNode) else None,
            priority_hint=node.priority if isinstance(node, VoicemailNode) else None,
            wants_callback=bool(node.callback) if isinstance(node, VoicemailNode) else False,
            ticket_id=added_to.id if added_to is not None else None,
        ),
    )
    if voicemail.ticket_id is not None:
        number = ticket_number(voicemail.ticket_id)
        session.commit()
        queue_voicemail_work(voicemail.id, None)
        return number
    ticket = open_ticket_for_voicemail(session, voicemail, form.get("From", ""))
    hours = next(iter(_compiled(version_id).calendars.values()), None) if version_id else None
    start_sla(ticket, current_app.extensions["ivr.priorities"], hours, now())
    session.commit()
    queue_voicemail_work(voicemail.id, ticket.id)
    return ticket.number


def queue_voicemail_work(voicemail_id: int, ticket_id: int | None) -> None:
    """Queue transcription and the new ticket's SMS (none for a message added to a ticket);
    if Redis is down, the reconciler does it later."""
    url = current_app.config["REDIS_URL"]
    if not url:
        log.warning("REDIS_URL is not set: voicemail %s waits for a worker", voicemail_id)
        return
    try:
        connection = redis_connection(url)
        if ticket_id is not None:
            enqueue_ticket_sms(connection, ticket_id,
                               normalize_number(request.form.get("To", "")))
        enqueue_voicemail(connection, voicemail_id, current_app.config["MAX_VOICEMAIL_SECONDS"])
    except RedisError:
        log.exception("could not queue voicemail %s; the reconciler will", voicemail_id)


@bp.post("/saved")
@never_fails
def apology_recorded() -> Response:
    """The apology's voicemail was recorded: store it, give the ticket number, say goodbye."""
    language = _language()
    number = _receive_voicemail(None, Position("apology", language))
    text = message("message_saved", language)
    if number:
        text = message("ticket_number", language, number=spoken_number(number)) + " " + text
    return twiml_response(spoken(text, language))


@bp.post("/status")
@once_more_if_dropped  # Twilio does not send a status callback again
def call_status() -> Response:
    """The call-status callback: the outcome and timings of the call, applied once."""
    form = request.form
    status, duration = form.get("CallStatus", ""), form.get("CallDuration", "")
    if status not in CALL_STATUSES:
        abort(400, "CallStatus is not one of Twilio's call statuses")
    session = get_session()
    record_status(session, form.get("CallSid", ""), status,
                  small_number(duration, 7),
                  caller=form.get("From", ""), called=form.get("To", ""))
    session.commit()
    return twiml_response(VoiceResponse())


@bp.post("/fallback")
def fallback() -> Response:
    """The number's fallback URL, called by Twilio when the Voice URL fails: never drop."""
    return _apology_response()
