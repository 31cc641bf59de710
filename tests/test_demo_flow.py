"""The demo flow flows/it-support.yaml: valid, complete in every language, fully reachable."""

from __future__ import annotations

import importlib
import importlib.util
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
import yaml
from flask import Flask
from pydantic import BaseModel

from routing.engine import compile_flow
from routing.flow import Flow, MenuOption
from routing.hours import parse_day_spec, parse_time_range
from routing.oncall import who_is_on_call
from tests.conftest import app_config, empty_tables, publish
from tests.test_voice import Phone, said

FLOW_PATH = Path(__file__).resolve().parent.parent / "flows" / "it-support.yaml"
LANGUAGES = {"en", "de", "pl", "ru"}
TARGET_FIELDS = ("next", "open", "closed", "holiday", "on_failure", "on_no_answer", "overflow")
QUEUE_KEYS = ("callback", "voicemail")
"""A queue node's keys 1 and 2 lead to these (on other nodes 'callback' is a flag)."""
MAIN_MENU_LABELS = {
    "1": "password",
    "2": "network",
    "3": "hardware",
    "4": "software",
    "5": "vdi",
    "8": "ticket_status",
    "9": "outage",
    "0": "agent",
}


@pytest.fixture(scope="module")
def flow_text() -> str:
    """The demo flow's YAML source."""
    return FLOW_PATH.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def flow(flow_text: str) -> Flow:
    """The demo flow, parsed and validated against the flow models."""
    return Flow.model_validate(yaml.safe_load(flow_text))


def prompts_of(node: BaseModel) -> Iterator[tuple[str, dict[str, str]]]:
    """(field name, prompt) for every field of a node that holds a prompt."""
    for name in type(node).model_fields:
        value = getattr(node, name)
        if name in {"text", "prompt", "invalid", "no_input"} and isinstance(value, dict):
            yield name, value


def targets_of(node: BaseModel) -> Iterator[str]:
    """Every node id a node can continue to, including its menu options."""
    names = TARGET_FIELDS + (QUEUE_KEYS if getattr(node, "type", "") == "queue" else ())
    for name in names:
        target = getattr(node, name, None)
        if target is not None:
            yield target
    options: Any = getattr(node, "options", None)
    if isinstance(options, dict):
        for option in options.values():
            if isinstance(option, MenuOption):
                yield option.next


def test_flow_header(flow: Flow) -> None:
    assert flow.name == "it-support"
    assert flow.description
    assert set(flow.languages) == LANGUAGES
    assert flow.default_language == "en"
    assert set(flow.voices) == LANGUAGES
    assert {lang: v.locale for lang, v in flow.voices.items()} == {
        "en": "en-US",
        "de": "de-DE",
        "pl": "pl-PL",
        "ru": "ru-RU",
    }
    assert all(v.voice and v.voice.startswith("Polly.") for v in flow.voices.values())


def test_office_calendar(flow: Flow) -> None:
    office = flow.calendars["office"]
    assert office.timezone == "Europe/Berlin"
    assert office.holidays is not None
    assert (office.holidays.country, office.holidays.subdivision) == ("DE", "BE")
    assert date(2026, 12, 24) in office.closed
    assert date(2026, 12, 31) in office.closed
    open_days: set[int] = set()
    for days, ranges in office.hours.items():
        open_days.update(parse_day_spec(days))
        for time_range in [ranges] if isinstance(ranges, str) else ranges:
            parse_time_range(time_range)
    assert open_days == {0, 1, 2, 3, 4}


def test_language_choice_offers_each_language_in_its_own_words(flow: Flow) -> None:
    choose = flow.nodes["choose_language"]
    assert choose.type == "language"
    assert choose.options == {"1": "en", "2": "de", "3": "pl", "4": "ru"}
    for key, language in choose.options.items():
        assert key in choose.prompt[language]


def test_every_prompt_has_every_language(flow: Flow) -> None:
    missing = [
        f"{node_id}.{field}: {sorted(LANGUAGES - set(prompt))}"
        for node_id, node in flow.nodes.items()
        for field, prompt in prompts_of(node)
        if set(prompt) != LANGUAGES
    ]
    assert missing == []


def test_every_prompt_text_is_filled(flow: Flow) -> None:
    empty = [
        f"{node_id}.{field}.{lang}"
        for node_id, node in flow.nodes.items()
        for field, prompt in prompts_of(node)
        for lang, text in prompt.items()
        if not text.strip()
    ]
    assert empty == []


def test_every_target_exists(flow: Flow) -> None:
    assert flow.start in flow.nodes
    dangling = [
        f"{node_id} -> {target}"
        for node_id, node in flow.nodes.items()
        for target in targets_of(node)
        if target not in flow.nodes
    ]
    assert dangling == []


def test_every_node_reachable_from_start(flow: Flow) -> None:
    seen = {flow.start}
    pending = [flow.start]
    while pending:
        for target in targets_of(flow.nodes[pending.pop()]):
            if target in flow.nodes and target not in seen:
                seen.add(target)
                pending.append(target)
    assert set(flow.nodes) - seen == set()


