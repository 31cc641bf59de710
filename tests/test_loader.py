"""routing.loader: safe YAML reading, located schema errors, and every problem in one pass."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from routing.errors import FlowError, FlowInvalid
from routing.flow import Flow
from routing.loader import (
    MAX_FLOW_BYTES,
    LocatedTree,
    check_flow,
    compose_tree,
    load_flow_file,
    parse_flow,
)

MINIMAL_FLOW = textwrap.dedent(
    """\
    name: minimal
    languages: [en]
    default_language: en
    start: main
    nodes:
      main:
        type: menu
        prompt: {en: "Press 1 to leave a message."}
        options:
          1: {next: bye}
        on_failure: bye
      bye:
        type: hangup
    """
)
"""A valid flow with a menu and a hangup; tests change one line of it at a time."""

DEMO_FLOW = Path(__file__).resolve().parents[1] / "flows" / "it-support.yaml"


def problems(text: str) -> list[str]:
    """check_flow's errors as 'file:line:column: message' strings."""
    return [str(error) for error in check_flow(text, "flows/x.yaml")]


def flow(body: str) -> str:
    """An inline test flow, dedented."""
    return textwrap.dedent(body)


# --- valid flows and scalar resolution -------------------------------------------


def test_minimal_flow_parses() -> None:
    parsed = parse_flow(MINIMAL_FLOW, "flows/x.yaml")
    assert isinstance(parsed, Flow)
    assert parsed.start == "main"
    assert parsed.node("main").options["1"].next == "bye"
    assert check_flow(MINIMAL_FLOW, "flows/x.yaml") == []


def test_demo_flow_with_aliases_loads() -> None:
    parsed = load_flow_file(DEMO_FLOW)
    assert parsed.name == "it-support"


def test_norwegian_no_stays_a_string() -> None:
    text = MINIMAL_FLOW.replace("languages: [en]", "languages: [en, no]").replace(
        '{en: "Press 1 to leave a message."}', '{en: "Press 1.", no: "Trykk 1."}'
    )
    assert parse_flow(text, "x.yaml").languages == ["en", "no"]


def test_unquoted_e164_number_stays_a_string() -> None:
    text = MINIMAL_FLOW.replace("start: main", "numbers: [+4930123456789]\nstart: main")
    assert parse_flow(text, "x.yaml").numbers == ["+4930123456789"]


@pytest.mark.parametrize(
    ("written", "value"),
    [
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("null", None),
        ("~", None),
        ("", None),
        ("42", 42),
        ("-5", -5),
        ("1.5", 1.5),
        ("2026-12-24", date(2026, 12, 24)),
        ("no", "no"),
        ("yes", "yes"),
        ("on", "on"),
        ("off", "off"),
        ("08:00", "08:00"),
        ("+4930123456", "+4930123456"),
        ("0x10", "0x10"),
        ("010_000", "010_000"),
        ("2026-13-45", "2026-13-45"),
        ('"5"', "5"),
        ("'true'", "true"),
    ],
)
def test_scalars_resolve_like_yaml_1_2(written: str, value: object) -> None:
    assert compose_tree(f"key: {written}\n", "x.yaml").data == {"key": value}


def test_mapping_keys_become_strings() -> None:
    tree = compose_tree("1: a\n2.5: b\ntrue: c\n01: d\n", "x.yaml")
    assert tree.data == {"1": "a", "2.5": "b", "true": "c", "01": "d"}


def test_tree_records_value_and_key_positions() -> None:
    tree = compose_tree(MINIMAL_FLOW, "x.yaml")
    assert tree.locate(("nodes", "main", "options", "1", "next")) == (10, 17)
    assert tree.locate_key(("nodes", "main", "options", "1")) == (10, 7)
    assert tree.locate_key(("nodes", "bye")) == (12, 3)
    # absent paths fall back to the nearest parent that exists
    assert tree.locate(("nodes", "bye", "text", "en")) == (13, 5)
    assert LocatedTree(data={}).locate(("anything",)) == (1, 1)


def test_aliased_value_is_located_where_the_alias_is_written() -> None:
    text = flow(
        """\
        name: minimal
        languages: [en, de]
        default_language: en
        start: hello
        nodes:
          hello:
            type: say
            text: &greeting
              en: Hello.
            next: again
          again:
            type: say
            text: *greeting
            next: bye
          bye: {type: hangup}
        """
    )
    assert problems(text) == [
        "flows/x.yaml:8:11: node 'hello' text has no 'de' text",
        "flows/x.yaml:13:11: node 'again' text has no 'de' text",
    ]


# --- YAML-level problems -----------------------------------------------------------


def test_yaml_syntax_error_is_located_at_the_problem() -> None:
    text = flow(
        """\
        name: minimal
        nodes:
          main: {type: menu
          bye: 3
        """
    )
    assert problems(text) == [
        "flows/x.yaml:4:6: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping at line 3)"
    ]


def test_bad_indentation_is_located() -> None:
    assert problems("name: minimal\n  start: main\n") == [
        "flows/x.yaml:2:8: mapping values are not allowed here"
    ]


