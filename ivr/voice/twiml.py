"""Engine steps rendered as TwiML with the twilio library; the call's position rides in URLs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import Response
from twilio.twiml.voice_response import VoiceResponse

from ivr.voice.messages import locale_for, message
from routing.flow import Flow
from routing.steps import (
    Dial,
    Enqueue,
    Gather,
    Hangup,
    LookupTicket,
    Position,
    Record,
    RequestCallback,
    Say,
    Step,
    SubscribeToIncidents,
)


@dataclass(frozen=True)
class CallState:
    """What every action URL carries: flow version, position and the next step number."""

    version_id: int
    position: Position
    seq: int
    heard: bool = False
    """The caller heard the open incidents announced (h=1): a menu does not say them again."""

    def query(self) -> str:
        """The state as a query string (node ids and languages are URL-safe by the schema).

        A callback's sub-step (c) and window (w), and the ticket number a repeat caller keyed
        in (t), are added only when set, so every other node's URLs stay as they were. Phone
        numbers never travel here (access logs).
        """
        position = self.position
        query = (f"v={self.version_id}&n={quote(position.node)}&l={quote(position.language)}"
                 f"&a={position.attempt}&s={self.seq}")
        if position.step:
            query += f"&c={quote(position.step)}"
        if position.window:
            query += f"&w={quote(position.window)}"
        if position.ticket:
            query += f"&t={quote(position.ticket)}"
        if self.heard:
            query += "&h=1"
        return query


def action_url(endpoint: str, version_id: int, position: Position, seq: int,
               heard: bool = False) -> str:
    """A relative action URL; Twilio resolves it against the public URL it just requested."""
    return f"/voice/{endpoint}?{CallState(version_id, position, seq, heard).query()}"


_rendered: dict[tuple[tuple[Step, ...], int, int, bool], str] = {}
_RENDERED_MAX = 20_000


def render_xml(steps: tuple[Step, ...], flow: Flow, version_id: int, seq: int,
               heard: bool = False) -> str:
    """The TwiML document for the steps, memoised: menus repeat, so most answers are reused."""
    key = (steps, version_id, seq, heard)
    xml = _rendered.get(key)
    if xml is None:
        xml = str(render(steps, flow, version_id, seq, heard))
        if len(_rendered) >= _RENDERED_MAX:
            _rendered.clear()
        _rendered[key] = xml
    return xml


def render(steps: Iterable[Step], flow: Flow, version_id: int, seq: int,
           heard: bool = False) -> VoiceResponse:
    """TwiML for the engine's steps; `seq` numbers the webhook that will answer them, `heard`
    carries on that the caller heard the open incidents."""
    response = VoiceResponse()
    for step in steps:
        if isinstance(step, Say):
            _say(response, flow, step)
        elif isinstance(step, Gather):
            gather = response.gather(
                input="dtmf speech" if step.speech_hints else "dtmf",
                action=action_url("step", version_id, step.position, seq, heard),
                method="POST",
                timeout=step.timeout,
                num_digits=step.num_digits,
                finish_on_key=step.finish_on_key,
                language=_locale(flow, step.position.language),
                hints=", ".join(step.speech_hints) if step.speech_hints else None,
                speech_timeout="auto" if step.speech_hints else None,
            )
            for prompt in step.prompts:
                _say(gather, flow, prompt)
            # Twilio falls through to the next verb when the caller stays silent.
            response.redirect(action_url("silence", version_id, step.position, seq, heard),
                              method="POST")
        elif isinstance(step, Record):
            response.record(
                action=action_url("recorded", version_id, step.position, seq, heard),
                method="POST",
                max_length=step.max_length,
                finish_on_key=step.finish_key,
                play_beep=True,
                trim="trim-silence",
                recording_status_callback=action_url("recording", version_id,
                                                     step.position, seq, heard),
                recording_status_callback_method="POST",
                recording_status_callback_event="completed",
            )
            # Reached only when nothing was recorded: Twilio then skips the action URL.
            response.say(message("no_message", step.position.language),
                         **_voice(flow, step.position.language))
            response.hangup()
        elif isinstance(step, Dial):
            dial = response.dial(
                action=action_url("dialed", version_id, step.position, seq, heard),
                method="POST",
                timeout=step.timeout,
                answer_on_bridge=True,
            )
            for number in step.numbers:
                dial.number(number)
        elif isinstance(step, Enqueue):
            if step.prompt is not None:
                _say(response, flow, step.prompt)
            # the hold loop (waitUrl) and the way out (action) carry the position like menus
            response.enqueue(
                step.queue_name,
                action=action_url("queue/left", version_id, step.position, seq, heard),
                method="POST",
                wait_url=action_url("queue/wait", version_id, step.position, seq, heard),
                wait_url_method="POST",
            )
        elif isinstance(step, Hangup):
            response.hangup()
        elif isinstance(step, RequestCallback | LookupTicket | SubscribeToIncidents):
            continue  # the webhook carries it out and says the outcome in its place
    return response


def hold_loop(flow: Flow, key_url: str | None, announcement: tuple[Say, ...],
              offer: Say | None, hold_music: str | None, pause_seconds: int) -> VoiceResponse:
    """One pass of a waiting caller's hold loop: the announcement, then the offer and the music
    (or silence) while listening for one key at `key_url` (None: no keys to press)."""
    response = VoiceResponse()
    for said in announcement:
        _say(response, flow, said)
    target: VoiceResponse | Any = response
    if key_url is not None:
        language = offer.language if offer is not None else flow.default_language
        target = response.gather(input="dtmf", num_digits=1, action=key_url, method="POST",
                                 timeout=1, language=_locale(flow, language))
        if offer is not None:
            _say(target, flow, offer)
    if hold_music:
        target.play(hold_music)
    else:
        target.pause(length=pause_seconds)
    return response


def conference_join(name: str, action: str | None = None,
                    before: VoiceResponse | None = None) -> VoiceResponse:
    """Join the conference of a live call (the caller, with the Dial's action for afterwards;
    the agent, after `before`: the whisper); it ends when either side leaves."""
    response = before if before is not None else VoiceResponse()
    dial = response.dial(action=action, method="POST" if action else None)
    dial.conference(name, beep=False, start_conference_on_enter=True,
                    end_conference_on_exit=True)
    return response


def leave_line() -> VoiceResponse:
    """Take the caller out of the queue (Enqueue's action says where they go next)."""
    response = VoiceResponse()
    response.leave()
    return response


def pause(seconds: int) -> VoiceResponse:
    """Silence for a moment (a hold loop that asks again right after)."""
    response = VoiceResponse()
    response.pause(length=seconds)
    return response


def apology(language: str, recording_callback: str, recorded_action: str) -> VoiceResponse:
    """The answer when anything fails: an apology in the caller's language and a voicemail."""
    response = VoiceResponse()
    locale = locale_for(language)
    response.say(message("apology", language), language=locale)
    response.record(
        action=recorded_action,
        method="POST",
        max_length=180,
        finish_on_key="#",
        play_beep=True,
        trim="trim-silence",
        recording_status_callback=recording_callback,
        recording_status_callback_method="POST",
        recording_status_callback_event="completed",
    )
    response.say(message("no_message", language), language=locale)
    response.hangup()
    return response


def spoken(text: str, language: str, flow: Flow | None = None) -> VoiceResponse:
    """A response that says one thing and hangs up."""
    response = VoiceResponse()
    if flow is None:
        response.say(text, language=locale_for(language))
    else:
        response.say(text, **_voice(flow, language))
    response.hangup()
    return response


TWIML_TYPE = "text/xml; charset=utf-8"


def twiml_response(twiml: VoiceResponse | str, status: int = 200) -> Response:
    """A Flask response carrying TwiML."""
    return Response(str(twiml), status=status, content_type=TWIML_TYPE)


def _say(target: Any, flow: Flow, step: Say) -> None:
    target.say(step.text, **_voice(flow, step.language))


def _voice(flow: Flow, language: str) -> dict[str, str]:
    voice = flow.voices.get(language)
    if voice is None:
        return {"language": locale_for(language)}
    if voice.voice:
        return {"language": voice.locale, "voice": voice.voice}
    return {"language": voice.locale}


def _locale(flow: Flow, language: str) -> str:
    return _voice(flow, language)["language"]
