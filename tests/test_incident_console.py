"""Incidents in the console and the JSON API (Flask test client, PostgreSQL, Redis, a worker,
the Twilio stand-in): the inbox's suggestion and "Group into incident", the incident page's
affected list and actions with their flashes, linking from a ticket page, CSRF, and the API's
list, open, link, unlink, announcement, resolve and read."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import select

from callbacks.incidents.incident import Incident, IncidentNotice
from callbacks.queues import QUEUES
from callbacks.workqueue.agents import create_agent
from ivr.standin import StandinServer
from tests.conftest import desk_app
from tests.test_incidents import KATRIN, OLGA, PIOTR, _callback, _ticket
from tests.test_ticket_actions import PASSWORD, _bearer, _signed_in, _token


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    with desk_app(database_url, redis_url, standin) as app:
        with app.extensions["ivr.sessions"]() as session:
            create_agent(session, "ann", PASSWORD, display_name="Ann")
            create_agent(session, "root", PASSWORD, display_name="Root", role="admin")
            session.commit()
        yield app


def _post(web: FlaskClient, page: str, path: str, **form: str | list[str]) -> str:
    """Post a form of `page` as the browser would; the text of the page it goes back to."""
    answer = web.post(path, data={"csrf_token": _token(web.get(page)), **form})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return web.get(answer.headers["Location"]).get_data(as_text=True)


def _incidents(app: Flask) -> list[Incident]:
    with app.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def _flashes(html: str) -> list[str]:
    return [unescape(text) for text in re.findall(r'<li class="flash flash-\w+">([^<]*)</li>',
                                                  html)]


def test_the_inbox_suggests_an_incident_and_one_click_opens_it(desk: Flask) -> None:
    web = _signed_in(desk)
    for _ in range(3):
        _ticket(desk, PIOTR, "outage")
    inbox = web.get("/console/tickets/").get_data(as_text=True)
    assert ("3 outage tickets in the last 15 minutes, none in an open incident: open an "
            "incident?") in inbox
    page = _post(web, "/console/tickets/", "/console/incidents/suggested", category="outage")
    assert _flashes(page) == ["Incident INC-10001 is open with 3 ticket(s)."]
    assert "Problem with one of our services" in page and "#10003" in page
    assert "3 outage tickets" not in web.get("/console/tickets/").get_data(as_text=True)
    stale = _post(web, "/console/incidents/", "/console/incidents/suggested", category="outage")
    assert _flashes(stale) == ["There is no suggestion for outage any more."]


def test_selected_inbox_tickets_are_grouped_into_a_new_or_an_open_incident(desk: Flask) -> None:
    web = _signed_in(desk)
    first, second, third = (_ticket(desk, n) for n in (KATRIN, OLGA, PIOTR))
    page = _post(web, "/console/tickets/", "/console/incidents/group", incident="new",
                 title="VPN down", category="network", ticket=["10001", "10002"],
                 next="/console/tickets/")
    assert _flashes(page) == ["Incident INC-10001 is open with 2 ticket(s)."]
    assert "Katrin Schäfer" in page and OLGA in page  # the directory name, the number
    inbox = web.get("/console/tickets/").get_data(as_text=True)
    assert 'value="1">INC-10001 VPN down</option>' in inbox
    assert 'form="group-form"' in inbox and 'data-testid="group-into-incident"' in inbox
    page = _post(web, "/console/tickets/", "/console/incidents/group", incident="1",
                 ticket=["10002", "10003"])
    assert _flashes(page) == ["Linked 1 ticket(s) and 0 callback(s)."]
    nothing = web.post("/console/incidents/group", data={
        "csrf_token": _token(web.get("/console/tickets/")), "incident": "new", "title": "x"})
    assert nothing.status_code == 303 and nothing.headers["Location"] == "/console/tickets/"
    bad = _post(web, "/console/tickets/", "/console/incidents/group", incident="new",
                title="", ticket=["10001"])
    assert _flashes(bad) == ["an incident needs a title, e.g. 'VPN down in Berlin'"]
    assert len(_incidents(desk)) == 1
    assert (first, second, third) == (1, 2, 3)


def test_the_incident_page_links_unlinks_announces_and_resolves(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    web = _signed_in(desk)
    _ticket(desk, KATRIN)
    _ticket(desk, OLGA)
    callback = _callback(desk, PIOTR)
    _post(web, "/console/incidents/", "/console/incidents/", title="VPN down",
          category="network")
    page_url = "/console/incidents/1"
    page = _post(web, page_url, "/console/incidents/1/link", tickets="10001, #10002",
                 callbacks=str(callback))
    assert _flashes(page) == ["Linked 2 ticket(s) and 1 callback(s)."]
    assert "2 linked ticket(s)" in page and "1 linked callback(s)" in page
    page = _post(web, page_url, "/console/incidents/1/unlink", ticket="10002")
    assert _flashes(page) == ["Unlinked 1 ticket(s) and 0 callback(s)."]
    page = _post(web, page_url, "/console/incidents/1/link", tickets="99999")
    assert _flashes(page) == ["a selected ticket does not exist (any more)"]
    page = _post(web, page_url, "/console/incidents/1/announce", announcement_de="Das VPN.")
    assert _flashes(page) == ["Callers no longer hear about INC-10001 in the menu."]
    assert _incidents(desk)[0].announcement == {"de": "Das VPN."}
    assert not _incidents(desk)[0].announce
    page = _post(web, page_url, "/console/incidents/1/resolve", note="Fixed at 10:40.")
    assert _flashes(page) == ["INC-10001 is resolved; 2 caller(s) get a text (once each)."]
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)
    page = web.get(page_url).get_data(as_text=True)
    assert 'data-testid="notice-counts">2 sent</p>' in page
    assert sorted(m.to for m in standin.messages()) == sorted([KATRIN, PIOTR])
    again = _post(web, "/console/incidents/", "/console/incidents/1/resolve", note="x")
    assert _flashes(again) == ["INC-10001 was resolved already; nobody is texted again."]
    assert "Resolve and text" not in again  # no more actions on a resolved incident
    assert web.get("/console/incidents/999").status_code == 404


def test_a_ticket_page_links_its_ticket_to_an_open_incident(desk: Flask) -> None:
    web = _signed_in(desk)
    _ticket(desk, KATRIN)
    plain = web.get("/console/tickets/10001").get_data(as_text=True)
    assert 'data-testid="ticket-incidents">none' in plain and "Link to incident" not in plain
    _post(web, "/console/incidents/", "/console/incidents/", title="VPN down",
          category="network")
    page = _post(web, "/console/tickets/10001", "/console/tickets/10001/incident", incident="1")
    assert _flashes(page) == ["The ticket is linked to the incident."]
    assert "INC-10001</a> VPN down (open)" in page
    again = _post(web, "/console/tickets/10001", "/console/tickets/10001/incident",
                  incident="1")
    assert _flashes(again) == ["The ticket was linked to that incident already."]
    admin = _signed_in(desk, "root")  # admins do the same
    page = _post(admin, "/console/incidents/1", "/console/incidents/1/unlink", ticket="10001")
    assert _flashes(page) == ["Unlinked 1 ticket(s) and 0 callback(s)."]


def test_incident_forms_without_the_csrf_token_change_nothing(desk: Flask) -> None:
    web = _signed_in(desk)
    _ticket(desk, KATRIN)
    for path, form in (("/console/incidents/", {"title": "x", "category": "network"}),
                       ("/console/incidents/group", {"incident": "new", "title": "x",
                                                     "ticket": "10001"})):
        assert web.post(path, data=form).status_code == 400
    assert _incidents(desk) == []
    anonymous = desk.test_client()
    assert anonymous.get("/console/incidents/").status_code == 302


def test_the_api_opens_links_announces_resolves_and_reads_an_incident(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    api, headers = desk.test_client(), _bearer(desk)
    _ticket(desk, KATRIN)
    _ticket(desk, OLGA)
    callback = _callback(desk, PIOTR)

    def call(method: str, path: str, body: object = None) -> tuple[int, dict[str, object]]:
        answer = api.open(f"/api/v1{path}", method=method, headers=headers,
                          data=None if body is None else json.dumps(body),
                          content_type="application/json")
        return answer.status_code, answer.get_json()

    status, made = call("POST", "/incidents", {"title": "VPN down", "category": "network",
                                               "tickets": ["10001"]})
    assert status == 201 and made["message"] == "Incident INC-10001 is open."
    assert [t["number"] for t in made["tickets"]] == ["10001"]  # type: ignore[index]
    status, linked = call("POST", "/incidents/1/link", {"tickets": ["10002"],
                                                        "callbacks": [callback]})
    assert status == 200 and linked["message"] == "Linked 1 ticket(s) and 1 callback(s)."
    status, refused = call("POST", "/incidents/1/link", {"tickets": ["99999"]})
    assert status == 400 and "does not exist" in str(refused["message"])
    status, _ = call("POST", "/incidents/1/unlink", {"tickets": ["10002"]})
    assert status == 200
    status, announced = call("POST", "/incidents/1/announcement",
                             {"announce": True, "texts": {"en": "The VPN is down."}})
    assert status == 200 and announced["incident"]["announcement"] == {  # type: ignore[index]
        "en": "The VPN is down."}
    status, _ = call("POST", "/incidents/1/announcement", {"announce": True,
                                                           "texts": {"English": "x"}})
    assert status == 400
    status, listed = call("GET", "/incidents")
    assert status == 200 and listed["incidents"][0]["tickets"] == 1  # type: ignore[index]
    status, done = call("POST", "/incidents/1/resolve", {"note": "Fixed."})
    assert status == 200 and done["message"] == "INC-10001 is resolved; 2 caller(s) get a text."
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)
    status, read = call("GET", "/incidents/1")
    assert status == 200 and read["incident"]["status"] == "resolved"  # type: ignore[index]
    assert sorted(n["phone"] for n in read["notices"]) == sorted([KATRIN, PIOTR])  # type: ignore
    assert {n["status"] for n in read["notices"]} == {"sent"}  # type: ignore[union-attr]
    assert call("GET", "/incidents/77")[0] == 404
    assert call("POST", "/incidents/77/resolve", {})[0] == 404
    assert len(standin.messages()) == 2
    with desk.extensions["ivr.sessions"]() as session:
        assert len(session.scalars(select(IncidentNotice)).all()) == 2


def test_the_openapi_document_lists_the_incident_routes(desk: Flask) -> None:
    spec = desk.test_client().get("/api/v1/openapi.json").get_json()
    for path in ("/api/v1/incidents", "/api/v1/incidents/{incident_id}",
                 "/api/v1/incidents/{incident_id}/link", "/api/v1/incidents/{incident_id}/unlink",
                 "/api/v1/incidents/{incident_id}/announcement",
                 "/api/v1/incidents/{incident_id}/resolve"):
        assert path in spec["paths"], path
    assert "IncidentDetail" in spec["components"]["schemas"]