def test_every_path_ends_in_a_hangup(flow: Flow) -> None:
    # The graph has no loops, so every node must lead on until a hangup.
    for node_id, node in flow.nodes.items():
        if node.type == "hangup":
            continue
        assert list(targets_of(node)), f"{node_id} leads nowhere"
        if node.type == "voicemail":
            assert node.next is not None


def test_every_phone_number_is_valid_e164(flow: Flow) -> None:
    numbers = list(flow.numbers)
    numbers += [n for group in flow.groups.values() for n in group]
    numbers += [n.to for n in flow.nodes.values() if getattr(n, "to", None)]
    numbers += [n for rota in flow.rotas.values() for n in rota.people.values()]
    assert flow.numbers
    assert len(flow.rotas["it-duty"].people) == 3
    for number in numbers:
        parsed = phonenumbers.parse(number, None)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number


def test_every_talk_to_an_agent_option_waits_in_line_for_the_topic(flow: Flow) -> None:
    # agents of the desk are reached through the line, never a fixed list of numbers
    assert [n for n in flow.nodes.values() if n.type == "transfer"] == []
    assert flow.groups == {}
    agent_options = [(node_id, option.next) for node_id, node in flow.nodes.items()
                     if node.type == "menu" for option in node.options.values()
                     if option.label == "agent"]
    assert len(agent_options) == 7  # six topics and the main menu's 0
    for menu_id, target in agent_options:
        queue = flow.nodes[target]
        assert queue.type == "queue", menu_id
        topic = target.removesuffix("_queue")
        callback = flow.nodes[queue.callback]
        assert queue.callback == f"{topic}_callback" and callback.type == "callback"
        assert queue.voicemail == f"{topic}_voicemail"
        assert queue.overflow == f"{topic}_no_agent" and flow.nodes[queue.overflow].type == "menu"
        assert (queue.category, queue.priority) == (callback.category, callback.priority)
        assert queue.queue == "servicedesk"


def test_main_menu_has_the_labelled_options(flow: Flow) -> None:
    main = flow.nodes["main_menu"]
    assert main.type == "menu"
    assert {key: option.label for key, option in main.options.items()} == MAIN_MENU_LABELS
    for key, option in main.options.items():
        if key != "0":
            assert set(option.keywords) == LANGUAGES, key
    assert (main.timeout, main.retries) == (6, 2)
    assert flow.nodes[main.on_failure].type == "voicemail"


def test_option_8_asks_for_a_ticket_number_twice_then_goes_back_to_the_menu(flow: Flow) -> None:
    node = flow.nodes[flow.nodes["main_menu"].options["8"].next]
    assert node.type == "ticket"
    assert set(node.prompt) == LANGUAGES
    assert node.retries == 1  # two tries
    assert node.on_failure == "main_menu" and node.next == "main_menu"


def test_categories_and_priorities(flow: Flow) -> None:
    categories = {"password", "network", "hardware", "software", "vdi", "outage"}
    for kind in ("voicemail", "callback"):
        found = {n.category for n in flow.nodes.values() if n.type == kind and n.category}
        assert found == categories, kind
    assert flow.nodes["outage_callback"].priority == "P1"
    assert flow.nodes["password_callback"].priority == "P2"
    for node_id, node in flow.nodes.items():
        if node.type == "callback":  # no number to call back: the caller still leaves a message
            assert flow.nodes[node.on_failure].type == "voicemail", node_id
            assert node.confirm_number and node.windows and len(flow.calendars) == 1
    for node in flow.nodes.values():
        if node.type == "voicemail":
            assert node.max_length == 120
            assert node.finish_key == "#"


def test_check_flow_reports_no_errors(flow_text: str) -> None:
    if importlib.util.find_spec("routing.loader") is None:
        pytest.skip("routing.loader is not written yet")
    loader = importlib.import_module("routing.loader")
    if not hasattr(loader, "check_flow"):
        pytest.skip("routing.loader has no check_flow yet")
    assert loader.check_flow(flow_text, "flows/it-support.yaml") == []


# --- on-call duty after hours ----------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
ANNA, BEN, CARLA = "+4930555040", "+4930555041", "+4930555042"


def test_the_rota_covers_every_hour_the_desk_is_closed(flow: Flow) -> None:
    duty = flow.rotas["it-duty"]
    assert (duty.timezone, duty.calendar, duty.holidays) == ("Europe/Berlin", "office", "carla")
    assert duty.overrides
    compiled = compile_flow(flow)
    office, rota = compiled.calendars["office"], compiled.rotas["it-duty"]
    moment = datetime(2026, 11, 23, tzinfo=BERLIN)
    while moment < datetime(2027, 1, 4, tzinfo=BERLIN):  # six weeks, Christmas included
        if not office.is_open(moment):
            assert who_is_on_call(rota, moment) is not None, moment
        moment += timedelta(minutes=30)


