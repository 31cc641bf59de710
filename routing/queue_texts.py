"""What a caller waiting in line hears: built-in texts per language and a node's overrides."""

from __future__ import annotations

from routing.flow import QueueNode
from routing.node_texts import node_text, unknown_placeholder

BUILT_IN: dict[str, dict[str, str]] = {
    "place": {
        "en": "You are number {place} in line.",
        "de": "Sie sind an Position {place} der Warteschlange.",
        "pl": "Pana lub Pani miejsce w kolejce: {place}.",
        "ru": "Ваше место в очереди: {place}.",
    },
    # minutes is 2 or more here; Polish and Russian avoid the noun's plural forms
    "wait": {
        "en": "The estimated waiting time is about {minutes} minutes.",
        "de": "Die voraussichtliche Wartezeit beträgt etwa {minutes} Minuten.",
        "pl": "Przewidywany czas oczekiwania w minutach: około {minutes}.",
        "ru": "Примерное время ожидания в минутах: {minutes}.",
    },
    "wait_short": {
        "en": "An agent should be with you in a minute or two.",
        "de": "In ein bis zwei Minuten ist jemand für Sie da.",
        "pl": "Konsultant powinien odebrać w ciągu minuty lub dwóch.",
        "ru": "Оператор должен ответить в течение одной-двух минут.",
    },
    "offer": {
        "en": "To be called back instead and keep your place in line, press 1. To leave a "
        "voicemail, press 2.",
        "de": "Wenn Sie lieber zurückgerufen werden möchten und Ihren Platz behalten wollen, "
        "drücken Sie die 1. Um eine Nachricht zu hinterlassen, drücken Sie die 2.",
        "pl": "Aby zamiast czekać poprosić o oddzwonienie i zachować miejsce w kolejce, prosimy "
        "nacisnąć 1. Aby zostawić wiadomość głosową, prosimy nacisnąć 2.",
        "ru": "Чтобы мы вам перезвонили и вы сохранили своё место в очереди, нажмите 1. "
        "Чтобы оставить голосовое сообщение, нажмите 2.",
    },
    "offer_callback": {
        "en": "To be called back instead and keep your place in line, press 1.",
        "de": "Wenn Sie lieber zurückgerufen werden möchten und Ihren Platz behalten wollen, "
        "drücken Sie die 1.",
        "pl": "Aby zamiast czekać poprosić o oddzwonienie i zachować miejsce w kolejce, prosimy "
        "nacisnąć 1.",
        "ru": "Чтобы мы вам перезвонили и вы сохранили своё место в очереди, нажмите 1.",
    },
    "offer_voicemail": {
        "en": "To leave a voicemail instead, press 2.",
        "de": "Um stattdessen eine Nachricht zu hinterlassen, drücken Sie die 2.",
        "pl": "Aby zamiast czekać zostawić wiadomość głosową, prosimy nacisnąć 2.",
        "ru": "Чтобы вместо ожидания оставить голосовое сообщение, нажмите 2.",
    },
    "hold": {
        "en": "Thank you for your patience. All our agents are still busy; please stay on the "
        "line.",
        "de": "Vielen Dank für Ihre Geduld. Alle Mitarbeitenden sind noch im Gespräch; bitte "
        "bleiben Sie in der Leitung.",
        "pl": "Dziękujemy za cierpliwość. Wszyscy konsultanci są jeszcze zajęci; prosimy "
        "pozostać na linii.",
        "ru": "Спасибо за терпение. Все операторы пока заняты; пожалуйста, оставайтесь на "
        "линии.",
    },
}
"""Texts of the hold loop by name and language; a node's `texts:` override them."""

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "place": frozenset({"place"}),
    "wait": frozenset({"minutes"}),
}
"""The {names} each text may use; the others take none."""


def offer_name(node: QueueNode) -> str | None:
    """Which offer text the node's hold loop says: both keys, one of them, or none."""
    if node.callback and node.voicemail:
        return "offer"
    if node.callback:
        return "offer_callback"
    if node.voicemail:
        return "offer_voicemail"
    return None


def needed_texts(node: QueueNode) -> tuple[str, ...]:
    """The texts a queue node can say, given its settings."""
    offer = offer_name(node)
    return ("place", "wait", "wait_short", "hold", *((offer,) if offer else ()))


def queue_text(node: QueueNode, name: str, language: str, fallback: str) -> tuple[str, str]:
    """(text, language) of `name`: the node's override, else built-in, else in `fallback`."""
    return node_text(getattr(node.texts, name), BUILT_IN[name], language, fallback)


def placeholder_problem(name: str, text: str) -> str | None:
    """Why an override cannot be filled in (an unknown {name}, a stray brace), or None."""
    return unknown_placeholder(text, PLACEHOLDERS.get(name, frozenset()))
