"""The agents' console through Flask's test client: sign-in, pages, and each action with its
unhappy paths. Real PostgreSQL, Redis and the Twilio stand-in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue
from werkzeug.test import TestResponse

from callbacks.db import utcnow
from callbacks.queues import URGENT
from callbacks.tickets.ticket import Ticket, add_event, history, ticket_number
from callbacks.voicemail import Voicemail, VoicemailAudio
from callbacks.workqueue.agents import Agent, create_agent
from callbacks.workqueue.callback_requests import CallbackAsk, CallbackRequest, request_callback
from ivr.standin import StandinServer
from tests.conftest import app_config, desk_app, empty_tables, publish

PASSWORD = "correct horse battery"
AGENT_PHONE = "+4930555020"
DIRECTORY_CALLER = "+4917612345678"  # Jonas Becker, Finance, in flows/directory.csv
RANKS = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(28)


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app wired to the stand-in; times shown in Berlin."""
    with desk_app(database_url, redis_url, standin, DISPLAY_TIMEZONE="Europe/Berlin") as app:
        yield app


@pytest.fixture
def web(desk: Flask) -> FlaskClient:
    return desk.test_client()


def _agent(app: Flask, name: str = "ana", phone: str = AGENT_PHONE,
           mode: str = "preview", availability: str = "available") -> int:
    with app.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, name, PASSWORD, display_name=name.title(), phone=phone,
                             dial_mode=mode)
        agent.availability = availability
        session.commit()
        return agent.id


def _callback(app: Flask, caller: str = DIRECTORY_CALLER, *, with_ticket: bool = True,
              due_in: timedelta = timedelta(hours=1), audio: bool = False,
              category: str = "vpn") -> int:
    now = utcnow()
    with app.extensions["ivr.sessions"]() as session:
        ticket_id = None
        if with_ticket:
            voicemail_id = None
            if audio:
                voicemail = Voicemail(recording_sid="RE" + "1" * 32, call_sid="CA" + "1" * 32,
                                      recording_url="https://api.twilio.com/x", language="de")
                session.add(voicemail)
                session.flush()
                session.add(VoicemailAudio(voicemail_id=voicemail.id, data=WAV))
                voicemail_id = voicemail.id
            ticket = Ticket(call_sid=f"CA{caller[-8:]}", caller=caller, language="de",
                            category=category, priority="P2", status="new",
                            transcription="done", voicemail_id=voicemail_id,
                            transcript="Das VPN bricht alle zehn Minuten ab <script>")
            session.add(ticket)
            session.flush()
            ticket_id = ticket.id
        request = request_callback(session, CallbackAsk(
            caller=caller, category=category, language="de", priority="P2",
            reasons="menu P2; department Finance", call_sid=f"CA{caller[-8:]}",
            due_at=now + due_in, available_at=now, ticket_id=ticket_id), RANKS)
        session.commit()
        return request.id


def _row(app: Flask, model: type, ident: int):  # type: ignore[no-untyped-def]
    with app.extensions["ivr.sessions"]() as session:
        return session.get(model, ident)


def _token(page: TestResponse) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found, "the page has no CSRF token"
    return found.group(1)


def _sign_in(web: FlaskClient, username: str = "ana", password: str = PASSWORD) -> TestResponse:
    token = _token(web.get("/console/sign-in"))
    return web.post("/console/sign-in", data={"username": username, "password": password,
                                               "csrf_token": token})


def _post(web: FlaskClient, path: str, **form: str) -> TestResponse:
    """POST a console form with the session's CSRF token, as the page would."""
    token = _token(web.get("/console/"))
    return web.post(path, data={"csrf_token": token, **form})


def _flashed(web: FlaskClient, response: TestResponse) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    return web.get(response.headers["Location"]).get_data(as_text=True)


# ---- Sign-in ------------------------------------------------------------------------------


