"""The queue node: validated with located errors, walked by the engine, rendered as TwiML, and
what a waiting caller hears in each language (pure logic, no database)."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ivr.voice.twiml import conference_join, hold_loop, render
from routing.engine import UnexpectedEvent, advance, compile_flow, start
from routing.flow import Flow, QueueNode, flow_json_schema
from routing.loader import check_flow, compose_tree
from routing.queue_node import hold_announcement, hold_offer, key_choice
from routing.steps import Enqueue, Hangup, Position, QueueLeft, Say
from routing.validator import semantic_errors

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))

# Line numbers in the tests below refer to this text.
QUEUE_FLOW = textwrap.dedent(
    """\
    name: desk
    languages: [en, de]
    default_language: en
    start: menu
    nodes:
      menu:
        type: menu
        prompt: {en: "Press 1 for an agent.", de: "Drücken Sie 1."}
        options: {1: {next: line}}
        on_failure: message
      line:
        type: queue
        prompt: {en: "Please hold.", de: "Bitte warten."}
        category: network
        priority: P2
        queue: servicedesk
        hold_music: https://music.example.com/hold.mp3
        announce_every: 45
        callback: call_me
        voicemail: message
        overflow: nobody
      call_me:
        type: callback
        prompt: {en: "Booked.", de: "Gebucht."}
        windows: false
        next: bye
      message:
        type: voicemail
        prompt: {en: "Leave a message.", de: "Hinterlassen Sie eine Nachricht."}
        next: bye
      nobody:
        type: say
        text: {en: "Nobody is free.", de: "Niemand ist frei."}
        next: message
      bye:
        type: hangup
        text: {en: "Goodbye.", de: "Auf Wiederhören."}
    """
)


def problems(text: str) -> list[str]:
    """Every problem `ivr flows validate` reports for `text`, as 'line:column: message'."""
    return [str(error).split(":", 1)[1] for error in check_flow(text, "f.yaml")]


def changed(old: str, new: str) -> str:
    """QUEUE_FLOW with one exact snippet replaced."""
    assert QUEUE_FLOW.count(old) == 1, old
    return QUEUE_FLOW.replace(old, new)


def flow_of(text: str = QUEUE_FLOW) -> Flow:
    """The flow in `text`, checked."""
    tree = compose_tree(text, "f.yaml")
    flow = Flow.model_validate(tree.data)
    assert semantic_errors(flow, "f.yaml", tree.locate, tree.locate_key) == []
    return flow


# --- validation -------------------------------------------------------------------------------


def test_a_queue_node_with_every_option_is_valid() -> None:
    assert problems(QUEUE_FLOW) == []


def test_the_schema_describes_the_queue_node() -> None:
    schema = flow_json_schema()
    queue = schema["$defs"]["QueueNode"]["properties"]
    assert {"callback", "voicemail", "overflow", "hold_music", "announce_every", "texts",
            "queue", "category", "priority"} <= set(queue)
    assert queue["announce_every"]["minimum"] == 10 and queue["announce_every"]["maximum"] == 300


def test_unknown_targets_are_located_with_a_hint() -> None:
    text = changed("overflow: nobody", "overflow: noboddy")
    assert problems(text) == [
        "21:15: queue 'line' overflow goes to unknown node 'noboddy' (did you mean 'nobody'?)",
    ]


def test_keys_must_lead_to_a_callback_and_a_voicemail_node() -> None:
    text = changed("callback: call_me", "callback: nobody")
    text = text.replace("voicemail: message\n    overflow", "voicemail: bye\n    overflow")
    assert problems(text) == [
        "19:15: queue 'line' callback goes to say 'nobody', which is not a callback node",
        "20:16: queue 'line' voicemail goes to hangup 'bye', which is not a voicemail node",
        "22:3: node 'call_me' is never reached from 'start'",
    ]


def test_hold_music_must_be_an_https_url() -> None:
    assert problems(changed("https://music.example.com/hold.mp3",
                            "http://music.example.com/hold.mp3")) == [
        "17:17: queue 'line' hold_music 'http://music.example.com/hold.mp3' is not an https "
        "URL (Twilio fetches the audio from it)"]
    assert problems(changed("https://music.example.com/hold.mp3",
                            "https://me:secret@music.example.com/hold.mp3")) == [
        "17:17: queue 'line' hold_music must not carry a user name or password"]


def test_queue_names_twilio_refuses_are_located() -> None:
    assert problems(changed("queue: servicedesk", "queue: 'service/desk?'")) == [
        "16:12: queue 'line' queue name 'service/desk?' may only hold letters, digits, spaces "
        "and . _ : - (64 characters at most)"]
    too_long = problems(changed("queue: servicedesk", "queue: " + "q" * 65))
    assert len(too_long) == 1 and "String should have at most 64 characters" in too_long[0]
    assert too_long[0].startswith("16:12:")


def test_announcements_are_between_ten_seconds_and_five_minutes() -> None:
    [problem] = problems(changed("announce_every: 45", "announce_every: 5"))
    assert problem.startswith("18:21:") and "greater than or equal to 10" in problem


def test_prompts_and_texts_need_every_language() -> None:
    text = changed('prompt: {en: "Please hold.", de: "Bitte warten."}',
                   'prompt: {en: "Please hold."}\n    texts:\n      place: {en: "Number {place}."'
                   ', fr: "Numéro {place}."}\n      wait: {en: "About {minutes} min, {who}."}')
    assert problems(text) == [  # 'de' of place and wait: the line's own wording
        "13:13: node 'line' prompt has no 'de' text",
        "15:38: queue 'line' text 'place' has 'fr', which 'languages' does not declare",
        "16:18: queue 'line' text 'wait' (en) uses {who}, which it cannot fill in; it knows: "
        "{minutes}",
    ]


def test_languages_without_built_in_wording_need_texts() -> None:
    text = (changed("languages: [en, de]", "languages: [en, de, ko]")
            .replace('de: "Bitte warten."}', 'de: "Bitte warten.", ko: "잠시만요."}'))
    found = [p for p in problems(text) if "queue 'line'" in p]
    assert found == [
        f"11:3: queue 'line' has no 'ko' text for '{name}' (built in: en, de, pl, ru); write "
        f"it under 'texts: {name}: ko:'" for name in ("hold", "offer", "place", "wait",
                                                     "wait_short")]


def test_a_loop_through_a_queue_node_waits_for_the_caller() -> None:
    text = changed("overflow: nobody", "overflow: menu")
    assert [p for p in problems(text) if "loop" in p] == []


# --- the engine ---------------------------------------------------------------------------


def test_choosing_an_agent_puts_the_caller_in_line() -> None:
    compiled = compile_flow(flow_of())
    first = start(compiled, NOW, "de")
    turn = advance(compiled, first.steps[0].position, digits("1"), NOW)  # type: ignore[union-attr]
    assert turn.steps == (Enqueue(Position("line", "de"), "servicedesk", "network", "P2",
                                  "https://music.example.com/hold.mp3", 45,
                                  Say("Bitte warten.", "de")),)
    assert turn.outcome == "queue" and turn.path == ("line",)


def test_a_queue_node_without_a_name_uses_the_flow_name() -> None:
    compiled = compile_flow(flow_of(changed("    queue: servicedesk\n", "")))
    turn = advance(compiled, Position("menu", "en"), digits("1"), NOW)
    step = turn.steps[0]
    assert isinstance(step, Enqueue) and step.queue_name == "desk"


@pytest.mark.parametrize(("reason", "path"), [
    ("overflow", ("nobody", "message")),
    ("voicemail", ("message",)),
    ("callback", ("call_me",)),
])
def test_leaving_the_line_goes_where_the_node_says(reason: str, path: tuple[str, ...]) -> None:
    compiled = compile_flow(flow_of())
    turn = advance(compiled, Position("line", "en"), QueueLeft(reason), NOW, "+4915123456789")
    assert turn.path == path


def test_after_the_agent_or_a_hang_up_the_line_hangs_up() -> None:
    compiled = compile_flow(flow_of())
    talked = advance(compiled, Position("line", "en"), QueueLeft("talked"), NOW)
    assert (talked.steps, talked.outcome) == ((Hangup(),), "agent")
    gone = advance(compiled, Position("line", "en"), QueueLeft("hangup"), NOW)
    assert (gone.steps, gone.outcome) == ((Hangup(),), "abandoned")


def test_a_key_the_node_does_not_offer_sends_the_caller_to_the_overflow() -> None:
    compiled = compile_flow(flow_of(changed("    callback: call_me\n", "")
                                    .replace("  call_me:\n    type: callback\n    prompt: "
                                             '{en: "Booked.", de: "Gebucht."}\n    windows: '
                                             "false\n    next: bye\n", "")))
    turn = advance(compiled, Position("line", "en"), QueueLeft("callback"), NOW)
    assert isinstance(turn.steps[0], Say) and turn.steps[0].text == "Nobody is free."


def test_the_queue_node_refuses_other_events() -> None:
    compiled = compile_flow(flow_of())
    with pytest.raises(UnexpectedEvent, match="does not fit queue node 'line'"):
        advance(compiled, Position("line", "en"), digits("1"), NOW)
    with pytest.raises(UnexpectedEvent):
        advance(compiled, Position("line", "en"), QueueLeft("teleported"), NOW)


# --- what the caller hears while waiting ---------------------------------------------------


def node(text: str = QUEUE_FLOW) -> QueueNode:
    """The 'line' node of a flow."""
    found = flow_of(text).nodes["line"]
    assert isinstance(found, QueueNode)
    return found


@pytest.mark.parametrize(("language", "place", "wait"), [
    ("en", "You are number 3 in line.", "The estimated waiting time is about 7 minutes."),
    ("de", "Sie sind an Position 3 der Warteschlange.",
     "Die voraussichtliche Wartezeit beträgt etwa 7 Minuten."),
    ("pl", "Pana lub Pani miejsce w kolejce: 3.",
     "Przewidywany czas oczekiwania w minutach: około 7."),
    ("ru", "Ваше место в очереди: 3.", "Примерное время ожидания в минутах: 7."),
])
def test_place_and_wait_in_each_language(language: str, place: str, wait: str) -> None:
    first = hold_announcement(node(), language, "en", 3, 7, first=True)
    assert [said.text for said in first] == [place, wait]
    assert {said.language for said in first} == {language}
    later = hold_announcement(node(), language, "en", 3, 7, first=False)
    assert len(later) == 3 and later[1:] == first  # the apology for the wait comes first


def test_a_short_wait_is_not_a_number() -> None:
    said = hold_announcement(node(), "en", "en", 1, 1, first=True)
    assert said[1].text == "An agent should be with you in a minute or two."


def test_the_offer_names_the_keys_the_node_has() -> None:
    offer = hold_offer(node(), "en", "en")
    assert offer is not None and "press 1" in offer.text and "press 2" in offer.text
    only_voicemail = node(changed("    callback: call_me\n", "").replace(
        "  call_me:\n    type: callback\n    prompt: {en: \"Booked.\", de: \"Gebucht.\"}\n"
        "    windows: false\n    next: bye\n", ""))
    offer = hold_offer(only_voicemail, "en", "en")
    assert offer is not None and offer.text == "To leave a voicemail instead, press 2."
    assert key_choice(only_voicemail, "1") is None
    assert key_choice(only_voicemail, "2") == "voicemail"
    assert key_choice(node(), "1") == "callback" and key_choice(node(), "9") is None


def test_texts_override_the_built_in_wording() -> None:
    text = changed('prompt: {en: "Please hold.", de: "Bitte warten."}',
                   'prompt: {en: "Please hold.", de: "Bitte warten."}\n    texts:\n'
                   '      place: {en: "Ticket {place} of the queue.", de: "Platz {place}."}')
    said = hold_announcement(node(text), "de", "en", 2, 4, first=True)
    assert said[0] == Say("Platz 2.", "de")


# --- TwiML --------------------------------------------------------------------------------


def xml(document: object) -> ET.Element:
    """A TwiML document as parsed XML."""
    return ET.fromstring(str(document))


def test_entering_the_line_is_an_enqueue_with_the_hold_loop_and_the_way_out() -> None:
    flow = flow_of()
    step = Enqueue(Position("line", "de"), "servicedesk", "network", "P2", None, 30,
                   Say("Bitte warten.", "de"))
    twiml = xml(render((step,), flow, 7, 4))
    assert [verb.tag for verb in twiml] == ["Say", "Enqueue"]
    assert twiml[0].text == "Bitte warten." and twiml[0].attrib["language"] == "de-DE"
    enqueue = twiml[1]
    assert enqueue.text == "servicedesk"
    assert enqueue.attrib == {
        "action": "/voice/queue/left?v=7&n=line&l=de&a=0&s=4", "method": "POST",
        "waitUrl": "/voice/queue/wait?v=7&n=line&l=de&a=0&s=4", "waitUrlMethod": "POST"}


def test_a_hold_pass_says_the_place_then_offers_keys_over_the_music() -> None:
    flow = flow_of()
    said = hold_announcement(node(), "en", "en", 2, 5, first=True)
    twiml = xml(hold_loop(flow, "/voice/queue/key?v=1", said, hold_offer(node(), "en", "en"),
                          "https://music.example.com/hold.mp3", 45))
    assert [verb.tag for verb in twiml] == ["Say", "Say", "Gather"]
    assert [verb.text for verb in twiml[:2]] == [
        "You are number 2 in line.", "The estimated waiting time is about 5 minutes."]
    gather = twiml[2]
    assert gather.attrib["action"] == "/voice/queue/key?v=1"
    assert gather.attrib["numDigits"] == "1" and gather.attrib["input"] == "dtmf"
    assert [verb.tag for verb in gather] == ["Say", "Play"]
    assert gather[1].text == "https://music.example.com/hold.mp3"


def test_a_hold_pass_without_music_or_keys_is_a_pause() -> None:
    twiml = xml(hold_loop(flow_of(), None, (), None, None, 30))
    assert [(verb.tag, verb.attrib) for verb in twiml] == [("Pause", {"length": "30"})]


def test_the_caller_and_the_agent_meet_in_a_conference_that_ends_with_either() -> None:
    twiml = xml(conference_join("live-12", action="/voice/queue/talked?v=1"))
    dial = twiml.find("Dial")
    assert dial is not None and dial.attrib["action"] == "/voice/queue/talked?v=1"
    room = dial.find("Conference")
    assert room is not None and room.text == "live-12"
    assert (room.attrib["endConferenceOnExit"], room.attrib["startConferenceOnEnter"],
            room.attrib["beep"]) == ("true", "true", "false")


def digits(value: str):  # type: ignore[no-untyped-def]
    """A key press."""
    from routing.steps import Digits

    return Digits(value)


def test_an_overflow_back_into_the_line_without_waiting_is_a_loop() -> None:
    text = changed("overflow: nobody", "overflow: sorry") + (
        "  sorry:\n    type: say\n    text: {en: \"Sorry.\", de: \"Leider.\"}\n    next: line\n")
    assert [p for p in problems(text) if "loop" in p] == [
        "11:3: nodes 'line' -> 'sorry' -> 'line' loop without waiting for the caller"]
