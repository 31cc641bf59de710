"""The ticket desk in the JSON API: the inbox (GET /api/v1/tickets) and a ticket's actions
(take, assign, status, notes and replies, priority), and the recordings of messages the
caller added by phone. Declared with `api_route` like every route, so they are in the OpenAPI
document; refusals of the workflow are 400 with its message."""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, url_for
from sqlalchemy import select

from callbacks.db import utcnow
from callbacks.desk import message_audio
from callbacks.tickets.actions import (
    ActionResult,
    assign_ticket,
    move_ticket,
    note_ticket,
    prioritise_ticket,
    take_ticket,
)
from callbacks.tickets.inbox import InboxFilter, inbox
from callbacks.tickets.ticket import Ticket, ticket_id_from_number
from callbacks.tickets.workflow import TicketError, desk_hours
from callbacks.voicemail import VoicemailAudio
from ivr.api.core import ApiProblem, Reply, api_route, reply
from ivr.api.models import MAX_ID, EventOut, Problem, TicketOut
from ivr.api.ticket_models import (
    ActionOut,
    AssignRequest,
    CallerTextOut,
    PriorityRequest,
    StatusRequest,
    TicketList,
    TicketListQuery,
    TicketNoteRequest,
)
from ivr.auth import signed_in_agent
from ivr.console.blueprint import display_zone
from ivr.db import get_session

REFUSED = Reply("The workflow does not allow it (the message says why)", Problem)
DONE = Reply("The ticket, the event recorded and the caller's text, if one goes out", ActionOut)


@api_route("GET", "/tickets", summary="The ticket inbox: filtered, searched, sorted, in pages",
           tag="tickets", query=TicketListQuery,
           responses={200: Reply("One page of matching tickets", TicketList),
                      400: Reply("The date range ends before it starts", Problem)})
def list_tickets(query: TicketListQuery) -> Response:
    """Tickets to work on (the open ones by default), most urgent first, in pages."""
    try:
        wanted = InboxFilter(
            status=query.status, category=query.category, priority=query.priority,
            language=query.language, assigned=query.assigned,
            transcription=query.transcription, created_from=query.created_from,
            created_to=query.created_to, overdue=query.overdue, search=query.q,
            sort=query.sort, page=query.page, per_page=query.per_page)
    except TicketError as refused:  # a date range that ends before it starts
        raise ApiProblem(400, "refused", str(refused)) from None
    found = inbox(get_session(), wanted, me=signed_in_agent().id,
                  directory=current_app.extensions["ivr.directory"], zone=display_zone(),
                  now=utcnow())
    return reply(TicketList.of(found))


@api_route("POST", "/tickets/<number>/take", summary="Take a ticket", tag="tickets",
           responses={200: DONE, 400: REFUSED})
def take(number: str) -> Response:
    """Assign the ticket to yourself (a new ticket becomes assigned)."""
    return _act(number, lambda ticket_id: take_ticket(get_session(), ticket_id,
                                                      signed_in_agent()))


@api_route("POST", "/tickets/<number>/assign", summary="Assign a ticket", tag="tickets",
           body=AssignRequest, responses={200: DONE, 400: REFUSED})
def assign(number: str, body: AssignRequest) -> Response:
    """Assign the ticket to an agent (agent_id), or to nobody (null)."""
    return _act(number, lambda ticket_id: assign_ticket(get_session(), ticket_id, body.agent_id,
                                                        signed_in_agent()))


@api_route("POST", "/tickets/<number>/status", summary="Change a ticket's status",
           tag="tickets", body=StatusRequest, responses={200: DONE, 400: REFUSED})
def change_status(number: str, body: StatusRequest) -> Response:
    """Move the ticket along its workflow (only the moves it allows), or reopen it."""
    return _act(number, lambda ticket_id: move_ticket(get_session(), ticket_id, body.status,
                                                      body.note, signed_in_agent()))


@api_route("POST", "/tickets/<number>/notes", summary="Add an internal note or reply",
           tag="tickets", body=TicketNoteRequest, responses={200: DONE, 400: REFUSED})
def add_note(number: str, body: TicketNoteRequest) -> Response:
    """An internal note, or a reply texted to the caller in their language (once)."""
    return _act(number, lambda ticket_id: note_ticket(get_session(), ticket_id, body.text,
                                                      signed_in_agent(),
                                                      internal=body.kind == "note"))


@api_route("POST", "/tickets/<number>/priority", summary="Change a ticket's priority",
           tag="tickets", body=PriorityRequest, responses={200: DONE, 400: REFUSED})
def set_priority(number: str, body: PriorityRequest) -> Response:
    """Set the ticket's priority; its SLA deadline is counted again."""
    def prioritise(ticket_id: int) -> ActionResult:
        session = get_session()
        return prioritise_ticket(session, ticket_id, body.priority, signed_in_agent(),
                                 current_app.extensions["ivr.priorities"],
                                 desk_hours(session, current_app.config["DEFAULT_FLOW"]))

    return _act(number, prioritise)


@api_route("GET", "/tickets/<number>/messages/<int:voicemail_id>/audio",
           summary="A message the caller added by phone", tag="tickets", responses={
               200: Reply("The recording", media_type="audio/wav"),
               404: Reply("No such ticket or message, or no audio is kept for it", Problem)})
def get_message_audio(number: str, voicemail_id: int) -> Response:
    """The recording of a caller_message event (signed-in agents only)."""
    ticket_id = ticket_id_or_404(number)
    audio = message_audio(get_session(), ticket_id, voicemail_id) \
        if voicemail_id <= MAX_ID else None
    if audio is None:
        raise ApiProblem(404, "not_found", f"no audio is kept for message {voicemail_id}")
    response = Response(audio, mimetype="audio/wav")
    response.headers["Cache-Control"] = "private, no-store"
    return response


def ticket_id_or_404(number: str) -> int:
    """The id of the ticket a number names; 404 if there is no such ticket."""
    ticket_id = ticket_id_from_number(number)
    if ticket_id is None or ticket_id > MAX_ID or get_session().get(Ticket, ticket_id) is None:
        raise ApiProblem(404, "not_found", f"no ticket {number}")
    return ticket_id


def message_audio_url(ticket: Ticket, voicemail_id: int | None) -> str | None:
    """The API URL of a caller_message's recording."""
    if voicemail_id is None:
        return None
    return url_for("api.get_message_audio", number=ticket.number, voicemail_id=voicemail_id)


def ticket_audio_url(ticket: Ticket) -> str | None:
    """The API URL of a ticket's voicemail recording, if it is kept."""
    if ticket.voicemail_id is None or get_session().scalar(
            select(VoicemailAudio.voicemail_id)
            .where(VoicemailAudio.voicemail_id == ticket.voicemail_id)) is None:
        return None
    return url_for("api.get_ticket_audio", number=ticket.number)


def _act(number: str, action: Callable[[int], ActionResult]) -> Response:
    """Run a ticket action; the workflow's refusal becomes a 400 with its message."""
    ticket_id = ticket_id_or_404(number)
    try:
        done = action(ticket_id)
    except TicketError as refused:
        get_session().rollback()
        raise ApiProblem(400, "refused", str(refused)) from None
    return reply(ActionOut(ticket=TicketOut.of(done.ticket, ticket_audio_url(done.ticket)),
                           event=EventOut.of(done.event), caller_text=CallerTextOut.of(done.text),
                           message=done.message))