def test_every_console_route_requires_sign_in(desk: Flask, web: FlaskClient) -> None:
    request_id = _callback(desk)
    for path in ("/console/", "/console/list", f"/console/callbacks/{request_id}",
                 f"/console/callbacks/{request_id}/history", "/console/tickets/10001",
                 "/console/tickets/10001/history", "/console/tickets/10001/audio"):
        response = web.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/sign-in"), path
    token = _token(web.get("/console/sign-in"))
    for path in (f"/console/callbacks/{request_id}/call", f"/console/callbacks/{request_id}/"
                 "snooze", f"/console/callbacks/{request_id}/resolve",
                 f"/console/callbacks/{request_id}/reassign", "/console/tickets/10001/resolve",
                 "/console/availability"):
        response = web.post(path, data={"csrf_token": token, "note": "x"})
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/console/sign-in"), path
    assert _row(desk, CallbackRequest, request_id).status == "pending"


def test_sign_in_shows_the_agent_and_sign_out_ends_the_session(desk: Flask,
                                                               web: FlaskClient) -> None:
    _agent(desk)
    response = _sign_in(web, "  ANA ", PASSWORD)
    assert response.status_code == 303 and response.headers["Location"] == "/console/"
    page = web.get("/console/").get_data(as_text=True)
    assert "Signed in as Ana." in page
    assert "Ana" in page and AGENT_PHONE in page and "preview mode" in page
    assert 'data-testid="agent-availability">\n      available' in page
    assert "Times are shown in Europe/Berlin" in page
    signed_out = _post(web, "/console/sign-out")
    assert signed_out.status_code == 303
    assert web.get("/console/").status_code == 302


def test_the_sign_in_page_is_headed_sign_in(web: FlaskClient) -> None:
    page = web.get("/console/sign-in").get_data(as_text=True)
    assert "IT Service Desk · Sign in</a>" in page and "· Call list" not in page


def test_403_and_404_pages_have_the_header_and_a_way_on(desk: Flask, web: FlaskClient) -> None:
    anonymous = desk.test_client().get("/console/tickets/10999/nowhere")
    assert anonymous.status_code == 404 and anonymous.mimetype == "text/html"
    page = anonymous.get_data(as_text=True)
    assert "<h1>Not found</h1>" in page and 'href="/console/sign-in"' in page
    assert 'class="top"' in page
    _agent(desk)
    _sign_in(web)
    for url, status, title in (("/console/tickets/10999", 404, "Not found"),
                               ("/no/such/page", 404, "Not found"),
                               ("/admin/", 403, "Not allowed")):
        answer = web.get(url)
        assert answer.status_code == status, url
        page = answer.get_data(as_text=True)
        assert f"<h1>{title}</h1>" in page and "Back to the call list" in page, url
        assert 'data-testid="agent-name">Ana<' in page and "Sign out" in page, url
        assert answer.headers["Content-Security-Policy"]
    api = web.get("/api/v1/nowhere")
    assert api.status_code == 404 and api.mimetype == "application/json"  # the API keeps JSON


