"""routing.validator: targets, reachability, loops, languages, numbers, calendars and menus."""

from __future__ import annotations

import textwrap

import pytest

from routing.field_problems import did_you_mean, phone_number_problem, timezone_problem
from routing.flow import Flow
from routing.loader import LocatedTree, compose_tree
from routing.validator import semantic_errors

# Line numbers in the tests below refer to this text; each test changes one or two lines.
VALID_FLOW = textwrap.dedent(
    """\
    name: support
    languages: [en, de]
    default_language: en
    voices:
      en: {locale: en-US}
      de: {locale: de-DE}
    numbers: ["+493012345678"]
    calendars:
      office:
        timezone: Europe/Berlin
        hours:
          mon-thu: ["08:00-12:00", "13:00-17:00"]
          fri: "08:00-14:00"
        holidays: {country: DE, subdivision: BE}
    groups:
      servicedesk: ["+493012345679"]
    start: welcome
    nodes:
      welcome:
        type: language
        prompt: {en: "For English, press 1.", de: "Für Deutsch drücken Sie 2."}
        options: {1: en, 2: de}
        next: check_hours
      check_hours:
        type: hours
        calendar: office
        open: main
        closed: voicemail
      main:
        type: menu
        prompt: {en: "Press 1 for VPN.", de: "Drücken Sie 1 für VPN."}
        options:
          1: {next: agent, keywords: {en: [vpn], de: [vpn]}}
          2: {next: voicemail, keywords: {en: [message]}}
        on_failure: voicemail
      agent:
        type: transfer
        group: servicedesk
        on_no_answer: voicemail
      voicemail:
        type: voicemail
        prompt: {en: "Leave a message.", de: "Hinterlassen Sie eine Nachricht."}
        next: bye
      bye:
        type: hangup
    """
)
"""A valid flow using every kind of check: calendar, groups, transfer, languages, keywords."""


def problems(text: str) -> list[str]:
    """The validator's errors for a schema-valid flow text, as 'file:line:column: message'."""
    tree = compose_tree(text, "f.yaml")
    flow = Flow.model_validate(tree.data)
    return [str(e) for e in semantic_errors(flow, "f.yaml", tree.locate, tree.locate_key)]


def changed(old: str, new: str) -> str:
    """VALID_FLOW with one exact snippet replaced."""
    assert VALID_FLOW.count(old) == 1, old
    return VALID_FLOW.replace(old, new)


def test_valid_flow_has_no_errors() -> None:
    assert problems(VALID_FLOW) == []


# --- targets, reachability, loops ------------------------------------------------------


def test_unknown_menu_target_suggests_the_close_node_without_unreachable_noise() -> None:
    text = changed("1: {next: agent,", "1: {next: agnet,")
    assert problems(text) == [
        "f.yaml:33:17: menu 'main' option '1' goes to unknown node 'agnet' (did you mean 'agent'?)",
    ]


def test_one_misspelt_node_name_in_the_demo_flow_is_one_problem() -> None:
    from pathlib import Path

    demo = (Path(__file__).resolve().parents[1] / "flows" / "it-support.yaml").read_text(
        encoding="utf-8")
    assert demo.count("\n  main_menu:\n") == 1
    misspelt = demo.replace("\n  main_menu:\n", "\n  main_mneu:\n")
    found = problems(misspelt)
    # one problem per place that names the node, and no flood of "never reached"
    assert found and all("goes to unknown node 'main_menu' (did you mean 'main_mneu'?)" in p
                         for p in found)
    assert len(found) == demo.count(": main_menu\n")


def test_unreachable_nodes_are_reported_once_every_reference_resolves() -> None:
    text = changed("1: {next: agent,", "1: {next: bye,")
    assert problems(text) == ["f.yaml:36:3: node 'agent' is never reached from 'start'"]


