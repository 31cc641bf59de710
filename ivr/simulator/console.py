"""The simulator at a terminal: one line per call event and the `call` CLI command."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import click
from flask import current_app, has_app_context

from ivr.simulator.callers import (
    DIAL_OUTCOMES,
    Caller,
    InteractiveCaller,
    scripted_caller_from_options,
)
from ivr.simulator.events import short_url
from ivr.simulator.network import (
    DEFAULT_ACCOUNT_SID,
    DEFAULT_CALLED,
    DEFAULT_CALLER,
    DEFAULT_MAX_WAIT_PASSES,
    TWILIO_API_BASE_URL,
    CallEvent,
    Simulator,
)

# --- printing ----------------------------------------------------------------------


def format_event(event: CallEvent) -> str:
    """One line for a terminal, e.g. "  [de-DE] Willkommen beim IT-Service-Desk."."""
    detail = event.detail
    if event.kind == "say":
        return f"  [{event.language}] {event.text}"
    if event.kind == "play":
        return f"  ♪ play {event.text or 'digits ' + str(detail.get('digits'))}"
    if event.kind == "pause":
        return f"  … pause {detail['length']} s"
    if event.kind == "gather":
        return _format_gather(event)
    if event.kind == "record":
        if detail["phase"] == "listen":
            keys = detail["finish_on_key"] or "silence"
            return (f"  ... recording after the beep (max {detail['max_length']} s, "
                    f"finish with {keys})")
        if not detail["path"]:
            return "  ● no recording (silence)"
        uploaded = ", uploaded to the stand-in" if detail.get("uploaded_to") else ""
        return f"  ● recording {detail['duration']:.1f} s ({detail['finished']}){uploaded}"
    if event.kind == "dial":
        outcome = {"completed": "answered", "no-answer": "no answer"}.get(
            detail["outcome"], detail["outcome"])
        return f"  ☎ dialing {event.text or '?'}, {outcome}"
    if event.kind == "redirect":
        return f"  ↪ redirect to {short_url(event.url)}"
    if event.kind in ("enqueue", "wait", "leave", "dequeue", "conference"):
        return _format_queue(event)
    if event.kind == "hangup":
        return f"  ☎ {event.text}" if detail.get("by") == "caller" else f"  ☎ hang-up: {event.text}"
    if event.kind == "failure":
        return f"  ✗ {event.text}"
    if event.kind == "status":
        posted = f", status callback HTTP {event.http_status}" if detail["posted"] else ""
        return f"  ☎ call {event.text} after {detail['duration']:.0f} s{posted}"
    if event.kind == "request":
        status = event.http_status if event.http_status is not None else "no answer"
        return f"  → {detail['method']} {short_url(event.url)} ({event.text}): {status}"
    return f"  ? {event.text}"


def _format_queue(event: CallEvent) -> str:
    detail = event.detail
    if event.kind == "enqueue":
        alone = "" if detail.get("standin") else " (no stand-in: nobody can dequeue the call)"
        return f"  ⏳ waiting in queue {event.text}, position {detail['position']}{alone}"
    if event.kind == "wait":
        return (f"  ⏳ hold loop pass {detail['pass']}: position {detail['position']} of "
                f"{detail['size']}, {detail['queue_time']} s in queue {event.text}")
    if event.kind == "leave":
        how = {"leave": "left", "hangup": "hung up in", "queue-full": "turned away by full"}
        return (f"  ↩ {how.get(detail['result'], detail['result'])} queue {event.text} after "
                f"{detail['queue_time']} s")
    if event.kind == "dequeue":
        target = "inline TwiML" if detail.get("twiml") else short_url(event.url)
        return (f"  ☎ dequeued from {event.text} after {detail['queue_time']} s, "
                f"to {target}")
    return f"  ☎ talking in conference {event.text} for {detail['talk_seconds']} s"


def _format_gather(event: CallEvent) -> str:
    detail = event.detail
    if detail["phase"] == "listen":
        wanted = " or ".join({"dtmf": "keys", "speech": "speech"}.get(mode, mode)
                             for mode in detail["input"])
        return f"  ... waiting for {wanted} (timeout {detail['timeout']}s)"
    if detail.get("ignored"):
        return f"  > {detail['ignored']}"
    if detail.get("speech"):
        return f'  > said "{detail["speech"]}" (confidence {detail["confidence"]:.2f})'
    if detail.get("digits"):
        finished = f" then {detail['finished_on_key']}" if detail["finished_on_key"] else ""
        return f"  > pressed {detail['digits']}{finished}"
    return "  > silence"


# --- the `call` command ------------------------------------------------------------


def _setting(config_key: str, *env_names: str) -> str | None:
    for name in env_names:
        if os.environ.get(name):
            return os.environ[name]
    if has_app_context() and current_app.config.get(config_key):
        return str(current_app.config[config_key])
    return None


def _standin(api_base_url: str | None) -> str | None:
    """The configured Twilio API host when it is a stand-in (not Twilio itself)."""
    host = (urlsplit(api_base_url or "").hostname or "").lower()
    if not host or host == "twilio.com" or host.endswith(".twilio.com"):
        return None
    return api_base_url


def call_command() -> click.Command:
    """The `call` CLI command: place one simulated call against a running web app."""

    @click.command("call")
    @click.option("--url", "base_url", default="http://127.0.0.1:5000", show_default=True,
                  help="Where the web app listens.")
    @click.option("--token", help="Twilio auth token to sign with [default: $TWILIO_AUTH_TOKEN, "
                  "$IVR_TWILIO_AUTH_TOKEN or the app's TWILIO_AUTH_TOKEN].")
    @click.option("--from", "from_", default=DEFAULT_CALLER, show_default=True,
                  help="The caller's number.")
    @click.option("--to", default=DEFAULT_CALLED, show_default=True, help="The number called.")
    @click.option("--press", help="Keys for the gathers in order, comma-separated: 1,3.")
    @click.option("--say", multiple=True, help="Words for the gathers after the --press keys.")
    @click.option("--script", help='The whole call, e.g. "1,say:vpn,-,wav:msg.wav,dial:busy".')
    @click.option("--record", type=click.Path(exists=True, dir_okay=False),
                  help="WAV file left at the first <Record>.")
    @click.option("--dial", type=click.Choice(DIAL_OUTCOMES), help="Outcome of each <Dial>.")
    @click.option("--public-url", help="The URL Twilio would call when the app is behind a proxy "
                  "[default: $IVR_PUBLIC_BASE_URL or the app's PUBLIC_BASE_URL].")
    @click.option("--standin", "standin_url", metavar="URL",
                  help="A Twilio stand-in (`ivr standin`): recordings are uploaded there and "
                  "their RecordingUrl points there; callers wait in its queues [default for "
                  "queues: $IVR_TWILIO_API_BASE_URL when it is not Twilio].")
    @click.option("--max-wait-passes", default=DEFAULT_MAX_WAIT_PASSES, show_default=True,
                  type=click.IntRange(min=1),
                  help="Passes of a queue's hold loop before the caller gives up and hangs up.")
    @click.option("--wait-pace", default=1.0, show_default=True, type=click.FloatRange(min=0),
                  help="Real seconds between passes of a hold loop (time for an agent to "
                  "answer with `ivr answer`).")
    @click.option("--talk", "talk_seconds", default=60, show_default=True,
                  type=click.IntRange(min=0),
                  help="Seconds a connected <Dial> or a conference with an agent lasts.")
    @click.option("--verbose", is_flag=True, help="Also print each HTTP request.")
    @click.option("--quiet", is_flag=True, help="Print failures only.")
    def call(base_url: str, token: str | None, from_: str, to: str, press: str | None,
             say: tuple[str, ...], script: str | None, record: str | None, dial: str | None,
             public_url: str | None, standin_url: str | None, max_wait_passes: int,
             wait_pace: float, talk_seconds: int, verbose: bool, quiet: bool) -> None:
        """Call the IVR like Twilio would, with scripted or typed caller input."""
        token = token or _setting("TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN",
                                  "IVR_TWILIO_AUTH_TOKEN")
        if not token:
            raise click.UsageError("no auth token: pass --token or set TWILIO_AUTH_TOKEN")
        if public_url is None:
            public_url = _setting("PUBLIC_BASE_URL", "IVR_PUBLIC_BASE_URL")
        scripted = press is not None or bool(say) or script is not None
        api_base_url = _setting("TWILIO_API_BASE_URL", "IVR_TWILIO_API_BASE_URL")
        caller: Caller
        try:
            if not scripted and sys.stdin is not None and sys.stdin.isatty():
                caller = InteractiveCaller(recording=record, dial_outcome=dial)
            else:
                caller = scripted_caller_from_options(press, say, script, recording=record,
                                                      dial_default=dial or "completed")
            simulator = Simulator(
                base_url, token, caller=from_, called=to, public_base_url=public_url or None,
                account_sid=_setting("TWILIO_ACCOUNT_SID", "IVR_TWILIO_ACCOUNT_SID")
                or DEFAULT_ACCOUNT_SID,
                recording_base_url=standin_url or api_base_url or TWILIO_API_BASE_URL,
                upload_recordings=bool(standin_url),
                standin_url=standin_url or _standin(api_base_url),
                max_wait_passes=max_wait_passes, wait_pace=wait_pace,
                dial_talk_seconds=talk_seconds,
            )
        except ValueError as exc:
            raise click.UsageError(str(exc)) from exc

        def show(event: CallEvent) -> None:
            if event.kind == "failure":
                click.echo(format_event(event), err=True)
            elif not quiet and (verbose or event.kind != "request"):
                click.echo(format_event(event))

        if not quiet:
            click.echo(f"Calling {simulator.entry_url} from {from_} to {to}")
        try:
            transcript = simulator.run(caller, on_event=show)
        except ValueError as exc:  # a script token at the wrong verb, an unreadable WAV
            raise click.UsageError(str(exc)) from exc
        if transcript.failed:
            click.echo(f"Call {transcript.call_sid} failed: the caller would hear "
                       "'an application error has occurred'.", err=True)
            sys.exit(1)

    return call
