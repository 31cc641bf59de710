"""Live callers in line, end to end through the webhooks: callers played by the phone simulator
(`ivr call`'s, answered by the app in this process, signed like Twilio), waiting in the
stand-in's Twilio queues; agents' phones played by the test; routing by a real rq worker on
the test Redis and PostgreSQL."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker
from sqlalchemy import select, update

from callbacks.calllog import Call
from callbacks.db import utcnow
from callbacks.desk import change_availability
from callbacks.queues import QUEUES
from callbacks.workqueue.agents import Agent, create_agent
from callbacks.workqueue.callback_requests import CallbackRequest
from callbacks.workqueue.dialer import end_wrap_up
from callbacks.workqueue.live_calls import LiveCall, LiveOffer
from callbacks.workqueue.skills import set_skills
from ivr.simulator import ScriptedCaller, Simulator
from ivr.simulator.callers import HANGUP, GatherAnswer, GatherPrompt, Hangup, QueueWait
from ivr.simulator.events import CallEvent, CallTranscript
from ivr.simulator.inprocess import IN_PROCESS_BASE_URL, in_process_session
from ivr.standin import StandinCall, StandinServer
from tests.conftest import (
    AUTH_TOKEN,
    DEMO_FLOW,
    LINE,
    PUBLIC_BASE_URL,
    STANDIN_ACCOUNT_SID,
    desk_app,
    publish,
    sign,
)

ALWAYS_OPEN = (
    DEMO_FLOW.read_text(encoding="utf-8")
    .replace('mon-fri: "08:00-18:00"', 'mon-sun: "00:00-24:00"')
    .replace("holidays: {country: DE, subdivision: BE}\n", "")
    .replace("    closed:\n      - 2026-12-24\n      - 2026-12-31\n", "")
)
"""The demo flow, open around the clock: 'talk to an agent' waits in the line of its topic."""
LANGUAGE_KEYS = {"en": "1", "de": "2", "pl": "3", "ru": "4"}
TO_AN_AGENT = ("1", "1")
"""Main menu 1 (password), then 1 (speak to an agent): the password_queue node."""


@pytest.fixture
def line(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The demo line, always open, no survey, placing calls through the stand-in."""
    with desk_app(database_url, redis_url, standin, SURVEY=False, WRAP_UP_SECONDS=0) as app:
        publish(app, ALWAYS_OPEN)
        app.extensions["test.phones"] = []
        yield app
        for phone in app.extensions["test.phones"]:  # nobody left on the line
            phone.hang_up()
        for phone in app.extensions["test.phones"]:
            phone.thread.join(timeout=30)


class LineCaller(ScriptedCaller):
    """A scripted caller who can be told to hang up while waiting (`hang_up`)."""

    def __init__(self, script: list[str]) -> None:
        super().__init__(script)
        self.leave = threading.Event()

    def after_wait_pass(self, wait: QueueWait) -> Hangup | None:
        """Hang up when told to, else as the script says."""
        return HANGUP if self.leave.is_set() else super().after_wait_pass(wait)

    def gather(self, prompt: GatherPrompt) -> GatherAnswer:
        """At the hold loop's Gather: hang up when told to, else as the script says."""
        if self.leave.is_set() and prompt.queue is not None:
            return HANGUP
        return super().gather(prompt)


