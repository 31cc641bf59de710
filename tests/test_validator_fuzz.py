"""Random flow YAML into the validator: it never crashes, and every problem it reports is
located (a line and column inside the text) with a message."""

from __future__ import annotations

import random

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.loader import check_flow
from tests.conftest import DEMO_FLOW

DEMO = DEMO_FLOW.read_text(encoding="utf-8")
DEMO_LINES = DEMO.splitlines(keepends=True)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True), st.text(max_size=20),
                    st.sampled_from(["say", "menu", "callback", "oncall", "P1", "en", "+49",
                                     "08:00", "25:99", "Europe/Berlin", "Mars/Olympus"]))
trees = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=4),
    st.dictionaries(st.sampled_from(["name", "languages", "default_language", "nodes", "start",
                                     "type", "next", "prompt", "options", "calendars", "rotas",
                                     "numbers", "text", "en", "de", "timeout", "x"]),
                    children, max_size=5)), max_leaves=25)


def _assert_located(text: str) -> None:
    lines = max(1, text.count("\n") + 1)
    for error in check_flow(text, "fuzz.yaml"):
        assert error.file == "fuzz.yaml" and error.message
        assert 1 <= error.line <= lines + 1 and error.column >= 1, str(error)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_text_is_located(text: str) -> None:
    _assert_located(text)


@settings(max_examples=200, deadline=None)
@given(trees)
def test_random_structures_are_located(tree: object) -> None:
    _assert_located(yaml.safe_dump(tree, allow_unicode=True))


@settings(max_examples=150, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1, 6))
def test_the_demo_flow_with_lines_dropped_or_swapped_is_located(rng: random.Random,
                                                               edits: int) -> None:
    lines = list(DEMO_LINES)
    for _ in range(edits):
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        if rng.random() < 0.5:
            del lines[i]
        else:
            lines[i], lines[j] = lines[j], lines[i]
    _assert_located("".join(lines))