def test_unknown_target_names_the_field() -> None:
    text = changed("closed: voicemail", "closed: voicemial")
    assert problems(text) == [
        "f.yaml:28:13: hours 'check_hours' closed goes to unknown node 'voicemial' "
        "(did you mean 'voicemail'?)"
    ]


def test_unknown_start_is_reported_without_unreachable_noise() -> None:
    assert problems(changed("start: welcome", "start: welcom")) == [
        "f.yaml:17:8: 'start' goes to unknown node 'welcom' (did you mean 'welcome'?)"
    ]


def test_unreachable_node_is_reported_at_its_key() -> None:
    text = VALID_FLOW + "  old_menu:\n    type: hangup\n"
    assert problems(text) == ["f.yaml:46:3: node 'old_menu' is never reached from 'start'"]


LOOP_FLOW = textwrap.dedent(
    """\
    name: loop
    languages: [en]
    default_language: en
    start: a
    nodes:
      a:
        type: say
        text: {en: "Hello."}
        next: b
      b:
        type: goto
        next: a
    """
)


def test_loop_without_waiting_is_reported_once_at_its_first_node() -> None:
    assert problems(LOOP_FLOW) == [
        "f.yaml:6:3: nodes 'a' -> 'b' -> 'a' loop without waiting for the caller"
    ]


def test_loop_through_a_menu_waits_for_the_caller() -> None:
    text = LOOP_FLOW.replace(
        "    type: goto\n    next: a\n",
        "    type: menu\n    prompt: {en: Press 1.}\n    options: {1: {next: a}}\n"
        "    on_failure: a\n",
    )
    assert problems(text) == []


def test_each_loop_through_an_hours_node_is_reported() -> None:
    text = textwrap.dedent(
        """\
        name: loops
        languages: [en]
        default_language: en
        calendars:
          office: {timezone: UTC, hours: {mon: "08:00-17:00"}}
        start: h
        nodes:
          h: {type: hours, calendar: office, open: a, closed: b}
          a: {type: goto, next: h}
          b: {type: callback, prompt: {en: "We will call you."}, next: b}
        """
    )
    assert problems(text) == [
        "f.yaml:8:3: nodes 'h' -> 'a' -> 'h' loop without waiting for the caller",
        "f.yaml:10:3: nodes 'b' -> 'b' loop without waiting for the caller",
    ]


def test_loop_search_stays_bounded_on_a_tangled_flow() -> None:
    lines = [
        "name: tangle",
        "languages: [en]",
        "default_language: en",
        "calendars: {office: {timezone: UTC, hours: {mon: '08:00-17:00'}}}",
        "start: h0",
        "nodes:",
    ]
    for index in range(60):  # 2**60 different loops back to h0
        following = f"h{(index + 1) % 60}"
        lines.append(
            f"  h{index}: {{type: hours, calendar: office, open: {following}, closed: g{index}}}"
        )
        lines.append(f"  g{index}: {{type: goto, next: {following}}}")
    errors = problems("\n".join(lines) + "\n")
    assert len(errors) == 20
    assert all(e.startswith("f.yaml:7:3: nodes 'h0' -> 'h1' -> ") for e in errors)


# --- languages ---------------------------------------------------------------------------


def test_missing_translation_is_reported_at_the_prompt() -> None:
    text = changed(
        'prompt: {en: "Press 1 for VPN.", de: "Drücken Sie 1 für VPN."}',
        'prompt: {en: "Press 1 for VPN."}',
    )
    assert problems(text) == ["f.yaml:31:13: node 'main' prompt has no 'de' text"]


def test_callback_texts_missing_in_a_declared_language_are_reported_at_the_node() -> None:
    text = textwrap.dedent(
        """\
        name: callbacks
        languages: [en, cs]
        default_language: en
        start: cb
        nodes:
          cb:
            type: callback
            prompt: {en: "Booked.", cs: "Zarezervováno."}
            confirm_number: false
            texts:
              key_in: {cs: "Zadejte číslo."}
            next: bye
          bye: {type: hangup}
        """
    )
    assert problems(text) == [
        f"f.yaml:10:5: callback 'cb' has no 'cs' text for '{name}' (built in: en, de, pl, ru); "
        f"write it under 'texts: {name}: cs:'"
        for name in ("invalid_number", "no_number", "queued", "ticket")
    ]


