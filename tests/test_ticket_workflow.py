"""The ticket workflow on real PostgreSQL, Redis, rq workers and the Twilio stand-in: every
status change, the one text the caller gets for it in their language, assignment, notes and
replies, and the SLA deadline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select
from sqlalchemy.orm import Session

from callbacks import runtime
from callbacks.db import utcnow
from callbacks.priority import load_policy
from callbacks.queues import QUEUES, URGENT
from callbacks.reconciler import reconcile
from callbacks.sms import sms_text
from callbacks.tickets.actions import (
    assign_ticket,
    move_ticket,
    note_ticket,
    prioritise_ticket,
    take_ticket,
)
from callbacks.tickets.caller_texts import send_caller_text
from callbacks.tickets.ticket import Ticket, TicketEvent, history
from callbacks.tickets.workflow import (
    STATUSES,
    TRANSITIONS,
    TicketError,
    change_status,
    fill_missing_due_times,
    is_overdue,
    reopen,
    sla_due_at,
)
from callbacks.workqueue.agents import Agent, create_agent
from ivr.standin import StandinServer
from routing.hours import BusinessHours
from routing.loader import load_flow_file
from tests.conftest import DEMO_FLOW, ROOT, desk_app

MOBILE = "+4915112345678"
LANDLINE = "+493012345699"
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The app wired to the stand-in, texting from the line's number."""
    with desk_app(database_url, redis_url, standin) as app:
        yield app


def _session(app: Flask) -> Session:
    session: Session = app.extensions["ivr.sessions"]()
    return session


def _agent(app: Flask, name: str = "ann") -> Agent:
    with _session(app) as session:
        agent = create_agent(session, name, "correct horse battery", display_name=name.title())
        session.commit()
        return agent


def _ticket(app: Flask, *, caller: str = MOBILE, language: str = "de", status: str = "new",
            priority: str = "P3") -> int:
    with _session(app) as session:
        ticket = Ticket(call_sid="CA" + "4" * 32, caller=caller, language=language,
                        category="network", priority=priority, status=status,
                        transcription="none", sms_sid="SM" + "0" * 32)  # number texted
        session.add(ticket)
        session.commit()
        return ticket.id


def _work(redis_url: str) -> None:
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)


def _events(app: Flask, ticket_id: int) -> list[TicketEvent]:
    with _session(app) as session:
        return history(session, ticket_id)


def _texts(standin: StandinServer) -> list[str]:
    return [message.body for message in standin.messages()]


def test_a_ticket_goes_through_every_status_and_the_caller_gets_one_text_per_change(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk)
    steps = [
        (lambda s: take_ticket(s, ticket_id, ann), "status_assigned", ""),
        (lambda s: move_ticket(s, ticket_id, "in_progress", "", ann), "status_in_progress", ""),
        (lambda s: move_ticket(s, ticket_id, "waiting_for_caller", "Bitte starten Sie neu.",
                               ann), "status_waiting_for_caller", "Bitte starten Sie neu."),
        (lambda s: move_ticket(s, ticket_id, "in_progress", "", ann), "status_in_progress", ""),
        (lambda s: move_ticket(s, ticket_id, "resolved", "VPN-Profil erneuert.", ann),
         "status_resolved", "VPN-Profil erneuert."),
        (lambda s: move_ticket(s, ticket_id, "closed", "", ann), "status_closed", ""),
        (lambda s: move_ticket(s, ticket_id, "reopened", "", ann), "status_reopened", ""),
    ]
    for count, (act, text, note) in enumerate(steps, start=1):
        with _session(desk) as session:
            result = act(session)
        assert result.text is not None and result.text.language == "de"
        assert "The caller will get a text in German." in result.message
        _work(redis_url)
        _work(redis_url)  # a second worker pass sends nothing again
        sent = _texts(standin)
        assert len(sent) == count, sent
        expected = " ".join(sms_text(text, "de", number="10001", note=note).split())
        assert sent[-1].startswith(expected), (sent[-1], expected)
        assert all(message.to == MOBILE for message in standin.messages())
    assert "Wie zufrieden sind Sie" in _texts(standin)[4]  # the resolution asks the survey
    events = _events(desk, ticket_id)
    statuses = [event.detail for event in events if event.kind == "status"]
    assert statuses == ["new -> assigned", "assigned -> in_progress",
                        "in_progress -> waiting_for_caller: Bitte starten Sie neu.",
                        "waiting_for_caller -> in_progress",
                        "in_progress -> resolved: VPN-Profil erneuert.",
                        "resolved -> closed", "closed -> assigned"]
    status_ids = [event.id for event in events if event.kind == "status"]
    outcomes = [event.about_event_id for event in events if event.kind == "sms_sent"]
    assert outcomes == status_ids  # each change texted once, in order
    with _session(desk) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None and ticket.status == "assigned"
        assert ticket.assigned_agent_id == ann.id


