"""Agents' skills: languages and topics with levels, parsed, checked and stored."""

from __future__ import annotations

import pytest
from flask import Flask

from callbacks.workqueue.agents import create_agent
from callbacks.workqueue.skills import (
    AgentSkills,
    SkillError,
    format_skills,
    parse_skills,
    set_skills,
    skills_by_agent,
    skills_of,
)


def test_skills_are_read_with_levels_and_a_default_level() -> None:
    assert parse_skills("de:3, en", "language") == {"de": 3, "en": 2}
    assert parse_skills("password:1 vdi:3", "topic") == {"password": 1, "vdi": 3}
    assert parse_skills("  ", "topic") == {}
    assert format_skills({"en": 2, "de": 3}) == "de:3, en:2"
    assert parse_skills(format_skills({"en": 2, "de": 3}), "language") == {"de": 3, "en": 2}


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("deutsch", "language", "a language is a 2-3 letter code"),
    ("de:4", "language", "level 4 is not one of 1, 2, 3"),
    ("de:x", "language", "the level after ':' is a number"),
    ("VPN!", "topic", "a topic is a lower-case name"),
    ("de", "skill", "skill kind must be one of"),
])
def test_badly_written_skills_are_refused_with_the_reason(text: str, kind: str,
                                                          message: str) -> None:
    with pytest.raises(SkillError, match=message):
        parse_skills(text, kind)


def test_an_unknown_language_is_open_to_everyone_and_others_need_the_language() -> None:
    skills = AgentSkills({"de": 3}, {"password": 2})
    assert skills.speaks("de") and skills.speaks("")
    assert not skills.speaks("pl")
    assert skills.describe() == "de:3 | password:2"


def test_skills_are_stored_replaced_per_kind_and_read_for_many_agents(app: Flask) -> None:
    with app.extensions["ivr.sessions"]() as session:
        ann = create_agent(session, "ann", "a-long-password-1")
        bob = create_agent(session, "bob", "a-long-password-2")
        set_skills(session, ann.id, languages={"de": 3, "en": 2}, topics={"vdi": 3})
        set_skills(session, bob.id, languages={"pl": 2})
        session.commit()
        set_skills(session, ann.id, languages={"en": 1})  # topics stay as they were
        session.commit()
        assert skills_of(session, ann.id) == AgentSkills({"en": 1}, {"vdi": 3})
        assert skills_by_agent(session) == {ann.id: AgentSkills({"en": 1}, {"vdi": 3}),
                                            bob.id: AgentSkills({"pl": 2}, {})}
        assert skills_of(session, 999) == AgentSkills()