def test_duplicate_key_is_reported_at_second_occurrence() -> None:
    text = MINIMAL_FLOW + "  main:\n    type: hangup\n"
    assert problems(text) == ["flows/x.yaml:14:3: duplicate key 'main' (first at line 6)"]


def test_empty_file_is_an_error() -> None:
    assert problems("") == ["flows/x.yaml:1:1: the flow file is empty"]
    assert problems("# only a comment\n") == ["flows/x.yaml:1:1: the flow file is empty"]


def test_document_that_is_not_a_mapping_is_located() -> None:
    assert problems("\n- welcome\n- main\n") == [
        "flows/x.yaml:2:1: a flow must be a mapping of keys such as 'name', 'languages', "
        "'start' and 'nodes'; this document is a list"
    ]


def test_second_document_is_refused() -> None:
    assert problems(MINIMAL_FLOW + "---\nname: other\n") == [
        "flows/x.yaml:14:1: found another document "
        "(expected a single document in the stream at line 1)"
    ]


def test_file_over_512_kib_is_refused_at_1_1() -> None:
    text = MINIMAL_FLOW + "description: " + "x" * MAX_FLOW_BYTES + "\n"
    assert problems(text) == [
        "flows/x.yaml:1:1: the flow file is larger than 512 KiB; split it or remove unused nodes"
    ]


def test_alias_bomb_is_refused_at_the_alias() -> None:
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, 9):
        name, previous = "abcdefghi"[level], "abcdefghi"[level - 1]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    errors = check_flow("\n".join(lines) + "\n", "bomb.yaml")
    assert [(e.line, e.column) for e in errors] == [(6, 8)]
    assert errors[0].message.startswith("alias '*e' makes the flow expand to more than")


def test_too_many_aliases_are_refused() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 201) + "]\n"
    errors = check_flow(text, "x.yaml")
    assert [(e.line, e.column) for e in errors] == [(2, 5 + 4 * 200)]
    assert errors[0].message.startswith("too many aliases (more than 200)")


def test_alias_inside_its_own_anchor_is_refused() -> None:
    assert problems("a: &a [1, *a]\n") == [
        "flows/x.yaml:1:11: alias '*a' refers to a value that contains it"
    ]


def test_custom_tags_and_merge_keys_are_refused() -> None:
    text = MINIMAL_FLOW.replace("name: minimal", "name: minimal\ndescription: !include a.txt")
    assert problems(text) == [
        "flows/x.yaml:2:14: unsupported tag '!include'; flows are plain YAML without tags"
    ]
    text = flow(
        """\
        base: &base {type: hangup}
        other:
          <<: *base
        """
    )
    assert "flows/x.yaml:3:3: merge keys ('<<') are not supported; write the keys out" in (
        problems(text)
    )


# --- schema errors ---------------------------------------------------------------------


def test_missing_field_is_reported_at_the_node_key() -> None:
    text = MINIMAL_FLOW.replace("    on_failure: bye\n", "")
    assert problems(text) == ["flows/x.yaml:6:3: node 'main' (menu) is missing 'on_failure'"]


def test_missing_top_level_field_names_the_flow() -> None:
    text = MINIMAL_FLOW.replace("start: main\n", "")
    assert problems(text) == ["flows/x.yaml:1:1: the flow is missing 'start'"]


def test_unknown_key_suggests_the_close_one() -> None:
    text = MINIMAL_FLOW.replace("    on_failure: bye\n", "    on_failure: bye\n    timeuot: 5\n")
    assert problems(text) == [
        "flows/x.yaml:12:5: unknown key 'timeuot' in node 'main' (did you mean 'timeout'?)"
    ]


def test_unknown_key_in_a_menu_option() -> None:
    text = MINIMAL_FLOW.replace("1: {next: bye}", "1: {nxt: bye}")
    assert problems(text) == [
        "flows/x.yaml:10:7: node 'main' option '1' is missing 'next'",
        "flows/x.yaml:10:11: unknown key 'nxt' in node 'main' option '1' (did you mean 'next'?)",
    ]


def test_unknown_key_without_close_match_lists_the_keys() -> None:
    text = MINIMAL_FLOW.replace("type: hangup", "type: hangup\n    colour: red")
    assert problems(text) == [
        "flows/x.yaml:14:5: unknown key 'colour' in node 'bye'; expected one of: type, text"
    ]


def test_unknown_node_type_is_reported_at_the_type() -> None:
    text = MINIMAL_FLOW.replace("type: hangup", "type: hangupp")
    assert problems(text) == [
        "flows/x.yaml:13:11: node 'bye' has unknown type 'hangupp' (did you mean 'hangup'?); "
        "expected one of: say, menu, language, hours, voicemail, callback, ticket, transfer, "
        "queue, "
        "oncall, hangup, goto"
    ]


