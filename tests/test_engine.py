"""The call engine: what the caller hears and where the call goes, node by node."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from routing.engine import (
    MAX_HOPS,
    BrokenFlowError,
    CompiledFlow,
    FlowLoopError,
    UnexpectedEvent,
    advance,
    compile_flow,
    normalize_words,
    start,
)
from routing.flow import Flow
from routing.steps import (
    Dial,
    DialEnded,
    Digits,
    Gather,
    Hangup,
    NoInput,
    Position,
    Record,
    Recorded,
    RequestCallback,
    Say,
    Speech,
)

LANGUAGES = ("en", "de", "pl", "ru")
BERLIN = ZoneInfo("Europe/Berlin")
OPEN = datetime(2026, 6, 10, 10, 0, tzinfo=BERLIN)  # a Wednesday morning
EVENING = datetime(2026, 6, 10, 20, 0, tzinfo=BERLIN)
SATURDAY = datetime(2026, 6, 13, 10, 0, tzinfo=BERLIN)
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=BERLIN)
NEW_YEARS_EVE = datetime(2026, 12, 31, 10, 0, tzinfo=BERLIN)
MAIN_KEYS = ("1", "2", "3", "4", "9", "0")
LANGUAGE_OFFERS = {
    "en": "For English, press 1.",
    "de": "Für Deutsch drücken Sie die 2.",
    "pl": "Aby wybrać język polski, naciśnij 3.",
    "ru": "Для русского языка нажмите 4.",
}


def text(name: str) -> dict[str, str]:
    """A prompt in every language, spoken as '<name> [<language>]'."""
    return {language: f"{name} [{language}]" for language in LANGUAGES}


def said(name: str, language: str = "en") -> Say:
    """The Say step of a prompt made by `text`."""
    return Say(f"{name} [{language}]", language)


def main_gather(language: str = "en", attempt: int = 0, lead: Say | None = None) -> Gather:
    """The Gather of the main menu."""
    prompts = (lead, said("main", language)) if lead else (said("main", language),)
    return Gather(
        position=Position("main", language, attempt),
        prompts=prompts,
        timeout=6,
        keys=MAIN_KEYS,
        speech_hints=HINTS[language],
    )


def language_gather(language: str = "en", attempt: int = 0) -> Gather:
    """The Gather of the language choice: each offer in its own language."""
    offers = tuple(Say(LANGUAGE_OFFERS[lang], lang) for lang in LANGUAGES)
    return Gather(Position("language", language, attempt), offers, 5, ("1", "2", "3", "4"))


HINTS = {
    "en": ("password", "locked out", "vpn", "wifi", "printer", "agent"),
    "de": ("Passwort", "Kennwort", "Netzwerk", "vpn", "Drucker", "außer Betrieb", "Mitarbeiter"),
    "pl": ("hasło", "siec", "vpn", "drukarka", "konsultant"),
    "ru": ("пароль", "учётная запись", "сеть", "ВПН", "принтер", "оператор"),
}


def flow_document() -> dict[str, Any]:
    """An IT help-desk flow in four languages that uses every kind of node."""
    return {
        "name": "it-support",
        "languages": list(LANGUAGES),
        "default_language": "en",
        "calendars": {
            "office": {
                "timezone": "Europe/Berlin",
                "hours": {"mon-fri": "08:00-18:00"},
                "holidays": {"country": "DE"},
                "closed": ["2026-12-31"],
            },
        },
        "groups": {"desk": ["+4930111111", "+4930222222"], "nobody": []},
        "start": "welcome",
        "nodes": {
            "welcome": {"type": "say", "text": text("welcome"), "next": "language"},
            "language": {
                "type": "language",
                "prompt": LANGUAGE_OFFERS,
                "options": {"1": "en", "2": "de", "3": "pl", "4": "ru"},
                "next": "office_hours",
            },
            "office_hours": {
                "type": "hours",
                "calendar": "office",
                "open": "main",
                "closed": "after_hours",
                "holiday": "holiday",
            },
            "main": {
                "type": "menu",
                "prompt": text("main"),
                "invalid": text("invalid"),
                "no_input": text("no_input"),
                "on_failure": "voicemail",
                "options": {
                    "1": {
                        "next": "password_help",
                        "label": "password",
                        "keywords": {
                            "en": ["password", "locked out"],
                            "de": ["Passwort", "Kennwort"],
                            "pl": ["hasło"],
                            "ru": ["пароль", "учётная запись"],
                        },
                    },
                    "2": {
                        "next": "network_callback",
                        "label": "network",
                        "keywords": {
                            "en": ["vpn", "wifi"],
                            "de": ["Netzwerk", "vpn"],
                            "pl": ["siec", "vpn"],
                            "ru": ["сеть", "ВПН"],
                        },
                    },
                    "3": {
                        "next": "hardware_desk",
                        "label": "hardware",
                        "keywords": {
                            "en": ["printer"],
                            "de": ["Drucker", "außer Betrieb"],
                            "pl": ["drukarka"],
                            "ru": ["принтер"],
                        },
                    },
                    "4": {"next": "network_callback"},
                    "9": {"next": "voicemail", "label": "voicemail"},
                    "0": {
                        "next": "agents",
                        "label": "agent",
                        "keywords": {
                            "en": ["agent"],
                            "de": ["Mitarbeiter"],
                            "pl": ["konsultant"],
                            "ru": ["оператор"],
                        },
                    },
                },
            },
            "password_help": {"type": "say", "text": text("password"), "next": "goodbye"},
            "network_callback": {
                "type": "callback",
                "prompt": text("callback"),
                "priority": "P2",
                "category": "network",
                "next": "goodbye",
            },
            "hardware_desk": {"type": "transfer", "to": "+4930999999", "on_no_answer": "voicemail"},
            "agents": {
                "type": "transfer",
                "prompt": text("connecting"),
                "group": "desk",
                "timeout": 25,
                "on_no_answer": "agent_voicemail",
            },
            "agent_voicemail": {
                "type": "voicemail",
                "prompt": text("agent_voicemail"),
                "max_length": 300,
                "finish_key": "*",
                "next": "goodbye",
            },
            "voicemail": {"type": "voicemail", "prompt": text("voicemail")},
            "after_hours": {"type": "say", "text": text("after_hours"), "next": "voicemail"},
            "holiday": {"type": "say", "text": text("holiday"), "next": "to_voicemail"},
            "to_voicemail": {"type": "goto", "next": "voicemail"},
            "goodbye": {"type": "hangup", "text": text("goodbye")},
        },
    }


def compiled_from(document: dict[str, Any]) -> CompiledFlow:
    """Compile a flow document without the loader or validator."""
    return compile_flow(Flow.model_validate(document))


@pytest.fixture(scope="module")
def desk() -> CompiledFlow:
    """The four-language help-desk flow, compiled."""
    return compiled_from(flow_document())


def at_main(language: str = "en", attempt: int = 0) -> Position:
    """The position of a call waiting at the main menu."""
    return Position("main", language, attempt)


# --- starting a call and choosing a language ----------------------------------------


def test_start_says_welcome_and_offers_each_language_in_its_own_language(
    desk: CompiledFlow,
) -> None:
    turn = start(desk, OPEN)
    assert turn.steps == (said("welcome"), language_gather())
    assert turn.path == ("welcome", "language")
    assert turn.language == "en"
    assert turn.outcome is None and turn.choice is None


@pytest.mark.parametrize(
    ("asked", "expected"), [("de", "de"), ("ru", "ru"), ("pl-PL", "pl"), ("fr", "en"), (None, "en")]
)
def test_start_in_a_language_or_the_default(
    desk: CompiledFlow, asked: str | None, expected: str
) -> None:
    turn = start(desk, OPEN, asked)
    assert turn.steps == (said("welcome", expected), language_gather(expected))
    assert turn.language == expected


@pytest.mark.parametrize(("key", "language"), [("1", "en"), ("2", "de"), ("3", "pl"), ("4", "ru")])
def test_each_language_reaches_its_own_prompts(desk: CompiledFlow, key: str, language: str) -> None:
    turn = advance(desk, Position("language", "en"), Digits(key), OPEN)
    assert turn.steps == (main_gather(language),)
    assert turn.path == ("office_hours", "main")
    assert (turn.language, turn.choice) == (language, language)
    # the rest of the call stays in that language
    turn = advance(desk, at_main(language), Digits("1"), OPEN)
    assert turn.steps == (said("password", language), said("goodbye", language), Hangup())
    assert turn.language == language


def test_language_choice_retries_then_carries_on_in_the_current_language(
    desk: CompiledFlow,
) -> None:
    turn = advance(desk, Position("language", "de"), Digits("7"), OPEN)
    assert turn.steps == (language_gather("de", attempt=1),)
    assert turn.path == ()
    turn = advance(desk, Position("language", "de", 1), NoInput(), OPEN)
    assert turn.steps == (main_gather("de"),)
    assert turn.path == ("office_hours", "main")
    assert turn.language == "de" and turn.choice is None


def test_language_choice_by_speech_is_not_understood(desk: CompiledFlow) -> None:
    turn = advance(desk, Position("language", "en"), Speech("Deutsch bitte"), OPEN)
    assert turn.steps == (language_gather("en", attempt=1),)


# --- business hours -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "path", "message"),
    [
        (EVENING, ("office_hours", "after_hours", "voicemail"), "after_hours"),
        (SATURDAY, ("office_hours", "after_hours", "voicemail"), "after_hours"),
        (CHRISTMAS, ("office_hours", "holiday", "to_voicemail", "voicemail"), "holiday"),
        (NEW_YEARS_EVE, ("office_hours", "holiday", "to_voicemail", "voicemail"), "holiday"),
    ],
)
def test_hours_send_callers_to_voicemail_when_closed(
    desk: CompiledFlow, now: datetime, path: tuple[str, ...], message: str
) -> None:
    turn = advance(desk, Position("language", "en"), Digits("3"), now)
    assert turn.steps == (
        said(message, "pl"),
        said("voicemail", "pl"),
        Record(Position("voicemail", "pl"), 120, "#"),
    )
    assert turn.path == path
    assert turn.outcome == "voicemail"


def test_a_holiday_without_its_own_branch_counts_as_closed() -> None:
    document = flow_document()
    del document["nodes"]["office_hours"]["holiday"]
    turn = advance(compiled_from(document), Position("language", "en"), Digits("1"), CHRISTMAS)
    assert turn.path == ("office_hours", "after_hours", "voicemail")


def test_hours_use_the_calendars_time_zone() -> None:
    document = flow_document()
    document["calendars"]["office"]["timezone"] = "America/New_York"
    compiled = compiled_from(document)
    # 10:00 in Berlin is 04:00 in New York
    turn = advance(compiled, Position("language", "en"), Digits("1"), OPEN)
    assert turn.path == ("office_hours", "after_hours", "voicemail")
    afternoon = datetime(2026, 6, 10, 16, 0, tzinfo=BERLIN)  # 10:00 in New York
    turn = advance(compiled, Position("language", "en"), Digits("1"), afternoon)
    assert turn.path == ("office_hours", "main")


# --- the menu: keys --------------------------------------------------------------------


def test_menu_key_follows_its_option(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main(), Digits("1"), OPEN)
    assert turn.steps == (said("password"), said("goodbye"), Hangup())
    assert turn.path == ("password_help", "goodbye")
    assert turn.choice == "password"
    assert turn.outcome == "hangup"


def test_menu_choice_without_a_label_is_its_key(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main(), Digits("4"), OPEN)
    assert turn.choice == "4"


def test_unknown_key_repeats_the_menu_after_the_invalid_prompt(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main("de"), Digits("7"), OPEN)
    assert turn.steps == (main_gather("de", attempt=1, lead=said("invalid", "de")),)
    assert turn.path == ()
    assert turn.outcome is None and turn.choice is None
    assert turn.language == "de"


def test_silence_repeats_the_menu_after_the_no_input_prompt(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main("ru", attempt=1), NoInput(), OPEN)
    assert turn.steps == (main_gather("ru", attempt=2, lead=said("no_input", "ru")),)
    # empty digits or empty speech are silence too
    assert advance(desk, at_main("ru", 1), Digits(""), OPEN) == turn
    assert advance(desk, at_main("ru", 1), Speech(" ... "), OPEN) == turn


def test_retries_used_up_go_to_on_failure(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main("pl", attempt=2), Digits("8"), OPEN)
    assert turn.steps == (
        said("invalid", "pl"),
        said("voicemail", "pl"),
        Record(Position("voicemail", "pl"), 120, "#"),
    )
    assert turn.path == ("voicemail",)
    assert turn.outcome == "menu_failed"
    turn = advance(desk, at_main("pl", attempt=2), NoInput(), OPEN)
    assert turn.steps[0] == said("no_input", "pl")
    assert turn.outcome == "menu_failed"


def test_a_menu_without_retry_prompts_just_asks_again() -> None:
    document = flow_document()
    del document["nodes"]["main"]["invalid"]
    del document["nodes"]["main"]["no_input"]
    document["nodes"]["main"]["retries"] = 1
    compiled = compiled_from(document)
    assert advance(compiled, at_main(), Digits("5"), OPEN).steps == (main_gather(attempt=1),)
    assert advance(compiled, at_main(), NoInput(), OPEN).steps == (main_gather(attempt=1),)
    turn = advance(compiled, at_main(attempt=1), Digits("5"), OPEN)
    assert turn.steps == (said("voicemail"), Record(Position("voicemail", "en"), 120, "#"))
    assert turn.outcome == "menu_failed"


# --- the menu: speech ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "speech", "choice"),
    [
        ("en", "I'm LOCKED OUT of my laptop!", "password"),
        ("en", "The VPN, it keeps dropping.", "network"),
        ("en", "Can I talk to an agent?", "agent"),
        ("en", "locked... out", "password"),  # punctuation inside a phrase is dropped
        ("de", "Ich habe mein Passwort vergessen.", "password"),
        ("de", "Der Drucker ist außer Betrieb", "hardware"),
        ("de", "Das Gerät ist ausser Betrieb", "hardware"),  # ß and ss are the same
        ("de", "AUSSER BETRIEB", "hardware"),
        ("pl", "Nie pamiętam hasła, hasło wygasło", "password"),
        ("pl", "haslo nie dziala", "password"),  # without diacritics
        ("pl", "Sieć nie działa!", "network"),  # keyword 'siec' written without them
        ("pl", "Proszę o konsultanta... nie, konsultant", "agent"),
        ("ru", "Забыл пароль", "password"),
        ("ru", "Учетная запись заблокирована", "password"),  # ё written as е
        ("ru", "Не работает впн.", "network"),
        ("ru", "Позовите оператора, пожалуйста, оператор!", "agent"),
    ],
)
def test_menu_by_speech(desk: CompiledFlow, language: str, speech: str, choice: str) -> None:
    turn = advance(desk, at_main(language), Speech(speech, confidence=0.8), OPEN)
    assert turn.choice == choice
    assert turn.language == language


@pytest.mark.parametrize(
    ("call_language", "speech"),
    [
        ("en", "my passwords are fine"),  # whole words only
        ("en", "out, locked"),  # a phrase's words in their order
        ("en", "Mein Passwort"),  # German keywords do not work in an English call
        ("pl", "drukarkami"),
        ("ru", "паролем"),
    ],
)
def test_speech_that_matches_no_keyword_counts_as_invalid(
    desk: CompiledFlow, call_language: str, speech: str
) -> None:
    turn = advance(desk, at_main(call_language), Speech(speech), OPEN)
    assert turn.steps == (main_gather(call_language, 1, said("invalid", call_language)),)
    assert turn.choice is None


def test_the_longest_keyword_said_wins(desk: CompiledFlow) -> None:
    # 'locked out' (two words) beats 'vpn' even though 'vpn' came first
    turn = advance(desk, at_main(), Speech("vpn says I am locked out"), OPEN)
    assert turn.choice == "password"
    # equally long: the first one said wins
    turn = advance(desk, at_main(), Speech("the printer and the wifi"), OPEN)
    assert turn.choice == "hardware"


def test_normalize_words() -> None:
    assert normalize_words("Ёлка, GROSS straße!") == ("елка", "gross", "strasse")
    assert normalize_words("Zażółć gęślą jaźń") == ("zazolc", "gesla", "jazn")
    assert normalize_words("  ") == ()


def test_speech_hints_are_the_menus_keywords_in_the_calls_language(desk: CompiledFlow) -> None:
    for language in LANGUAGES:
        assert desk.speech_hints[("main", language)] == HINTS[language]


# --- voicemail, callback, transfer ---------------------------------------------------------


def test_voicemail_records_then_hangs_up(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main(), Digits("9"), OPEN)
    assert turn.steps == (said("voicemail"), Record(Position("voicemail", "en"), 120, "#"))
    assert turn.outcome == "voicemail" and turn.choice == "voicemail"
    turn = advance(desk, Position("voicemail", "en"), Recorded(), OPEN)
    assert turn.steps == (Hangup(),)
    assert turn.path == ()
    assert turn.outcome == "voicemail"  # no goodbye of its own: the web layer adds the ticket


def test_voicemail_with_next_continues_after_the_recording(desk: CompiledFlow) -> None:
    turn = advance(desk, Position("agent_voicemail", "de"), Recorded(), OPEN)
    assert turn.steps == (said("goodbye", "de"), Hangup())
    assert turn.path == ("goodbye",)
    assert turn.outcome == "voicemail"  # what the call achieved, not how it ended


def test_callback_asks_window_and_number_then_queues_and_confirms(desk: CompiledFlow) -> None:
    caller = "+4915112345678"
    turn = advance(desk, at_main("ru"), Digits("2"), OPEN, caller)
    (window,) = turn.steps
    assert isinstance(window, Gather) and window.position == Position(
        "network_callback", "ru", 0, "window")
    assert turn.path == ("network_callback",) and turn.outcome is None
    turn = advance(desk, window.position, Digits("2"), OPEN, caller)
    (confirm,) = turn.steps
    assert isinstance(confirm, Gather)
    assert confirm.position == Position("network_callback", "ru", 0, "confirm", "afternoon")
    assert "5 6 7 8" in confirm.prompts[0].text and confirm.prompts[0].language == "ru"
    turn = advance(desk, confirm.position, Digits("1"), OPEN, caller)
    assert turn.steps == (
        said("callback", "ru"),
        RequestCallback("network_callback", "ru", "P2", "network", "", "afternoon"),
        said("goodbye", "ru"),
        Hangup(),
    )
    assert turn.path == ("goodbye",)
    assert turn.outcome == "callback"


def test_transfer_to_a_group_and_its_outcomes(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main("de"), Digits("0"), OPEN)
    assert turn.steps == (
        said("connecting", "de"),
        Dial(Position("agents", "de"), ("+4930111111", "+4930222222"), 25),
    )
    assert turn.outcome == "transfer" and turn.choice == "agent"
    answered = advance(desk, Position("agents", "de"), DialEnded(answered=True), OPEN)
    assert answered.steps == (Hangup(),)
    assert answered.outcome == "agent"
    missed = advance(desk, Position("agents", "de"), DialEnded(answered=False), OPEN)
    assert missed.steps == (
        said("agent_voicemail", "de"),
        Record(Position("agent_voicemail", "de"), 300, "*"),
    )
    assert missed.path == ("agent_voicemail",)
    assert missed.outcome == "voicemail"


def test_transfer_to_one_number_without_a_prompt(desk: CompiledFlow) -> None:
    turn = advance(desk, at_main(), Digits("3"), OPEN)
    assert turn.steps == (Dial(Position("hardware_desk", "en"), ("+4930999999",), 20),)
    missed = advance(desk, Position("hardware_desk", "en"), DialEnded(answered=False), OPEN)
    assert missed.path == ("voicemail",)


def test_transfer_to_an_empty_group_goes_straight_to_no_answer() -> None:
    document = flow_document()
    document["nodes"]["agents"]["group"] = "nobody"
    turn = advance(compiled_from(document), at_main(), Digits("0"), OPEN)
    assert turn.steps == (
        said("agent_voicemail"),
        Record(Position("agent_voicemail", "en"), 300, "*"),
    )
    assert turn.path == ("agents", "agent_voicemail")
    assert turn.outcome == "voicemail"


def test_transfer_to_an_unknown_group_is_a_broken_flow() -> None:
    document = flow_document()
    document["nodes"]["agents"]["group"] = "deks"
    with pytest.raises(BrokenFlowError, match="unknown group 'deks'"):
        advance(compiled_from(document), at_main(), Digits("0"), OPEN)


def test_hangup_without_text() -> None:
    document = flow_document()
    document["nodes"]["goodbye"] = {"type": "hangup"}
    turn = advance(compiled_from(document), at_main(), Digits("1"), OPEN)
    assert turn.steps == (said("password"), Hangup())


# --- loops and events that do not fit ------------------------------------------------


def test_a_loop_without_a_waiting_node_is_stopped() -> None:
    document = flow_document()
    document["start"] = "spin"
    document["nodes"]["spin"] = {"type": "say", "text": text("spin"), "next": "spin_again"}
    document["nodes"]["spin_again"] = {"type": "goto", "next": "spin"}
    compiled = compiled_from(document)
    with pytest.raises(FlowLoopError, match=f"entered {MAX_HOPS} nodes") as raised:
        start(compiled, OPEN)
    assert isinstance(raised.value, RuntimeError)
    assert "spin -> spin_again" in str(raised.value)


def test_a_missing_target_is_a_broken_flow() -> None:
    document = flow_document()
    document["nodes"]["welcome"]["next"] = "lagnuage"
    with pytest.raises(BrokenFlowError, match="no node 'lagnuage'"):
        start(compiled_from(document), OPEN)


@pytest.mark.parametrize(
    ("position", "event", "message"),
    [
        (Position("voicemail", "en"), Digits("1"), "Digits does not fit voicemail node"),
        (Position("main", "en"), Recorded(), "Recorded does not fit menu node 'main'"),
        (Position("main", "en"), DialEnded(True), "DialEnded does not fit menu node"),
        (Position("agents", "en"), Speech("hello"), "Speech does not fit transfer node"),
        (Position("language", "en"), Recorded(), "Recorded does not fit language node"),
        (Position("welcome", "en"), NoInput(), "NoInput does not fit say node 'welcome'"),
        (Position("goodbye", "en"), Digits("1"), "does not fit hangup node"),
        (Position("vpn_hlep", "en"), Digits("1"), "has no node 'vpn_hlep'"),
        (Position("main", "fr"), Digits("1"), "does not declare language 'fr'"),
        (Position("main", "en", -1), Digits("1"), "negative"),
    ],
)
def test_events_that_do_not_fit_are_refused(
    desk: CompiledFlow, position: Position, event: Any, message: str
) -> None:
    with pytest.raises(UnexpectedEvent, match=message) as raised:
        advance(desk, position, event, OPEN)
    assert isinstance(raised.value, ValueError)


def test_turns_are_deterministic(desk: CompiledFlow) -> None:
    first = advance(desk, Position("language", "en"), Digits("2"), OPEN)
    assert advance(desk, Position("language", "en"), Digits("2"), OPEN) == first
    assert start(desk, OPEN) == start(desk, OPEN)


def test_compile_flow_names_a_bad_calendar() -> None:
    document = flow_document()
    document["calendars"]["office"]["timezone"] = "Mars/Olympus"
    with pytest.raises(ValueError, match="calendar 'office': unknown time zone 'Mars/Olympus'"):
        compiled_from(document)


# --- on-call duty ---------------------------------------------------------------------------


def oncall_document() -> dict[str, Any]:
    """The help-desk flow whose option 9 rings the on-call rota before the voicemail."""
    document = flow_document()
    document["rotas"] = {
        "it-duty": {
            "timezone": "Europe/Berlin",
            "calendar": "office",
            "people": {"anna": "+4930555040", "ben": "+4930555041"},
            "weekly": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "18:00",
                        "to": "08:00", "person": "anna"}],
            "holidays": "ben",
        },
    }
    document["nodes"]["main"]["options"]["9"]["next"] = "on_call"
    document["nodes"]["on_call"] = {"type": "oncall", "rota": "it-duty",
                                    "prompt": text("on_call"), "on_no_answer": "voicemail"}
    return document


@pytest.mark.parametrize(
    ("now", "number"), [(EVENING, "+4930555040"), (CHRISTMAS, "+4930555041")])
def test_oncall_rings_the_person_on_duty(now: datetime, number: str) -> None:
    turn = advance(compiled_from(oncall_document()), at_main("de"), Digits("9"), now)
    assert turn.steps == (said("on_call", "de"), Dial(Position("on_call", "de"), (number,), 25))
    assert turn.path == ("on_call",) and turn.outcome == "oncall"


def test_oncall_with_nobody_on_duty_goes_straight_to_on_no_answer() -> None:
    turn = advance(compiled_from(oncall_document()), at_main(), Digits("9"), OPEN)
    assert turn.steps == (said("voicemail"), Record(Position("voicemail", "en"), 120, "#"))
    assert turn.path == ("on_call", "voicemail") and turn.outcome == "voicemail"


def test_oncall_answered_or_missed() -> None:
    compiled = compiled_from(oncall_document())
    answered = advance(compiled, Position("on_call", "en"), DialEnded(answered=True), EVENING)
    assert answered.steps == (Hangup(),) and answered.outcome == "oncall_answered"
    missed = advance(compiled, Position("on_call", "en"), DialEnded(answered=False), EVENING)
    assert missed.steps == (said("voicemail"), Record(Position("voicemail", "en"), 120, "#"))
    assert missed.path == ("voicemail",)
    with pytest.raises(UnexpectedEvent, match="Digits does not fit oncall node"):
        advance(compiled, Position("on_call", "en"), Digits("1"), EVENING)


def test_oncall_with_an_unknown_rota_is_a_broken_flow() -> None:
    document = oncall_document()
    document["nodes"]["on_call"]["rota"] = "it-dutty"
    with pytest.raises(BrokenFlowError, match="unknown rota 'it-dutty'"):
        advance(compiled_from(document), at_main(), Digits("9"), EVENING)


def test_compile_flow_names_a_bad_rota() -> None:
    document = oncall_document()
    document["rotas"]["it-duty"]["weekly"][0]["person"] = "anne"
    with pytest.raises(ValueError, match="rota 'it-duty': unknown people: anne"):
        compiled_from(document)
