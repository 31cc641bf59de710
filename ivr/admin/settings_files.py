"""The settings files the admin pages show: each with the same loader's verdict as at start-up."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callbacks.delivery.settings import load_delivery
from callbacks.directory import DirectoryInvalid, load_directory
from callbacks.incidents.settings import load_incident_settings
from callbacks.priority import load_policy
from callbacks.tickets.texts import load_texts
from routing.errors import FlowInvalid
from speech.keywords import KeywordRules

MAX_SHOWN_BYTES = 256 * 1024


@dataclass(frozen=True)
class SettingsFile:
    """A settings file, its text and its problems as file:line[:column]: message."""

    key: str
    title: str
    about: str
    path: str
    text: str
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """Whether the loader accepts the file."""
        return not self.problems


_FILES: tuple[tuple[str, str, str, Callable[[str], Any]], ...] = (
    ("PRIORITIES_FILE", "Priorities and SLA targets",
     "Priority levels, their SLA targets (callbacks and callers waiting on the line), the "
     "rules that raise a caller's priority and how waiting work is matched to agents.",
     load_policy),
    ("KEYWORDS_FILE", "Priority keywords",
     "Words in a voicemail's transcript that set its category and priority.",
     KeywordRules.load),
    ("DIRECTORY_FILE", "Caller directory",
     "Employees by phone number: name, department, VIP and language.",
     load_directory),
    ("TEXTS_FILE", "Texts to callers (SMS)",
     "What callers are texted, per language: the ticket number, each status change, agents' "
     "replies, the survey.", load_texts),
    ("DELIVERY_FILE", "Delivery to the ticket system",
     "Connectors (email, signed webhook, Zammad) that receive every ticket event; secrets "
     "are named environment variables.",
     load_delivery),
    ("INCIDENTS_FILE", "Outage incidents",
     "When the desk suggests an incident, how each category is named to callers, and what a "
     "menu says while an incident is open.", load_incident_settings),
)


def settings_files(config: Mapping[str, Any]) -> list[SettingsFile]:
    """Each configured settings file with the problems its loader finds (none: it is valid)."""
    found = []
    for key, title, about, loader in _FILES:
        path = str(config.get(key) or "")
        problems: tuple[str, ...] = ()
        try:
            loader(path)
        except FlowInvalid as invalid:
            problems = tuple(str(error) for error in invalid.errors)
        except DirectoryInvalid as invalid:
            problems = tuple(invalid.problems)
        found.append(SettingsFile(key, title, about, path, _shown_text(path), problems))
    return found


def _shown_text(path: str) -> str:
    try:
        with open(Path(path), "rb") as stream:
            return stream.read(MAX_SHOWN_BYTES).decode("utf-8", "replace")
    except OSError as exc:
        return f"(cannot read the file: {exc.strerror})"
