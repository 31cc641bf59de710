"""The receiving side of delivery, on loopback, for the tests and benchmarks/outbox.py.

`SmtpReceiver`: a real SMTP server (aiosmtpd) that requires STARTTLS (a self-signed
certificate made here with openssl) and AUTH, keeps every message it accepts, and can be told
to fail: reject with a temporary (451) or lasting (554) reply, drop the connection, or stall.

`WebhookReceiver`: an HTTP server that checks each delivery with the README's verification
snippet (signature, replay window, idempotency key), keeps every request, and can answer 503,
stall, or refuse connections altogether (stopped).

Both count what they received (every try) and what they accepted once (by Message-ID or
Idempotency-Key), so a test can tell a repeat the receiver recognised from a duplicate.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parents[1]
SMTP_USER = "phone-line@example.test"
SMTP_PASSWORD = "smtp-secret-for-tests"
WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789"


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with openssl (valid for a day)."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def readme_verifier() -> Callable[..., Any]:
    """`verify_delivery` from the README's webhook section, run as the README shows it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- verify-snippet -->\s*```python\n(.*?)```", text, re.S)
    if match is None:
        raise AssertionError("README: no ```python block after <!-- verify-snippet -->")
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "README.md (verification snippet)", "exec"), namespace)
    return namespace["verify_delivery"]  # type: ignore[no-any-return]


@dataclass
class Faults:
    """What a receiver does instead of accepting: set `mode` and how many times (-1: always)."""

    mode: str = ""
    times: int = 0
    stall_seconds: float = 0.0
    hits: int = 0
    skip: int = 0
    """Requests accepted before the faults begin."""

    def take(self) -> str:
        """The fault for this request ('' to accept), counting it down."""
        if self.skip > 0:
            self.skip -= 1
            return ""
        if not self.mode or self.times == 0:
            return ""
        if self.times > 0:
            self.times -= 1
        self.hits += 1
        return self.mode


# --- SMTP ------------------------------------------------------------------------------


@dataclass
class _Mailbox:
    received: list[EmailMessage] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    faults: Faults = field(default_factory=Faults)


class _Handler:
    def __init__(self, box: _Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        fault = self.box.faults.take()
        if fault == "stall":
            await asyncio.sleep(self.box.faults.stall_seconds)
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if fault == "drop":
            server.transport.close()
            return "421 4.3.2 closing"
        if fault == "reject":
            return "451 4.3.0 mailbox busy, try again later"
        if fault == "refuse":
            return "554 5.7.1 message refused"
        with self.box.lock:
            self.box.received.append(message)
        return "250 2.0.0 queued"


class SmtpReceiver:
    """An SMTP server on loopback with STARTTLS and AUTH; a context manager."""

    def __init__(self, directory: Path, port: int) -> None:
        import ssl

        self.cert, key = self_signed_certificate(directory)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.box = _Mailbox()
        self.port = port
        # aiosmtpd warns on every AUTH that its own legacy Session.login_data is deprecated
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        self.controller = Controller(
            _Handler(self.box), hostname="127.0.0.1", port=port, tls_context=context,
            require_starttls=True, auth_required=True, auth_require_tls=True,
            authenticator=self._authenticate, ready_timeout=10)

    @staticmethod
    def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == SMTP_USER \
            and auth_data.password.decode() == SMTP_PASSWORD
        return AuthResult(success=ok, handled=False)

    def __enter__(self) -> SmtpReceiver:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    @property
    def faults(self) -> Faults:
        """What the server does instead of accepting the next messages."""
        return self.box.faults

    def fail(self, mode: str, times: int = -1, stall_seconds: float = 0.0) -> None:
        """Reject ('reject' 451, 'refuse' 554), 'drop' or 'stall' the next `times` messages."""
        self.box.faults = Faults(mode, times, stall_seconds)

    def recover(self) -> None:
        """Accept every message again."""
        self.box.faults = Faults()

    def messages(self) -> list[EmailMessage]:
        """Every message accepted, in arrival order (repeats included)."""
        with self.box.lock:
            return list(self.box.received)

    def message_ids(self) -> list[str]:
        """The Message-ID of every accepted message, in arrival order."""
        return [str(message["Message-ID"]) for message in self.messages()]


# --- webhook -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    """One request the webhook receiver accepted after checking it."""

    key: str
    document: dict[str, Any] | None
    """None: a repeat of a key seen before (answered 200, nothing done)."""
    at: float


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class WebhookReceiver:
    """An HTTP receiver verifying every delivery with the README's snippet; a context manager."""

    def __init__(self, secret: str = WEBHOOK_SECRET, port: int = 0) -> None:
        self.secret = secret.encode()
        self.verify = readme_verifier()
        self.seen: set[str] = set()
        self.hooks: list[Hook] = []
        self.rejected: list[str] = []
        self.faults = Faults()
        self.lock = threading.Lock()
        self.port = port
        self._server: BaseWSGIServer | None = None
        self.start()

    @property
    def url(self) -> str:
        """Where deliveries are POSTed."""
        return f"http://127.0.0.1:{self.port}/hooks/tickets"

    def start(self) -> None:
        """Listen (again) on the receiver's port."""
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True,
                                   request_handler=_QuietHandler)
        self.port = self._server.server_port
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="webhook-receiver").start()

    def stop(self) -> None:
        """Stop listening: deliveries find the port closed."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, mode: str, times: int = -1, stall_seconds: float = 0.0,
             skip: int = 0) -> None:
        """Answer '503', or 'stall' before answering, for `times` requests after `skip`."""
        self.faults = Faults(mode, times, stall_seconds, skip=skip)

    def recover(self) -> None:
        """Answer every request again."""
        self.faults = Faults()

    def accepted(self) -> list[dict[str, Any]]:
        """Each delivery taken once (repeats left out), in arrival order."""
        with self.lock:
            return [hook.document for hook in self.hooks if hook.document is not None]

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        body = request.get_data()
        fault = self.faults.take()
        if fault == "stall":
            # The request arrived; the answer is late (past the sender's timeout, or killed).
            self._record(request, body)
            time.sleep(self.faults.stall_seconds)
            return Response("slow", status=504)(environ, start_response)
        if fault == "503":
            return Response("unavailable", status=503)(environ, start_response)
        response = self._record(request, body)
        return response(environ, start_response)

    def _record(self, request: Request, body: bytes) -> Response:
        try:
            with self.lock:
                document = self.verify(self.secret, request.headers, body, self.seen)
                key = request.headers.get("Idempotency-Key", "")
                self.hooks.append(Hook(key, document, time.monotonic()))
        except ValueError as refused:
            with self.lock:
                self.rejected.append(str(refused))
            return Response(str(refused), status=401)
        return Response("{}", status=200, mimetype="application/json")
