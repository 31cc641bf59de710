"""The call engine: walks a flow from the caller's position and input to the next steps."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from routing.callback_choices import WINDOW_KEYS
from routing.callback_dialog import STEPS as CALLBACK_STEPS
from routing.callback_dialog import CallbackDialog
from routing.flow import (
    CallbackNode,
    Flow,
    GotoNode,
    HangupNode,
    HoursNode,
    LanguageNode,
    MenuNode,
    OncallNode,
    Prompt,
    QueueNode,
    SayNode,
    TicketNode,
    TransferNode,
    VoicemailNode,
)
from routing.hours import BusinessHours
from routing.incident_menu import OpenIncidents, is_subscribe_key, menu_lead, subscribe
from routing.oncall import OnCallRota, who_is_on_call
from routing.queue_node import enter_queue, fits, leave_queue
from routing.steps import (
    Dial,
    DialEnded,
    Digits,
    Event,
    Gather,
    Hangup,
    NoInput,
    Position,
    QueueLeft,
    Record,
    Recorded,
    Say,
    Speech,
    Step,
    Turn,
)
from routing.ticket_dialog import STEPS as TICKET_STEPS
from routing.ticket_dialog import TicketDialog

MAX_HOPS = 64
"""Most nodes one turn may enter; more means the flow loops without waiting for the caller."""


class UnexpectedEvent(ValueError):
    """An event the call's position cannot take (wrong kind, unknown node or language)."""


class BrokenFlowError(RuntimeError):
    """A flow that cannot be followed: a missing node, calendar or agent group."""


class FlowLoopError(BrokenFlowError):
    """A turn entered more than MAX_HOPS nodes without reaching one that waits."""


@dataclass(frozen=True)
class SpokenKeyword:
    """A menu keyword, normalized for matching, and the key of the option it picks."""

    phrase: str
    words: int
    key: str


@dataclass(frozen=True)
class CompiledFlow:
    """A flow with everything the hot path needs precomputed: calendars and keyword indexes."""

    flow: Flow
    calendars: dict[str, BusinessHours]
    keywords: dict[tuple[str, str], tuple[SpokenKeyword, ...]] = field(default_factory=dict)
    """(menu id, language) -> keywords, in option order."""
    speech_hints: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    """(menu id, language) -> the keywords as written, for the speech recognizer."""
    languages: frozenset[str] = frozenset()
    rotas: dict[str, OnCallRota] = field(default_factory=dict)
    """On-call rotas by name, with their calendars' days off."""


def compile_flow(flow: Flow) -> CompiledFlow:
    """Precompute a flow's business hours, rotas and keyword indexes (ValueError if invalid)."""
    calendars = {}
    for name, calendar in flow.calendars.items():
        try:
            calendars[name] = BusinessHours.from_calendar(calendar)
        except ValueError as error:
            raise ValueError(f"calendar '{name}': {error}") from error
    rotas = {}
    for name, rota in flow.rotas.items():
        try:
            days_off = calendars.get(rota.calendar) if rota.calendar is not None else None
            rotas[name] = OnCallRota.from_rota(name, rota, days_off)
        except ValueError as error:
            raise ValueError(f"rota '{name}': {error}") from error
    keywords: dict[tuple[str, str], tuple[SpokenKeyword, ...]] = {}
    hints: dict[tuple[str, str], tuple[str, ...]] = {}
    for node_id, node in flow.nodes.items():
        if not isinstance(node, MenuNode):
            continue
        for language in flow.languages:
            index: list[SpokenKeyword] = []
            written: dict[str, None] = {}  # an ordered set
            for key, option in node.options.items():
                for keyword in option.keywords.get(language, []):
                    words = normalize_words(keyword)
                    if words:
                        index.append(SpokenKeyword(f" {' '.join(words)} ", len(words), key))
                        written.setdefault(keyword.strip())
            keywords[(node_id, language)] = tuple(index)
            hints[(node_id, language)] = tuple(written)
    return CompiledFlow(flow, calendars, keywords, hints, frozenset(flow.languages), rotas)


_LETTER_FOLDS = str.maketrans("ёąćęłńóśźż", "еacelnoszz")
_WORD = re.compile(r"\w+")


def normalize_words(text: str) -> tuple[str, ...]:
    """Words of a text, case-folded, without punctuation, with ё/е and Polish letters folded."""
    folded = unicodedata.normalize("NFC", text).casefold().translate(_LETTER_FOLDS)
    return tuple(_WORD.findall(folded))  # casefold() already turns German ß into ss


