"""The JSON API for the agents' desk at /api/v1: the call list, callbacks, tickets, actions,
the signed-in agent, agent accounts (admins) and sign-in; described at /api/v1/openapi.json.

Clients sign in with `Authorization: Bearer <token>` (`ivr agents token USERNAME`) or with a
session cookie from POST /api/v1/session, whose CSRF token then goes in the X-CSRFToken
header of every POST, PUT and DELETE. Errors are JSON Problem bodies with a 4xx status.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Response, current_app, request, url_for
from flask_wtf.csrf import generate_csrf
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.desk import (
    DeskError,
    ReservedError,
    call_list,
    callback_story,
    change_availability,
    reassign_callback,
    resolve_callback,
    resolve_ticket,
    snooze_callback,
    ticket_audio,
    ticket_story,
)
from callbacks.tickets.ticket import Ticket, ticket_id_from_number
from callbacks.tickets.workflow import TicketError
from callbacks.workqueue.agents import authenticate
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.dialer import DialRefused, ReservedForAnother, call_now
from ivr import signin_limits
from ivr.api import (
    agents,  # noqa: F401 (the account routes register on the same blueprint)
    incidents,  # noqa: F401 (and the incidents' routes)
    line,  # noqa: F401 (the live line's routes register on it too)
)
from ivr.api.core import (
    PUBLIC,
    ROUTES,
    ApiProblem,
    Reply,
    api_route,
    bp,
    problem_response,
    reply,
)
from ivr.api.models import (
    MAX_ID,
    AgentOut,
    AttemptOut,
    AvailabilityRequest,
    CallbackDetail,
    CallbackOut,
    CallList,
    CallListQuery,
    EventOut,
    NoteRequest,
    Problem,
    ReassignRequest,
    SessionOut,
    SignInRequest,
    SnoozeRequest,
    TicketDetail,
    TicketOut,
)
from ivr.api.spec import openapi_document
from ivr.api.tickets import message_audio_url, ticket_audio_url
from ivr.auth import end_session, signed_in_agent, start_session
from ivr.db import get_session

__all__ = ["bp"]

T = TypeVar("T")

REFUSED = Reply("The action cannot be done as asked (the message says why)", Problem)


@api_route("GET", "/callbacks", summary="The call list, earliest deadline first",
           tag="callbacks", query=CallListQuery,
           responses={200: Reply("Callbacks in queue order", CallList)})
def list_callbacks(query: CallListQuery) -> Response:
    """Open callbacks (or all, with include_closed) in the order the dialer takes them."""
    entries = call_list(get_session(), include_closed=query.include_closed, limit=query.limit)
    return reply(CallList(callbacks=[CallbackOut.of(entry) for entry in entries]))


@api_route("GET", "/callbacks/<int:callback_id>", summary="A callback and its story",
           tag="callbacks", responses={200: Reply("The callback, its ticket, attempts and "
                                                  "history", CallbackDetail)})
def get_callback(callback_id: int) -> Response:
    """A callback with its ticket, attempts and the ticket's history."""
    story = callback_story(get_session(), _callback_id(callback_id))
    if story is None:
        raise _not_found("callback", callback_id)
    ticket = TicketOut.of(story.ticket, ticket_audio_url(story.ticket)) if story.ticket else None
    return reply(CallbackDetail(
        callback=CallbackOut.of(story.entry), ticket=ticket,
        attempts=[AttemptOut.of(attempt) for attempt in story.attempts],
        events=[EventOut.of(event) for event in story.events]))


@api_route("POST", "/callbacks/<int:callback_id>/call", summary="Call now (preview mode)",
           tag="callbacks", responses={
               202: Reply("The agent's phone is being rung; the attempt's stage is dial_error "
                          "if Twilio refused the call", AttemptOut),
               409: Reply("The agent is on a call, has no phone number, the callback is "
                          "not waiting any more, or it is reserved for another agent (admins "
                          "may call it anyway; the ticket's history records that)", Problem)})
def call_callback(callback_id: int) -> Response:
    """Ring the signed-in agent's phone now, then the caller."""
    session = get_session()
    _existing_callback(session, callback_id)
    try:
        attempt = call_now(session, runtime.settings(), signed_in_agent(), callback_id)
    except ReservedForAnother as reserved:
        raise ApiProblem(409, "reserved", str(reserved)) from None
    except DialRefused as refused:
        raise ApiProblem(409, "conflict", str(refused)) from None
    return reply(AttemptOut.of(attempt), 202)