@pytest.mark.parametrize("start", STATUSES)
def test_only_the_moves_the_workflow_allows_are_made(desk: Flask, start: str) -> None:
    allowed = TRANSITIONS[start]
    for target in (*STATUSES, "reopened"):
        ticket_id = _ticket(desk, status=start)
        with _session(desk) as session:
            ticket = session.get(Ticket, ticket_id)
            assert ticket is not None
            reopens = start in ("resolved", "closed") and target in ("new", "assigned",
                                                                     "reopened")
            if target in allowed or reopens:
                change_status(session, ticket, target, by="ann", note="x")
                session.commit()
                assert ticket.status == ("new" if reopens else target), (start, target)
            else:
                with pytest.raises(TicketError):
                    change_status(session, ticket, target, by="ann")
                session.rollback()
                assert session.get(Ticket, ticket_id).status == start  # type: ignore[union-attr]


def test_refusals_say_why(desk: Flask) -> None:
    ticket_id = _ticket(desk, status="resolved")
    with _session(desk) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        with pytest.raises(TicketError, match="is resolved: reopen it first"):
            change_status(session, ticket, "in_progress", by="ann")
        with pytest.raises(TicketError, match="is resolved already"):
            change_status(session, ticket, "resolved", by="ann")
        with pytest.raises(TicketError, match="'open' is not a status"):
            change_status(session, ticket, "open", by="ann")
        ticket.status = "in_progress"
        with pytest.raises(TicketError, match="nothing to reopen"):
            reopen(session, ticket, by="ann")
        with pytest.raises(TicketError, match="cannot go from in progress to new"):
            change_status(session, ticket, "new", by="ann")


def test_resolving_needs_a_note_for_the_caller(desk: Flask) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk)
    with _session(desk) as session, pytest.raises(TicketError, match="write a short note"):
        move_ticket(session, ticket_id, "resolved", "  ", ann)


def test_assigning_and_unassigning(desk: Flask, standin: StandinServer,
                                   redis_url: str) -> None:
    ann, ben = _agent(desk), _agent(desk, "ben")
    ticket_id = _ticket(desk)
    with _session(desk) as session:
        done = assign_ticket(session, ticket_id, ben.id, ann)
        assert done.message.startswith("Ticket 10001 is assigned to Ben.")
    with _session(desk) as session:
        again = take_ticket(session, ticket_id, ann)  # already assigned: no status change
        assert again.text is None and "text" not in again.message
    with _session(desk) as session:
        with pytest.raises(TicketError, match="assigned to Ann already"):
            take_ticket(session, ticket_id, ann)
        session.rollback()
        with pytest.raises(TicketError, match="no such agent"):
            assign_ticket(session, ticket_id, 999, ann)
        session.rollback()
        nobody = assign_ticket(session, ticket_id, None, ann)
        assert nobody.text is None  # back to new: the caller is not texted about that
    _work(redis_url)
    assert len(_texts(standin)) == 1  # only the first assignment
    kinds = [(event.kind, event.detail) for event in _events(desk, ticket_id)]
    assert kinds == [("assigned", "to Ben (ben)"), ("status", "new -> assigned"),
                     ("assigned", "to Ann (ann)"), ("assigned", "to nobody"),
                     ("status", "assigned -> new"), ("sms_sent", kinds[-1][1])]
    with _session(desk) as session:
        assert session.get(Ticket, ticket_id).assigned_agent_id is None  # type: ignore[union-attr]