def test_failed_sign_in_is_generic_and_401(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    wrong_password = _sign_in(web, "ana", "not the password")
    unknown_user = _sign_in(web, "nobody", PASSWORD)
    for response in (wrong_password, unknown_user):
        assert response.status_code == 401
        assert "Unknown user name or password." in response.get_data(as_text=True)
    assert web.get("/console/").status_code == 302


def test_sign_in_goes_back_to_the_page_asked_for_but_never_off_site(desk: Flask,
                                                                    web: FlaskClient) -> None:
    _agent(desk)
    request_id = _callback(desk)
    asked = web.get(f"/console/callbacks/{request_id}").headers["Location"]
    token = _token(web.get(asked))
    response = web.post(asked, data={"username": "ana", "password": PASSWORD,
                                     "csrf_token": token})
    assert response.headers["Location"] == f"/console/callbacks/{request_id}"
    _post(web, "/console/sign-out")
    token = _token(web.get("/console/sign-in"))
    response = web.post("/console/sign-in", data={"username": "ana", "password": PASSWORD,
                                                  "csrf_token": token,
                                                  "next": "https://elsewhere.test/console"})
    assert response.headers["Location"] == "/console/"


def test_a_post_without_csrf_token_is_refused(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    request_id = _callback(desk)
    assert web.post("/console/sign-in", data={"username": "ana",
                                              "password": PASSWORD}).status_code == 400
    _sign_in(web)
    response = web.post(f"/console/callbacks/{request_id}/resolve", data={"note": "done"})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)
    assert _row(desk, CallbackRequest, request_id).status == "pending"


# ---- Pages --------------------------------------------------------------------------------


def test_call_list_shows_who_why_since_when_in_queue_order(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    later = _callback(desk, "+821012345678", with_ticket=False, due_in=timedelta(hours=3))
    first = _callback(desk, due_in=timedelta(minutes=-5))  # overdue
    _sign_in(web)
    page = web.get("/console/").get_data(as_text=True)
    assert page.index(f'id="callback-{first}"') < page.index(f'id="callback-{later}"')
    row = page[page.index(f'id="callback-{first}"'):page.index(f'id="callback-{later}"')]
    assert "Jonas Becker" in row and DIRECTORY_CALLER in row
    assert "vpn" in row and "department Finance" in row
    assert "overdue" in row and "prio-p2" in row
    assert "Das VPN bricht alle zehn Minuten ab &lt;script&gt;" in row  # autoescaped
    assert f"#{ticket_number(1)}" in row and "waiting" in row and "0 attempts" in row
    for action in ("Call", "Snooze", "Resolve", "Reassign"):
        assert f">{action}</button>" in row
    fragment = web.get("/console/list").get_data(as_text=True)
    assert "<html" not in fragment and f'id="callback-{first}"' in fragment
    assert 'data-live="/console/list"' in page


def test_callback_and_ticket_pages(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    request_id = _callback(desk, audio=True)
    _sign_in(web)
    story = web.get(f"/console/callbacks/{request_id}").get_data(as_text=True)
    assert "Jonas Becker" in story and "Not dialled yet." in story
    number = ticket_number(1)
    for path in (f"/console/tickets/{number}", "/console/tickets/1"):
        page = web.get(path).get_data(as_text=True)
        assert f"Ticket #{number}" in page
        assert f'<audio controls preload="none" src="/console/tickets/{number}/audio">' in page
    history_fragment = web.get(f"/console/tickets/{number}/history").get_data(as_text=True)
    assert "<html" not in history_fragment and "new" in history_fragment
    assert web.get("/console/callbacks/999").status_code == 404
    assert web.get("/console/callbacks/999/history").status_code == 404
    assert web.get("/console/tickets/10999").status_code == 404


def test_audio_only_for_signed_in_agents_and_never_cached(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    _callback(desk, audio=True)
    number = ticket_number(1)
    anonymous = web.get(f"/console/tickets/{number}/audio")
    assert anonymous.status_code == 302 and WAV not in anonymous.data
    _sign_in(web)
    response = web.get(f"/console/tickets/{number}/audio")
    assert response.status_code == 200 and response.data == WAV
    assert response.mimetype == "audio/wav"
    assert response.headers["Cache-Control"] == "private, no-store"
    _callback(desk, "+821012345678", category="printer")  # a ticket without a voicemail
    assert web.get(f"/console/tickets/{ticket_number(2)}/audio").status_code == 404


def test_display_zone_defaults_to_the_flow_calendar_then_utc(database_url: str,
                                                             redis_url: str) -> None:
    from ivr import create_app

    app = create_app(app_config(database_url, REDIS_URL=redis_url))
    try:
        _agent(app)
        web = app.test_client()
        _sign_in(web)
        assert "Times are shown in UTC" in web.get("/console/").get_data(as_text=True)
        publish(app)
        assert "Times are shown in Europe/Berlin" in web.get("/console/").get_data(as_text=True)
    finally:
        empty_tables(app)


# ---- Actions ------------------------------------------------------------------------------


def test_call_rings_the_agent_then_refuses_a_second_call(desk: Flask, web: FlaskClient,
                                                         standin: StandinServer) -> None:
    agent_id = _agent(desk)
    first, second = _callback(desk), _callback(desk, "+821012345678")
    _sign_in(web)
    page = _flashed(web, _post(web, f"/console/callbacks/{first}/call", next="/console/"))
    assert f"Calling your phone {AGENT_PHONE} now" in page
    assert [call.to for call in standin.calls()] == [AGENT_PHONE]
    assert _row(desk, Agent, agent_id).availability == "on_call"
    assert _row(desk, CallbackRequest, first).status == "claimed"
    assert "dialling by Ana" in web.get("/console/list").get_data(as_text=True)
    page = _flashed(web, _post(web, f"/console/callbacks/{second}/call"))
    assert "you are on a call already" in page
    assert len(standin.calls()) == 1
    assert _row(desk, CallbackRequest, second).status == "pending"
    resolve_claimed = _flashed(web, _post(web, f"/console/callbacks/{first}/resolve",
                                          note="done"))
    assert "being dialled" in resolve_claimed
    assert web.post("/console/callbacks/999/call",
                    data={"csrf_token": _token(web.get("/console/"))}).status_code == 404


def test_call_without_a_phone_number_or_a_waiting_callback(desk: Flask, web: FlaskClient,
                                                           standin: StandinServer) -> None:
    agent_id = _agent(desk, phone="")
    request_id = _callback(desk)
    _sign_in(web)
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/call"))
    assert "set the phone number you answer" in page
    with desk.extensions["ivr.sessions"]() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        agent.phone = AGENT_PHONE
        request = session.get(CallbackRequest, request_id)
        assert request is not None
        request.status = "done"
        session.commit()
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/call"))
    assert "not waiting any more" in page
    assert standin.calls() == []
    assert _row(desk, Agent, agent_id).availability == "available"


def test_snooze_reads_the_local_time_and_refuses_the_past(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    request_id = _callback(desk)
    _sign_in(web)
    berlin = ZoneInfo("Europe/Berlin")
    until = (datetime.now(berlin) + timedelta(days=1)).replace(hour=9, minute=30, second=0,
                                                               microsecond=0)
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/snooze",
                               until=until.strftime("%Y-%m-%dT%H:%M")))
    assert f"snoozed until {until:%Y-%m-%d %H:%M}" in page
    available_at = _row(desk, CallbackRequest, request_id).available_at
    assert available_at == until.astimezone(UTC)
    assert f"not before {until:%Y-%m-%d %H:%M}" in web.get("/console/list").get_data(
        as_text=True)
    events = _history(desk, 1)  # the history says what the agent typed, in the same zone
    assert events[-1] == ("snoozed", f"callback {request_id} until "
                                     f"{until:%Y-%m-%d %H:%M} {until.tzname()}")
    assert until.tzname() in ("CET", "CEST")
    past = (datetime.now(berlin) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    for bad, message in ((past, "snooze until a time in the future"),
                         ("tomorrow", "give a date and a time")):
        page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/snooze", until=bad))
        assert message in page
    assert _row(desk, CallbackRequest, request_id).available_at == available_at
    assert web.post("/console/callbacks/999/snooze", data={
        "csrf_token": _token(web.get("/console/")), "until": "2030-01-01T10:00"}
    ).status_code == 404


def _history(app: Flask, ticket_id: int) -> list[tuple[str, str]]:
    with app.extensions["ivr.sessions"]() as session:
        return [(event.kind, event.detail) for event in history(session, ticket_id)]


def _caller_text_jobs(redis_url: str) -> list[str]:
    """The queued texts to callers about ticket events, by job id ('sms-event-<id>')."""
    queue = Queue(URGENT, connection=Redis.from_url(redis_url))
    return [str(job.id) for job in queue.get_jobs()
            if job.func_name == "callbacks.tickets.caller_texts.send_caller_text"]


def _event_id(app: Flask, ticket_id: int, kind: str, detail_start: str = "") -> int:
    with app.extensions["ivr.sessions"]() as session:
        return next(event.id for event in history(session, ticket_id)
                    if event.kind == kind and event.detail.startswith(detail_start))


def test_resolve_needs_a_note_and_happens_once(desk: Flask, web: FlaskClient,
                                               redis_url: str) -> None:
    _agent(desk)
    request_id = _callback(desk)
    _sign_in(web)
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/resolve", note="  "))
    assert "write a short note for the caller" in page
    assert _row(desk, CallbackRequest, request_id).status == "pending"
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/resolve",
                               note="VPN profile renewed", next="/console/"))
    assert f"Callback {request_id} resolved" in page
    assert f'id="callback-{request_id}"' not in page  # off the list
    assert _row(desk, CallbackRequest, request_id).status == "done"
    assert _row(desk, Ticket, 1).status == "resolved"
    assert ("status", "new -> resolved: VPN profile renewed") in _history(desk, 1)
    assert _caller_text_jobs(redis_url) == [f"sms-event-{_event_id(desk, 1, 'status')}"]
    again = _flashed(web, _post(web, f"/console/callbacks/{request_id}/resolve", note="again"))
    assert f"ticket {ticket_number(1)} is resolved already" in again
    on_ticket = _flashed(web, _post(web, f"/console/tickets/{ticket_number(1)}/resolve",
                                    note="again"))
    assert "is resolved already" in on_ticket
    assert len(_caller_text_jobs(redis_url)) == 1
    assert web.post("/console/callbacks/999/resolve", data={
        "csrf_token": _token(web.get("/console/")), "note": "x"}).status_code == 404
    assert web.post("/console/tickets/10999/resolve", data={
        "csrf_token": _token(web.get("/console/")), "note": "x"}).status_code == 404


def test_a_text_that_could_not_be_sent_is_shown_where_agents_look(
        desk: Flask, web: FlaskClient, redis_url: str, standin: StandinServer) -> None:
    from rq import SimpleWorker

    _agent(desk)
    request_id = _callback(desk)
    waiting = _callback(desk, "+4915112340000", category="hardware")
    _sign_in(web)
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/resolve",
                               note="VPN profile renewed"))
    assert f"Callback {request_id} resolved; the caller gets a text with your note." in page
    standin.inject_fault(r"/Messages\.json$", 400, times=5)  # Twilio refuses the text
    SimpleWorker([Queue(URGENT, connection=Redis.from_url(redis_url))],
                 connection=Redis.from_url(redis_url)).work(burst=True)
    assert standin.messages() == []

    for url in (f"/console/tickets/{ticket_number(1)}", f"/console/callbacks/{request_id}"):
        page = web.get(url).get_data(as_text=True)
        assert 'data-testid="text-failed"' in page and "The caller did not get a text." in page
        assert "resolved: sending an SMS: Twilio answered HTTP 400, error 20400" in page
        assert "IVR_" not in page  # no settings or commands for agents
    # The open callback whose ticket number text failed carries a badge in the call list.
    with desk.extensions["ivr.sessions"]() as session:
        ticket = session.get(Ticket, _row(desk, CallbackRequest, waiting).ticket_id)
        assert ticket is not None
        add_event(session, ticket, "sms_failed", "ticket number: Twilio refused it")
        session.commit()
    row = re.search(rf'<tr id="callback-{waiting}".*?</tr>',
                    web.get("/console/").get_data(as_text=True), re.S)
    assert row is not None and "text not sent" in row.group(0)
    with desk.extensions["ivr.sessions"]() as session:  # a later text makes up for it
        ticket = session.get(Ticket, _row(desk, CallbackRequest, waiting).ticket_id)
        assert ticket is not None
        add_event(session, ticket, "sms_sent", "ticket number sent (de)")
        session.commit()
    assert "text not sent" not in web.get("/console/").get_data(as_text=True)