class Phone:
    """One simulated caller in a thread: dials the line, picks a language, asks for an agent,
    then follows `script` (what they do while waiting)."""

    def __init__(self, app: Flask, standin: StandinServer, n: int, language: str,
                 script: tuple[str, ...] = ()) -> None:
        self.call_sid = f"CA{n:032x}"
        self.number = f"+4915100000{n:03d}"
        self.said: list[str] = []
        self.caller = LineCaller([LANGUAGE_KEYS[language], *TO_AN_AGENT, *script])
        self.simulator = Simulator(
            IN_PROCESS_BASE_URL, AUTH_TOKEN, caller=self.number, called=LINE,
            account_sid=STANDIN_ACCOUNT_SID, call_sid=self.call_sid,
            session=in_process_session(app), public_base_url=PUBLIC_BASE_URL,
            standin_url=standin.url, max_wait_passes=4000, wait_pace=0.05)
        self.transcript: CallTranscript | None = None
        self.thread = threading.Thread(target=self._run, name=f"caller {n}", daemon=True)
        app.extensions["test.phones"].append(self)
        self.thread.start()

    def _run(self) -> None:
        self.transcript = self.simulator.run(self.caller, self._heard)

    def _heard(self, event: CallEvent) -> None:
        if event.kind == "say":
            self.said.append(event.text)

    def hears(self, text: str) -> bool:
        """Whether the caller has heard a sentence starting with `text`."""
        return any(said.startswith(text) for said in list(self.said))

    def hang_up(self) -> None:
        """Hang up at the end of the current pass of the hold loop."""
        self.caller.leave.set()

    def done(self, seconds: float = 30) -> CallTranscript:
        """The call's transcript once it has ended."""
        self.thread.join(timeout=seconds)
        assert not self.thread.is_alive(), f"{self.call_sid} still on the line: {self.said}"
        assert self.transcript is not None
        assert not self.transcript.failed, self.transcript.failures
        return self.transcript


def joined(app: Flask, standin: StandinServer, n: int, language: str,
           script: tuple[str, ...] = ()) -> Phone:
    """Caller `n`, once in line (so callers join in the order they are made)."""
    phone = Phone(app, standin, n, language, script)
    in_line(app, phone)
    return phone


def wait_for(check: Callable[[], Any], what: str, seconds: float = 20) -> Any:
    """The first truthy result of `check`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


def live(app: Flask, call_sid: str) -> LiveCall | None:
    """The live call of a CallSid, as stored now."""
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(LiveCall).where(LiveCall.call_sid == call_sid))


def in_line(app: Flask, phone: Phone) -> LiveCall:
    """Wait until the caller waits in line (their first hold loop pass has been served)."""
    def waiting() -> LiveCall | None:
        call = live(app, phone.call_sid)
        return call if call is not None and call.queue_sid else None
    return wait_for(waiting, f"{phone.call_sid} to wait in line")


def agent(app: Flask, name: str, phone: str, languages: dict[str, int],
          availability: str = "away", topics: dict[str, int] | None = None) -> int:
    """An agent with skills."""
    with app.extensions["ivr.sessions"]() as session:
        made = create_agent(session, name, "correct horse battery", phone=phone,
                            display_name=name.title())
        made.availability = availability
        set_skills(session, made.id, languages=languages, topics=topics or {})
        session.commit()
        return made.id


def available(app: Flask, agent_id: int) -> None:
    """The agent says they are available (the console's and the API's call)."""
    with app.extensions["ivr.sessions"]() as session:
        found = session.get(Agent, agent_id)
        assert found is not None
        change_availability(session, found, "available")


def state(app: Flask, agent_id: int) -> str:
    """The agent's availability now."""
    with app.extensions["ivr.sessions"]() as session:
        found = session.get(Agent, agent_id)
        assert found is not None
        return found.availability


def work(redis_url: str) -> None:
    """A real rq worker runs the routing jobs queued so far."""
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)


def ringing(standin: StandinServer, phone: str) -> list[StandinCall]:
    """The calls ringing the phone `phone` now."""
    return [call for call in standin.calls()
            if call.to == phone and standin.call_status(call.sid) in ("queued", "ringing")]


