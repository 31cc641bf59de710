"""Incidents in the JSON API: the list with the desk's suggestions, open, read with everyone
affected, link and unlink, announce and resolve. Declared with `api_route` like every route,
so they are in the OpenAPI document; refusals are 400 with the reason."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Response, current_app

from callbacks.db import utcnow
from callbacks.incidents.grouping import (
    IncidentError,
    link,
    open_incident,
    resolve_incident,
    set_announcement,
    unlink,
)
from callbacks.incidents.overview import incident_list, incident_story
from callbacks.incidents.suggestion import suggestions
from callbacks.tickets.ticket import ticket_id_from_number
from ivr.api.core import ApiProblem, Reply, api_route, reply
from ivr.api.incident_models import (
    AnnouncementRequest,
    IncidentDetail,
    IncidentList,
    IncidentListItem,
    LinkRequest,
    OpenIncidentRequest,
    ResolveRequest,
    SuggestionOut,
)
from ivr.api.models import Problem
from ivr.auth import signed_in_agent
from ivr.db import get_session
from ivr.voice.incidents import forget_open_incidents

REFUSED = Reply("Refused (the message says why)", Problem)
DETAIL = Reply("The incident and everyone it affects; `message` says what happened",
               IncidentDetail)


@api_route("GET", "/incidents", summary="Incidents, open first, and the desk's suggestions",
           tag="incidents", responses={200: Reply("Incidents and suggestions", IncidentList)})
def list_incidents() -> Response:
    """Every incident (open ones first) and the incidents the desk suggests opening."""
    session = get_session()
    found = suggestions(session, current_app.extensions["ivr.incidents"], utcnow())
    return reply(IncidentList(
        incidents=[IncidentListItem.of_row(row) for row in incident_list(session)],
        suggestions=[SuggestionOut.of(s) for s in found]))


@api_route("POST", "/incidents", summary="Open an incident", tag="incidents",
           body=OpenIncidentRequest, responses={201: DETAIL, 400: REFUSED})
def create_incident(body: OpenIncidentRequest) -> Response:
    """Open an incident, linking tickets (numbers) and callbacks (ids) at once."""
    try:
        incident = open_incident(get_session(), title=body.title, category=body.category,
                                 by=signed_in_agent().username,
                                 ticket_ids=_ticket_ids(body.tickets),
                                 callback_ids=body.callbacks, announce=body.announce)
    except IncidentError as refused:
        get_session().rollback()
        raise ApiProblem(400, "refused", str(refused)) from None
    forget_open_incidents(current_app._get_current_object())  # type: ignore[attr-defined]
    return reply(_detail(incident.id, f"Incident {incident.number} is open."), 201)


@api_route("GET", "/incidents/<int:incident_id>", summary="An incident and who is affected",
           tag="incidents", responses={200: DETAIL})
def get_incident(incident_id: int) -> Response:
    """The incident, its linked tickets and callbacks, subscribers and notices."""
    return reply(_detail(incident_id))


@api_route("POST", "/incidents/<int:incident_id>/link", summary="Link tickets and callbacks",
           tag="incidents", body=LinkRequest, responses={200: DETAIL, 400: REFUSED})
def link_incident(incident_id: int, body: LinkRequest) -> Response:
    """Link tickets (numbers) and callbacks (ids) to an open incident; a repeat links nothing
    twice."""
    return _act(incident_id, lambda: "Linked {} ticket(s) and {} callback(s).".format(*link(
        get_session(), incident_id, ticket_ids=_ticket_ids(body.tickets),
        callback_ids=body.callbacks, by=signed_in_agent().username)))


@api_route("POST", "/incidents/<int:incident_id>/unlink",
           summary="Unlink tickets and callbacks", tag="incidents", body=LinkRequest,
           responses={200: DETAIL, 400: REFUSED})
def unlink_incident(incident_id: int, body: LinkRequest) -> Response:
    """Take tickets and callbacks off an open incident."""
    return _act(incident_id, lambda: "Unlinked {} ticket(s) and {} callback(s).".format(*unlink(
        get_session(), incident_id, ticket_ids=_ticket_ids(body.tickets),
        callback_ids=body.callbacks, by=signed_in_agent().username)))


@api_route("POST", "/incidents/<int:incident_id>/announcement",
           summary="Announce an incident in menus, or not", tag="incidents",
           body=AnnouncementRequest, responses={200: DETAIL, 400: REFUSED})
def announce_incident(incident_id: int, body: AnnouncementRequest) -> Response:
    """Switch the announcement on or off; `texts` sets its own words per language (an empty
    one goes back to the incidents file's)."""
    bad = [code for code in body.texts or {} if not re.fullmatch(r"[a-z]{2,3}", code)]
    if bad:
        raise ApiProblem(400, "refused", f"'{bad[0][:10]}' is not a language code such as de")

    def act() -> str:
        set_announcement(get_session(), incident_id, body.announce, body.texts)
        forget_open_incidents(current_app._get_current_object())  # type: ignore[attr-defined]
        return "Announced." if body.announce else "No longer announced."

    return _act(incident_id, act)


@api_route("POST", "/incidents/<int:incident_id>/resolve",
           summary="Resolve an incident: every caller is texted once", tag="incidents",
           body=ResolveRequest, responses={200: DETAIL, 400: REFUSED})
def resolve_incident_route(incident_id: int, body: ResolveRequest) -> Response:
    """Resolve the incident; every linked and subscribed number gets one text (a repeat
    resolves nothing and texts nobody again)."""
    def act() -> str:
        done = resolve_incident(get_session(), incident_id, body.note,
                                signed_in_agent().username)
        forget_open_incidents(current_app._get_current_object())  # type: ignore[attr-defined]
        if done.already:
            return f"{done.incident.number} was resolved already."
        return f"{done.incident.number} is resolved; {done.notices} caller(s) get a text."

    return _act(incident_id, act)


def _detail(incident_id: int, message: str = "") -> IncidentDetail:
    story = incident_story(get_session(), incident_id, current_app.extensions["ivr.directory"])
    if story is None:
        raise ApiProblem(404, "not_found", "no such incident")
    return IncidentDetail.of(story, message)


def _act(incident_id: int, action: Callable[[], str]) -> Response:
    try:
        message = action()
    except IncidentError as refused:
        get_session().rollback()
        if str(refused) == "no such incident":
            raise ApiProblem(404, "not_found", str(refused)) from None
        raise ApiProblem(400, "refused", str(refused)) from None
    return reply(_detail(incident_id, message))


def _ticket_ids(numbers: list[str]) -> list[int]:
    return [ticket_id_from_number(number) or -1 for number in numbers]
