"""The texts file (flows/texts.yaml): every text the line sends, in en, de, pl and ru, checked
with file:line:column like the other settings files, read once, and what callers really get."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from rq import SimpleWorker

from callbacks.queues import QUEUES
from callbacks.sms import sms_text
from callbacks.tickets.actions import move_ticket
from callbacks.tickets.texts import PLACEHOLDERS, load_texts, parse_texts
from callbacks.tickets.ticket import Ticket
from callbacks.workqueue.agents import create_agent
from ivr.standin import StandinServer
from routing.errors import FlowInvalid
from tests.conftest import ROOT, app_config, desk_app

TEXTS_FILE = ROOT / "flows" / "texts.yaml"
LANGUAGES = ("en", "de", "pl", "ru")


def _problems(text: str) -> list[str]:
    with pytest.raises(FlowInvalid) as invalid:
        parse_texts(text, "texts.yaml")
    return [str(error) for error in invalid.value.errors]


def _shipped() -> str:
    return TEXTS_FILE.read_text(encoding="utf-8")


def test_the_shipped_file_has_every_text_in_every_language() -> None:
    texts = load_texts(TEXTS_FILE)
    assert texts.languages == LANGUAGES
    assert set(texts.texts) == set(PLACEHOLDERS)
    for name, translations in texts.texts.items():
        assert set(LANGUAGES) <= set(translations), name
        assert len({translations[language] for language in LANGUAGES}) == 4, name
    assert sms_text("status_in_progress", "ru", number="10001", note="") == (
        "IT Service Desk: мы работаем над вашей заявкой 10001. ")
    assert sms_text("ticket_created", "ko", number="10001").startswith("IT 서비스 데스크")
    assert sms_text("reply", "fr", number="10001", text="Hi") == (
        "IT Service Desk, ticket 10001: Hi")  # no French: English


def test_a_missing_translation_is_named_at_its_text() -> None:
    text = _shipped().replace(
        '    pl: "IT Service Desk: pracujemy nad zgłoszeniem {number}. {note}"\n', "")
    line = _shipped().splitlines().index("  status_in_progress:") + 1
    assert _problems(text) == [f"texts.yaml:{line}:3: text 'status_in_progress' has no 'pl' "
                               "translation"]


def test_a_placeholder_the_line_cannot_fill_is_named_where_it_is() -> None:
    text = _shipped().replace("we are working on your ticket {number}.",
                              "we are working on your ticket {ticket}.")
    line = next(index for index, row in enumerate(_shipped().splitlines(), start=1)
                if "we are working on your ticket" in row)
    assert _problems(text) == [
        f"texts.yaml:{line}:9: text 'status_in_progress' (en) uses {{ticket}}, which it "
        "cannot fill in; it knows: {note}, {number}"]
    stray = _shipped().replace("thank you for your feedback.", "thank you { for your feedback.")
    assert "has a stray brace" in _problems(stray)[0]


def test_unknown_and_missing_texts_are_reported() -> None:
    renamed = _shipped().replace("  status_closed:", "  status_close:")
    problems = _problems(renamed)
    assert any("unknown text 'status_close' (did you mean 'status_closed'?)" in problem
               for problem in problems)
    assert any("text 'status_closed' is missing; the line sends it" in problem
               for problem in problems)
    assert _problems("languages: [de]\ntexts: {}\n")[0] == (
        "texts.yaml:1:12: languages must include 'en': callers in other languages get it")
    assert _problems("") == ["texts.yaml:1:1: the texts file is empty"]
    assert _problems("- a list\n") == [
        "texts.yaml:1:1: the texts file must be a mapping with 'languages' and 'texts'"]


def test_a_broken_texts_file_stops_the_start_and_shows_on_the_settings_page(
        database_url: str, tmp_path: Path) -> None:
    from ivr import create_app
    from ivr.admin.settings_files import settings_files

    broken = tmp_path / "texts.yaml"
    broken.write_text(_shipped().replace("{number}. {note}", "{number}. {nope}", 1),
                      encoding="utf-8")
    with pytest.raises(FlowInvalid,
                       match=r"texts.yaml:\d+:\d+: text 'status_in_progress' \(en\)"):
        create_app(app_config(database_url, TEXTS_FILE=str(broken)))
    [shown] = [entry for entry in settings_files({"TEXTS_FILE": str(broken)})
               if entry.key == "TEXTS_FILE"]
    assert not shown.valid and "uses {nope}" in shown.problems[0]


@pytest.fixture
def custom(database_url: str, redis_url: str, standin: StandinServer,
           tmp_path: Path) -> Iterator[Flask]:
    """The app reading an edited copy of the texts file."""
    edited = tmp_path / "texts.yaml"
    edited.write_text(_shipped().replace(
        'de: "IT-Service-Desk: Wir bearbeiten Ihr Ticket {number}. {note}"',
        'de: "Servicedesk: Ticket {number} ist in Arbeit. {note}"'), encoding="utf-8")
    with desk_app(database_url, redis_url, standin, TEXTS_FILE=str(edited)) as app:
        yield app


def test_an_edited_text_is_what_the_caller_gets(custom: Flask, standin: StandinServer,
                                                redis_url: str) -> None:
    with custom.extensions["ivr.sessions"]() as session:
        agent = create_agent(session, "ann", "correct horse battery")
        ticket = Ticket(call_sid="CA" + "3" * 32, caller="+4915112345678", language="de",
                        status="new", transcription="none", sms_sid="SM" + "0" * 32)
        session.add(ticket)
        session.commit()
        result = move_ticket(session, ticket.id, "in_progress", "", agent)
    assert result.text is not None
    assert result.text.body == "Servicedesk: Ticket 10001 ist in Arbeit."
    SimpleWorker(list(QUEUES), connection=Redis.from_url(redis_url)).work(burst=True)
    assert [message.body for message in standin.messages()] == [
        "Servicedesk: Ticket 10001 ist in Arbeit."]
