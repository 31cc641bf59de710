"""The dialer: agent first, whisper, bridge; retries with backoff, unreachable with an SMS;
agents who do not answer put the callback back. Real PostgreSQL, Redis, rq and the stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select, update

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.queues import QUEUES, URGENT
from callbacks.tickets.ticket import Ticket, history
from callbacks.workqueue.agents import Agent, create_agent
from callbacks.workqueue.attempts import CallbackAttempt
from callbacks.workqueue.callback_requests import CallbackAsk, CallbackRequest, request_callback
from callbacks.workqueue.dialer import retry_delay
from callbacks.workqueue.router import route_agent, route_sweep
from callbacks.workqueue.skills import set_skills
from ivr.simulator.outbound import CallerBehaviour, play_outbound_call
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, LINE, PUBLIC_BASE_URL, desk_app, sign
from tests.voicemail_helpers import MOBILE_CALLER

AGENT_PHONE = "+4930555010"
RANKS = {"P1": 0, "P2": 1, "P3": 2, "P4": 3}


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app wired to the stand-in, with retries after 10, 30 and 120 minutes, 3 attempts."""
    with desk_app(database_url, redis_url, standin, CALLBACK_MAX_ATTEMPTS=3,
                  CALLBACK_RETRY_MINUTES="10,30,120") as app:
        yield app


def _agent(app: Flask, name: str = "ana", availability: str = "available",
           mode: str = "progressive", phone: str = AGENT_PHONE) -> int:
    """An agent who speaks Korean, the language of the callers below."""
    with app.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, name, "correct horse battery", phone=phone,
                             dial_mode=mode, display_name=name.title())
        agent.availability = availability
        set_skills(session, agent.id, languages={"ko": 2})
        session.commit()
        return agent.id


def dial_next(agent_id: int | None = None) -> dict[str, object]:
    """Route one agent (the free progressive agent idle longest when none is given), as the
    router's job does when that agent becomes free; what it dialled."""
    if agent_id is None:
        with runtime.sessions()() as session:
            agent_id = session.scalar(
                select(Agent.id).where(Agent.availability == "available",
                                       Agent.dial_mode == "progressive")
                .order_by(Agent.availability_since, Agent.id).limit(1))
        if agent_id is None:
            return {"dialled": None}
    result = route_agent(agent_id)
    return {"dialled": result.get("id"), "agent": agent_id, "attempt": result.get("attempt"),
            "stage": result.get("stage")}


def _request(app: Flask, caller: str = MOBILE_CALLER, priority: str = "P2",
             available_in: timedelta = timedelta(0), with_ticket: bool = True) -> int:
    now = utcnow()
    with app.extensions["ivr.sessions"]() as session:
        ticket_id = None
        if with_ticket:
            ticket = Ticket(call_sid=f"CA{caller[-8:]}", caller=caller, language="ko",
                            category="vpn", priority=priority, status="new",
                            transcription="done", transcript="VPN drops every ten minutes")
            session.add(ticket)
            session.flush()
            ticket_id = ticket.id
        request = request_callback(session, CallbackAsk(
            caller=caller, category="vpn", language="ko", priority=priority, reasons="menu",
            call_sid=f"CA{caller[-8:]}", due_at=now + timedelta(hours=1),
            available_at=now + available_in, ticket_id=ticket_id), RANKS)
        session.commit()
        return request.id


def _post_through(client: FlaskClient):  # type: ignore[no-untyped-def]
    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        response = client.post(url.removeprefix(PUBLIC_BASE_URL), data=params, headers=headers)
        return response.status_code, response.get_data(as_text=True)
    return post


def _row(app: Flask, model: type, ident: int):  # type: ignore[no-untyped-def]
    with app.extensions["ivr.sessions"]() as session:
        return session.get(model, ident)


def _attempts(app: Flask) -> list[CallbackAttempt]:
    with app.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(CallbackAttempt).order_by(CallbackAttempt.id)))


