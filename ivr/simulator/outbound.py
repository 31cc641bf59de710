"""The Twilio side of an outbound call the line placed: ring the agent, follow the TwiML, and
report how the agent's leg ended.

The stand-in (ivr/standin) only records the REST request that asked for a call; this module
then plays what Twilio would do with it. For a callback: fetch the call's Url when the agent
answers, speak the whisper, run the Dial to the caller, post Dial's action with the caller's
outcome. For a live caller: fetch the Url (which dequeues the caller), speak the whisper, and
talk in the `<Dial><Conference>` the caller was sent to. Finally post the agent leg's status
callback. A call the line canceled while it rang (the caller hung up first) only gets its
`canceled` status callback, as from Twilio. With `standin_url`, the stand-in hears how the
call went on (`/_standin/calls/CA...`), so it is no longer listed as ringing.
"""

from __future__ import annotations

import contextlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urljoin, urlsplit

import click
import requests
from twilio.request_validator import RequestValidator

from ivr.config import DEFAULT_AUTH_TOKEN
from ivr.standin import StandinCall

AgentBehaviour = Literal["answer", "no-answer", "busy", "hangup"]
"""answer: picks up and stays; hangup: picks up and hangs up during the whisper."""
CallerBehaviour = Literal["completed", "busy", "no-answer", "failed"]
Post = Callable[[str, dict[str, str], dict[str, str]], tuple[int, str]]
RINGING: Final = frozenset({"queued", "ringing"})


@dataclass
class OutboundTranscript:
    """What happened on an outbound call: what the agent heard, whom they talked to."""

    call_sid: str
    heard: list[str] = field(default_factory=list)
    dialled: list[str] = field(default_factory=list)
    conferences: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    canceled: bool = False
    talk_seconds: int = 0


def play_outbound_call(call: StandinCall, auth_token: str, *, agent: AgentBehaviour = "answer",
                       caller: CallerBehaviour = "completed", talk_seconds: int = 42,
                       post: Post | None = None,
                       standin_url: str | None = None) -> OutboundTranscript:
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

    if call.resource.get("status") == "canceled":  # the line hung up the ringing phone
        transcript.canceled = True
        if call.status_callback:
            signed(call.status_callback, {**base, "CallStatus": "canceled", "CallDuration": "0"})
        return transcript
    if agent in ("answer", "hangup") and call.url:
        _report(standin_url, call.sid, "in-progress")
        status, body = signed(call.url, {**base, "CallStatus": "in-progress"})
        if status == 200 and agent == "answer":
            _follow(ET.fromstring(body), call.url, base, caller, talk_seconds, transcript,
                    signed)
        elif status == 200:
            transcript.heard.extend(_says(ET.fromstring(body)))
    final = {"answer": "completed", "hangup": "completed"}.get(agent, agent)
    if call.status_callback:
        duration = transcript.talk_seconds or (talk_seconds if agent == "answer" else 0)
        signed(call.status_callback, {**base, "CallStatus": final,
                                      "CallDuration": str(duration)})
    _report(standin_url, call.sid, final)
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
            conferences = [(c.text or "").strip() for c in verb if c.tag == "Conference"]
            numbers = [(n.text or "").strip() for n in verb if n.tag == "Number"]
            transcript.dialled.extend(numbers)
            transcript.conferences.extend(conferences)
            outcome = "completed" if conferences else caller
            talked = talk_seconds if outcome == "completed" else 0
            transcript.talk_seconds += talked
            action = verb.get("action")
            if not action:
                continue  # the call ended: Twilio goes on with the next verb
            params = {**base, "CallStatus": "in-progress", "DialCallStatus": outcome,
                      "DialCallDuration": str(talked)}
            if not conferences:
                params["DialCallSid"] = "CA" + uuid.uuid4().hex
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


def _report(standin_url: str | None, sid: str, status: str) -> None:
    """Tell the stand-in how the call went on (it places no calls itself)."""
    if standin_url is None:
        return
    with contextlib.suppress(requests.RequestException):  # only `--list` depends on it
        requests.post(f"{standin_url.rstrip('/')}/_standin/calls/{sid}",
                      json={"status": status}, timeout=10)


# --- the command -------------------------------------------------------------------


def call_kind(record: dict[str, Any]) -> str:
    """`live` for a call ringing an agent for a waiting caller, else `callback`."""
    url = (record.get("params") or {}).get("Url") or ""
    return "live" if urlsplit(url).path.endswith("/dialer/live/agent") else "callback"