def test_a_reply_is_texted_once_in_the_callers_language_and_a_note_stays_internal(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk, language="pl")
    with _session(desk) as session:
        internal = note_ticket(session, ticket_id, "Checked the VPN logs.", ann, internal=True)
        assert internal.text is None and internal.event.kind == "note"
    with _session(desk) as session:
        replied = note_ticket(session, ticket_id, "Proszę zrestartować laptopa.", ann,
                              internal=False)
        assert replied.text is not None and replied.text.language == "pl"
        assert "The caller will get a text in Polish." in replied.message
    _work(redis_url)
    _work(redis_url)
    assert _texts(standin) == ["IT Service Desk, zgłoszenie 10001: Proszę zrestartować laptopa."]
    with _session(desk) as session:
        with pytest.raises(TicketError, match="write the reply first"):
            note_ticket(session, ticket_id, "   ", ann, internal=False)
        with pytest.raises(TicketError, match="longer than 600"):
            note_ticket(session, ticket_id, "x" * 601, ann, internal=False)


def test_a_caller_who_cannot_get_texts_is_never_texted_and_the_history_says_why(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk, caller=LANDLINE)
    with _session(desk) as session:
        result = take_ticket(session, ticket_id, ann)
    assert result.text is None
    assert "The caller gets no text: the caller's number cannot receive texts." in result.message
    with _session(desk) as session, pytest.raises(TicketError, match="cannot get a reply"):
        note_ticket(session, ticket_id, "Hallo", ann, internal=False)
    _work(redis_url)
    assert standin.messages() == []
    skipped = [event for event in _events(desk, ticket_id) if event.kind == "sms_skipped"]
    assert [event.detail for event in skipped] == [
        "assigned: the caller's number cannot receive texts"]


def test_a_language_without_texts_gets_english(desk: Flask, standin: StandinServer,
                                               redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk, language="fr")
    with _session(desk) as session:
        move_ticket(session, ticket_id, "in_progress", "", ann)
    _work(redis_url)
    assert _texts(standin) == ["IT Service Desk: we are working on your ticket 10001."]