class AgentPhone:
    """An agent's phone as Twilio plays it: picks up, hears the whisper, hangs up."""

    def __init__(self, app: Flask, standin: StandinServer, phone: str) -> None:
        self.app, self.standin, self.phone = app, standin, phone

    def call(self) -> StandinCall:
        """The one call ringing this phone."""
        [call] = wait_for(lambda: ringing(self.standin, self.phone), f"{self.phone} to ring")
        return call

    def post(self, url: str, **params: str) -> tuple[int, str]:
        """A signed webhook of this phone's call, as Twilio sends it."""
        call = self.call_in_progress
        form = {"AccountSid": STANDIN_ACCOUNT_SID, "CallSid": call.sid, "From": call.from_,
                "To": call.to, "Direction": "outbound-api", **params}
        parts = urlsplit(url)
        answer = self.app.test_client().post(
            f"{parts.path}?{parts.query}", data=form,
            headers={"X-Twilio-Signature": sign(url, form)})
        return answer.status_code, answer.get_data(as_text=True)

    def report(self, status: str) -> None:
        """Tell the stand-in how the call went on (it places no calls itself)."""
        from ivr.standin.state import CallUpdate

        self.standin.state.update_call(self.call_in_progress.sid,
                                       CallUpdate(status, None, None, None, "network"))

    def pick_up(self) -> ET.Element:
        """Answer the ringing call: what Twilio fetches (the whisper and the conference)."""
        self.call_in_progress = self.call()
        assert self.call_in_progress.url is not None
        self.report("in-progress")
        status, body = self.post(self.call_in_progress.url, CallStatus="in-progress")
        assert status == 200, body
        return ET.fromstring(body)

    def hang_up(self, status: str = "completed") -> int:
        """The call ends: Twilio posts the status callback."""
        call = self.call_in_progress
        assert call.status_callback is not None
        if self.standin.call_status(call.sid) not in ("completed", "canceled"):
            self.report(status)
        code, _ = self.post(call.status_callback, CallStatus=status, CallDuration="42")
        return code

    def does_not_answer(self, status: str = "no-answer") -> int:
        """The phone rang out."""
        self.call_in_progress = self.call()
        return self.hang_up(status)


def said(twiml: ET.Element) -> list[str]:
    """What a TwiML document says."""
    return [(verb.text or "").strip() for verb in twiml.iter("Say")]


def offer_of(app: Flask, call_sid: str) -> LiveOffer | None:
    """The latest offer for a caller."""
    with app.extensions["ivr.sessions"]() as session:
        return session.scalar(select(LiveOffer).join(LiveCall).where(
            LiveCall.call_sid == call_sid).order_by(LiveOffer.id.desc()).limit(1))


def talk(app: Flask, phone: AgentPhone, caller: Phone) -> list[str]:
    """The agent picks up, the caller joins them, they talk, the agent hangs up; the whisper."""
    twiml = phone.pick_up()
    room = twiml.find("Dial/Conference")
    assert room is not None, ET.tostring(twiml)
    def joined() -> bool:
        return (offer_of(app, caller.call_sid) or LiveOffer()).stage in ("talking", "completed")

    try:
        wait_for(joined, f"{caller.call_sid} to join the conference")
    except AssertionError:
        call, offer = live(app, caller.call_sid), offer_of(app, caller.call_sid)
        raise AssertionError(f"{caller.call_sid}: {call and call.status}, offer "
                             f"{offer and offer.stage} {offer and offer.detail}; heard "
                             f"{caller.said[-4:]}") from None
    caller.done()
    assert phone.hang_up() == 204
    return said(twiml)


# --- two agents, six callers -------------------------------------------------------------------


