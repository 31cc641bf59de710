"""Running the stand-in: `StandinServer` in a background thread, `ivr standin` in the foreground."""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Final

import click
from flask import current_app, has_app_context
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ivr.standin.app import create_standin
from ivr.standin.queues import QueueBook
from ivr.standin.shapes import API_PREFIX
from ivr.standin.state import (
    CallUpdate,
    Fault,
    StandinCall,
    StandinMessage,
    StandinRequest,
    standin_state,
)

DEFAULT_PORT: Final = 5099


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class StandinServer:
    """The stand-in on a free loopback port in a background thread; a context manager."""

    def __init__(self, account_sid: str = "AC" + "0" * 32,
                 auth_token: str = "standin-auth-token-0123456789abcdef", *,
                 host: str = "127.0.0.1", port: int = 0, quiet: bool = True) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.app = create_standin(account_sid, auth_token)
        self.state = standin_state(self.app)
        self._server: BaseWSGIServer = make_server(
            host, port, self.app, threaded=True,
            request_handler=_QuietRequestHandler if quiet else None)
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="twilio-standin", daemon=True)
        self._thread.start()

    def messages(self) -> list[StandinMessage]:
        """The SMS accepted so far."""
        return self.state.messages()

    def calls(self) -> list[StandinCall]:
        """The calls accepted so far."""
        return self.state.calls()

    def deleted(self) -> list[str]:
        """The SIDs of deleted recordings."""
        return self.state.deleted()

    def requests(self) -> list[StandinRequest]:
        """Every REST API request received (not /_standin/)."""
        return self.state.requests()

    def put_recording(self, sid: str, data: bytes, audio_format: str = "wav") -> None:
        """Provide the audio of recording `sid`."""
        self.state.put_recording(sid, data, audio_format)

    def recordings(self) -> list[str]:
        """The SIDs of the recordings held now."""
        return self.state.recordings()

    def recording(self, sid: str, audio_format: str = "wav") -> bytes | None:
        """The audio held for recording `sid`, if any."""
        return self.state.recording(sid, audio_format)

    def recording_url(self, sid: str) -> str:
        """The RecordingUrl Twilio would post for recording `sid` of this account."""
        return f"{self.url}{API_PREFIX}{self.account_sid}/Recordings/{sid}"

    def inject_fault(self, path: str, status: int | None = 500, *, times: int = 1,
                     delay_seconds: float = 0.0, method: str | None = None) -> None:
        """Fail (or delay, with status None) the next `times` requests whose path matches."""
        self.state.add_fault(Fault(path, status, times, delay_seconds, method))

    @property
    def queues(self) -> QueueBook:
        """The account's call queues and their members."""
        return self.state.queues

    def call_status(self, sid: str) -> str | None:
        """The call's status now (as created, updated by the line, or reported)."""
        return self.state.call_status(sid)

    def call_updates(self, sid: str) -> list[CallUpdate]:
        """The changes made to call `sid`, oldest first."""
        return self.state.call_updates(sid)

    def reset(self) -> None:
        """Forget everything received, every queue and every pending fault."""
        self.state.reset()

    def stop(self) -> None:
        """Stop serving; injected delays in progress end at once."""
        if self.state.stopping.is_set():
            return
        self.state.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> StandinServer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()


def _credentials() -> tuple[str, str]:
    """The account SID and auth token: the app's config, else IVR_* variables, else defaults."""
    from ivr.config import DEFAULTS

    if has_app_context():
        config = current_app.config
        return (str(config.get("TWILIO_ACCOUNT_SID") or DEFAULTS["TWILIO_ACCOUNT_SID"]),
                str(config.get("TWILIO_AUTH_TOKEN") or DEFAULTS["TWILIO_AUTH_TOKEN"]))
    return (os.environ.get("IVR_TWILIO_ACCOUNT_SID") or DEFAULTS["TWILIO_ACCOUNT_SID"],
            os.environ.get("IVR_TWILIO_AUTH_TOKEN") or DEFAULTS["TWILIO_AUTH_TOKEN"])


@click.command("standin")
@click.option("--port", default=DEFAULT_PORT, show_default=True, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; keep it loopback (/_standin/ has no auth).")
def standin_command(port: int, host: str) -> None:
    """Serve a loopback stand-in for Twilio's REST API (development and tests only)."""
    account_sid, auth_token = _credentials()
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: {host} is not loopback; anyone who can reach it can read the "
                   "SMS and calls it receives", err=True)
    server = make_server(host, port, create_standin(account_sid, auth_token), threaded=True)
    url = f"http://{f'[{host}]' if ':' in host else host}:{server.server_port}"
    click.echo(f"Twilio stand-in for account {account_sid} on {url}\n"
               f"Point the app and the workers at it:  IVR_TWILIO_API_BASE_URL={url}\n"
               f"Simulated calls upload their recordings:  ivr call --standin {url} ...")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