def test_without_a_sender_the_resolve_says_no_text_goes_out(database_url: str, redis_url: str,
                                                            standin: StandinServer) -> None:
    with desk_app(database_url, redis_url, standin, SMS_FROM="") as app:
        web = app.test_client()
        _agent(app)
        request_id = _callback(app)
        _sign_in(web)
        page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/resolve",
                                   note="VPN profile renewed"))
        assert "the caller gets a text" not in page
        assert ("No text goes to the caller: the line has no number to send texts from (an "
                "admin has to set one up). Tell them another way.") in page
        # The resolved callback's page offers no second resolve.
        assert "Resolve the callback" not in web.get(
            f"/console/callbacks/{request_id}").get_data(as_text=True)


def test_resolving_a_callback_without_ticket_opens_one_for_the_note(
        desk: Flask, web: FlaskClient, redis_url: str) -> None:
    _agent(desk)
    request_id = _callback(desk, with_ticket=False)
    _sign_in(web)
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/resolve",
                               note="password reset"))
    assert f"Callback {request_id} resolved" in page
    request = _row(desk, CallbackRequest, request_id)
    assert request.status == "done" and request.ticket_id is not None
    assert _history(desk, request.ticket_id)[1:] == [("status", "new -> resolved: password reset")]
    assert _caller_text_jobs(redis_url) == [
        f"sms-event-{_event_id(desk, request.ticket_id, 'status')}"]


