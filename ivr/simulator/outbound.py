"""The Twilio side of an outbound call the dialer placed: ring the agent, follow the TwiML, and
report how the caller's leg ended.

The stand-in (ivr/standin.py) only records the REST request that asked for a call; this module
then plays what Twilio would do with it: fetch the call's Url when the agent answers, speak the
Say verbs, run the Dial to the caller, post Dial's action with the caller's outcome, and finally
post the agent leg's status callback.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin

import click
import requests
from twilio.request_validator import RequestValidator

from ivr.config import DEFAULT_AUTH_TOKEN
from ivr.standin import StandinCall

AgentBehaviour = Literal["answer", "no-answer", "busy", "hangup"]
"""answer: picks up and stays; hangup: picks up and hangs up during the whisper."""
CallerBehaviour = Literal["completed", "busy", "no-answer", "failed"]
Post = Callable[[str, dict[str, str], dict[str, str]], tuple[int, str]]


@dataclass
class OutboundTranscript:
    """What happened on an outbound call: what the agent heard, whom they were bridged to."""

    call_sid: str
    heard: list[str] = field(default_factory=list)
    dialled: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)


def play_outbound_call(call: StandinCall, auth_token: str, *, agent: AgentBehaviour = "answer",
                       caller: CallerBehaviour = "completed", talk_seconds: int = 42,
                       post: Post | None = None) -> OutboundTranscript:
    """Play Twilio and both phones for a call placed through the stand-in."""
    send = post or _post_over_http
    validator = RequestValidator(auth_token)
    transcript = OutboundTranscript(call.sid)
    base = {"AccountSid": call.params.get("AccountSid", ""), "CallSid": call.sid,
            "From": call.from_, "To": call.to, "Direction": "outbound-api",
            "ApiVersion": "2010-04-01"}

    def signed(url: str, params: dict[str, str]) -> tuple[int, str]:
        headers = {"X-Twilio-Signature": validator.compute_signature(url, params),
                   "I-Twilio-Idempotency-Token": str(uuid.uuid4())}
        status, body = send(url, params, headers)
        transcript.statuses.append(status)
        return status, body

    if agent in ("answer", "hangup") and call.url:
        status, body = signed(call.url, {**base, "CallStatus": "in-progress"})
        if status == 200 and agent == "answer":
            _follow(ET.fromstring(body), call.url, base, caller, talk_seconds, transcript,
                    signed)
        elif status == 200:
            transcript.heard.extend(_says(ET.fromstring(body)))
    final = {"answer": "completed", "hangup": "completed"}.get(agent, agent)
    if call.status_callback:
        signed(call.status_callback, {**base, "CallStatus": final,
                                      "CallDuration": str(talk_seconds if agent == "answer"
                                                          else 0)})
    return transcript


def _follow(document: ET.Element, url: str, base: dict[str, str], caller: CallerBehaviour,
            talk_seconds: int, transcript: OutboundTranscript,
            signed: Callable[[str, dict[str, str]], tuple[int, str]]) -> None:
    for verb in document:
        if verb.tag == "Say":
            transcript.heard.append((verb.text or "").strip())
        elif verb.tag == "Hangup":
            return
        elif verb.tag == "Dial":
            numbers = [(n.text or "").strip() for n in verb if n.tag == "Number"]
            transcript.dialled.extend(numbers)
            action = verb.get("action")
            if not action:
                continue
            params = {**base, "CallStatus": "in-progress", "DialCallStatus": caller,
                      "DialCallSid": "CA" + uuid.uuid4().hex,
                      "DialCallDuration": str(talk_seconds if caller == "completed" else 0)}
            target = urljoin(url, action)
            status, body = signed(target, params)
            if status == 200:
                transcript.heard.extend(_says(ET.fromstring(body)))
            return


def _says(document: ET.Element) -> list[str]:
    return [(verb.text or "").strip() for verb in document if verb.tag == "Say"]


def _post_over_http(url: str, params: dict[str, str],
                    headers: dict[str, str]) -> tuple[int, str]:
    response = requests.post(url, data=params, headers=headers, timeout=10)
    return response.status_code, response.text


def answer_command() -> click.Command:
    """`ivr answer`: play the agent's phone for the latest call the dialer placed."""

    @click.command("answer")
    @click.option("--standin", "standin_url", default="http://127.0.0.1:5099", show_default=True,
                  help="The Twilio stand-in the line places its calls through.")
    @click.option("--token", envvar="IVR_TWILIO_AUTH_TOKEN", default=DEFAULT_AUTH_TOKEN,
                  show_default="IVR_TWILIO_AUTH_TOKEN or the development token",
                  help="Auth token to sign Twilio's requests with.")
    @click.option("--agent", "agent_does", default="answer", show_default=True,
                  type=click.Choice(["answer", "no-answer", "busy", "hangup"]))
    @click.option("--caller", "caller_does", default="completed", show_default=True,
                  type=click.Choice(["completed", "busy", "no-answer", "failed"]))
    @click.option("--talk", "talk_seconds", default=60, show_default=True,
                  help="Seconds the agent and the caller talk.")
    def answer(standin_url: str, token: str, agent_does: AgentBehaviour,
               caller_does: CallerBehaviour, talk_seconds: int) -> None:
        """Answer the latest callback call as the agent (and play the caller's side)."""
        try:
            records = requests.get(f"{standin_url.rstrip('/')}/_standin/calls", timeout=10)
            records.raise_for_status()
        except requests.RequestException as exc:
            raise click.ClickException(f"no stand-in at {standin_url}: {exc}") from exc
        calls = records.json()
        if not calls:
            raise click.ClickException("the line has placed no call yet: is an agent "
                                       "available and a callback waiting?")
        call = standin_call_from_record(calls[-1])
        click.echo(f"ringing {call.to} (call {call.sid})")
        transcript = play_outbound_call(call, token, agent=agent_does, caller=caller_does,
                                        talk_seconds=talk_seconds)
        for line in transcript.heard:
            click.echo(f"  agent hears: {line}")
        for number in transcript.dialled:
            click.echo(f"  bridged to {number}: {caller_does}")

    return answer


def standin_call_from_record(record: dict[str, Any]) -> StandinCall:
    """A call as the stand-in lists it at /_standin/calls."""
    params = dict(record.get("params") or {})
    return StandinCall(sid=record["sid"], to=record["to"], from_=record["from"],
                       url=params.get("Url"), twiml=params.get("Twiml"),
                       status_callback=record.get("status_callback"), params=params,
                       resource=record)
