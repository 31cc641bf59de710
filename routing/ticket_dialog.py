"""A ticket node's dialog: a repeat caller keys in their ticket number, hears its status, and
may add a voice message to it.

The engine stays pure: for a plausible number it emits LookupTicket and waits; the web layer
looks the ticket up and answers at once with TicketLooked (its status, or None). An unknown
number or silence is asked again (`retries` times), then the caller goes to `on_failure`.
The number rides in the position (action URLs; Twilio signs them), never a phone number.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routing.flow import TicketNode
from routing.steps import (
    Digits,
    Event,
    Gather,
    Hangup,
    LookupTicket,
    NoInput,
    Position,
    Record,
    Recorded,
    Say,
    TicketLooked,
)
from routing.ticket_texts import STATUSES, ticket_text

if TYPE_CHECKING:
    from routing.engine import _TurnBuilder

STEPS = ("number", "lookup", "found", "record")
"""The sub-steps a ticket node waits in, as carried in Position.step."""
KEYPAD = tuple("0123456789")
MIN_DIGITS, MAX_DIGITS = 5, 10
"""Ticket numbers have five digits and more (10001 is the first)."""
ADD_KEY, GO_ON_KEY = "1", "2"


class TicketDialog:
    """One turn of a ticket node, written into the engine's turn builder."""

    def __init__(self, call: _TurnBuilder, node_id: str, node: TicketNode) -> None:
        self.call = call
        self.node_id = node_id
        self.node = node

    def enter(self) -> None:
        """Ask for the ticket number (keys, then the hash key)."""
        self.call.steps.append(self._number_gather(self._at("number"), None))

    def answer(self, position: Position, event: Event) -> None:
        """Take the caller's answer (or the web layer's lookup) at the sub-step `position`."""
        if position.step == "number":
            number = event.value.strip().rstrip("#") if isinstance(event, Digits) else ""
            if number.isdigit() and MIN_DIGITS <= len(number) <= MAX_DIGITS:
                self.call.steps.append(LookupTicket(
                    Position(self.node_id, self.call.language, position.attempt, "lookup",
                             ticket=number), number))
                return
            lead = None if self.call.is_blank(event) else self._text("unknown")
            self._retry(position, event, lead)
        elif position.step == "lookup":
            assert isinstance(event, TicketLooked)
            if event.status is None:
                self._retry(position, NoInput(), self._text("unknown"))
                return
            self._found(position.ticket, event.status)
        elif position.step == "found":
            if isinstance(event, Digits) and event.value.strip() == ADD_KEY:
                self.call.steps.append(self._text("record"))
                self.call.finish(Record(self._at("record", position.ticket),
                                        self.node.max_length, "#"), "voicemail")
                return
            self.call.enter(self.node.next)
        else:
            assert isinstance(event, Recorded)
            self.call.steps.append(self._text("added", number=_spoken(position.ticket)))
            self.call.finish(Hangup(), "voicemail")

    def expects(self, position: Position, event: Event) -> bool:
        """Whether `event` fits the sub-step the call waits in."""
        if position.step == "lookup":
            return isinstance(event, TicketLooked) and (
                event.status is None or event.status in STATUSES)
        if position.step == "record":
            return isinstance(event, Recorded) and position.ticket.isdigit()
        if position.step == "found" and not position.ticket.isdigit():
            return False
        return position.step in ("number", "found") and isinstance(event, Digits | NoInput)

    def _found(self, number: str, status: str) -> None:
        """Say the status, then offer to add a message."""
        self.call.note("ticket_status")
        self.call.steps.append(self._text(f"status_{status}", number=_spoken(number)))
        self.call.steps.append(Gather(self._at("found", number), (self._text("add_message"),),
                                      self.node.timeout, (ADD_KEY, GO_ON_KEY)))

    def _retry(self, position: Position, event: Event, lead: Say | None) -> None:
        if lead is None and self.call.is_blank(event) and self.node.no_input is not None:
            lead = self.call.say(self.node.no_input)

        def give_up() -> None:
            self.call.note("ticket_unknown")
            self.call.enter(self.node.on_failure)

        self.call.retry_or_give_up(Position(self.node_id, self.call.language, position.attempt,
                                            "number"), lead, self.node.retries,
                                   self._number_gather, give_up)

    def _number_gather(self, position: Position, lead: Say | None) -> Gather:
        prompt = self.call.say(self.node.prompt)
        prompts = (lead, prompt) if lead is not None else (prompt,)
        return Gather(position, prompts, self.node.timeout, KEYPAD, num_digits=None,
                      finish_on_key="#")

    def _at(self, step: str, ticket: str = "") -> Position:
        return Position(self.node_id, self.call.language, 0, step, ticket=ticket)

    def _text(self, name: str, **values: str) -> Say:
        text, language = ticket_text(self.node, name, self.call.language,
                                     self.call.flow.default_language)
        return Say(text.format(**values), language)


def _spoken(number: str) -> str:
    """Digits separated so text-to-speech reads them one by one."""
    return " ".join(number)