@api_route("POST", "/callbacks/<int:callback_id>/snooze", summary="Snooze a waiting callback",
           tag="callbacks", body=SnoozeRequest, responses={
               200: Reply("The callback, hidden from the dialer until then", CallbackOut),
               400: REFUSED})
def snooze(callback_id: int, body: SnoozeRequest) -> Response:
    """Hide a waiting callback from the dialer until a time (its deadline stays)."""
    session = get_session()
    _existing_callback(session, callback_id)
    _desk(lambda: snooze_callback(session, callback_id, body.until, signed_in_agent()))
    return _callback_reply(session, callback_id)


@api_route("POST", "/callbacks/<int:callback_id>/resolve", summary="Resolve a callback",
           tag="callbacks", body=NoteRequest, responses={
               200: Reply("The callback, closed with its ticket; the caller gets a status SMS",
                          CallbackOut),
               400: REFUSED})
def resolve_a_callback(callback_id: int, body: NoteRequest) -> Response:
    """Close a callback (and its ticket) with a note; the caller gets a status SMS."""
    session = get_session()
    _existing_callback(session, callback_id)
    _desk(lambda: resolve_callback(session, callback_id, body.note, signed_in_agent()))
    return _callback_reply(session, callback_id)


@api_route("POST", "/callbacks/<int:callback_id>/reassign",
           summary="Reserve a callback for an agent, or free it", tag="callbacks",
           body=ReassignRequest, responses={
               200: Reply("The callback with its new assignment", CallbackOut),
               400: REFUSED,
               409: Reply("The callback is reserved for another agent: only they or an admin "
                          "may reassign it", Problem)})
def reassign(callback_id: int, body: ReassignRequest) -> Response:
    """Reserve a callback for one agent (agent_id), or free it for everyone (null)."""
    session = get_session()
    _existing_callback(session, callback_id)
    _desk(lambda: reassign_callback(session, callback_id, body.agent_id, signed_in_agent()))
    return _callback_reply(session, callback_id)


@api_route("GET", "/tickets/<number>", summary="A ticket and its story", tag="tickets",
           responses={200: Reply("The ticket, its history and callbacks", TicketDetail)})
def get_ticket(number: str) -> Response:
    """A ticket by the number callers hear, with transcript, history and callbacks."""
    story = ticket_story(get_session(), _ticket_id(number))
    if story is None:
        raise _not_found("ticket", number)
    audio_url = url_for("api.get_ticket_audio", number=story.ticket.number) \
        if story.has_audio else None
    return reply(TicketDetail(
        ticket=TicketOut.of(story.ticket, audio_url),
        events=[EventOut.of(event, message_audio_url(story.ticket, event.voicemail_id)
                            if event.voicemail_id in story.message_audio else None)
                for event in story.events],
        callbacks=[CallbackOut.of(entry) for entry in story.callbacks]))


@api_route("GET", "/tickets/<number>/audio", summary="A ticket's voicemail recording",
           tag="tickets", responses={
               200: Reply("The recording", media_type="audio/wav"),
               404: Reply("No such ticket, or no audio is kept for it", Problem)})
def get_ticket_audio(number: str) -> Response:
    """The kept recording of a ticket's voicemail (signed-in agents only)."""
    audio = ticket_audio(get_session(), _ticket_id(number))
    if audio is None:
        raise ApiProblem(404, "not_found", f"no audio is kept for ticket {number}")
    response = Response(audio, mimetype="audio/wav")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = f'inline; filename="ticket-{number}.wav"'
    return response


@api_route("POST", "/tickets/<number>/resolve", summary="Resolve a ticket", tag="tickets",
           body=NoteRequest, responses={
               200: Reply("The resolved ticket; the caller gets a status SMS", TicketOut),
               400: REFUSED})
def resolve_a_ticket(number: str, body: NoteRequest) -> Response:
    """Resolve a ticket with a note, close its waiting callbacks and text the caller."""
    session = get_session()
    ticket_id = _ticket_id(number)
    if session.get(Ticket, ticket_id) is None:
        raise _not_found("ticket", number)
    ticket = _desk(lambda: resolve_ticket(session, ticket_id, body.note, signed_in_agent()))
    return reply(TicketOut.of(ticket, ticket_audio_url(ticket)))


