"""What the line says at a ticket node: built-in texts per language and a node's overrides.

Privacy: a caller is told the status of the ticket whose number they keyed in, and nothing
else: no name, no category, no transcript, no agent.
"""

from __future__ import annotations

from routing.flow import TicketNode
from routing.node_texts import node_text, unknown_placeholder

BUILT_IN: dict[str, dict[str, str]] = {
    "unknown": {
        "en": "Sorry, we could not find that ticket number.",
        "de": "Leider haben wir diese Ticketnummer nicht gefunden.",
        "pl": "Niestety, nie znaleźliśmy zgłoszenia o tym numerze.",
        "ru": "К сожалению, мы не нашли заявку с таким номером.",
    },
    "status_new": {
        "en": "Ticket {number} has been received and is waiting for an agent.",
        "de": "Ticket {number} ist eingegangen und wartet auf einen Mitarbeiter.",
        "pl": "Zgłoszenie {number} zostało przyjęte i czeka na konsultanta.",
        "ru": "Заявка {number} получена и ожидает специалиста.",
    },
    "status_assigned": {
        "en": "Ticket {number} has been assigned to an agent.",
        "de": "Ticket {number} wurde einem Mitarbeiter zugewiesen.",
        "pl": "Zgłoszenie {number} zostało przydzielone konsultantowi.",
        "ru": "Заявка {number} передана специалисту.",
    },
    "status_in_progress": {
        "en": "We are working on ticket {number}.",
        "de": "Wir bearbeiten Ticket {number}.",
        "pl": "Pracujemy nad zgłoszeniem {number}.",
        "ru": "Мы работаем над заявкой {number}.",
    },
    "status_waiting_for_caller": {
        "en": "For ticket {number}, we are waiting for information from you.",
        "de": "Für Ticket {number} warten wir auf eine Rückmeldung von Ihnen.",
        "pl": "W sprawie zgłoszenia {number} czekamy na informację od Pana lub Pani.",
        "ru": "По заявке {number} мы ждём информацию от вас.",
    },
    "status_resolved": {
        "en": "Ticket {number} has been resolved.",
        "de": "Ticket {number} ist gelöst.",
        "pl": "Zgłoszenie {number} zostało rozwiązane.",
        "ru": "Заявка {number} решена.",
    },
    "status_closed": {
        "en": "Ticket {number} is closed.",
        "de": "Ticket {number} ist geschlossen.",
        "pl": "Zgłoszenie {number} zostało zamknięte.",
        "ru": "Заявка {number} закрыта.",
    },
    "add_message": {
        "en": "To add a voice message to this ticket, press 1. To continue, press 2.",
        "de": "Um eine Sprachnachricht zu diesem Ticket hinzuzufügen, drücken Sie die 1. Um "
        "fortzufahren, drücken Sie die 2.",
        "pl": "Aby dodać wiadomość głosową do tego zgłoszenia, prosimy nacisnąć 1. Aby "
        "kontynuować, prosimy nacisnąć 2.",
        "ru": "Чтобы добавить голосовое сообщение к этой заявке, нажмите 1. Чтобы продолжить, "
        "нажмите 2.",
    },
    "record": {
        "en": "Please speak after the tone. Press the hash key when you are done.",
        "de": "Bitte sprechen Sie nach dem Ton. Drücken Sie die Rautetaste, wenn Sie fertig "
        "sind.",
        "pl": "Prosimy mówić po sygnale. Po zakończeniu prosimy nacisnąć krzyżyk.",
        "ru": "Говорите после сигнала. Когда закончите, нажмите решётку.",
    },
    "added": {
        "en": "Thank you. Your message was added to ticket {number}. Goodbye.",
        "de": "Vielen Dank. Ihre Nachricht wurde zu Ticket {number} hinzugefügt. Auf "
        "Wiederhören.",
        "pl": "Dziękujemy. Wiadomość została dodana do zgłoszenia {number}. Do widzenia.",
        "ru": "Спасибо. Ваше сообщение добавлено к заявке {number}. До свидания.",
    },
}
"""Texts of a ticket node by name and language; a node's `texts:` override them."""

STATUSES = ("new", "assigned", "in_progress", "waiting_for_caller", "resolved", "closed")
"""The ticket statuses a caller can hear (the desk's workflow, callbacks/tickets/workflow)."""
PLACEHOLDERS: dict[str, frozenset[str]] = {
    name: frozenset({"number"}) if name.startswith("status_") or name == "added" else frozenset()
    for name in BUILT_IN
}


def ticket_text(node: TicketNode, name: str, language: str, default_language: str
                ) -> tuple[str, str]:
    """The text `name` of a ticket node and the language it is in: the node's override, the
    built-in text, then the same in the flow's default language."""
    return node_text(getattr(node.texts, name), BUILT_IN[name], language, default_language)


def placeholder_problem(name: str, text: str) -> str | None:
    """Why an override of ticket text `name` cannot be filled in, or None."""
    return unknown_placeholder(text, PLACEHOLDERS.get(name, frozenset()))