def test_resolve_a_ticket_from_its_page(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    request_id = _callback(desk)
    _sign_in(web)
    page = _flashed(web, _post(web, f"/console/tickets/{ticket_number(1)}/resolve",
                               note="fixed on site"))
    assert f"Ticket {ticket_number(1)} resolved" in page
    assert 'data-kind="status"' in page and "fixed on site" in page
    assert _row(desk, CallbackRequest, request_id).status == "done"


def test_reassign_to_an_agent_and_back_to_anyone(desk: Flask, web: FlaskClient) -> None:
    _agent(desk)
    ben = _agent(desk, "ben", phone="+4930555021", mode="progressive", availability="away")
    request_id = _callback(desk)
    _sign_in(web)
    for bad in ("999", "ben"):
        page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/reassign",
                                   agent_id=bad))
        assert "no such agent" in page
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/reassign",
                               agent_id=str(ben), next="/console/"))
    assert f"Callback {request_id} reassigned." in page and "reserved for Ben" in page
    assert _row(desk, CallbackRequest, request_id).assigned_agent_id == ben
    ben_web = desk.test_client()
    _sign_in(ben_web, "ben")
    page = _flashed(ben_web, _post(ben_web, f"/console/callbacks/{request_id}/reassign",
                                   agent_id=""))
    assert "open to every agent again" in page
    assert _row(desk, CallbackRequest, request_id).assigned_agent_id is None
    _post(web, f"/console/callbacks/{request_id}/resolve", note="done")
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/reassign",
                               agent_id=str(ben)))
    assert "this callback is closed" in page
    assert web.post("/console/callbacks/999/reassign", data={
        "csrf_token": _token(web.get("/console/")), "agent_id": ""}).status_code == 404


