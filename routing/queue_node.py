"""A queue node: the caller waits in line for an agent, hears their place and wait, and leaves
the line to talk, to a callback or voicemail (keys 1 and 2), or to the overflow node.

Entering gives one Enqueue step; the web layer keeps the caller in the provider's queue and
asks the hold loop here what to say. Leaving comes back as a QueueLeft event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from routing.flow import QueueNode
from routing.queue_texts import offer_name, queue_text
from routing.steps import QUEUE_EXITS, Enqueue, Event, Hangup, Position, QueueLeft, Say

if TYPE_CHECKING:
    from routing.engine import _TurnBuilder

SHORT_WAIT_MINUTES = 2
"""Estimates below this are said as 'a minute or two' rather than a number."""


def enter_queue(call: _TurnBuilder, node_id: str, node: QueueNode) -> None:
    """Put the caller in line (the turn ends waiting there)."""
    prompt = call.say(node.prompt) if node.prompt is not None else None
    call.finish(Enqueue(Position(node_id, call.language), node.queue or call.flow.name,
                        node.category, node.priority, node.hold_music, node.announce_every,
                        prompt), "queue")


def fits(event: Event) -> bool:
    """Whether a queue node can take `event` (the engine refuses anything else)."""
    return isinstance(event, QueueLeft) and event.reason in QUEUE_EXITS


def leave_queue(call: _TurnBuilder, node: QueueNode, event: QueueLeft) -> None:
    """Go on after the caller left the line: the goodbye, a callback, a voicemail, overflow."""
    if event.reason == "talked":
        call.finish(Hangup(), "agent")
    elif event.reason == "hangup":
        call.finish(Hangup(), "abandoned")
    elif event.reason == "callback" and node.callback is not None:
        call.enter(node.callback)
    elif event.reason == "voicemail" and node.voicemail is not None:
        call.enter(node.voicemail)
    else:  # the max wait, nobody qualified, or a key whose target the node does not have
        call.enter(node.overflow)


def hold_announcement(node: QueueNode, language: str, fallback: str, place: int,
                      minutes: int, first: bool) -> tuple[Say, ...]:
    """What a waiting caller hears every `announce_every` seconds: an apology (not the first
    time), their place in line and the estimated wait."""
    said: list[Say] = []
    if not first:
        said.append(_say(node, "hold", language, fallback))
    said.append(_say(node, "place", language, fallback, place=str(place)))
    if minutes < SHORT_WAIT_MINUTES:
        said.append(_say(node, "wait_short", language, fallback))
    else:
        said.append(_say(node, "wait", language, fallback, minutes=str(minutes)))
    return tuple(said)


def hold_offer(node: QueueNode, language: str, fallback: str) -> Say | None:
    """The keys a waiting caller may press (1: callback, 2: voicemail), or None if neither."""
    name = offer_name(node)
    return _say(node, name, language, fallback) if name is not None else None


def key_choice(node: QueueNode, digits: str) -> str | None:
    """The way out a key picks while waiting ('callback', 'voicemail'), or None."""
    key = digits.strip()[:1]
    if key == "1" and node.callback is not None:
        return "callback"
    if key == "2" and node.voicemail is not None:
        return "voicemail"
    return None


def _say(node: QueueNode, name: str, language: str, fallback: str, **values: str) -> Say:
    text, spoken_in = queue_text(node, name, language, fallback)
    return Say(text.format(**values), spoken_in)
