"""Open incidents in a menu: the announcement before the prompt and the key to be texted.

The engine stays pure: the web layer looks up the open, announced incidents (with their words
in every language, from incidents.yaml or the incident's own) and passes them in with whether
the call heard them already. A menu with `incidents: {subscribe: "7"}` then says them before
its prompt the first time in a call, offers the key while any is open, and on that key emits
SubscribeToIncidents and asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from routing.flow import MenuNode
from routing.steps import Position, Say, SubscribeToIncidents

if TYPE_CHECKING:
    from routing.engine import _TurnBuilder

FALLBACK = "en"


@dataclass(frozen=True)
class OpenIncidents:
    """The incidents a menu may announce, with their words per language."""

    ids: tuple[int, ...]
    announcement: Mapping[str, str] = field(default_factory=dict)
    """Per language: what the incidents are ('We know about a problem with the VPN...')."""
    offer: Mapping[str, str] = field(default_factory=dict)
    """Per language: the offer of a text, with {key} for the menu's key."""

    def words(self, texts: Mapping[str, str], language: str, default: str) -> tuple[str, str]:
        """The text in `language`, else the flow's default, else English; with its language."""
        for candidate in (language, default, FALLBACK):
            if texts.get(candidate):
                return texts[candidate], candidate
        return next(((text, code) for code, text in texts.items()), ("", language))


def offers_subscription(call: _TurnBuilder, node: MenuNode) -> bool:
    """Whether this menu takes its incident key now (it opts in and incidents are open)."""
    return node.incidents is not None and call.incidents is not None and bool(call.incidents.ids)


def menu_lead(call: _TurnBuilder, node: MenuNode, position: Position) -> tuple[Say, ...]:
    """The announcement and the offer, said before the prompt when the menu is first entered
    in a call with incidents open; nothing otherwise."""
    incidents = call.incidents
    if (not offers_subscription(call, node) or call.heard_incidents or position.attempt
            or incidents is None or node.incidents is None):
        return ()
    default = call.flow.default_language
    said, language = incidents.words(incidents.announcement, call.language, default)
    offer, offer_language = incidents.words(incidents.offer, call.language, default)
    call.heard_incidents = True
    lead = [Say(said, language)] if said else []
    if offer:
        lead.append(Say(offer.replace("{key}", node.incidents.subscribe), offer_language))
    return tuple(lead)


def is_subscribe_key(call: _TurnBuilder, node: MenuNode, key: str | None) -> bool:
    """Whether `key` is this menu's incident key while incidents are open."""
    return (key is not None and offers_subscription(call, node) and node.incidents is not None
            and key == node.incidents.subscribe)


def subscribe(call: _TurnBuilder, node_id: str, node: MenuNode) -> None:
    """The caller pressed the incident key: note them (the web layer confirms), then the menu
    again, without the announcement."""
    assert call.incidents is not None
    call.heard_incidents = True
    call.steps.append(SubscribeToIncidents(call.incidents.ids, call.language))
    call.choice = "incident_subscribe"
    call.steps.append(call.menu_gather(Position(node_id, call.language), node, lead=None))
