"""Log lines as JSON (one object a line) or text, each tagged with the call it is about.

The web app binds the CallSid of a Twilio webhook and a request id for the length of the
request; the worker binds the job id and the call a job works for. A filter on the one handler
copies what is bound onto every record, whichever logger (ours, rq's, SQLAlchemy's) made it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import IO, Any

from pythonjsonlogger.json import JsonFormatter

LOG_FORMATS = ("json", "text")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class LogContext:
    """What every log line says it is about, when known."""

    call_sid: str | None = None
    message_sid: str | None = None
    request_id: str | None = None
    job_id: str | None = None


CONTEXT_FIELDS = tuple(f.name for f in fields(LogContext))
NO_CONTEXT = LogContext()
_context: ContextVar[LogContext] = ContextVar("ivr_log_context", default=NO_CONTEXT)


def current_log_context() -> LogContext:
    """What log lines logged here and now are tagged with."""
    return _context.get()


@contextlib.contextmanager
def log_context(**tags: str | None) -> Iterator[LogContext]:
    """Tag every line logged inside the block with `tags` (call_sid, request_id, ...)."""
    token = _context.set(replace(_context.get(), **tags))
    try:
        yield _context.get()
    finally:
        _context.reset(token)


def bind_log_context(**tags: str | None) -> None:
    """Tag the lines logged from now on in this context (a request hook; `clear_log_context`
    ends it)."""
    _context.set(replace(_context.get(), **tags))


def clear_log_context() -> None:
    """Stop tagging lines (the end of a request)."""
    _context.set(NO_CONTEXT)


class ContextFilter(logging.Filter):
    """Copies the bound call, request and job ids onto each record (None where unknown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Tag the record; never drops one."""
        context = _context.get()
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):  # an explicit `extra=` wins
                setattr(record, name, getattr(context, name))
        return True


class JsonLineFormatter(JsonFormatter):
    """time (ISO 8601, UTC), level, logger, message, the bound ids when known, and `exc`."""

    def __init__(self) -> None:
        super().__init__(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger",
                           "exc_info": "exc", "stack_info": "stack"},
            json_ensure_ascii=False,
        )

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's time in UTC, to the millisecond: 2024-05-01T09:30:12.345Z."""
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Leave out ids that are not known, so a line carries only what it is about."""
        return {key: value for key, value in log_data.items()
                if value is not None or key not in CONTEXT_FIELDS}


class TextLineFormatter(logging.Formatter):
    """The classic one-line text, with the call (or job) it is about at the end."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        """The text line, then ` [call CA...]` / ` [job ...]` when bound."""
        line = super().format(record)
        tags = [f"{label} {value}" for label, value in (
            ("call", getattr(record, "call_sid", None)),
            ("message", getattr(record, "message_sid", None)),
            ("job", getattr(record, "job_id", None))) if value]
        if not tags:
            return line
        first, newline, rest = line.partition("\n")  # after the message, before a traceback
        return f"{first} [{', '.join(tags)}]{newline}{rest}"


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The process's log handler (one per process, replaced when logging is set up again)."""


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter of a log format: 'json' or 'text'."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"IVR_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, "
                         f"not {log_format!r}")
    return JsonLineFormatter() if log_format == "json" else TextLineFormatter()


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing `log_format` lines to `stream` (stderr), tagged with the context."""
    handler = LineHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(log_format))
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str | int, log_format: str, stream: IO[str] | None = None,
                      force: bool = False) -> logging.Handler | None:
    """Send the process's log lines to stderr (or `stream`) as `log_format`, at `level`.

    Logging someone else set up (a test runner, an app embedding ours, gunicorn's
    --log-config) is left alone unless `force`; returns the handler installed, if any.
    """
    handler = make_handler(log_format, stream)  # checks the format even when left alone
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, LineHandler)]
    if len(ours) < len(root.handlers) and not force:
        return None
    for old in ours:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