def test_undeclared_prompt_language_is_reported_at_its_key() -> None:
    text = changed('eine Nachricht."}', 'eine Nachricht.", fr: "Laissez un message."}')
    assert problems(text) == [
        "f.yaml:42:78: node 'voicemail' prompt has text for 'fr', which 'languages' does not "
        "declare"
    ]


def test_default_language_must_be_declared() -> None:
    assert problems(changed("default_language: en", "default_language: pl")) == [
        "f.yaml:3:19: default_language 'pl' is not one of the declared languages: en, de"
    ]


def test_voices_and_keywords_must_use_declared_languages() -> None:
    text = changed("  de: {locale: de-DE}\n", "  de: {locale: de-DE}\n  fr: {locale: fr-FR}\n")
    text = text.replace("keywords: {en: [message]}", "keywords: {fr: [message]}")
    assert problems(text) == [
        "f.yaml:7:3: voice 'fr' is for a language 'languages' does not declare",
        "f.yaml:35:39: menu 'main' option '2' has keywords for 'fr', which 'languages' does "
        "not declare",
    ]


def test_language_node_offers_only_declared_languages_it_can_announce() -> None:
    text = changed("options: {1: en, 2: de}", "options: {1: en, 2: fr}")
    assert problems(text) == [
        "f.yaml:21:13: node 'welcome' prompt has no 'fr' text",
        "f.yaml:22:25: language 'welcome' option '2' offers 'fr', which 'languages' does not "
        "declare",
    ]


def test_language_node_prompt_needs_only_the_languages_it_offers() -> None:
    text = changed(
        'prompt: {en: "For English, press 1.", de: "Für Deutsch drücken Sie 2."}',
        'prompt: {en: "For English, press 1."}',
    ).replace("options: {1: en, 2: de}", "options: {1: en}")
    assert problems(text) == []
    text = text.replace("options: {1: en}", "options: {1: en, 2: de}")
    assert problems(text) == ["f.yaml:21:13: node 'welcome' prompt has no 'de' text"]


# --- phone numbers and transfers ------------------------------------------------------------


def test_invalid_and_unformatted_phone_numbers() -> None:
    text = changed('numbers: ["+493012345678"]', 'numbers: ["030 12345678", "+49 30 12345678"]')
    text = text.replace('servicedesk: ["+493012345679"]', 'servicedesk: ["+4912"]')
    assert problems(text) == [
        "f.yaml:7:11: numbers: '030 12345678' is not a valid phone number in E.164 form (+4930...)",
        "f.yaml:7:27: numbers: '+49 30 12345678' is not written in E.164 form; "
        "write '+493012345678'",
        "f.yaml:16:17: group 'servicedesk': '+4912' is not a valid phone number in E.164 form "
        "(+4930...)",
    ]


def test_group_without_numbers() -> None:
    text = changed('servicedesk: ["+493012345679"]', 'servicedesk: ["+493012345679"]\n  empty: []')
    assert problems(text) == ["f.yaml:17:10: group 'empty' has no numbers"]


def test_transfer_number_must_be_valid() -> None:
    text = changed("    group: servicedesk\n", '    to: "+1 555"\n')
    assert problems(text) == [
        "f.yaml:38:9: transfer 'agent' to: '+1 555' is not a valid phone number in E.164 form "
        "(+4930...)"
    ]


def test_transfer_with_both_to_and_group() -> None:
    text = changed("    group: servicedesk\n", '    group: servicedesk\n    to: "+493012345680"\n')
    assert problems(text) == ["f.yaml:36:3: transfer 'agent' has both 'to' and 'group'; keep one"]