def test_after_hours_only_the_outage_branch_rings_on_call(flow: Flow) -> None:
    after_hours = flow.nodes["after_hours"]
    assert after_hours.type == "menu"
    assert {key: option.label for key, option in after_hours.options.items()} == {
        "1": "voicemail", "9": "outage"}
    assert after_hours.retries == 0 and after_hours.on_failure == "general_voicemail"
    on_call = flow.nodes[after_hours.options["9"].next]
    assert (on_call.type, on_call.rota) == ("oncall", "it-duty")
    missed = flow.nodes[on_call.on_no_answer]
    assert flow.nodes[missed.next] == flow.nodes["outage_voicemail"]
    assert [n for n in flow.nodes.values() if n.type == "oncall"] == [on_call]


def test_a_stored_flow_reads_back_with_its_rota(flow: Flow) -> None:
    # published flows are stored as JSON; a shift's 'from' must survive the round trip
    assert Flow.model_validate_json(flow.model_dump_json()) == flow


@pytest.fixture
def demo_line(database_url: str) -> Iterator[Callable[[datetime], Flask]]:
    """The demo flow published on an app whose clock reads a given moment."""
    from ivr import create_app

    made: list[Flask] = []

    def at(moment: datetime) -> Flask:
        application = create_app(app_config(database_url, CLOCK=lambda: moment))
        if not made:
            publish(application)
        made.append(application)
        return application

    yield at
    if made:
        empty_tables(made[0])


def dialled(twiml: ET.Element) -> list[str]:
    """The numbers a <Dial> rings."""
    dial = twiml.find("Dial")
    assert dial is not None, ET.tostring(twiml)
    return [number.text or "" for number in dial.iter("Number")]


@pytest.mark.parametrize(
    ("moment", "number"),
    [
        (datetime(2026, 11, 25, 20, 0, tzinfo=BERLIN), ANNA),  # a Wednesday evening
        (datetime(2026, 11, 28, 10, 0, tzinfo=BERLIN), BEN),  # Saturday
        (datetime(2026, 12, 25, 10, 0, tzinfo=BERLIN), CARLA),  # Christmas Day, a Friday
        (datetime(2026, 12, 24, 10, 0, tzinfo=BERLIN), CARLA),  # a closed date of the office
        (datetime(2026, 12, 31, 10, 0, tzinfo=BERLIN), ANNA),  # closed, but swapped to Anna
    ],
)
def test_an_outage_after_hours_rings_the_engineer_on_call(
    demo_line: Callable[[datetime], Flask], moment: datetime, number: str
) -> None:
    phone = Phone(demo_line(moment).test_client())
    phone.dial_in()
    assert said(phone.press("1"))[0].startswith("The IT Service Desk is closed right now.")
    twiml = phone.press("9")
    assert said(twiml) == ["Connecting you to the engineer on call. Please stay on the line."]
    assert dialled(twiml) == [number]
    dial = twiml.find("Dial")
    assert dial is not None
    twiml = phone.post(dial.attrib["action"], DialCallStatus="no-answer")
    assert said(twiml)[0].startswith("Sorry, the engineer on call cannot take your call")
    record = twiml.find("Record")
    assert record is not None and "n=outage_voicemail" in record.attrib["action"]


def test_an_outage_in_german_hears_german_before_the_ring(
    demo_line: Callable[[datetime], Flask]
) -> None:
    phone = Phone(demo_line(datetime(2026, 11, 25, 23, 0, tzinfo=BERLIN)).test_client())
    phone.dial_in()
    phone.press("2")
    twiml = phone.say("eine Störung im ganzen Haus")
    assert said(twiml) == [
        "Wir verbinden Sie mit der Rufbereitschaft. Bitte bleiben Sie in der Leitung."]
    assert dialled(twiml) == [ANNA]


@pytest.mark.parametrize("answer", ["1", "7", None])
def test_other_callers_after_hours_go_to_the_voicemail(
    demo_line: Callable[[datetime], Flask], answer: str | None
) -> None:
    phone = Phone(demo_line(datetime(2026, 11, 25, 20, 0, tzinfo=BERLIN)).test_client())
    phone.dial_in()
    phone.press("1")
    twiml = phone.press(answer) if answer else phone.stay_silent()
    assert twiml.find("Dial") is None
    record = twiml.find("Record")
    assert record is not None and "n=general_voicemail" in record.attrib["action"]


def test_in_office_hours_the_outage_branch_does_not_ring_on_call(
    demo_line: Callable[[datetime], Flask]
) -> None:
    phone = Phone(demo_line(datetime(2026, 11, 25, 10, 0, tzinfo=BERLIN)).test_client())
    phone.dial_in()
    phone.press("1")
    phone.press("9")
    twiml = phone.press("1")  # the outage topic's "speak to an agent"
    assert twiml.find("Dial") is None
    # nobody is signed in on this line: the caller is offered a voicemail or a callback
    assert said(twiml)[0].startswith("Sorry, nobody is free right now.")
    gather = twiml.find("Gather")
    assert gather is not None and "n=outage_no_agent" in gather.attrib["action"]