def describe(record: dict[str, Any]) -> str:
    """One line for a call in `ivr answer --list`."""
    url = (record.get("params") or {}).get("Url") or ""
    query = parse_qs(urlsplit(url).query)
    kind = call_kind(record)
    about = f" offer {query['offer'][0]}" if kind == "live" and query.get("offer") else ""
    since = ""
    if record.get("date_created"):
        since = f", since {parsedate_to_datetime(record['date_created']):%H:%M:%S}"
    return f"{record['sid']}  {record['to']}  {kind}{about}  {record['status']}{since}"


def answer_command() -> click.Command:
    """`ivr answer`: play the agent's phone for a call the line placed."""

    @click.command("answer")
    @click.option("--standin", "standin_url", default="http://127.0.0.1:5099", show_default=True,
                  help="The Twilio stand-in the line places its calls through.")
    @click.option("--token", envvar="IVR_TWILIO_AUTH_TOKEN", default=DEFAULT_AUTH_TOKEN,
                  show_default="IVR_TWILIO_AUTH_TOKEN or the development token",
                  help="Auth token to sign Twilio's requests with.")
    @click.option("--agent", "agent_does", default="answer", show_default=True,
                  type=click.Choice(["answer", "no-answer", "busy", "hangup"]))
    @click.option("--caller", "caller_does", default="completed", show_default=True,
                  type=click.Choice(["completed", "busy", "no-answer", "failed"]),
                  help="How the caller of a callback answers (live callers are on the line).")
    @click.option("--talk", "talk_seconds", default=60, show_default=True,
                  type=click.IntRange(min=0), help="Seconds the agent and the caller talk.")
    @click.option("--call", "call_sid", metavar="SID",
                  help="The call to answer [default: the latest one still ringing].")
    @click.option("--list", "list_calls", is_flag=True,
                  help="Show the calls ringing an agent now, and answer none.")
    def answer(standin_url: str, token: str, agent_does: AgentBehaviour,
               caller_does: CallerBehaviour, talk_seconds: int, call_sid: str | None,
               list_calls: bool) -> None:
        """Answer a ringing agent call (a callback or a live caller) as the agent."""
        try:
            records = requests.get(f"{standin_url.rstrip('/')}/_standin/calls", timeout=10)
            records.raise_for_status()
        except requests.RequestException as exc:
            raise click.ClickException(f"no stand-in at {standin_url}: {exc}") from exc
        calls: list[dict[str, Any]] = records.json()
        ringing = [record for record in calls if record.get("status") in RINGING]
        if list_calls:
            for record in ringing:
                click.echo(describe(record))
            if not ringing:
                click.echo("no agent's phone is ringing")
            return
        record = _chosen(calls, ringing, call_sid)
        call = standin_call_from_record(record)
        if record.get("status") == "canceled":
            click.echo(f"call {call.sid} was canceled by the line (the caller hung up first)")
        else:
            click.echo(f"ringing {call.to} ({call_kind(record)} call {call.sid})")
        transcript = play_outbound_call(call, token, agent=agent_does, caller=caller_does,
                                        talk_seconds=talk_seconds, standin_url=standin_url)
        for line in transcript.heard:
            click.echo(f"  agent hears: {line}")
        for number in transcript.dialled:
            click.echo(f"  bridged to {number}: {caller_does}")
        for room in transcript.conferences:
            click.echo(f"  talking with the caller in conference {room} for {talk_seconds} s")
        if not transcript.canceled:
            ended = "completed" if agent_does in ("answer", "hangup") else agent_does
            click.echo(f"  agent leg {ended}")

    return answer


def _chosen(calls: list[dict[str, Any]], ringing: list[dict[str, Any]],
            call_sid: str | None) -> dict[str, Any]:
    if call_sid is not None:
        found = next((record for record in calls if record["sid"] == call_sid), None)
        if found is None:
            raise click.ClickException(f"the stand-in knows no call {call_sid}")
        if found.get("status") not in RINGING and found.get("status") != "canceled":
            raise click.ClickException(f"call {call_sid} is {found.get('status')}, not ringing")
        return found
    if not ringing:
        raise click.ClickException("no agent's phone is ringing: is an agent available and a "
                                   "caller waiting or a callback due? (--list shows calls)")
    return ringing[-1]


def standin_call_from_record(record: dict[str, Any]) -> StandinCall:
    """A call as the stand-in lists it at /_standin/calls."""
    params = dict(record.get("params") or {})
    return StandinCall(sid=record["sid"], to=record["to"], from_=record["from"],
                       url=params.get("Url"), twiml=params.get("Twiml"),
                       status_callback=record.get("status_callback"), params=params,
                       resource=record)