def test_two_agents_answer_six_callers_in_their_languages_in_due_time_order(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    anna = agent(line, "anna", "+4930555001", {"de": 3, "en": 2})
    piotr = agent(line, "piotr", "+4930555002", {"pl": 3})
    phones = {anna: AgentPhone(line, standin, "+4930555001"),
              piotr: AgentPhone(line, standin, "+4930555002")}
    callers: dict[str, Phone] = {}
    for n, (name, language) in enumerate([("en1", "en"), ("de1", "de"), ("pl1", "pl"),
                                          ("de2", "de"), ("pl2", "pl"), ("en2", "en")], 1):
        callers[name] = Phone(line, standin, n, language)
        in_line(line, callers[name])  # joins in this order: due times in this order too
    dues = [live(line, c.call_sid).due_at for c in callers.values()]  # type: ignore[union-attr]
    assert dues == sorted(dues)
    # place in line counts the callers of the same language due earlier
    wait_for(lambda: callers["en2"].hears("You are number 2 in line."), "en2's place")
    wait_for(lambda: callers["de2"].hears("Sie sind an Position 2 der Warteschlange."), "de2's")

    available(line, anna)
    available(line, piotr)
    expected = {anna: ["en1", "de1", "de2", "en2"], piotr: ["pl1", "pl2"]}
    answered: dict[int, list[str]] = {anna: [], piotr: []}
    for _round in range(4):
        work(redis_url)
        for agent_id, queue in expected.items():
            if len(answered[agent_id]) == len(queue):
                assert ringing(standin, phones[agent_id].phone) == []
                continue
            caller = callers[queue[len(answered[agent_id])]]
            whisper = talk(line, phones[agent_id], caller)
            assert "Connecting you now." in whisper[0] and "priority P2" in whisper[0]
            answered[agent_id].append(queue[len(answered[agent_id])])
            assert state(line, agent_id) == "wrap_up"
            end_wrap_up(agent_id)  # the wrap-up time is over: routed again
    assert answered == expected
    with line.extensions["ivr.sessions"]() as session:
        calls = {c.call_sid: c for c in session.scalars(select(LiveCall))}
    for name, caller in callers.items():
        call = calls[caller.call_sid]
        assert call.status == "done" and call.agent_id == (piotr if "pl" in name else anna)
        assert call.wait_seconds is not None and call.answered_at is not None
        assert caller.hears({"en": "Connecting you", "de": "Einen Moment bitte",
                             "pl": "Łączymy z pierwszym"}[call.language])


def test_a_busy_desk_makes_callers_wait_and_tells_them_their_place_as_it_moves(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    ana = agent(line, "ana", "+4930555001", {"de": 2}, availability="on_call")
    phone = AgentPhone(line, standin, "+4930555001")
    first, second, third = (joined(line, standin, n, "de") for n in (1, 2, 3))
    wait_for(lambda: third.hears("Sie sind an Position 3 der Warteschlange."), "place 3")
    assert third.hears("Die voraussichtliche Wartezeit beträgt etwa")
    assert third.hears("Wenn Sie lieber zurückgerufen werden möchten")  # 1 and 2 offered
    work(redis_url)
    assert standin.calls() == []  # the only agent is on a call: nobody is rung
    with line.extensions["ivr.sessions"]() as session:  # their call ends
        session.execute(update(Agent).where(Agent.id == ana).values(availability="available"))
        session.commit()
    available(line, ana)
    work(redis_url)
    talk(line, phone, first)
    fast_forward_announcements(line)
    wait_for(lambda: third.hears("Sie sind an Position 2 der Warteschlange."), "place 2")
    assert third.hears("Vielen Dank für Ihre Geduld.")  # later announcements apologise
    for caller in (second, third):
        caller.hang_up()
        caller.done()


def fast_forward_announcements(app: Flask) -> None:
    """As if `announce_every` seconds had passed since each caller's last announcement."""
    with app.extensions["ivr.sessions"]() as session:
        session.execute(update(LiveCall).where(LiveCall.announced_at.is_not(None)).values(
            announced_at=utcnow() - timedelta(minutes=5)))
        session.commit()


# --- ways out of the line --------------------------------------------------------------------


def test_pressing_1_while_waiting_books_a_callback_that_keeps_the_callers_place(
        line: Flask, standin: StandinServer) -> None:
    agent(line, "ana", "+4930555001", {"de": 2})  # signed in, but away
    caller = Phone(line, standin, 1, "de", ("wait:2", "1", "1", "1"))  # 1; asap; my number
    transcript = caller.done()
    said_texts = transcript.said()
    assert "Vielen Dank. Ihr Rückrufwunsch ist eingetragen." in said_texts
    assert any(text.startswith("Ihre Ticketnummer lautet") for text in said_texts)
    call = live(line, caller.call_sid)
    assert call is not None and call.status == "to_callback"
    assert call.callback_request_id is not None and call.wait_seconds is not None
    with line.extensions["ivr.sessions"]() as session:
        request = session.get(CallbackRequest, call.callback_request_id)
    assert request is not None and request.language == "de"
    assert request.first_contact_at == call.entered_at  # their place counts from the line
    assert request.due_at <= call.due_at  # never later than the line promised
    assert request.category == "password" and request.caller == caller.number


def test_pressing_2_while_waiting_leads_to_the_topics_voicemail(
        line: Flask, standin: StandinServer) -> None:
    agent(line, "ana", "+4930555001", {"en": 2})
    caller = Phone(line, standin, 1, "en", ("wait:1", "2", "-"))
    transcript = caller.done()
    assert any(e.kind == "record" for e in transcript.events)
    assert any(text.startswith("After the tone, please state your name")
               for text in transcript.said())
    call = live(line, caller.call_sid)
    assert call is not None and call.status == "to_voicemail"


def test_hanging_up_while_waiting_records_an_abandonment_with_its_wait(
        line: Flask, standin: StandinServer) -> None:
    agent(line, "ana", "+4930555001", {"pl": 2})
    caller = Phone(line, standin, 1, "pl", ("wait:3", "hangup"))
    caller.done()
    call = live(line, caller.call_sid)
    assert call is not None and call.status == "abandoned"
    assert call.ended_at is not None and call.wait_seconds is not None
    assert call.wait_seconds >= 30  # three passes of 30 s silence, the caller's clock
    with line.extensions["ivr.sessions"]() as session:
        logged = session.scalar(select(Call).where(Call.call_sid == caller.call_sid))
    assert logged is not None and logged.outcome == "abandoned"
    assert standin.queues.whereabouts(caller.call_sid) is None  # out of Twilio's queue too


def test_nobody_signed_in_who_speaks_the_language_sends_the_caller_on_at_once(
        line: Flask, standin: StandinServer) -> None:
    agent(line, "ana", "+4930555001", {"de": 2}, availability="offline")  # signed out
    agent(line, "ivan", "+4930555002", {"en": 2})  # signed in, another language
    caller = Phone(line, standin, 1, "ru", ("-", "-", "-"))
    transcript = caller.done()
    assert any(text.startswith("К сожалению, сейчас все операторы заняты")
               for text in transcript.said())
    assert live(line, caller.call_sid) is None  # never in line
    assert not any(e.kind == "enqueue" for e in transcript.events)


def test_a_caller_past_the_max_wait_goes_to_the_overflow(
        line: Flask, standin: StandinServer) -> None:
    agent(line, "ana", "+4930555001", {"en": 2})
    caller = Phone(line, standin, 1, "en", ("wait:1000",))
    in_line(line, caller)
    with line.extensions["ivr.sessions"]() as session:
        session.execute(update(LiveCall).values(overflow_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    wait_for(lambda: caller.hears("Sorry, nobody is free right now."), "the overflow menu")
    call = live(line, caller.call_sid)
    assert call is not None and call.status == "overflowed" and call.wait_seconds is not None
    caller.hang_up()


# --- agents who do not answer, and who must not be rung ----------------------------------------


def test_an_agent_who_does_not_answer_is_set_away_and_the_caller_stays_first_in_line(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    ana = agent(line, "ana", "+4930555001", {"de": 2})
    berta = agent(line, "berta", "+4930555002", {"de": 2})
    first, second = joined(line, standin, 1, "de"), joined(line, standin, 2, "de")
    before = live(line, first.call_sid)
    available(line, ana)
    work(redis_url)
    assert AgentPhone(line, standin, "+4930555001").does_not_answer() == 204
    assert state(line, ana) == "away"  # probably away from the phone: not rung again
    after = live(line, first.call_sid)
    assert after is not None and before is not None
    assert (after.status, after.due_at, after.offers) == ("waiting", before.due_at, 1)
    available(line, berta)
    work(redis_url)
    whisper = talk(line, AgentPhone(line, standin, "+4930555002"), first)  # first in line
    assert "speaking German" in whisper[0]
    assert ringing(standin, "+4930555001") == []
    second.hang_up()
    second.done()


def test_away_on_a_call_or_wrapping_up_agents_are_never_rung(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    for n, availability in enumerate(("away", "on_call", "wrap_up")):
        agent(line, f"agent{n}", f"+493055500{n}", {"en": 3}, availability=availability)
    caller = Phone(line, standin, 1, "en")
    in_line(line, caller)
    work(redis_url)
    wait_for(lambda: caller.hears("You are number 1 in line."), "the place")
    work(redis_url)
    assert standin.calls() == []
    assert live(line, caller.call_sid).status == "waiting"  # type: ignore[union-attr]
    caller.hang_up()
    caller.done()


def test_a_caller_who_hangs_up_while_the_agent_rings_frees_the_agent_at_once(
        line: Flask, standin: StandinServer, redis_url: str) -> None:
    ana = agent(line, "ana", "+4930555001", {"en": 2})
    caller = Phone(line, standin, 1, "en")
    in_line(line, caller)
    available(line, ana)
    work(redis_url)
    [ring] = wait_for(lambda: ringing(standin, "+4930555001"), "the agent's phone to ring")
    caller.hang_up()
    caller.done()
    assert standin.call_status(ring.sid) == "canceled"
    assert state(line, ana) == "available"  # not away: it was not their fault
    call = live(line, caller.call_sid)
    assert call is not None and call.status == "abandoned"
    offer = offer_of(line, caller.call_sid)
    assert offer is not None and offer.stage == "caller_gone"
    phone = AgentPhone(line, standin, "+4930555001")
    phone.call_in_progress = ring
    assert phone.hang_up("canceled") == 204  # Twilio's report of the cancel changes nothing
    assert state(line, ana) == "available"


# --- nothing twice ---------------------------------------------------------------------------


def test_repeated_webhooks_bridge_a_caller_once(line: Flask, standin: StandinServer,
                                               redis_url: str) -> None:
    ana = agent(line, "ana", "+4930555001", {"en": 2})
    caller = Phone(line, standin, 1, "en")
    in_line(line, caller)
    available(line, ana)
    work(redis_url)
    phone = AgentPhone(line, standin, "+4930555001")
    first = phone.pick_up()
    again = phone.post(phone.call_in_progress.url or "", CallStatus="in-progress")  # a retry
    assert again[0] == 200 and ET.fromstring(again[1]).find("Dial/Conference") is not None
    dequeues = [r for r in standin.requests()
                if r.method == "POST" and "/Members/" in r.path]
    assert len(dequeues) == 1
    assert first.find("Dial/Conference") is not None
    caller.done()  # joined the agent, talked, and hung up
    assert phone.hang_up() == 204 and phone.hang_up() == 204
    with line.extensions["ivr.sessions"]() as session:
        offers = session.scalars(select(LiveOffer)).all()
        call = session.scalar(select(LiveCall))
    assert [o.stage for o in offers] == ["completed"]
    assert call is not None and call.status == "done" and call.offers == 1
    assert state(line, ana) == "wrap_up"


def test_forged_queue_and_agent_webhooks_are_refused(line: Flask) -> None:
    client = line.test_client()
    params = {"CallSid": "CA" + "1" * 32, "QueueResult": "hangup"}
    for path in ("/voice/queue/wait?v=1&n=password_queue&l=en&a=0&s=4",
                 "/voice/queue/left?v=1&n=password_queue&l=en&a=0&s=4",
                 "/dialer/live/agent?offer=1", "/dialer/live/agent-status?offer=1"):
        assert client.post(path, data=params).status_code == 403
        forged = sign(PUBLIC_BASE_URL + path, params, token="not-the-token")
        assert client.post(path, data=params,
                           headers={"X-Twilio-Signature": forged}).status_code == 403
    path = "/dialer/live/agent"
    signed = sign(PUBLIC_BASE_URL + path, params)
    assert client.post(path, data=params,
                       headers={"X-Twilio-Signature": signed}).status_code == 400


def test_a_broken_hold_loop_keeps_the_caller_in_line_with_valid_twiml(line: Flask) -> None:
    path = "/voice/queue/wait?v=999&n=password_queue&l=en&a=0&s=4"  # no such flow version
    params = {"CallSid": "CA" + "2" * 32, "QueueSid": "QU1", "QueueTime": "12"}
    answer = line.test_client().post(
        path, data=params, headers={"X-Twilio-Signature": sign(PUBLIC_BASE_URL + path, params)})
    twiml = ET.fromstring(answer.get_data(as_text=True))
    assert answer.status_code == 200 and [verb.tag for verb in twiml] == ["Pause"]



def test_after_talking_the_caller_rates_the_agent_who_answered_by_keypad(
        database_url: str, redis_url: str, standin: StandinServer) -> None:
    from callbacks.survey import SurveyAnswer

    with desk_app(database_url, redis_url, standin, SURVEY=True) as app:
        publish(app, ALWAYS_OPEN)
        app.extensions["test.phones"] = []
        ana = agent(app, "ana", "+4930555001", {"en": 2})
        caller = joined(app, standin, 1, "en", ("wait:1000", "4", "5"))
        available(app, ana)
        work(redis_url)
        talk(app, AgentPhone(app, standin, "+4930555001"), caller)
        assert any("How satisfied are you with the help you got?" in text
                   for text in caller.said), caller.said[-5:]
        with app.extensions["ivr.sessions"]() as session:
            answers = session.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id)).all()
        assert [(a.question, a.score, a.agent_id, a.category) for a in answers] == [
            ("overall", 4, ana, "password"), ("resolved", 5, ana, "password")]


# --- a caller Twilio no longer holds ---------------------------------------------------------


def waiting_without_a_phone(app: Flask, standin: StandinServer, n: int, like: LiveCall
                            ) -> LiveCall:
    """A caller in line ahead of everyone whose own phone the test does not play: in SQL and
    in the stand-in's queue, as the hold loop's first pass leaves them."""
    from callbacks.workqueue.live_calls import LineAsk, join_line

    call_sid = f"CA{n:032x}"
    where = standin.state.queues.join(like.queue_name, call_sid)
    now = utcnow()
    with app.extensions["ivr.sessions"]() as session:
        call = join_line(session, LineAsk(
            call_sid=call_sid, caller=f"+4915100000{n:03d}", language=like.language,
            category=like.category, priority=like.priority, reasons="",
            flow_version_id=like.flow_version_id, node=like.node, seq=like.seq,
            queue_name=like.queue_name, due_at=like.due_at - timedelta(hours=1),
            overflow_at=now + timedelta(minutes=10)), now)
        call.queue_sid = where["queue_sid"]
        session.commit()
        session.refresh(call)
        return call


@pytest.mark.parametrize("twilio_says", ["completed", None])
def test_a_caller_whose_hang_up_report_was_lost_is_not_rung_for_again(
        line: Flask, standin: StandinServer, redis_url: str, twilio_says: str | None) -> None:
    from callbacks.workqueue.live_calls import record_wait_pass
    from ivr.standin.state import CallUpdate

    ana = agent(line, "ana", "+4930555001", {"en": 2})
    caller = Phone(line, standin, 1, "en")
    ghost = waiting_without_a_phone(line, standin, 2, in_line(line, caller))
    available(line, ana)
    work(redis_url)
    phone = AgentPhone(line, standin, "+4930555001")
    rung_for = offer_of(line, ghost.call_sid)  # the most urgent in line
    assert rung_for is not None and rung_for.stage == "ringing_agent"
    standin.state.queues.leave(ghost.call_sid)  # hung up; the line never heard of it
    if twilio_says is not None:
        standin.state.update_call(ghost.call_sid,
                                  CallUpdate(twilio_says, None, None, None, "network"))
    twiml = phone.pick_up()
    assert twiml.find("Dial/Conference") is None, ET.tostring(twiml)
    after = live(line, ghost.call_sid)
    assert after is not None
    if twilio_says == "completed":
        assert after.status == "abandoned" and "report was lost" in after.outcome_detail
    else:  # Twilio does not know the call: counted lost, back if its hold loop asks again
        assert after.status == "lost"
    assert phone.hang_up() == 204
    if state(line, ana) != "available":
        available(line, ana)
    work(redis_url)  # ana is free again: she gets the real caller, never the ghost
    whisper = talk(line, AgentPhone(line, standin, "+4930555001"), caller)
    assert whisper
    offers = [o for o in [offer_of(line, ghost.call_sid)] if o is not None]
    assert [o.stage for o in offers] == ["caller_gone"]  # rung once for the ghost, never again
    if twilio_says is None:
        with line.extensions["ivr.sessions"]() as session:
            back = record_wait_pass(session, ghost.call_sid, "", utcnow())
        assert back is not None and back.status == "waiting"
