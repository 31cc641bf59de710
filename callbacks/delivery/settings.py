"""Where tickets are delivered: the connectors of `flows/delivery.yaml` (IVR_DELIVERY_FILE).

Each connector is an email-to-ticket mailbox, a signed JSON webhook or a Zammad instance; any
number may be on at once. Secrets never stand in the file: it names the environment variable
that holds each one (`password_env`, `secret_env`, `token_env`). Every problem is reported at
its file:line:column, like the other settings files, and a broken file stops the web app and
the workers at start-up.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from routing.errors import FlowError, FlowInvalid
from routing.field_problems import did_you_mean
from routing.loader import compose_tree, read_settings_file
from routing.settings_reader import LocatedReader

MAX_DELIVERY_BYTES = 64 * 1024
CONNECTOR_TYPES = ("email", "webhook", "zammad")
STATUSES = ("new", "assigned", "in_progress", "waiting_for_caller", "resolved", "closed")
"""The ticket statuses a status change reported back may set."""
DELIVERED_KINDS = (
    "created", "transcribed", "transcription_no_speech", "transcription_bad_audio",
    "transcription_no_model", "transcription_failed", "status", "assigned", "note", "reply",
    "caller_message", "incident_linked", "incident_resolved", "resolved", "reopened", "closed",
    "unreachable", "callback_queued", "called_back")
"""Ticket events delivered when a connector lists no `events` (texts sent, snoozes and other
bookkeeping of the phone line stay here)."""
ZAMMAD_STATES_OUT = {"new": "new", "open": "open", "assigned": "open", "in_progress": "open",
                     "waiting_for_caller": "open", "unreachable": "open",
                     "resolved": "closed", "closed": "closed"}
ZAMMAD_STATES_IN = {"open": "in_progress", "pending reminder": "waiting_for_caller",
                    "pending close": "resolved", "closed": "resolved"}
ZAMMAD_PRIORITIES = {"P1": "3 high", "P2": "3 high", "P3": "2 normal", "P4": "1 low"}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOP_KEYS = ("retry", "connectors")
_RETRY_KEYS = ("max_attempts", "first_backoff_seconds", "max_backoff_seconds")
_COMMON_KEYS = ("type", "enabled", "events")
_KEYS = {
    "email": ("smtp_host", "smtp_port", "security", "username", "password_env",
              "timeout_seconds", "from", "to", "message_id_domain", "max_attachment_kb",
              "ca_file"),
    "webhook": ("url", "secret_env", "timeout_seconds", "replay_window_seconds"),
    "zammad": ("url", "token_env", "group", "timeout_seconds", "webhook_secret_env", "states",
               "inbound_states", "priorities"),
}
_SECRET_KEYS = ("password", "secret", "token", "webhook_secret", "api_key")
SECURITIES = ("starttls", "tls", "none")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class RetryPolicy:
    """How often a delivery is tried and how long it waits between tries (doubling)."""

    max_attempts: int = 8
    first_backoff_seconds: int = 30
    max_backoff_seconds: int = 3600

    def backoff_seconds(self, failed_attempts: int) -> int:
        """The wait after the `failed_attempts`-th failed try (1 = the first)."""
        exponent = min(30, max(0, failed_attempts - 1))
        return int(min(self.max_backoff_seconds, self.first_backoff_seconds * 2 ** exponent))

    def intervals(self) -> list[int]:
        """rq's retry intervals: one per retry after the first try."""
        return [self.backoff_seconds(n) for n in range(1, self.max_attempts)]


@dataclass(frozen=True)
class EmailSettings:
    """An email-to-ticket mailbox reached over SMTP."""

    smtp_host: str
    smtp_port: int
    security: str
    username: str
    password: str
    timeout_seconds: float
    sender: str
    recipients: tuple[str, ...]
    message_id_domain: str
    max_attachment_bytes: int
    ca_file: str = ""


@dataclass(frozen=True)
class WebhookSettings:
    """A JSON webhook signed with HMAC-SHA256; the same secret signs status changes sent back."""

    url: str
    secret: str
    timeout_seconds: float
    replay_window_seconds: int


@dataclass(frozen=True)
class ZammadSettings:
    """A Zammad instance: its REST API, the group new tickets go to, and the state mappings."""

    url: str
    token: str
    group: str
    timeout_seconds: float
    webhook_secret: str
    states: Mapping[str, str] = field(default_factory=lambda: dict(ZAMMAD_STATES_OUT))
    inbound_states: Mapping[str, str] = field(default_factory=lambda: dict(ZAMMAD_STATES_IN))
    priorities: Mapping[str, str] = field(default_factory=lambda: dict(ZAMMAD_PRIORITIES))


