"""A callback node's dialog: a window, then the number to call (confirmed or keyed in), then queue.

The window comes first so that a keyed-in number never has to travel in an action URL (URLs end
up in access logs): once the number is known, the callback is queued in the same turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routing.callback_choices import (
    ASAP,
    WINDOW_KEYS,
    callable_number,
    keyed_number,
    last_digits,
    offers_windows,
)
from routing.callback_texts import callback_text, spoken_digits
from routing.flow import CallbackNode
from routing.steps import Digits, Event, Gather, Hangup, Position, RequestCallback, Say

if TYPE_CHECKING:
    from collections.abc import Callable

    from routing.engine import _TurnBuilder

    _Asker = Callable[[Position, Say | None], Gather]
    _GiveUp = Callable[[], None]

STEPS = ("window", "confirm", "number")
"""The sub-steps a callback node waits in, as carried in Position.step."""
KEYPAD = tuple("0123456789")


class CallbackDialog:
    """One turn of a callback node, written into the engine's turn builder."""

    def __init__(self, call: _TurnBuilder, node_id: str, node: CallbackNode) -> None:
        self.call = call
        self.node_id = node_id
        self.node = node
        self.caller_number = callable_number(call.caller) if call.caller else None

    def enter(self) -> str | None:
        """Start the dialog; the node to go on to if it needs no answer, else None (waits)."""
        if offers_windows(self.call.flow, self.node):
            self.call.steps.append(self._window_gather(self._at("window", ""), None))
            return None
        return self._ask_number("", None)

    def answer(self, position: Position, event: Event) -> None:
        """Take the caller's answer to the sub-step at `position` (validated by the engine)."""
        key = event.value.strip() if isinstance(event, Digits) else ""
        if position.step == "window":
            window = WINDOW_KEYS.get(key)
            if window is not None:
                self.call.choice = window
                self._go_on(self._ask_number(window, None))
                return
            # nobody is left without a callback for want of a window: default to asap
            self._retry(position, event, self._window_gather,
                        lambda: self._go_on(self._ask_number(ASAP, None)))
        elif position.step == "confirm":
            if key == "1":
                self._go_on(self._queue("", position.window))
            elif key == "2":
                self.call.steps.append(self._number_gather(self._at("number", position.window),
                                                           None))
            else:
                self._retry(position, event, self._confirm_gather, self._give_up)
        else:
            number = keyed_number(key, self.call.flow, self.call.caller)
            if number is not None:
                self._go_on(self._queue(number, position.window))
                return
            invalid = None if self.call.is_blank(event) else self._text("invalid_number")
            self._retry(position, event, self._number_gather, self._give_up, invalid)

    # --- the turns ------------------------------------------------------------------

    def _ask_number(self, window: str, lead: Say | None) -> str | None:
        """Ask to confirm the caller id, or for another number; queue at once if neither."""
        if self.caller_number is None:
            self.call.steps.append(self._number_gather(self._at("number", window), lead))
            return None
        if self.node.confirm_number:
            self.call.steps.append(self._confirm_gather(self._at("confirm", window), lead))
            return None
        return self._queue("", window)

    def _queue(self, dial_number: str, window: str) -> str:
        """Queue the callback and say the node's prompt; the node to go on to."""
        node = self.node
        self.call.steps.append(self.call.say(node.prompt))
        self.call.steps.append(RequestCallback(self.node_id, self.call.language, node.priority,
                                               node.category, dial_number, window))
        self.call.note("callback")
        return node.next

    def _give_up(self) -> None:
        """No number to call: go to on_failure, or say so and hang up."""
        self.call.note("callback_failed")
        if self.node.on_failure is not None:
            self.call.enter(self.node.on_failure)
            return
        self.call.steps.append(self._text("no_number"))
        self.call.finish(Hangup(), "callback_failed")

    def _retry(self, position: Position, event: Event, ask_again: _Asker,
               give_up: _GiveUp, invalid: Say | None = None) -> None:
        lead = self.call.reprompt(event, self.node.invalid, self.node.no_input)
        if invalid is not None:
            lead = invalid
        self.call.retry_or_give_up(position, lead, self.node.retries, ask_again, give_up)

    def _go_on(self, next_node: str | None) -> None:
        if next_node is not None:
            self.call.enter(next_node)

    # --- gathers --------------------------------------------------------------------

    def _window_gather(self, position: Position, lead: Say | None) -> Gather:
        return self._gather(position, lead, self._text("window"), tuple(WINDOW_KEYS))

    def _confirm_gather(self, position: Position, lead: Say | None) -> Gather:
        assert self.caller_number is not None
        ask = self._text("confirm", digits=spoken_digits(last_digits(self.caller_number)))
        return self._gather(position, lead, ask, ("1", "2"))

    def _number_gather(self, position: Position, lead: Say | None) -> Gather:
        prompts = self._prompts(lead, self._text("key_in"))
        return Gather(position, prompts, self.node.timeout, KEYPAD, num_digits=None,
                      finish_on_key="#")

    def _gather(self, position: Position, lead: Say | None, ask: Say,
                keys: tuple[str, ...]) -> Gather:
        return Gather(position, self._prompts(lead, ask), self.node.timeout, keys)

    @staticmethod
    def _prompts(lead: Say | None, ask: Say) -> tuple[Say, ...]:
        return (lead, ask) if lead is not None else (ask,)

    def _at(self, step: str, window: str) -> Position:
        return Position(self.node_id, self.call.language, 0, step, window)

    def _text(self, name: str, **values: str) -> Say:
        text, language = callback_text(self.node, name, self.call.language,
                                       self.call.flow.default_language)
        return Say(text.format(**values), language)