def match_keyword(compiled: CompiledFlow, menu_id: str, language: str, text: str) -> str | None:
    """The option key whose keyword the caller said: longest phrase, then earliest spoken."""
    spoken = f" {' '.join(normalize_words(text))} "
    best: tuple[tuple[int, int], str] | None = None
    for keyword in compiled.keywords.get((menu_id, language), ()):
        at = spoken.find(keyword.phrase)
        if at >= 0 and (best is None or (-keyword.words, at) < best[0]):
            best = ((-keyword.words, at), keyword.key)
    return best[1] if best else None


def start(compiled: CompiledFlow, now: datetime, language: str | None = None,
          caller: str = "", *, incidents: OpenIncidents | None = None) -> Turn:
    """The first turn of a call: enter the flow's start node in `language` (else the default).

    `caller` is the caller id, offered back when a callback node asks where to call;
    `incidents` are the open incidents a menu may announce.
    """
    call = _TurnBuilder(compiled, now, _declared_language(compiled, language), caller,
                        incidents)
    call.enter(compiled.flow.start)
    return call.build()


def advance(compiled: CompiledFlow, position: Position, event: Event, now: datetime,
            caller: str = "", *, incidents: OpenIncidents | None = None,
            heard: bool = False) -> Turn:
    """The turn after the caller answered the waiting node at `position` (caller id: `caller`;
    open incidents a menu may announce: `incidents`, which the call `heard` already or not)."""
    flow = compiled.flow
    node = flow.nodes.get(position.node)
    if node is None:
        raise UnexpectedEvent(f"flow '{flow.name}' has no node '{position.node}'")
    if position.language not in compiled.languages:
        raise UnexpectedEvent(f"flow '{flow.name}' does not declare language '{position.language}'")
    if position.attempt < 0:
        raise UnexpectedEvent(f"attempt {position.attempt} at '{position.node}' is negative")
    call = _TurnBuilder(compiled, now, position.language, caller, incidents, heard)
    if isinstance(node, MenuNode):
        call.answer_menu(position, node, event)
    elif isinstance(node, LanguageNode):
        call.answer_language(position, node, event)
    elif isinstance(node, CallbackNode):
        call.answer_callback(position, node, event)
    elif isinstance(node, TicketNode):
        call.answer_ticket(position, node, event)
    elif isinstance(node, VoicemailNode) and isinstance(event, Recorded):
        call.note("voicemail")  # the call's outcome, however it goes on from here
        if node.next is None:
            call.finish(Hangup(), outcome="voicemail")
        else:
            call.enter(node.next)
    elif isinstance(node, QueueNode) and isinstance(event, QueueLeft) and fits(event):
        leave_queue(call, node, event)
    elif isinstance(node, TransferNode | OncallNode) and isinstance(event, DialEnded):
        if event.answered:
            call.finish(Hangup(), outcome="agent" if node.type == "transfer" else "oncall_answered")
        else:
            call.enter(node.on_no_answer)
    else:
        raise UnexpectedEvent(
            f"{type(event).__name__} does not fit {node.type} node '{position.node}'"
        )
    return call.build()


def _declared_language(compiled: CompiledFlow, language: str | None) -> str:
    """`language` if the flow declares it (also as 'de-DE' or 'DE'), else the default."""
    if language:
        base = language.strip().lower().replace("_", "-").split("-")[0]
        if base in compiled.languages:
            return base
    return compiled.flow.default_language


def _is_blank(event: Event) -> bool:
    """Whether an answer carries nothing: silence, or empty digits or speech."""
    if isinstance(event, NoInput):
        return True
    if isinstance(event, Digits):
        return not event.value.strip()
    if isinstance(event, Speech):
        return not normalize_words(event.text)
    return False


