"""A ticket node in the pure engine, the flow validator and the JSON Schema: a repeat caller
keys in their ticket number; the engine asks the web layer to look it up and says the status."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import pytest

from routing.engine import UnexpectedEvent, advance, compile_flow, start
from routing.flow import flow_json_schema
from routing.loader import check_flow, parse_flow
from routing.steps import (
    Digits,
    Gather,
    Hangup,
    LookupTicket,
    NoInput,
    Position,
    Record,
    Recorded,
    Say,
    TicketLooked,
    Turn,
)

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)
FLOW = textwrap.dedent("""\
    name: repeat
    languages: [en, de]
    default_language: en
    start: menu
    nodes:
      menu:
        type: menu
        prompt: {en: "For a ticket's status press 8.", de: "Für den Stand drücken Sie 8."}
        options: {"8": {next: status}}
        on_failure: bye
      status:
        type: ticket
        prompt: {en: "Key in your ticket number, then hash.", de: "Ticketnummer, dann Raute."}
        retries: 1
        on_failure: menu
        next: bye
      bye: {type: hangup}
    """)


@pytest.fixture(scope="module")
def compiled():  # type: ignore[no-untyped-def]
    return compile_flow(parse_flow(FLOW, "repeat.yaml"))


def _said(turn: Turn) -> list[str]:
    return [step.text for step in turn.steps if isinstance(step, Say)] + [
        prompt.text for step in turn.steps if isinstance(step, Gather)
        for prompt in step.prompts]


def _at(step: str, attempt: int = 0, ticket: str = "", language: str = "en") -> Position:
    return Position("status", language, attempt, step, ticket=ticket)


def test_the_caller_is_asked_for_the_number_with_the_hash_key(compiled) -> None:  # type: ignore[no-untyped-def]
    turn = advance(compiled, Position("menu", "de"), Digits("8"), NOW)
    [gather] = turn.steps
    assert isinstance(gather, Gather)
    assert (gather.position.step, gather.finish_on_key, gather.num_digits) == ("number", "#",
                                                                              None)
    assert _said(turn) == ["Ticketnummer, dann Raute."]


def test_a_plausible_number_is_looked_up_by_the_web_layer(compiled) -> None:  # type: ignore[no-untyped-def]
    turn = advance(compiled, _at("number"), Digits("10042"), NOW)
    assert turn.steps == (LookupTicket(_at("lookup", ticket="10042"), "10042"),)


@pytest.mark.parametrize(("status", "words"), [
    ("new", "Ticket 1 0 0 4 2 has been received and is waiting for an agent."),
    ("in_progress", "We are working on ticket 1 0 0 4 2."),
    ("waiting_for_caller", "For ticket 1 0 0 4 2, we are waiting for information from you."),
    ("resolved", "Ticket 1 0 0 4 2 has been resolved."),
])
def test_the_caller_hears_the_status_and_may_add_a_message(compiled, status: str,  # type: ignore[no-untyped-def]
                                                           words: str) -> None:
    turn = advance(compiled, _at("lookup", ticket="10042"), TicketLooked(status), NOW)
    assert _said(turn) == [words, "To add a voice message to this ticket, press 1. To "
                                  "continue, press 2."]
    gather = turn.steps[-1]
    assert isinstance(gather, Gather) and gather.position == _at("found", ticket="10042")
    assert gather.keys == ("1", "2") and turn.outcome == "ticket_status"


def test_key_1_records_a_message_for_that_ticket_and_then_says_goodbye(compiled) -> None:  # type: ignore[no-untyped-def]
    turn = advance(compiled, _at("found", ticket="10042", language="de"), Digits("1"), NOW)
    assert _said(turn) == ["Bitte sprechen Sie nach dem Ton. Drücken Sie die Rautetaste, wenn "
                           "Sie fertig sind."]
    record = turn.steps[-1]
    assert isinstance(record, Record) and record.position.ticket == "10042"
    assert record.max_length == 120 and turn.outcome == "voicemail"
    done = advance(compiled, record.position, Recorded(), NOW)
    assert _said(done) == ["Vielen Dank. Ihre Nachricht wurde zu Ticket 1 0 0 4 2 "
                           "hinzugefügt. Auf Wiederhören."]
    assert done.steps[-1] == Hangup()


def test_any_other_answer_goes_on_without_a_message(compiled) -> None:  # type: ignore[no-untyped-def]
    for event in (Digits("2"), Digits("9"), NoInput()):
        turn = advance(compiled, _at("found", ticket="10042"), event, NOW)
        assert turn.steps == (Hangup(),) and turn.path == ("bye",)


def test_an_unknown_number_or_silence_gets_one_more_try_then_on_failure(compiled) -> None:  # type: ignore[no-untyped-def]
    unknown = advance(compiled, _at("lookup", ticket="10999"), TicketLooked(None), NOW)
    assert _said(unknown) == ["Sorry, we could not find that ticket number.",
                              "Key in your ticket number, then hash."]
    assert unknown.steps[-1].position == _at("number", attempt=1)  # type: ignore[union-attr]
    short = advance(compiled, _at("number", attempt=1), Digits("42"), NOW)
    assert short.path == ("menu",) and short.outcome == "ticket_unknown"
    assert _said(short)[0] == "Sorry, we could not find that ticket number."
    silent = advance(compiled, _at("number"), NoInput(), NOW)
    assert _said(silent) == ["Key in your ticket number, then hash."]
    lookup_again = advance(compiled, _at("lookup", attempt=1, ticket="10999"),
                           TicketLooked(None), NOW)
    assert lookup_again.path == ("menu",)


@pytest.mark.parametrize(("position", "event"), [
    (_at("lookup", ticket="10042"), Digits("1")),
    (_at("lookup", ticket="10042"), TicketLooked("sleeping")),
    (_at("found"), Digits("1")),  # no ticket number to add a message to
    (_at("record"), Recorded()),
    (_at("number"), Recorded()),
    (_at("elsewhere"), Digits("1")),
])
def test_events_that_do_not_fit_are_refused(compiled, position: Position, event: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnexpectedEvent):
        advance(compiled, position, event, NOW)  # type: ignore[arg-type]


def test_the_start_can_be_a_ticket_node() -> None:
    flow = FLOW.replace("start: menu", "start: status")
    turn = start(compile_flow(parse_flow(flow, "repeat.yaml")), NOW, "de")
    assert _said(turn) == ["Ticketnummer, dann Raute."]


# --- validation and schema --------------------------------------------------------------------


def test_a_language_without_built_in_texts_must_bring_its_own() -> None:
    flow = FLOW.replace("languages: [en, de]", "languages: [en, de, ko]").replace(
        'de: "Für den Stand drücken Sie 8."}', 'de: "Für den Stand drücken Sie 8.", ko: "8"}'
    ).replace('de: "Ticketnummer, dann Raute."}', 'de: "Ticketnummer, dann Raute.", ko: "#"}')
    problems = [str(error) for error in check_flow(flow, "repeat.yaml")]
    assert ("repeat.yaml:11:3: ticket 'status' has no 'ko' text for 'unknown' (built in: en, "
            "de, pl, ru); write it under 'texts: unknown: ko:'") in problems
    assert len(problems) == 10  # every text of the node


def test_overrides_are_checked_for_placeholders_and_languages() -> None:
    flow = FLOW.replace("    next: bye\n  bye:", textwrap.indent(textwrap.dedent("""\
        next: bye
        texts:
          added: {en: "Added to {ticket}.", fr: "Ajouté."}
          status_new: {en: "Ticket {number} is new."}
        """), "    ") + "  bye:")
    problems = [str(error) for error in check_flow(flow, "repeat.yaml")]
    assert problems == [
        "repeat.yaml:18:19: ticket 'status' text 'added' (en) uses {ticket}, which it cannot "
        "fill in; it knows: {number}",
        "repeat.yaml:18:41: ticket 'status' text 'added' has 'fr', which 'languages' does not "
        "declare"]


def test_a_ticket_node_must_send_the_caller_on() -> None:
    flow = FLOW.replace("    on_failure: menu\n    next: bye", "    on_failure: status\n"
                        "    next: bye")
    assert [str(error) for error in check_flow(flow, "repeat.yaml")] == [
        "repeat.yaml:15:17: ticket 'status' on_failure goes back to itself; send the caller "
        "on, for example to the main menu"]
    missing = FLOW.replace("    on_failure: menu\n    next: bye", "    next: bye")
    assert any("on_failure" in str(error) for error in check_flow(missing, "repeat.yaml"))


def test_the_json_schema_describes_the_ticket_node() -> None:
    schema = flow_json_schema()
    node = schema["$defs"]["TicketNode"]
    assert node["properties"]["type"]["const"] == "ticket"
    assert set(node["required"]) >= {"type", "prompt", "on_failure", "next"}
    assert "status_waiting_for_caller" in schema["$defs"]["TicketTexts"]["properties"]
