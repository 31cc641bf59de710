"""Email-to-ticket: every ticket event as a message to the ticket system's mailbox over SMTP.

A message has a readable text part (the structured fields, the event and the transcript), the
same document as the webhook's body attached as `ticket.json`, and, on the message that
reports the transcription, the recording as a WAV attachment when it is under the size cap
(the text says so when it is left out). Its Message-ID is made from the delivery's idempotency
key, so a repeat after a worker died is the same message to the receiver; every update carries
In-Reply-To and References pointing at the ticket's first message, so they thread there.

Each worker keeps one SMTP connection per connector open between messages (STARTTLS and AUTH
once), and opens a new one when the server has dropped it.
"""

from __future__ import annotations

import smtplib
import ssl
import threading
from email.message import EmailMessage
from email.utils import format_datetime

from callbacks.delivery.connectors import DeliveryFailed, DeliveryRefused, Outgoing, Sent
from callbacks.delivery.payloads import TicketEventPayload
from callbacks.delivery.settings import EmailSettings

KIND_TITLES = {
    "created": "new ticket", "transcribed": "voicemail transcribed",
    "transcription_no_speech": "no speech in the voicemail",
    "transcription_bad_audio": "the recording could not be read",
    "transcription_no_model": "no speech model for the language",
    "transcription_failed": "transcription failed", "status": "status changed",
    "assigned": "assigned", "note": "internal note", "reply": "reply to the caller",
    "caller_message": "the caller left another message", "resolved": "resolved",
    "closed": "closed", "reopened": "reopened", "unreachable": "caller unreachable",
    "callback_queued": "callback queued", "called_back": "called back",
    "incident_linked": "linked to an incident", "incident_resolved": "incident resolved",
}

_connections: dict[tuple[str, EmailSettings], smtplib.SMTP] = {}
_lock = threading.Lock()


def message_id(key: str, domain: str) -> str:
    """The Message-ID of a delivery's message."""
    return f"<{key}@{domain}>"


def build_message(settings: EmailSettings, outgoing: Outgoing) -> EmailMessage:
    """The message for one event: text, ticket.json and, when included, the recording."""
    payload = outgoing.payload
    ticket = payload.ticket
    message = EmailMessage()
    who = ticket.caller_name or ticket.caller or "an unknown caller"
    title = KIND_TITLES.get(payload.event.kind, payload.event.kind.replace("_", " "))
    base = f"[Ticket {ticket.number}] Phone ticket from {who}"
    first = outgoing.key == outgoing.thread_key
    message["Subject"] = (f"{base}: {ticket.category}, {ticket.priority}" if first
                          else f"Re: [Ticket {ticket.number}] {title}")
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = format_datetime(payload.event.at)
    message["Message-ID"] = message_id(outgoing.key, settings.message_id_domain)
    if not first:
        root = message_id(outgoing.thread_key, settings.message_id_domain)
        message["In-Reply-To"] = root
        message["References"] = root
    message["Auto-Submitted"] = "auto-generated"
    message["X-Helpdesk-Ticket"] = ticket.number
    message["X-Helpdesk-Event"] = payload.event.kind
    message["X-Idempotency-Key"] = outgoing.key
    message.set_content(message_text(payload, title))
    message.add_attachment(outgoing.body.encode("utf-8"), maintype="application",
                           subtype="json", filename="ticket.json")
    if payload.recording.included and outgoing.recording is not None:
        message.add_attachment(outgoing.recording, maintype="audio", subtype="wav",
                               filename=f"ticket-{ticket.number}.wav")
    return message


def message_text(payload: TicketEventPayload, title: str) -> str:
    """The readable part: what happened, the ticket's fields and the transcript."""
    ticket, event, recording = payload.ticket, payload.event, payload.recording
    caller = f"{ticket.caller_name} ({ticket.caller})" if ticket.caller_name else ticket.caller
    due = f"{ticket.due_at:%Y-%m-%d %H:%M} UTC" if ticket.due_at else "-"
    fields = [("Ticket", ticket.number), ("Status", ticket.status), ("Caller", caller or "-"),
              ("Directory name", ticket.caller_name or "-"),
              ("Department", ticket.department or "-"), ("Category", ticket.category),
              ("Priority", ticket.priority), ("Language", ticket.language or "-"),
              ("Due", due), ("Menu path", ticket.menu_path or "-"),
              ("Console", ticket.console_url)]
    lines = [f"Ticket {ticket.number}: {title}", "",
             f"{event.kind} at {event.at:%Y-%m-%d %H:%M:%S} UTC by {event.by}"]
    if event.detail:
        lines.append(event.detail)
    lines.append("")
    lines.extend(f"{name + ':':<16}{value}" for name, value in fields)
    lines += ["", "Transcript:", ticket.transcript or f"(none: {ticket.transcription})", ""]
    if recording.included:
        lines.append(f"Recording: attached as ticket-{ticket.number}.wav "
                     f"({recording.bytes} bytes).")
    elif recording.available:
        lines.append(f"Recording: not attached: {recording.note}: {ticket.console_url}")
    lines.append("The structured fields are attached as ticket.json.")
    return "\n".join(lines) + "\n"