@dataclass(frozen=True)
class Connector:
    """One place tickets go: its name (used in URLs, job ids and the admin page) and settings."""

    name: str
    type: str
    enabled: bool
    events: frozenset[str]
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    zammad: ZammadSettings | None = None

    def wants(self, kind: str) -> bool:
        """Whether ticket events of `kind` go to this connector."""
        return kind in self.events


@dataclass(frozen=True)
class DeliverySettings:
    """Every configured connector and the retry policy they share."""

    connectors: tuple[Connector, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    path: str = ""

    @property
    def enabled(self) -> tuple[Connector, ...]:
        """The connectors that are on."""
        return tuple(connector for connector in self.connectors if connector.enabled)

    def connector(self, name: str) -> Connector | None:
        """The connector called `name` (on or off), or None."""
        return next((c for c in self.connectors if c.name == name), None)


NO_DELIVERY = DeliverySettings()
"""No file configured: tickets stay here."""


def load_delivery(path: str | os.PathLike[str] | None,
                  environ: Mapping[str, str] | None = None) -> DeliverySettings:
    """Read the delivery file (none: nothing is delivered); FlowInvalid naming file:line:column."""
    if not path:
        return NO_DELIVERY
    filename = os.fspath(path)
    text = read_settings_file(path, MAX_DELIVERY_BYTES)
    return parse_delivery(text, filename, os.environ if environ is None else environ)


def parse_delivery(text: str, filename: str, environ: Mapping[str, str]) -> DeliverySettings:
    """Delivery settings from YAML `text`, secrets read from `environ`."""
    if not text.strip():
        raise FlowInvalid([FlowError(filename, 1, 1, "the delivery file is empty; write "
                                     "'connectors: {}' to deliver nothing")])
    return _DeliveryReader(compose_tree(text, filename), filename, environ).settings()


class _DeliveryReader(LocatedReader):
    """Checks the located plain data of a delivery file and builds the settings."""

    def __init__(self, tree: Any, filename: str, environ: Mapping[str, str]) -> None:
        super().__init__(tree, filename)
        self.environ = environ

    def settings(self) -> DeliverySettings:
        data = self.tree.data
        if not isinstance(data, dict):
            self.error((), "the delivery file must be a mapping with 'connectors' "
                       "(and optionally 'retry')")
            raise FlowInvalid(self.errors)
        self.unknown_keys(data, (), _TOP_KEYS, "at the top level")
        retry = self.retry(data.get("retry"))
        connectors: list[Connector] = []
        declared = data.get("connectors")
        if declared is None:
            self.error((), "missing 'connectors': a mapping of connector names to their "
                       "settings, e.g. {servicedesk-mail: {type: email, ...}}")
        elif not isinstance(declared, dict):
            self.error(("connectors",), "connectors must map each connector's name to its "
                       "settings")
        else:
            for name, spec in declared.items():
                found = self.connector(str(name), spec)
                if found is not None:
                    connectors.append(found)
        if self.errors:
            raise FlowInvalid(self.errors)
        return DeliverySettings(tuple(connectors), retry, self.filename)

    # --- parts -------------------------------------------------------------------------

    def retry(self, value: Any) -> RetryPolicy:
        if value is None:
            return RetryPolicy()
        if not isinstance(value, dict):
            self.error(("retry",), "retry must be a mapping such as "
                       "{max_attempts: 8, first_backoff_seconds: 30, max_backoff_seconds: 3600}")
            return RetryPolicy()
        self.unknown_keys(value, ("retry",), _RETRY_KEYS, "in retry")
        attempts = self.whole(("retry", "max_attempts"), value.get("max_attempts", 8), 1, 100)
        first = self.whole(("retry", "first_backoff_seconds"),
                           value.get("first_backoff_seconds", 30), 1, 86400)
        longest = self.whole(("retry", "max_backoff_seconds"),
                             value.get("max_backoff_seconds", 3600), 1, 7 * 86400)
        if first > longest:
            self.error(("retry", "first_backoff_seconds"), f"first_backoff_seconds ({first}) is "
                       f"longer than max_backoff_seconds ({longest})")
        return RetryPolicy(attempts, first, longest)

    def connector(self, name: str, spec: Any) -> Connector | None:
        path: Path = ("connectors", name)
        if not _NAME.match(name):
            self.error(path, f"connector name '{name}' must be lowercase letters, digits, '-' "
                       "or '_' (at most 32), as it appears in URLs", at_key=True)
            return None
        if not isinstance(spec, dict):
            self.error(path, f"connector '{name}' must be a mapping with 'type' and its "
                       "settings")
            return None
        kind = spec.get("type")
        if kind not in CONNECTOR_TYPES:
            if kind is None:
                self.error(path, f"connector '{name}' is missing 'type' (one of "
                           f"{', '.join(CONNECTOR_TYPES)})", at_key=True)
            else:
                self.error((*path, "type"), f"unknown connector type '{kind}'"
                           f"{did_you_mean(str(kind), CONNECTOR_TYPES)}; expected one of: "
                           f"{', '.join(CONNECTOR_TYPES)}")
            return None
        for key in spec:
            if key in _SECRET_KEYS:
                self.error((*path, key), f"'{key}' does not belong in this file: put the value "
                           f"in an environment variable and name it with '{key}_env'",
                           at_key=True)
        allowed = (*_COMMON_KEYS, *_KEYS[kind])
        self.unknown_keys({k: v for k, v in spec.items() if k not in _SECRET_KEYS}, path,
                          allowed, f"in {kind} connector '{name}'")
        enabled = spec.get("enabled", True)
        if not isinstance(enabled, bool):
            self.error((*path, "enabled"), f"enabled must be true or false, got {enabled!r}")
            enabled = False
        events = self.events(path, spec.get("events"))
        if kind == "email":
            return Connector(name, kind, enabled, events, email=self.email(path, spec, enabled))
        if kind == "webhook":
            return Connector(name, kind, enabled, events,
                             webhook=self.webhook(path, spec, enabled))
        return Connector(name, kind, enabled, events, zammad=self.zammad(path, spec, enabled))

    def events(self, path: Path, value: Any) -> frozenset[str]:
        if value is None:
            return frozenset(DELIVERED_KINDS)
        if not isinstance(value, list) or not value or not all(
                isinstance(item, str) and item.strip() for item in value):
            self.error((*path, "events"), "events must list ticket event kinds, e.g. "
                       "[created, transcribed, status]")
            return frozenset(DELIVERED_KINDS)
        return frozenset(item.strip() for item in value)

    def email(self, path: Path, spec: dict[str, Any], enabled: bool) -> EmailSettings:
        host = self.text(path, spec, "smtp_host", required=True)
        port = self.whole((*path, "smtp_port"), spec.get("smtp_port", 587), 1, 65535)
        security = spec.get("security", "starttls")
        if security not in SECURITIES:
            self.error((*path, "security"), f"security must be one of {', '.join(SECURITIES)}"
                       f"{did_you_mean(str(security), SECURITIES)}, got {security!r}")
            security = "starttls"
        username = self.text(path, spec, "username")
        password = ""
        if username or "password_env" in spec:
            password = self.secret(path, spec, "password_env", enabled, required=bool(username))
        sender = self.address(path, spec, "from")
        recipients = self.addresses(path, spec.get("to"))
        domain = self.text(path, spec, "message_id_domain") or (
            parseaddr(sender)[1].rpartition("@")[2] if "@" in sender else "helpdesk.invalid")
        kilobytes = self.whole((*path, "max_attachment_kb"), spec.get("max_attachment_kb", 10240),
                               0, 50 * 1024)
        timeout = self.whole((*path, "timeout_seconds"), spec.get("timeout_seconds", 30), 1, 600)
        ca_file = self.text(path, spec, "ca_file")
        if ca_file and not os.path.isfile(ca_file):
            self.error((*path, "ca_file"), f"ca_file '{ca_file}' is not a readable file")
        return EmailSettings(host, port, str(security), username, password, float(timeout),
                             sender, recipients, domain, kilobytes * 1024, ca_file)

    def webhook(self, path: Path, spec: dict[str, Any], enabled: bool) -> WebhookSettings:
        url = self.url(path, spec, "url")
        secret = self.secret(path, spec, "secret_env", enabled, required=True)
        timeout = self.whole((*path, "timeout_seconds"), spec.get("timeout_seconds", 10), 1, 300)
        window = self.whole((*path, "replay_window_seconds"),
                            spec.get("replay_window_seconds", 300), 10, 86400)
        return WebhookSettings(url, secret, float(timeout), window)

    def zammad(self, path: Path, spec: dict[str, Any], enabled: bool) -> ZammadSettings:
        url = self.url(path, spec, "url")
        if url and not url.rstrip("/").endswith("/api/v1"):
            self.error((*path, "url"), "url must be Zammad's REST API address, ending in "
                       f"/api/v1 (e.g. https://zammad.example.com/api/v1), got '{url}'")
        token = self.secret(path, spec, "token_env", enabled, required=True)
        group = self.text(path, spec, "group", required=True)
        timeout = self.whole((*path, "timeout_seconds"), spec.get("timeout_seconds", 15), 1, 300)
        webhook_secret = ""
        if "webhook_secret_env" in spec:
            webhook_secret = self.secret(path, spec, "webhook_secret_env", enabled, required=True)
        states = self.mapping(path, spec, "states", ZAMMAD_STATES_OUT, keys=(*STATUSES, "open",
                                                                            "unreachable"))
        inbound = self.mapping(path, spec, "inbound_states", ZAMMAD_STATES_IN, values=STATUSES)
        priorities = self.mapping(path, spec, "priorities", ZAMMAD_PRIORITIES)
        return ZammadSettings(url.rstrip("/") + "/" if url else "", token, group,
                              float(timeout), webhook_secret, states, inbound, priorities)

    # --- values ------------------------------------------------------------------------

    def text(self, path: Path, spec: dict[str, Any], key: str, *, required: bool = False) -> str:
        value = spec.get(key)
        if value is None:
            if required:
                self.error(path, f"connector '{path[-1]}' is missing '{key}'", at_key=True)
            return ""
        if not isinstance(value, str) or not value.strip():
            self.error((*path, key), f"{key} must be a non-empty text, got {value!r}")
            return ""
        return value.strip()

    def whole(self, path: Path, value: Any, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.error(path, f"{path[-1]} must be a whole number from {low} to {high}, "
                       f"got {value!r}")
            return low
        return value

    def secret(self, path: Path, spec: dict[str, Any], key: str, enabled: bool, *,
               required: bool) -> str:
        name = self.text(path, spec, key, required=required)
        if not name:
            return ""
        if not _ENV_NAME.match(name):
            self.error((*path, key), f"{key} names an environment variable (letters, digits "
                       f"and '_'), got '{name}'")
            return ""
        value = self.environ.get(name, "")
        if enabled and not value:
            self.error((*path, key), f"environment variable {name} is not set (connector "
                       f"'{path[-1]}' is enabled and needs it)")
        return value

    def url(self, path: Path, spec: dict[str, Any], key: str) -> str:
        value = self.text(path, spec, key, required=True)
        if not value:
            return ""
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.error((*path, key), f"{key} must be an http:// or https:// URL, got '{value}'")
            return ""
        return value

    def address(self, path: Path, spec: dict[str, Any], key: str) -> str:
        value = self.text(path, spec, key, required=True)
        if value and "@" not in parseaddr(value)[1]:
            self.error((*path, key), f"{key} must be an email address, got '{value}'")
        return value

    def addresses(self, path: Path, value: Any) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if value is None:
            self.error(path, f"connector '{path[-1]}' is missing 'to' (the ticket system's "
                       "mailbox)", at_key=True)
            return ()
        if not isinstance(items, list) or not items:
            self.error((*path, "to"), "to must be an address or a list of addresses")
            return ()
        found = []
        for index, item in enumerate(items):
            where: Path = (*path, "to") if isinstance(value, str) else (*path, "to", index)
            if not isinstance(item, str) or "@" not in parseaddr(item)[1]:
                self.error(where, f"'{item}' is not an email address")
            else:
                found.append(item.strip())
        return tuple(found)

    def mapping(self, path: Path, spec: dict[str, Any], key: str, defaults: Mapping[str, str],
                *, keys: tuple[str, ...] | None = None,
                values: tuple[str, ...] | None = None) -> dict[str, str]:
        merged = dict(defaults)
        value = spec.get(key)
        if value is None:
            return merged
        if not isinstance(value, dict):
            self.error((*path, key), f"{key} must be a mapping")
            return merged
        for name, target in value.items():
            if keys is not None and name not in keys:
                self.error((*path, key, name), f"unknown ticket status '{name}'"
                           f"{did_you_mean(str(name), keys)}; expected one of: {', '.join(keys)}",
                           at_key=True)
                continue
            if values is not None and target is not None and target not in values:
                self.error((*path, key, name), f"unknown ticket status '{target}'"
                           f"{did_you_mean(str(target), values)}; expected one of: "
                           f"{', '.join(values)}")
                continue
            if target is None:
                merged.pop(str(name), None)  # null: this state is not mapped
            elif not isinstance(target, str):
                self.error((*path, key, name), f"'{name}' must map to a text, got {target!r}")
            else:
                merged[str(name)] = target
        return merged