def _make_due(app: Flask, request_id: int) -> None:
    with app.extensions["ivr.sessions"]() as session:
        session.execute(update(CallbackRequest).where(CallbackRequest.id == request_id)
                        .values(available_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def _queued(redis_url: str, name: str) -> list[str]:
    queue = Queue(URGENT, connection=Redis.from_url(redis_url))
    return [str(job.func_name) for job in queue.get_jobs()
            if str(job.func_name).endswith(name)]


def test_agent_is_rung_first_then_whispered_and_bridged(desk: Flask,
                                                       standin: StandinServer) -> None:
    agent_id = _agent(desk)
    request_id = _request(desk)

    result = dial_next()

    assert result["dialled"] == request_id and result["agent"] == agent_id
    [call] = standin.calls()
    assert call.to == AGENT_PHONE and call.from_ == LINE
    assert call.url == f"{PUBLIC_BASE_URL}/dialer/agent?attempt={result['attempt']}"
    heard = play_outbound_call(call, AUTH_TOKEN, caller="completed", talk_seconds=95,
                               post=_post_through(desk.test_client()))
    whisper = heard.heard[0]
    assert "about vpn" in whisper and "priority P2" in whisper and "attempt 1 of 3" in whisper
    assert "Ticket 1 0 0 0 1" in whisper
    assert heard.dialled == [MOBILE_CALLER]
    assert heard.statuses == [200, 200, 204]
    request = _row(desk, CallbackRequest, request_id)
    assert request.status == "done" and request.closed_at is not None
    [attempt] = _attempts(desk)
    assert attempt.stage == "completed" and attempt.talk_seconds == 95
    assert _row(desk, Agent, agent_id).availability == "wrap_up"
    with desk.extensions["ivr.sessions"]() as session:
        assert "called_back" in [event.kind for event in history(session, request.ticket_id)]


def test_whisper_names_a_directory_caller_and_the_wait(desk: Flask,
                                                       standin: StandinServer) -> None:
    _agent(desk)
    employee = next(iter(runtime.directory()))
    request_id = _request(desk, caller=employee.number, with_ticket=False)
    with desk.extensions["ivr.sessions"]() as session:
        session.execute(update(CallbackRequest).where(CallbackRequest.id == request_id).values(
            first_contact_at=utcnow() - timedelta(minutes=42)))
        session.commit()
    dial_next()
    heard = play_outbound_call(standin.calls()[0], AUTH_TOKEN,
                               post=_post_through(desk.test_client()))
    assert employee.name in heard.heard[0] and "Waiting 42 minutes" in heard.heard[0]


def test_caller_missing_retries_with_backoff_then_unreachable_with_sms(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    agent_id = _agent(desk)
    request_id = _request(desk)
    post = _post_through(desk.test_client())
    settings = runtime.settings()
    waits = []
    behaviours: tuple[CallerBehaviour, ...] = ("no-answer", "busy", "failed")
    for attempt, behaviour in enumerate(behaviours, start=1):
        before = utcnow()
        assert dial_next()["dialled"] == request_id
        heard = play_outbound_call(standin.calls()[-1], AUTH_TOKEN, caller=behaviour, post=post)
        request = _row(desk, CallbackRequest, request_id)
        assert request.attempts == attempt
        if attempt < 3:
            assert request.status == "pending"
            waits.append(request.available_at - before)
            assert "next attempt" in heard.heard[-1]
            # not dialled again before the backoff is over
            assert dial_next(agent_id)["dialled"] is None
            _make_due(desk, request_id)
        else:
            assert request.status == "unreachable"
            assert "last attempt" in heard.heard[-1]
        assert _row(desk, Agent, agent_id).availability == "available"
    assert [round(w.total_seconds() / 60) for w in waits] == [10, 30]
    assert retry_delay(settings, 1) == timedelta(minutes=10)
    assert retry_delay(settings, 9) == timedelta(minutes=120)
    assert [a.stage for a in _attempts(desk)] == ["caller_no_answer", "caller_busy",
                                                 "caller_failed"]

    # The unreachable SMS goes out once, through a real rq worker; the ticket waits for the
    # caller, without a second text about that.
    assert _queued(redis_url, "send_caller_text") == [
        "callbacks.tickets.caller_texts.send_caller_text"]
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)
    [sms] = [m for m in standin.messages() if "3" in m.body]
    assert sms.to == MOBILE_CALLER and "10001" in sms.body and "could not reach" in sms.body
    assert len(standin.messages()) == 1
    ticket = _row(desk, Ticket, request.ticket_id)
    assert ticket.status == "waiting_for_caller"
    with desk.extensions["ivr.sessions"]() as session:
        events = history(session, ticket.id)
    kinds = [event.kind for event in events]
    assert kinds.count("callback_retry") == 2 and "unreachable" in kinds and "sms_sent" in kinds
    assert ("status", "new -> waiting_for_caller: the callback could not reach the caller") in [
        (event.kind, event.detail) for event in events]


def test_the_next_try_is_told_in_the_display_zone_in_history_and_whisper(
        database_url: str, redis_url: str, standin: StandinServer) -> None:
    with desk_app(database_url, redis_url, standin, DISPLAY_TIMEZONE="America/New_York",
                  CALLBACK_RETRY_MINUTES="10") as app:
        _agent(app)
        request_id = _request(app)
        assert dial_next()["dialled"] == request_id
        heard = play_outbound_call(standin.calls()[-1], AUTH_TOKEN, caller="no-answer",
                                   post=_post_through(app.test_client()))
        next_try = _row(app, CallbackRequest, request_id).available_at.astimezone(
            ZoneInfo("America/New_York"))
        assert heard.heard[-1] == ("The caller did not answer. The next attempt is at "
                                   f"{next_try:%H:%M}.")
        with app.extensions["ivr.sessions"]() as session:
            [retry] = [event for event in history(session, 1) if event.kind == "callback_retry"]
        assert retry.detail == ("attempt 1 caller no answer; next try "
                                f"{next_try:%Y-%m-%d %H:%M} {next_try.tzname()}")
        assert next_try.tzname() in ("EST", "EDT")


@pytest.mark.parametrize(("behaviour", "agent_state", "outcome"), [
    ("no-answer", "away", "agent_no_answer"),
    ("busy", "away", "agent_busy"),
    ("hangup", "wrap_up", "agent_hung_up"),
])
def test_agent_who_does_not_take_the_call_puts_it_back(
        desk: Flask, standin: StandinServer, behaviour: str, agent_state: str,
        outcome: str) -> None:
    agent_id = _agent(desk)
    request_id = _request(desk)
    dial_next()
    play_outbound_call(standin.calls()[0], AUTH_TOKEN, agent=behaviour,  # type: ignore[arg-type]
                       post=_post_through(desk.test_client()))
    request = _row(desk, CallbackRequest, request_id)
    assert request.status == "pending" and request.attempts == 0  # not the caller's fault
    assert request.available_at <= utcnow()
    assert [a.stage for a in _attempts(desk)] == [outcome]
    assert _row(desk, Agent, agent_id).availability == agent_state
    other = _agent(desk, "ben", phone="+4930555011")
    assert dial_next()["dialled"] == request_id and dial_next()["dialled"] is None
    assert standin.calls()[-1].to == "+4930555011" and other


def test_repeated_webhooks_change_nothing_twice(desk: Flask, standin: StandinServer) -> None:
    agent_id = _agent(desk)
    request_id = _request(desk)
    dial_next()
    call = standin.calls()[0]
    post = _post_through(desk.test_client())
    play_outbound_call(call, AUTH_TOKEN, caller="no-answer", post=post)
    state = _row(desk, CallbackRequest, request_id)
    # Twilio retries every webhook of that call.
    again = play_outbound_call(call, AUTH_TOKEN, caller="completed", post=post)
    assert "already been handled" in again.heard[0]
    after = _row(desk, CallbackRequest, request_id)
    assert (after.status, after.attempts, after.available_at) == (
        state.status, state.attempts, state.available_at)
    assert len(_attempts(desk)) == 1
    assert _row(desk, Agent, agent_id).availability == "available"


def test_forged_or_missing_signature_is_refused(desk: Flask) -> None:
    client = desk.test_client()
    _agent(desk)
    request_id = _request(desk)
    result = dial_next()
    params = {"CallSid": "CA1", "CallStatus": "no-answer"}
    path = f"/dialer/agent-status?attempt={result['attempt']}"
    assert client.post(path, data=params).status_code == 403
    forged = sign(PUBLIC_BASE_URL + path, params, token="not-the-token")
    assert client.post(path, data=params,
                       headers={"X-Twilio-Signature": forged}).status_code == 403
    assert _row(desk, CallbackRequest, request_id).status == "claimed"
    signed = sign(PUBLIC_BASE_URL + "/dialer/agent-status", params)
    assert client.post("/dialer/agent-status", data=params,
                       headers={"X-Twilio-Signature": signed}).status_code == 400


def test_twilio_refusing_the_call_puts_the_request_back(desk: Flask,
                                                        standin: StandinServer) -> None:
    agent_id = _agent(desk)
    request_id = _request(desk)
    standin.inject_fault(r"/Calls\.json$", 400, times=1)
    result = dial_next()
    assert result["stage"] == "dial_error"
    request = _row(desk, CallbackRequest, request_id)
    assert request.status == "pending" and request.attempts == 0
    assert request.available_at > utcnow()
    assert _row(desk, Agent, agent_id).availability == "available"


def test_windowed_request_is_not_dialled_early(desk: Flask, standin: StandinServer) -> None:
    _agent(desk)
    request_id = _request(desk, available_in=timedelta(hours=2))
    assert dial_next()["dialled"] is None
    assert standin.calls() == []
    _make_due(desk, request_id)
    assert dial_next()["dialled"] == request_id


def test_reassigned_request_waits_for_its_agent(desk: Flask, standin: StandinServer) -> None:
    ana = _agent(desk, "ana")
    ben = _agent(desk, "ben", availability="away", phone="+4930555011")
    request_id = _request(desk)
    with desk.extensions["ivr.sessions"]() as session:
        session.execute(update(CallbackRequest).where(CallbackRequest.id == request_id)
                        .values(assigned_agent_id=ben))
        session.commit()
    assert dial_next()["dialled"] is None  # ana is free but it is ben's
    assert _row(desk, Agent, ana).availability == "available"
    with desk.extensions["ivr.sessions"]() as session:
        session.execute(update(Agent).where(Agent.id == ben).values(availability="available"))
        session.commit()
    assert dial_next(ben)["dialled"] == request_id


def test_preview_agents_are_not_dialled_by_the_sweep(desk: Flask,
                                                     standin: StandinServer) -> None:
    _agent(desk, "ana", mode="preview")
    _request(desk)
    assert route_sweep()["callbacks"] == []
    _agent(desk, "ben", phone="+4930555011")
    _request(desk, caller="+821098765432")
    dialled = route_sweep()["callbacks"]
    assert isinstance(dialled, list) and len(dialled) == 1  # one progressive agent


def test_reconciler_puts_back_a_claim_whose_dialer_died(desk: Flask, redis_url: str) -> None:
    from callbacks.reconciler import reconcile
    from callbacks.workqueue.callback_requests import claim_next_callback

    request_id = _request(desk)
    with desk.extensions["ivr.sessions"]() as session:
        claimed = claim_next_callback(session, "agent:gone")  # then the dialer was killed
    assert claimed is not None and claimed.id == request_id
    connection = Redis.from_url(redis_url)
    with desk.extensions["ivr.sessions"]() as session:
        assert reconcile(session, connection).callbacks_put_back == []  # still in grace
        report = reconcile(session, connection, grace=timedelta(seconds=-1))
    assert report.callbacks_put_back == [request_id]
    request = _row(desk, CallbackRequest, request_id)
    assert (request.status, request.attempts) == ("pending", 0)


def test_reconciler_ends_attempts_twilio_never_reported(desk: Flask,
                                                       standin: StandinServer) -> None:
    from callbacks.reconciler import release_stuck_callbacks

    agent_id = _agent(desk)
    request_id = _request(desk)
    dial_next()
    with desk.extensions["ivr.sessions"]() as session:
        assert release_stuck_callbacks(session, utcnow()) == []  # the call is live
        assert release_stuck_callbacks(session, utcnow(),
                                       longest_call=timedelta(seconds=-1)) == [request_id]
    assert _row(desk, CallbackRequest, request_id).status == "pending"
    assert [a.stage for a in _attempts(desk)] == ["abandoned"]
    assert _row(desk, Agent, agent_id).availability == "available"


def test_follow_up_sms_lost_with_redis_is_queued_again(desk: Flask, standin: StandinServer,
                                                      redis_url: str) -> None:
    from callbacks.reconciler import reconcile

    _agent(desk)
    request_id = _request(desk)
    settings = runtime.settings()
    for _ in range(settings.callback_max_attempts):
        dial_next()
        play_outbound_call(standin.calls()[-1], AUTH_TOKEN, caller="busy",
                           post=_post_through(desk.test_client()))
        _make_due(desk, request_id)
    connection = Redis.from_url(redis_url)
    connection.flushdb()  # Redis restarted before a worker sent the text
    with desk.extensions["ivr.sessions"]() as session:
        report = reconcile(session, connection, grace=timedelta(seconds=-1))
        ticket_id = _row(desk, CallbackRequest, request_id).ticket_id
        [unreachable] = [event.id for event in history(session, ticket_id)
                         if event.kind == "unreachable"]
        assert report.caller_texts_requeued == [unreachable]
    SimpleWorker(list(QUEUES), connection=connection).work(burst=True)
    assert len([m for m in standin.messages() if "could not reach" in m.body]) == 1
    with desk.extensions["ivr.sessions"]() as session:
        again = reconcile(session, connection, grace=timedelta(seconds=-1))
    assert again.caller_texts_requeued == []  # sent now: nothing twice


def test_reconciler_ends_a_wrap_up_whose_end_job_redis_lost(desk: Flask, standin: StandinServer,
                                                            redis_url: str) -> None:
    from callbacks.reconciler import reconcile

    agent_id = _agent(desk)
    first, second = _request(desk), _request(desk, caller="+821098765432")
    dial_next()
    play_outbound_call(standin.calls()[-1], AUTH_TOKEN, post=_post_through(desk.test_client()))
    assert _row(desk, CallbackRequest, first).status == "done"
    assert _row(desk, Agent, agent_id).availability == "wrap_up"
    connection = Redis.from_url(redis_url)
    connection.flushall()  # Redis restarted: the delayed job that ends the wrap-up is gone
    with desk.extensions["ivr.sessions"]() as session:
        assert reconcile(session, connection, wrap_up_seconds=60).wrap_ups_ended == []
        assert reconcile(session, connection, grace=timedelta(seconds=-1),
                         wrap_up_seconds=60).wrap_ups_ended == []  # still wrapping up
        report = reconcile(session, connection, grace=timedelta(seconds=0),
                           wrap_up_seconds=-1)
    assert report.wrap_ups_ended == [agent_id]
    assert _row(desk, Agent, agent_id).availability == "available"
    route_sweep()  # the worker's sweep after reconciling: the waiting caller is dialled
    assert _row(desk, CallbackRequest, second).status == "claimed"


def test_reconciler_frees_an_agent_a_dead_dialer_left_on_a_call(desk: Flask, standin: StandinServer,
                                                                redis_url: str) -> None:
    """The dialer took the agent, then died (or lost its database) before recording the
    attempt: the agent is on a call with nobody; the reconciler hands them calls again."""
    from callbacks.reconciler import reconcile

    stranded, busy = _agent(desk), _agent(desk, name="busy", phone="+491701234599")
    with desk.extensions["ivr.sessions"]() as session:  # the dialer's claim of the agent
        session.execute(update(Agent).where(Agent.id == stranded)
                        .values(availability="on_call", availability_since=utcnow()))
        session.commit()
    waiting = _request(desk)
    dial_next(busy)  # the other agent is really on a call: an attempt in progress
    connection = Redis.from_url(redis_url)
    with desk.extensions["ivr.sessions"]() as session:
        assert reconcile(session, connection).agents_freed == []  # within the grace period
        report = reconcile(session, connection, grace=timedelta(seconds=0))
    assert report.agents_freed == [stranded]
    assert _row(desk, Agent, stranded).availability == "available"
    assert _row(desk, Agent, busy).availability == "on_call"
    assert _row(desk, CallbackRequest, waiting).status == "claimed"


def test_the_stand_in_lists_the_call_as_the_answer_command_reads_it(
        desk: Flask, standin: StandinServer) -> None:
    import requests

    from ivr.simulator.outbound import standin_call_from_record

    _agent(desk)
    _request(desk)
    dial_next()
    listed = requests.get(f"{standin.url}/_standin/calls", timeout=5).json()
    call = standin_call_from_record(listed[-1])
    original = standin.calls()[-1]
    assert (call.sid, call.to, call.url, call.status_callback) == (
        original.sid, original.to, original.url, original.status_callback)