def send_email(name: str, settings: EmailSettings, outgoing: Outgoing) -> Sent:
    """Send the event's message, over this worker's open connection when it has one."""
    message = build_message(settings, outgoing)
    for reused in (True, False):
        connection, was_open = _connection(name, settings, fresh=not reused)
        try:
            refused = connection.send_message(message)
        except smtplib.SMTPServerDisconnected as error:
            _drop(name, settings)
            if was_open and reused:
                continue  # the server closed an idle connection: one fresh try
            raise DeliveryFailed(f"the SMTP server closed the connection: {error}") from None
        except smtplib.SMTPResponseException as error:
            _drop(name, settings)
            raise _smtp_error(error) from None
        except smtplib.SMTPRecipientsRefused as error:
            _drop(name, settings)
            codes = [code for code, _text in error.recipients.values()]
            text = "; ".join(f"{to}: {code} {reply.decode(errors='replace')}"
                             for to, (code, reply) in error.recipients.items())
            if all(400 <= code < 500 for code in codes):
                raise DeliveryFailed(f"recipients refused for now: {text}") from None
            raise DeliveryRefused(f"recipients refused: {text}") from None
        except (OSError, smtplib.SMTPException) as error:
            _drop(name, settings)
            raise DeliveryFailed(f"SMTP: {error}") from None
        if refused:
            raise DeliveryRefused(f"some recipients refused: {refused}")
        return Sent(remote_ref=str(message["Message-ID"]))
    raise AssertionError("unreachable")


def close_connections() -> None:
    """Close every kept SMTP connection (tests, benchmarks, worker shutdown)."""
    with _lock:
        for connection in _connections.values():
            _quit(connection)
        _connections.clear()


def _connection(name: str, settings: EmailSettings, *,
                fresh: bool) -> tuple[smtplib.SMTP, bool]:
    """An SMTP connection for the connector, and whether it was already open."""
    key = (name, settings)
    with _lock:
        if not fresh and key in _connections:
            return _connections[key], True
        old = _connections.pop(key, None)
    if old is not None:
        _quit(old)
    connection = _connect(settings)
    with _lock:
        _connections[key] = connection
    return connection, False


def _connect(settings: EmailSettings) -> smtplib.SMTP:
    # the system's trusted CAs, or the one the file names (a company's own CA)
    context = ssl.create_default_context(cafile=settings.ca_file or None)
    try:
        connection: smtplib.SMTP
        if settings.security == "tls":
            connection = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                          timeout=settings.timeout_seconds, context=context)
        else:
            connection = smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                                      timeout=settings.timeout_seconds)
        connection.ehlo()
        if settings.security == "starttls":
            connection.starttls(context=context)
            connection.ehlo()
        if settings.username:
            connection.login(settings.username, settings.password)
    except smtplib.SMTPAuthenticationError as error:
        raise DeliveryRefused(f"SMTP login refused: {error.smtp_code} "
                              f"{_reply(error.smtp_error)}") from None
    except smtplib.SMTPNotSupportedError as error:
        raise DeliveryRefused(f"the SMTP server does not offer it: {error}") from None
    except smtplib.SMTPResponseException as error:
        raise _smtp_error(error) from None
    except (TimeoutError, OSError, smtplib.SMTPException) as error:
        raise DeliveryFailed(f"cannot reach the SMTP server {settings.smtp_host}:"
                             f"{settings.smtp_port}: {error}") from None
    return connection


def _smtp_error(error: smtplib.SMTPResponseException) -> Exception:
    text = f"SMTP {error.smtp_code} {_reply(error.smtp_error)}"
    if 400 <= error.smtp_code < 500:
        return DeliveryFailed(text)
    return DeliveryRefused(text)


def _reply(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else str(text)


def _drop(name: str, settings: EmailSettings) -> None:
    with _lock:
        connection = _connections.pop((name, settings), None)
    if connection is not None:
        _quit(connection)


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()
