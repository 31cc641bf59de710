"""No phone numbers, transcripts or tokens in the logs at INFO: a caller asks for a callback
with a keyed-in number, the dialer rings the agent and the caller, misses them three times and
texts them; every log record of all of it is read."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker

from callbacks.logs import make_handler
from callbacks.queues import QUEUES
from callbacks.workqueue.agents import create_agent
from callbacks.workqueue.router import route_sweep
from callbacks.workqueue.skills import set_skills
from ivr.simulator.outbound import play_outbound_call
from ivr.standin import StandinServer
from tests.conftest import AUTH_TOKEN, LINE, PUBLIC_BASE_URL, desk_app, publish
from tests.test_callback_ivr import OPEN, VOICE_FLOW
from tests.test_voice import CALLER, Phone

KEYED_IN = "+4915187654321"
AGENT_PHONE = "+4930555060"
SECRETS = (AUTH_TOKEN, "correct horse battery")


def _digits(number: str) -> list[str]:
    bare = number.lstrip("+")
    return [number, bare, bare[-9:]]  # E.164, without plus, national significant part


@pytest.fixture
def line(database_url: str, redis_url: str, standin: StandinServer) -> Iterator[Flask]:
    """The test line, open, placing calls and texts through the stand-in; two tries only."""
    with desk_app(database_url, redis_url, standin, CLOCK=lambda: OPEN,
                  CALLBACK_MAX_ATTEMPTS=2, CALLBACK_RETRY_MINUTES="0") as app:
        publish(app, VOICE_FLOW)
        with app.extensions["ivr.sessions"]() as session:
            agent = create_agent(session, "lena", SECRETS[1], phone=AGENT_PHONE)
            agent.availability = "available"
            set_skills(session, agent.id, languages={"en": 2, "de": 2, "pl": 2, "ru": 2})
            session.commit()
        yield app


@pytest.fixture(params=["text", "json"])
def written(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """The lines as the process writes them (IVR_LOG_FORMAT text or json), every field."""
    stream = io.StringIO()
    handler = make_handler(request.param, stream)
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_a_whole_callback_logs_no_numbers_tokens_or_texts(
        line: Flask, standin: StandinServer, redis_url: str,
        caplog: pytest.LogCaptureFixture, written: io.StringIO) -> None:
    caplog.set_level(logging.INFO)
    phone = Phone(line.test_client())
    phone.dial_in()
    phone.press("1")
    phone.press("3")  # a callback
    phone.press("1")  # as soon as possible
    phone.press("2")  # at another number
    heard = phone.press(KEYED_IN.replace("+", "00"))
    assert "10001" in " ".join(say.text or "" for say in heard.iter("Say")).replace(" ", "")

    def post(url: str, params: dict[str, str], headers: dict[str, str]) -> tuple[int, str]:
        answer = line.test_client().post(url.removeprefix(PUBLIC_BASE_URL), data=params,
                                         headers=headers)
        return answer.status_code, answer.get_data(as_text=True)

    for _ in range(2):
        assert route_sweep()["callbacks"] != []
        play_outbound_call(standin.calls()[-1], AUTH_TOKEN, caller="no-answer", post=post)
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)
    bodies = [message.body for message in standin.messages()]
    assert len(bodies) == 2 and any("could not reach" in body for body in bodies)

    logged = "\n".join(record.getMessage() for record in caplog.records
                       if record.levelno >= logging.INFO) + "\n" + written.getvalue()
    assert "CA" in written.getvalue()  # the lines name calls by their CallSid, not number
    assert "callback" in logged  # the log does say what happened
    for secret in (*_digits(CALLER), *_digits(KEYED_IN), *_digits(AGENT_PHONE), *_digits(LINE),
                   *SECRETS, *bodies):
        assert secret not in logged, f"{secret!r} was logged"