def test_node_without_type_is_reported_at_its_key() -> None:
    text = MINIMAL_FLOW.replace("    type: hangup\n", "    text: {en: Bye.}\n")
    assert problems(text) == [
        "flows/x.yaml:12:3: node 'bye' has no 'type'; expected one of: say, menu, language, "
        "hours, voicemail, callback, ticket, transfer, queue, oncall, hangup, goto"
    ]


def test_out_of_range_value_names_the_path_and_value() -> None:
    text = MINIMAL_FLOW.replace("    on_failure: bye\n", "    on_failure: bye\n    timeout: 999\n")
    assert problems(text) == [
        "flows/x.yaml:12:14: nodes.main.timeout: Input should be less than or equal to 60 (got 999)"
    ]


def test_bad_flow_name_explains_the_format() -> None:
    assert problems(MINIMAL_FLOW.replace("name: minimal", "name: IT Support")) == [
        "flows/x.yaml:1:7: name: value 'IT Support' is not a flow name: lowercase letters, "
        "digits, '-' and '_'"
    ]


def test_bad_node_id_and_menu_key_explain_the_format() -> None:
    text = MINIMAL_FLOW.replace("  bye:", "  Bye:").replace("1: {next: bye}", "x: {next: bye}")
    assert problems(text) == [
        "flows/x.yaml:10:7: nodes.main.options: key 'x' is not a single key: 0-9, * or #",
        "flows/x.yaml:12:3: nodes: key 'Bye' is not a node id: lowercase letters, digits and "
        "'_', starting with a letter",
    ]


def test_union_alternatives_read_as_one_message() -> None:
    text = MINIMAL_FLOW.replace(
        "start: main",
        "calendars:\n  office:\n    timezone: Europe/Berlin\n    hours: {mon: 8}\nstart: main",
    )
    assert problems(text) == [
        "flows/x.yaml:7:18: calendars.office.hours.mon: Input should be a valid list or a valid "
        "string (got 8)"
    ]


def test_semantic_checks_wait_for_a_valid_schema() -> None:
    text = MINIMAL_FLOW.replace("1: {next: bye}", "1: {next: by}").replace(
        "type: hangup", "type: hangupp"
    )
    assert [e.line for e in check_flow(text, "x.yaml")] == [13]


# --- every problem in one pass -------------------------------------------------------


def test_all_schema_errors_are_reported_sorted() -> None:
    text = flow(
        """\
        name: minimal
        languages: [en]
        default_language: en
        start: main
        nodes:
          main:
            type: menu
            prompt: {en: "Press 1."}
            options:
              1: {next: bye}
            timeout: 999
            on_failure: bye
          bye:
            type: hangupp
          vm:
            type: voicemail
            prompt: {en: "Speak."}
            max_lenght: 60
        """
    )
    assert [(e.line, e.column) for e in check_flow(text, "x.yaml")] == [(11, 14), (14, 11), (18, 5)]


def test_all_semantic_errors_are_reported_sorted() -> None:
    text = flow(
        """\
        name: minimal
        languages: [en, de]
        default_language: en
        numbers: ["030 1234567"]
        start: main
        nodes:
          main:
            type: menu
            prompt: {en: "Press 1.", de: "Drücken Sie 1."}
            options:
              1: {next: by}
            on_failure: bye
          bye:
            type: hangup
            text: {en: "Goodbye."}
        """
    )
    with pytest.raises(FlowInvalid) as raised:
        parse_flow(text, "flows/x.yaml")
    assert [str(e) for e in raised.value.errors] == [
        "flows/x.yaml:4:11: numbers: '030 1234567' is not a valid phone number in E.164 form "
        "(+4930...)",
        "flows/x.yaml:11:17: menu 'main' option '1' goes to unknown node 'by' "
        "(did you mean 'bye'?)",
        "flows/x.yaml:15:11: node 'bye' text has no 'de' text",
    ]
    assert raised.value.errors == check_flow(text, "flows/x.yaml")


# --- files ---------------------------------------------------------------------------


def test_load_flow_file_names_the_path_as_given(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(MINIMAL_FLOW.replace("type: hangup", "type: hangupp"), encoding="utf-8")
    with pytest.raises(FlowInvalid) as raised:
        load_flow_file(path)
    assert raised.value.errors[0].file == str(path)
    assert (raised.value.errors[0].line, raised.value.errors[0].column) == (13, 11)


def test_load_flow_file_reads_utf8_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL_FLOW.replace("Press", "Dr\u00fccken").encode())
    assert load_flow_file(str(path)).node("main").prompt["en"].startswith("Drücken")


def test_load_flow_file_refuses_bad_utf8_and_large_files(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: minimal\ndescription: caf\xe9\n")
    with pytest.raises(FlowInvalid) as raised:
        load_flow_file(path)
    assert raised.value.errors == [FlowError(str(path), 2, 17, "the file is not valid UTF-8")]
    path.write_bytes(b"#" * (MAX_FLOW_BYTES + 1))
    with pytest.raises(FlowInvalid) as raised:
        load_flow_file(path)
    assert [(e.line, e.column) for e in raised.value.errors] == [(1, 1)]