def test_a_text_whose_job_redis_lost_is_queued_again_and_sent_once(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    ann = _agent(desk)
    ticket_id = _ticket(desk)
    with _session(desk) as session:
        move_ticket(session, ticket_id, "in_progress", "", ann)
    connection = Redis.from_url(redis_url)
    assert len(Queue(URGENT, connection=connection).job_ids) == 1
    connection.flushdb()  # Redis restarted before a worker sent the text
    with _session(desk) as session:
        assert reconcile(session, connection, grace=timedelta(seconds=60)
                         ).caller_texts_requeued == []  # not settled yet: give the job time
        report = reconcile(session, connection, grace=timedelta(seconds=-1))
    [status] = [event for event in _events(desk, ticket_id) if event.kind == "status"]
    assert report.caller_texts_requeued == [status.id]
    _work(redis_url)
    with _session(desk) as session:
        again = reconcile(session, connection, grace=timedelta(seconds=-1))
    assert again.caller_texts_requeued == []
    assert send_caller_text(status.id) is None  # a late duplicate job sends nothing
    assert len(standin.messages()) == 1


def test_a_failing_twilio_is_retried_and_a_refusal_is_recorded(
        desk: Flask, standin: StandinServer, redis_url: str) -> None:
    from callbacks.jobs import RetryLater

    ann = _agent(desk)
    ticket_id = _ticket(desk)
    with _session(desk) as session:
        move_ticket(session, ticket_id, "in_progress", "", ann)
    [status] = [event for event in _events(desk, ticket_id) if event.kind == "status"]
    standin.inject_fault("/Messages", 503)
    with pytest.raises(RetryLater):
        send_caller_text(status.id)
    standin.inject_fault("/Messages", 400)
    assert send_caller_text(status.id) is None
    failed = [event for event in _events(desk, ticket_id) if event.kind == "sms_failed"]
    assert len(failed) == 1 and failed[0].about_event_id == status.id
    assert send_caller_text(status.id) is None  # failed for good: not tried again
    assert standin.messages() == []


# --- SLA deadlines -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def office() -> BusinessHours:
    flow = load_flow_file(DEMO_FLOW)
    return BusinessHours.from_calendar(flow.calendars["office"])


def test_the_deadline_counts_business_hours_and_moves_with_the_priority(
        desk: Flask, office: BusinessHours) -> None:
    policy = load_policy(ROOT / "flows" / "priorities.yaml")
    ann = _agent(desk)
    friday_evening = datetime(2026, 6, 12, 17, 30, tzinfo=BERLIN)  # an hour of P2 left: 30 min
    ticket = Ticket(priority="P2", created_at=friday_evening.astimezone(UTC))
    due = sla_due_at(ticket, policy, office, utcnow())
    assert due.astimezone(BERLIN) == datetime(2026, 6, 15, 8, 30, tzinfo=BERLIN)  # Monday
    ticket.priority = "P1"  # 15 minutes around the clock
    assert sla_due_at(ticket, policy, office, utcnow()) == friday_evening + timedelta(minutes=15)
    ticket.priority = "P7"  # not a level: counted as the default (P3, 4 business hours)
    assert sla_due_at(ticket, policy, office, utcnow()).astimezone(BERLIN) == datetime(
        2026, 6, 15, 11, 30, tzinfo=BERLIN)

    ticket_id = _ticket(desk, priority="P4")
    with _session(desk) as session:
        assert fill_missing_due_times(session, policy, None) == 1
        session.commit()
        stored = session.get(Ticket, ticket_id)
        assert stored is not None and stored.due_at == stored.created_at + timedelta(hours=10)
        assert not is_overdue(stored, utcnow())
        assert is_overdue(stored, utcnow() + timedelta(hours=11))
    with _session(desk) as session:
        result = prioritise_ticket(session, ticket_id, "P1", ann, policy, None)
        assert result.ticket.due_at == result.ticket.created_at + timedelta(minutes=15)
        assert result.event.kind == "priority" and result.event.detail.startswith("P4 -> P1")
    with _session(desk) as session, pytest.raises(TicketError, match="'P9' is not a priority"):
        prioritise_ticket(session, ticket_id, "P9", ann, policy, None)
    with _session(desk) as session:
        resolved = session.get(Ticket, ticket_id)
        assert resolved is not None
        resolved.status = "resolved"
        assert not is_overdue(resolved, utcnow() + timedelta(days=3))  # done: never overdue


def test_a_new_voicemail_ticket_gets_its_deadline_when_it_is_stored(desk: Flask) -> None:
    from tests.conftest import publish, twilio_post

    publish(desk)
    client = desk.test_client()
    params = {"CallSid": "CA" + "5" * 32, "From": MOBILE, "To": "+493012345678",
              "RecordingSid": "RE" + "5" * 32, "RecordingDuration": "12",
              "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"}
    with _session(desk) as session:
        from callbacks.flowstore import PublishedFlow

        version = session.scalar(select(PublishedFlow.version_id))
    answer = twilio_post(client, f"/voice/recorded?v={version}&n=general_voicemail&l=de&a=0&s=5",
                         params)
    assert answer.status_code == 200
    with _session(desk) as session:
        ticket = session.scalar(select(Ticket))
        assert ticket is not None and ticket.due_at is not None
        assert ticket.due_at > ticket.created_at  # P3: four business hours later
    assert runtime.settings().database_url  # the web app configured the jobs' runtime