@api_route("GET", "/me", summary="The signed-in agent", tag="agents",
           responses={200: Reply("The signed-in agent", AgentOut)})
def get_me() -> Response:
    """The signed-in agent."""
    return reply(AgentOut.of(signed_in_agent()))


@api_route("PUT", "/me/availability", summary="Set your availability", tag="agents",
           body=AvailabilityRequest, responses={
               200: Reply("The agent in the new state", AgentOut),
               400: Reply("The agent is on a call; the state changes when it ends", Problem)})
def put_availability(body: AvailabilityRequest) -> Response:
    """Set the signed-in agent's state; becoming available may start the next call."""
    session = get_session()
    agent = _desk(lambda: change_availability(session, signed_in_agent(), body.availability))
    return reply(AgentOut.of(agent))


@api_route("POST", "/session", summary="Sign in with a session cookie", tag="session",
           access=PUBLIC, body=SignInRequest, responses={
               200: Reply("Signed in: the cookie is set; send csrf_token as X-CSRFToken",
                          SessionOut),
               401: Reply("Wrong user name or password", Problem),
               429: Reply("Too many failed sign-ins; Retry-After says when to try again",
                          Problem)})
def sign_in(body: SignInRequest) -> Response:
    """Sign in with a user name and password; the session cookie carries the sign-in."""
    attempt = signin_limits.begin_attempt(body.username, request.remote_addr)
    if not attempt.allowed:
        blocked = problem_response(429, Problem(error="too_many_attempts",
                                                message=attempt.message()))
        blocked.headers["Retry-After"] = str(attempt.wait)
        return blocked
    agent = authenticate(get_session(), body.username, body.password)
    if agent is None:
        raise ApiProblem(401, "unauthorized", "wrong user name or password")
    signin_limits.succeeded(body.username, request.remote_addr)
    start_session(agent)
    return reply(SessionOut(agent=AgentOut.of(agent), csrf_token=generate_csrf()))


@api_route("DELETE", "/session", summary="Sign out", tag="session",
           responses={204: Reply("Signed out")})
def sign_out() -> Response:
    """End the cookie session and every copy of it (a bearer token stays valid)."""
    end_session()
    return Response(status=204)


@api_route("GET", "/openapi.json", summary="This document", tag="meta", access=PUBLIC,
           responses={200: Reply("The OpenAPI 3.1 document of this API")})
def get_openapi() -> Response:
    """The OpenAPI document of every route above."""
    document = current_app.extensions.get("ivr.openapi")
    if document is None:
        document = openapi_document(ROUTES, current_app.config.get("SESSION_COOKIE_NAME")
                                    or "session")
        current_app.extensions["ivr.openapi"] = document
    return current_app.response_class(document, mimetype="application/json")


def _desk(action: Callable[[], T]) -> T:
    """Run a desk action; its refusal becomes a 400 with the desk's message (409 when the
    callback is reserved for another agent)."""
    try:
        return action()
    except ReservedError as reserved:
        get_session().rollback()
        raise ApiProblem(409, "reserved", str(reserved)) from None
    except (DeskError, TicketError) as refused:
        get_session().rollback()
        raise ApiProblem(400, "refused", str(refused)) from None


def _callback_id(callback_id: int) -> int:
    if not 0 < callback_id <= MAX_ID:
        raise _not_found("callback", callback_id)
    return callback_id


def _existing_callback(session: Session, callback_id: int) -> None:
    if session.get(CallbackRequest, _callback_id(callback_id)) is None:
        raise _not_found("callback", callback_id)


def _ticket_id(number: str) -> int:
    ticket_id = ticket_id_from_number(number)
    if ticket_id is None or ticket_id > MAX_ID:
        raise _not_found("ticket", number)
    return ticket_id


def _not_found(kind: str, key: object) -> ApiProblem:
    return ApiProblem(404, "not_found", f"no {kind} {key}")


def _callback_reply(session: Session, callback_id: int) -> Response:
    story = callback_story(session, callback_id)
    assert story is not None
    return reply(CallbackOut.of(story.entry))