def test_transfer_with_neither_to_nor_group() -> None:
    text = changed("    group: servicedesk\n", "")
    assert problems(text) == [
        "f.yaml:36:3: transfer 'agent' needs 'to' (an E.164 number) or 'group' "
        "(a name under 'groups')"
    ]


def test_transfer_to_unknown_group() -> None:
    assert problems(changed("group: servicedesk", "group: servicedeks")) == [
        "f.yaml:38:12: transfer 'agent' group 'servicedeks' is not under 'groups' "
        "(did you mean 'servicedesk'?)"
    ]


# --- calendars ----------------------------------------------------------------------------


def test_unknown_timezone_suggests_the_close_one() -> None:
    assert problems(changed("timezone: Europe/Berlin", "timezone: Europe/Berln")) == [
        "f.yaml:10:15: calendar 'office' timezone 'Europe/Berln' is unknown "
        "(did you mean 'Europe/Berlin'?); use an IANA name such as 'Europe/Berlin'"
    ]


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ('"08:00-25:00"', "'08:00-25:00': 25:00 is not a time of day"),
        ('"17:00-08:00"', "'17:00-08:00' closes before it opens; split ranges that pass midnight"),
        ('"8-14"', "'8-14' is not a time range such as '08:00-17:30'"),
    ],
)
def test_impossible_hours_are_reported_at_the_value(hours: str, message: str) -> None:
    text = changed('fri: "08:00-14:00"', f"fri: {hours}")
    assert problems(text) == [f"f.yaml:13:12: calendar 'office' hours 'fri': {message}"]


def test_bad_day_is_reported_at_the_key() -> None:
    assert problems(changed('fri: "08:00-14:00"', 'fry: "08:00-14:00"')) == [
        "f.yaml:13:7: calendar 'office' hours: 'fry' is not a day or day range such as 'mon' "
        "or 'mon-fri'"
    ]


def test_day_listed_twice() -> None:
    text = changed('fri: "08:00-14:00"\n', 'fri: "08:00-14:00"\n      wed: "18:00-20:00"\n')
    assert problems(text) == [
        "f.yaml:14:7: calendar 'office' hours 'wed' lists wed again (already in 'mon-thu'); "
        "each day may appear once"
    ]


def test_overlapping_ranges_on_one_day() -> None:
    text = changed('["08:00-12:00", "13:00-17:00"]', '["08:00-12:00", "11:00-17:00"]')
    assert problems(text) == [
        "f.yaml:12:32: calendar 'office' hours 'mon-thu': '11:00-17:00' overlaps '08:00-12:00'"
    ]


def test_ranges_that_touch_and_run_to_midnight_are_fine() -> None:
    text = changed('["08:00-12:00", "13:00-17:00"]', '["08:00-12:00", "12:00-24:00"]')
    assert problems(text) == []


def test_unknown_holiday_country_and_subdivision() -> None:
    assert problems(changed("country: DE,", "country: XX,")) == [
        "f.yaml:14:25: calendar 'office' holidays: country 'XX' is not supported by the "
        "holidays package"
    ]
    errors = problems(changed("subdivision: BE}", "subdivision: XY}"))
    assert len(errors) == 1
    assert errors[0].startswith(
        "f.yaml:14:42: calendar 'office' holidays: 'XY' is not a subdivision of DE"
    )
    assert "known: BB, BE, BW" in errors[0]


def test_hours_node_with_unknown_calendar() -> None:
    assert problems(changed("calendar: office", "calendar: ofice")) == [
        "f.yaml:26:15: hours 'check_hours' calendar 'ofice' is not under 'calendars' "
        "(did you mean 'office'?)"
    ]


# --- menus ---------------------------------------------------------------------------------


def test_one_keyword_for_two_options_in_one_language() -> None:
    text = changed("keywords: {en: [message]}", "keywords: {en: [message, VPN]}")
    assert problems(text) == [
        "f.yaml:34:53: menu 'main' keyword 'VPN' (en) is used by options '1' and '2'; "
        "a keyword may pick one option"
    ]