def test_a_callback_reserved_for_a_colleague_cannot_be_called_or_taken(
        desk: Flask, web: FlaskClient, standin: StandinServer) -> None:
    ana = _agent(desk)
    ben = _agent(desk, "ben", phone="+4930555021")
    request_id = _callback(desk)
    ben_web = desk.test_client()
    _sign_in(ben_web, "ben")
    _post(ben_web, f"/console/callbacks/{request_id}/reassign", agent_id=str(ben))
    _sign_in(web)
    page = web.get(f"/console/callbacks/{request_id}").get_data(as_text=True)
    assert "Reserved for Ben; ask them or an admin to reassign it." in page
    assert 'aria-label="Call' not in page and "Reassign to" not in page
    # Forms from an older page (or forged) are refused by the desk, not just hidden.
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/call"))
    assert "this callback is reserved for Ben; ask them or an admin to reassign it" in page
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/reassign",
                               agent_id=str(ana)))
    assert "this callback is reserved for Ben; only they or an admin can reassign it" in page
    assert standin.calls() == []
    request = _row(desk, CallbackRequest, request_id)
    assert (request.status, request.assigned_agent_id) == ("pending", ben)
    assert _row(desk, Agent, ana).availability == "available"
    # Ben sees his own reservation with the usual buttons.
    assert 'aria-label="Call' in ben_web.get(f"/console/callbacks/{request_id}").get_data(
        as_text=True)


def test_availability(desk: Flask, web: FlaskClient) -> None:
    agent_id = _agent(desk, availability="away")
    _sign_in(web)
    page = _flashed(web, _post(web, "/console/availability", availability="available"))
    assert "You are now available." in page
    assert _row(desk, Agent, agent_id).availability == "available"
    for state, message in (("on_call", "set by the dialer"), ("asleep", "availability is one of")):
        page = _flashed(web, _post(web, "/console/availability", availability=state))
        assert message in page
    assert _row(desk, Agent, agent_id).availability == "available"
    with desk.extensions["ivr.sessions"]() as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        agent.availability = "on_call"
        session.commit()
    page = _flashed(web, _post(web, "/console/availability", availability="away"))
    assert "you are on a call" in page


def test_twilio_refusing_the_call_is_a_flash_not_a_500(desk: Flask, web: FlaskClient,
                                                       standin: StandinServer) -> None:
    agent_id = _agent(desk)
    request_id = _callback(desk)
    _sign_in(web)
    standin.inject_fault(r"/Calls\.json$", 400, times=1)
    page = _flashed(web, _post(web, f"/console/callbacks/{request_id}/call"))
    assert "the call could not be placed" in page and "stays in the list" in page
    assert _row(desk, Agent, agent_id).availability == "available"
    assert _row(desk, CallbackRequest, request_id).status == "pending"