class _TurnBuilder:
    """Collects the steps, path and outcome of one turn while walking the flow."""

    def __init__(self, compiled: CompiledFlow, now: datetime, language: str,
                 caller: str = "", incidents: OpenIncidents | None = None,
                 heard: bool = False) -> None:
        self.compiled = compiled
        self.flow = compiled.flow
        self.now = now
        self.language = language
        self.caller = caller
        self.steps: list[Step] = []
        self.path: list[str] = []
        self.outcome: str | None = None
        self.choice: str | None = None
        self.incidents = incidents
        self.heard_incidents = heard

    def build(self) -> Turn:
        """The finished turn."""
        return Turn(tuple(self.steps), tuple(self.path), self.outcome, self.language, self.choice,
                    self.heard_incidents)

    def note(self, outcome: str) -> None:
        """Record an outcome; the first one of a turn wins (a failed menu, a callback)."""
        if self.outcome is None:
            self.outcome = outcome

    def finish(self, step: Step, outcome: str) -> None:
        """Add a final step and its outcome."""
        self.steps.append(step)
        self.note(outcome)

    def say(self, prompt: Prompt, language: str | None = None) -> Say:
        """A prompt in `language` (default: the call's), falling back to the flow's default."""
        language = language or self.language
        if language in prompt:
            return Say(prompt[language], language)
        fallback = self.flow.default_language
        if fallback not in prompt:
            fallback = next(iter(prompt))
        return Say(prompt[fallback], fallback)

    def enter(self, node_id: str) -> None:
        """Enter a node and run on through non-waiting nodes until one waits or ends the call."""
        while True:
            if len(self.path) >= MAX_HOPS:
                raise FlowLoopError(
                    f"flow '{self.flow.name}' entered {MAX_HOPS} nodes without waiting for the "
                    f"caller: {' -> '.join(self.path[-8:])} -> ..."
                )
            node = self.flow.nodes.get(node_id)
            if node is None:
                raise BrokenFlowError(f"flow '{self.flow.name}' has no node '{node_id}'")
            self.path.append(node_id)
            position = Position(node_id, self.language)
            if isinstance(node, SayNode):
                self.steps.append(self.say(node.text))
                node_id = node.next
            elif isinstance(node, GotoNode):
                node_id = node.next
            elif isinstance(node, HoursNode):
                node_id = self._branch_on_hours(node_id, node)
            elif isinstance(node, CallbackNode):
                follow = CallbackDialog(self, node_id, node).enter()
                if follow is None:
                    return  # waits for the caller's window or number
                node_id = follow
            elif isinstance(node, MenuNode):
                self.steps.append(self.menu_gather(position, node, lead=None))
                return
            elif isinstance(node, TicketNode):
                TicketDialog(self, node_id, node).enter()
                return
            elif isinstance(node, LanguageNode):
                self.steps.append(self._language_gather(position, node))
                return
            elif isinstance(node, VoicemailNode):
                self.steps.append(self.say(node.prompt))
                self.finish(Record(position, node.max_length, node.finish_key), "voicemail")
                return
            elif isinstance(node, TransferNode):
                numbers = self._transfer_numbers(node_id, node)
                if not numbers:  # an emptied group: nobody can answer, so don't ring
                    node_id = node.on_no_answer
                    continue
                if node.prompt is not None:
                    self.steps.append(self.say(node.prompt))
                self.finish(Dial(position, numbers, node.timeout), "transfer")
                return
            elif isinstance(node, QueueNode):
                enter_queue(self, node_id, node)
                return
            elif isinstance(node, OncallNode):
                on_call = who_is_on_call(self._rota(node_id, node), self.now)
                if on_call is None:  # a gap in the rota: nobody to ring
                    node_id = node.on_no_answer
                    continue
                if node.prompt is not None:
                    self.steps.append(self.say(node.prompt))
                self.finish(Dial(position, (on_call.number,), node.timeout), "oncall")
                return
            elif isinstance(node, HangupNode):
                if node.text is not None:
                    self.steps.append(self.say(node.text))
                self.finish(Hangup(), "hangup")
                return
            else:  # pragma: no cover - the Node union is exhaustive
                raise BrokenFlowError(f"node '{node_id}' has unknown type {node.type!r}")

    def answer_menu(self, position: Position, node: MenuNode, event: Event) -> None:
        """Follow the option the caller picked, or re-ask, or give up to on_failure."""
        key: str | None = None
        if isinstance(event, Digits):
            key = event.value.strip()
        elif isinstance(event, Speech):
            key = match_keyword(self.compiled, position.node, self.language, event.text)
        elif not isinstance(event, NoInput):
            raise UnexpectedEvent(
                f"{type(event).__name__} does not fit menu node '{position.node}'"
            )
        if is_subscribe_key(self, node, key):
            subscribe(self, position.node, node)
            return
        if key in node.options:
            option = node.options[key]
            self.choice = option.label or key
            self.enter(option.next)
            return

        def give_up() -> None:
            self.note("menu_failed")
            self.enter(node.on_failure)

        lead = self.reprompt(event, node.invalid, node.no_input)
        self.retry_or_give_up(position, lead, node.retries,
                              lambda retry, lead: self.menu_gather(retry, node, lead), give_up)

    def answer_callback(self, position: Position, node: CallbackNode, event: Event) -> None:
        """Take a window, a confirmation or a keyed-in number; queue the callback when done."""
        if not isinstance(event, Digits | Speech | NoInput):
            raise UnexpectedEvent(
                f"{type(event).__name__} does not fit callback node '{position.node}'"
            )
        if position.step not in CALLBACK_STEPS:
            raise UnexpectedEvent(f"callback node '{position.node}' has no step "
                                  f"'{position.step}' to answer")
        if position.window and position.window not in WINDOW_KEYS.values():
            raise UnexpectedEvent(f"callback window '{position.window}' is unknown")
        CallbackDialog(self, position.node, node).answer(position, event)

    def answer_ticket(self, position: Position, node: TicketNode, event: Event) -> None:
        """Take a keyed-in ticket number, the web layer's lookup, the choice to add a message,
        or the recorded message."""
        dialog = TicketDialog(self, position.node, node)
        if position.step not in TICKET_STEPS or not dialog.expects(position, event):
            raise UnexpectedEvent(f"{type(event).__name__} does not fit ticket node "
                                  f"'{position.node}' at step '{position.step}'")
        dialog.answer(position, event)

    def reprompt(self, event: Event, invalid: Prompt | None, no_input: Prompt | None) -> Say | None:
        """What to say before asking again: the no-input or the invalid prompt, if written."""
        prompt = no_input if self.is_blank(event) else invalid
        return self.say(prompt) if prompt is not None else None

    def retry_or_give_up(self, position: Position, lead: Say | None, retries: int,
                         ask_again: Callable[[Position, Say | None], Step],
                         give_up: Callable[[], None]) -> None:
        """Ask again after `lead` while retries last; else say `lead` and give up."""
        attempt = position.attempt + 1
        if attempt > retries:
            if lead is not None:
                self.steps.append(lead)
            give_up()
            return
        self.steps.append(ask_again(replace(position, attempt=attempt), lead))

    @staticmethod
    def is_blank(event: Event) -> bool:
        """Whether an answer carries nothing: silence, or empty digits or speech."""
        return _is_blank(event)

    def answer_language(self, position: Position, node: LanguageNode, event: Event) -> None:
        """Switch to the chosen language, or re-offer, or carry on in the current language."""
        if not isinstance(event, Digits | Speech | NoInput):
            raise UnexpectedEvent(
                f"{type(event).__name__} does not fit language node '{position.node}'"
            )
        chosen = node.options.get(event.value.strip()) if isinstance(event, Digits) else None
        if chosen is not None and chosen in self.compiled.languages:
            self.language = chosen
            self.choice = chosen
            self.enter(node.next)
            return
        attempt = position.attempt + 1
        if attempt > node.retries:
            self.enter(node.next)
            return
        retry = Position(position.node, self.language, attempt)
        self.steps.append(self._language_gather(retry, node))

    def menu_gather(self, position: Position, node: MenuNode, lead: Say | None) -> Gather:
        """Ask a menu's question (after `lead`, and open incidents the first time)."""
        prompt = self.say(node.prompt)
        announced = menu_lead(self, node, position)
        keys = tuple(node.options)
        if node.incidents is not None and self.incidents is not None and self.incidents.ids:
            keys += (node.incidents.subscribe,)
        return Gather(
            position=position,
            prompts=(*announced, lead, prompt) if lead is not None else (*announced, prompt),
            timeout=node.timeout,
            keys=keys,
            speech_hints=self.compiled.speech_hints.get((position.node, self.language), ()),
        )

    def _language_gather(self, position: Position, node: LanguageNode) -> Gather:
        # each language is offered in that language, so every caller hears their own
        offers = tuple(self.say(node.prompt, language) for language in node.options.values())
        return Gather(position, offers, node.timeout, tuple(node.options))

    def _branch_on_hours(self, node_id: str, node: HoursNode) -> str:
        hours = self.compiled.calendars.get(node.calendar)
        if hours is None:
            raise BrokenFlowError(f"node '{node_id}' uses unknown calendar '{node.calendar}'")
        status = hours.status(self.now)
        if status == "open":
            return node.open
        if status == "holiday" and node.holiday is not None:
            return node.holiday
        return node.closed

    def _transfer_numbers(self, node_id: str, node: TransferNode) -> tuple[str, ...]:
        if node.to is not None:
            return (node.to,)
        if node.group is None:
            raise BrokenFlowError(f"transfer node '{node_id}' has neither 'to' nor 'group'")
        if node.group not in self.flow.groups:
            raise BrokenFlowError(f"transfer node '{node_id}' uses unknown group '{node.group}'")
        return tuple(self.flow.groups[node.group])

    def _rota(self, node_id: str, node: OncallNode) -> OnCallRota:
        rota = self.compiled.rotas.get(node.rota)
        if rota is None:
            raise BrokenFlowError(f"oncall node '{node_id}' uses unknown rota '{node.rota}'")
        return rota