# --- the validator on its own ------------------------------------------------------------


def test_all_problems_come_back_sorted_in_one_call() -> None:
    text = (
        changed("timezone: Europe/Berlin", "timezone: Mars/Olympus")
        .replace("closed: voicemail", "closed: voicemial")
        .replace("group: servicedesk", "group: servicedeks")
    )
    assert [e.split(": ", 1)[0] for e in problems(text)] == [
        "f.yaml:10:15",
        "f.yaml:28:13",
        "f.yaml:38:12",
    ]


def test_hand_built_tree_locates_at_the_nearest_parent() -> None:
    data = {
        "name": "tiny",
        "languages": ["en"],
        "default_language": "en",
        "start": "bye",
        "nodes": {"bye": {"type": "hangup"}, "lost": {"type": "hangup"}},
    }
    tree = LocatedTree(data, values={(): (1, 1), ("nodes",): (5, 3)}, keys={("nodes",): (5, 1)})
    errors = semantic_errors(Flow.model_validate(data), "mem.yaml", tree.locate)
    assert [str(e) for e in errors] == ["mem.yaml:5:3: node 'lost' is never reached from 'start'"]


def test_did_you_mean() -> None:
    assert did_you_mean("vpn_hlep", ["vpn_help", "main"]) == " (did you mean 'vpn_help'?)"
    assert did_you_mean("europe/berlin", ["Europe/Berlin"]) == " (did you mean 'Europe/Berlin'?)"
    assert did_you_mean("zzz", ["main"]) == ""


def test_phone_number_and_timezone_helpers() -> None:
    assert phone_number_problem("+493012345678") is None
    assert phone_number_problem("+49 30 12345678") == (
        "'+49 30 12345678' is not written in E.164 form; write '+493012345678'"
    )
    assert timezone_problem("Europe/Warsaw") is None
    assert timezone_problem("../etc/passwd") is not None


# --- on-call rotas --------------------------------------------------------------------------

ROTA_FLOW = VALID_FLOW.replace("on_no_answer: voicemail", "on_no_answer: on_call") + (
    textwrap.dedent(
        """\
          on_call:
            type: oncall
            rota: duty
            prompt: {en: "Ringing the engineer on call.", de: "Wir rufen die Rufbereitschaft."}
            on_no_answer: voicemail
        rotas:
          duty:
            timezone: Europe/Berlin
            calendar: office
            people:
              anna: "+4930555040"
              ben: "+4930555041"
            weekly:
              - {days: [mon, tue, wed, thu], from: "18:00", to: "08:00", person: anna}
              - {days: [fri, sat, sun], from: "18:00", to: "18:00", person: ben}
            holidays: ben
            overrides:
              - {date: 2026-12-24, person: anna}
              - {from: "2026-12-28 18:00", to: "2026-12-29 08:00", person: ben}
        """
    )
)
"""VALID_FLOW with an oncall node (line 46) and a rota (line 51); gaps in a rota are fine."""


def rota_changed(old: str, new: str) -> str:
    """ROTA_FLOW with one exact snippet replaced."""
    assert ROTA_FLOW.count(old) == 1, old
    return ROTA_FLOW.replace(old, new)


def test_valid_rota_has_no_errors() -> None:
    assert problems(ROTA_FLOW) == []


def test_unknown_person_suggests_the_close_name() -> None:
    text = rota_changed("to: \"08:00\", person: anna}", "to: \"08:00\", person: anne}")
    assert problems(text) == [
        "f.yaml:59:74: rota 'duty' names 'anne', who is not under its 'people' "
        "(did you mean 'anna'?)"
    ]
    text = rota_changed("holidays: ben", "holidays: benn")
    assert problems(text) == [
        "f.yaml:61:15: rota 'duty' names 'benn', who is not under its 'people' "
        "(did you mean 'ben'?)"
    ]


