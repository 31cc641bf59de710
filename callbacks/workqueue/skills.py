"""Agents' skills: the languages they speak and the topics they know, each with a level.

Work reaches an agent only in a language they speak (an item whose language is unknown is open
to everyone); among those items, the topics they know are preferred, and the level on the
topic breaks ties. Topics are the categories callers' problems are filed under (password,
network, hardware, software, vdi, outage, other, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from callbacks.db import Base

SKILL_KINDS = ("language", "topic")
LEVELS = (1, 2, 3)
"""1: can help, 2: experienced, 3: expert."""
DEFAULT_LEVEL = 2
MAX_SKILLS = 40
"""Per kind and agent; more is a typing accident, not a person."""
_CODE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class SkillError(ValueError):
    """Skills written in a way that cannot be stored; the message says which part and why."""


class AgentSkill(Base):
    """One language or topic of one agent, with a level (1-3)."""

    __tablename__ = "agent_skills"
    __table_args__ = (UniqueConstraint("agent_id", "kind", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"),
                                          index=True)
    kind: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer, default=DEFAULT_LEVEL)


@dataclass(frozen=True)
class AgentSkills:
    """An agent's languages and topics, each code with its level."""

    languages: dict[str, int] = field(default_factory=dict)
    topics: dict[str, int] = field(default_factory=dict)

    def speaks(self, language: str) -> bool:
        """Whether work in `language` may reach the agent ('' is open to everyone)."""
        return not language or language in self.languages

    def describe(self) -> str:
        """'de:3, en:2 | password:3, network:1', for lists and the CLI."""
        return " | ".join(format_skills(part) or "-" for part in (self.languages, self.topics))


def parse_skills(text: str, kind: str) -> dict[str, int]:
    """'de:3, en' as {'de': 3, 'en': 2}: comma- or space-separated codes, an optional level."""
    if kind not in SKILL_KINDS:
        raise SkillError(f"skill kind must be one of {', '.join(SKILL_KINDS)}")
    skills: dict[str, int] = {}
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        code, _, level_text = part.partition(":")
        code = code.strip().lower()
        try:
            level = int(level_text) if level_text else DEFAULT_LEVEL
        except ValueError:
            raise SkillError(f"{kind} '{part}': the level after ':' is a number 1-3") from None
        skills[code] = level
    check_skills(skills, kind)
    return skills


def check_skills(skills: dict[str, int], kind: str) -> None:
    """Refuse unknown kinds, malformed codes, levels outside 1-3 and absurdly long lists."""
    pattern = _LANGUAGE if kind == "language" else _CODE
    what = ("a language is a 2-3 letter code such as de" if kind == "language"
            else "a topic is a lower-case name such as password or vdi")
    if len(skills) > MAX_SKILLS:
        raise SkillError(f"at most {MAX_SKILLS} {kind}s per agent")
    for code, level in skills.items():
        if not pattern.match(code):
            raise SkillError(f"{kind} '{code}': {what}")
        if level not in LEVELS:
            raise SkillError(f"{kind} '{code}': level {level} is not one of 1, 2, 3")


def format_skills(skills: dict[str, int]) -> str:
    """{'de': 3, 'en': 2} as 'de:3, en:2' (what `parse_skills` reads back)."""
    return ", ".join(f"{code}:{level}" for code, level in sorted(skills.items()))


def skills_of(session: Session, agent_id: int) -> AgentSkills:
    """The agent's skills."""
    return skills_by_agent(session, [agent_id]).get(agent_id, AgentSkills())


def skills_by_agent(session: Session, agent_ids: list[int] | None = None) -> dict[int, AgentSkills]:
    """Skills of many agents at once (all agents when `agent_ids` is None)."""
    query = select(AgentSkill.agent_id, AgentSkill.kind, AgentSkill.code, AgentSkill.level)
    if agent_ids is not None:
        query = query.where(AgentSkill.agent_id.in_(agent_ids))
    found: dict[int, AgentSkills] = {}
    for agent_id, kind, code, level in session.execute(query.order_by(AgentSkill.code)):
        skills = found.setdefault(agent_id, AgentSkills({}, {}))
        (skills.languages if kind == "language" else skills.topics)[code] = level
    return found


def set_skills(session: Session, agent_id: int, *, languages: dict[str, int] | None = None,
               topics: dict[str, int] | None = None) -> AgentSkills:
    """Replace an agent's languages and/or topics (a kind left as None stays as it was)."""
    for kind, skills in (("language", languages), ("topic", topics)):
        if skills is None:
            continue
        check_skills(skills, kind)
        session.execute(delete(AgentSkill).where(AgentSkill.agent_id == agent_id,
                                                 AgentSkill.kind == kind))
        session.add_all(AgentSkill(agent_id=agent_id, kind=kind, code=code, level=level)
                        for code, level in skills.items())
    session.flush()
    return skills_of(session, agent_id)
