"""An incident that texts 50 linked callers exactly once, even when the worker is killed
halfway: real PostgreSQL, Redis, `ivr worker` processes and the Twilio stand-in.

Fifty tickets from forty numbers (ten callers called twice), five of those callers and three
others also asked in the menu to be texted, one caller texted STOP, and a landline's callback
is linked too. The
incident is resolved; a worker process sends the texts and is SIGKILLed while Twilio is taking
one of them (the stand-in holds that request, then accepts it: Twilio took the text, our
record of it never came). A new worker and its reconciler finish the rest. The stand-in's
message log then holds exactly one text per number that can be texted, none for the one that
opted out or the landline, and the interrupted text was found at Twilio, not sent again.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from callbacks.incidents.grouping import open_incident, resolve_incident, subscribe
from callbacks.incidents.incident import IncidentNotice
from callbacks.tickets.ticket import Ticket
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, LINE, STANDIN_ACCOUNT_SID, desk_app, line_environment
from tests.test_incidents import _callback
from tests.test_optout import _text
from tests.test_worker_process import wait_for, worker_process

pytestmark = pytest.mark.server

CALLERS = [f"+49151{10000000 + n}" for n in range(40)]
TWICE = CALLERS[:10]
SUBSCRIBED_TOO = CALLERS[10:15]
ONLY_SUBSCRIBED = [f"+49160{20000000 + n}" for n in range(3)]
STOPPED = CALLERS[39]
LANDLINE = "+493012345699"
ELIGIBLE = sorted(set(CALLERS + ONLY_SUBSCRIBED) - {STOPPED})
MESSAGES_PATH = f"/2010-04-01/Accounts/{STANDIN_ACCOUNT_SID}/Messages.json"


@pytest.fixture
def standin() -> Iterator[StandinServer]:
    with StandinServer(STANDIN_ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


@pytest.fixture
def desk(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    with desk_app(database_url, redis_url, standin) as app:
        yield app


def _open_and_resolve(app: Flask) -> int:
    """Fifty linked tickets and a landline's callback, eight subscribers, one STOP; resolved:
    one notice per number."""
    numbers = [*CALLERS, *TWICE]  # 40 callers, ten of them twice: 50 tickets
    _text(app.test_client(), "STOP", 1, caller=STOPPED)  # as Twilio reports the keyword
    landline = _callback(app, LANDLINE)
    with app.extensions["ivr.sessions"]() as session:
        tickets = [Ticket(call_sid=f"CA{n:032d}", caller=number, language="en",
                          category="network", priority="P2", status="new",
                          transcription="none", sms_sid="SM" + "0" * 32)
                   for n, number in enumerate(numbers)]
        session.add_all(tickets)
        session.commit()
        incident = open_incident(session, title="VPN down", category="network", by="ana",
                                 ticket_ids=[ticket.id for ticket in tickets],
                                 callback_ids=[landline])
        for n, number in enumerate(SUBSCRIBED_TOO + ONLY_SUBSCRIBED):
            subscribe(session, [incident.id], number, "de" if n % 2 else "en", f"CA{n:032x}")
        resolved = resolve_incident(session, incident.id, "Restart the VPN client.", "ana")
        return resolved.notices


def _notices(app: Flask) -> list[IncidentNotice]:
    with app.extensions["ivr.sessions"]() as session:
        return list(session.scalars(select(IncidentNotice).order_by(IncidentNotice.id)))


def _posts(standin: StandinServer) -> int:
    return sum(1 for r in standin.requests() if r.method == "POST" and r.path == MESSAGES_PATH)


def test_an_incident_texts_50_linked_callers_exactly_once_even_when_the_worker_is_killed(
        desk: Flask, standin: StandinServer, database_url: str, redis_url: str,
        tmp_path: Path) -> None:
    made = _open_and_resolve(desk)
    assert made == len(ELIGIBLE) + 2  # the opted-out number and the landline are noted too
    env = line_environment(database_url, redis_url, standin.url, SMS_FROM=LINE)
    log = tmp_path / "worker.log"

    with worker_process(env, log) as first:
        wait_for(lambda: len(standin.messages()) >= 15, 120, "the first texts")
        # Twilio takes the next text slowly; the worker is killed while it waits for it
        standin.inject_fault("/Messages.json$", None, delay_seconds=4, method="POST")

        def held() -> bool:
            if _posts(standin) <= len(standin.messages()):
                return False
            time.sleep(0.5)  # an ordinary request is answered in far less
            return _posts(standin) > len(standin.messages())

        wait_for(held, 60, "a text held by the stand-in")
        os.killpg(first.pid, signal.SIGKILL)
    wait_for(lambda: _posts(standin) == len(standin.messages()), 30,
             "the held text to be taken")
    cut_off = [n for n in _notices(desk) if n.status == "sending"]
    assert len(cut_off) == 1  # Twilio took it; our record of it never came
    assert cut_off[0].phone in {m.to for m in standin.messages()}
    sent_before = len(standin.messages())
    assert sent_before < len(ELIGIBLE)  # killed halfway

    with worker_process(env, log):
        wait_for(lambda: all(n.status in ("sent", "skipped", "failed")
                             for n in _notices(desk)), 180, "every notice to end")

    texts = Counter(message.to for message in standin.messages())
    assert sorted(texts) == ELIGIBLE
    assert set(texts.values()) == {1}  # exactly once each
    assert STOPPED not in texts and LANDLINE not in texts
    notices = {n.phone: n for n in _notices(desk)}
    assert len(notices) == len(ELIGIBLE) + 2
    assert {n.status for p, n in notices.items() if p in ELIGIBLE} == {"sent"}
    assert notices[STOPPED].status == notices[LANDLINE].status == "skipped"
    assert "found at Twilio after an interrupted try" in notices[cut_off[0].phone].detail
    assert notices[cut_off[0].phone].message_sid in {m.sid for m in standin.messages()}
    bodies = {m.to: m.body for m in standin.messages()}
    assert bodies[SUBSCRIBED_TOO[1]].startswith("IT-Service-Desk: Das Problem mit dem VPN")
    assert bodies[TWICE[0]] == ("IT Service Desk: the problem with the VPN and the network "
                                "(INC-10001) is fixed. Restart the VPN client.")