def test_overlapping_shifts_are_reported_at_the_later_shift() -> None:
    text = rota_changed("[fri, sat, sun], from: \"18:00\"", "[thu, sat, sun], from: \"18:00\"")
    assert problems(text) == [
        "f.yaml:60:9: rota 'duty' weekly shift 2 (ben, 18:00-18:00) overlaps shift 1 (anna) "
        "on thu"
    ]


def test_a_sunday_night_shift_overlaps_monday_across_the_end_of_the_week() -> None:
    text = rota_changed("[mon, tue, wed, thu], from: \"18:00\"", "[mon, tue, wed, thu], "
                        "from: \"06:00\"")
    assert problems(text) == [
        "f.yaml:60:9: rota 'duty' weekly shift 2 (ben, 18:00-18:00) overlaps shift 1 (anna) "
        "on sun"
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("timezone: Europe/Berlin\n    calendar: office\n    people",
         "timezone: Europe/Berln\n    calendar: office\n    people",
         "f.yaml:53:15: rota 'duty' timezone 'Europe/Berln' is unknown (did you mean "
         "'Europe/Berlin'?); use an IANA name such as 'Europe/Berlin'"),
        ("anna: \"+4930555040\"", "anna: \"+49123\"",
         "f.yaml:56:13: rota 'duty' anna: '+49123' is not a valid phone number in E.164 form "
         "(+4930...)"),
        ("calendar: office\n    people", "calendar: ofice\n    people",
         "f.yaml:54:15: rota 'duty' calendar 'ofice' is not under 'calendars' "
         "(did you mean 'office'?)"),
        ("from: \"18:00\", to: \"08:00\"", "from: \"18:00\", to: \"25:00\"",
         "f.yaml:59:57: rota 'duty' weekly shift 1 'to': '25:00' is not a time of day"),
        ("[mon, tue, wed, thu]", "[mon, tue, mon, thu]",
         "f.yaml:59:27: rota 'duty' weekly shift 1 lists mon twice"),
        ("- {date: 2026-12-24, person: anna}", "- {date: 2026-12-28, person: anna}",
         "f.yaml:64:9: rota 'duty' override 2 overlaps override 1; say who is on duty once"),
        ("to: \"2026-12-29 08:00\"", "to: \"2026-12-27 08:00\"",
         "f.yaml:64:9: rota 'duty' override 2 ends at or before its start"),
        ("- {date: 2026-12-24, person: anna}", "- {person: anna}",
         "f.yaml:63:9: rota 'duty' override 1 needs a 'date', or both 'from' and 'to'"),
        ("    calendar: office\n    people", "    people",
         "f.yaml:60:15: rota 'duty' has a holiday person but no 'calendar' to take public "
         "holidays and closed dates from"),
        ("rota: duty", "rota: dutty",
         "f.yaml:48:11: oncall 'on_call' rota 'dutty' is not under 'rotas' "
         "(did you mean 'duty'?)"),
    ],
)
def test_rota_problems_are_located(old: str, new: str, message: str) -> None:
    assert problems(rota_changed(old, new)) == [message]


def test_oncall_prompt_needs_every_language() -> None:
    text = rota_changed(', de: "Wir rufen die Rufbereitschaft."}', "}")
    assert problems(text) == ["f.yaml:49:13: node 'on_call' prompt has no 'de' text"]


def test_a_misspelt_shift_key_suggests_the_written_key() -> None:
    from routing.loader import check_flow

    text = rota_changed("thu], from: \"18:00\"", "thu], form: \"18:00\"")
    assert [str(e) for e in check_flow(text, "f.yaml")] == [
        "f.yaml:59:9: rota 'duty' weekly.0 is missing 'from'",
        "f.yaml:59:38: unknown key 'form' in rota 'duty' weekly.0 (did you mean 'from'?)",
    ]
