"""What the line says in a callback dialog: built-in texts per language, node overrides, times."""

from __future__ import annotations

from datetime import datetime

from routing.flow import CallbackNode
from routing.node_texts import node_text, unknown_placeholder
from routing.steps import Say

BUILT_IN: dict[str, dict[str, str]] = {
    "window": {
        "en": "When should we call you back? As soon as possible, press 1. This afternoon, "
        "after 2 p.m., press 2. On the next working day in the morning, press 3.",
        "de": "Wann dürfen wir Sie zurückrufen? So bald wie möglich: Drücken Sie die 1. Heute "
        "Nachmittag ab 14 Uhr: die 2. Am nächsten Werktag vormittags: die 3.",
        "pl": "Kiedy mamy oddzwonić? Jak najszybciej – prosimy nacisnąć 1. Dziś po południu, "
        "po czternastej – 2. W następny dzień roboczy rano – 3.",
        "ru": "Когда вам перезвонить? Как можно скорее — нажмите 1. Сегодня после 14 часов — "
        "нажмите 2. В следующий рабочий день утром — нажмите 3.",
    },
    "confirm": {
        "en": "We will call you back at the number ending in {digits}. To confirm, press 1. "
        "To enter another number, press 2.",
        "de": "Wir rufen Sie unter der Nummer mit den Endziffern {digits} zurück. Zur "
        "Bestätigung drücken Sie die 1. Für eine andere Nummer drücken Sie die 2.",
        "pl": "Oddzwonimy na numer kończący się cyframi {digits}. Aby potwierdzić, prosimy "
        "nacisnąć 1. Aby podać inny numer, prosimy nacisnąć 2.",
        "ru": "Мы перезвоним вам на номер, который заканчивается на {digits}. Чтобы "
        "подтвердить, нажмите 1. Чтобы ввести другой номер, нажмите 2.",
    },
    "key_in": {
        "en": "Please enter the number we should call, with the area code, and finish with "
        "the hash key.",
        "de": "Bitte geben Sie die Rückrufnummer mit Vorwahl ein und schließen Sie mit der "
        "Rautetaste ab.",
        "pl": "Prosimy wpisać numer do oddzwonienia, z numerem kierunkowym, i zakończyć "
        "krzyżykiem.",
        "ru": "Введите номер для обратного звонка вместе с кодом города и нажмите решётку.",
    },
    "invalid_number": {
        "en": "Sorry, that is not a phone number we can call.",
        "de": "Leider ist das keine Telefonnummer, die wir anrufen können.",
        "pl": "Niestety, pod ten numer nie możemy zadzwonić.",
        "ru": "К сожалению, по этому номеру мы позвонить не можем.",
    },
    "queued": {
        "en": "You are number {place} in line. We will call you back by {when} at the latest.",
        "de": "Sie sind an Position {place} der Warteschlange. Wir rufen Sie bis spätestens "
        "{when} zurück.",
        "pl": "Pana lub Pani miejsce w kolejce: {place}. Oddzwonimy najpóźniej: {when}.",
        "ru": "Ваше место в очереди: {place}. Мы перезвоним вам не позднее: {when}.",
    },
    "queued_window": {
        "en": "You are number {place} in line. We will call you back after {when}, as soon "
        "as an agent is free.",
        "de": "Sie sind an Position {place} der Warteschlange. Wir rufen Sie ab {when} zurück.",
        "pl": "Pana lub Pani miejsce w kolejce: {place}. Oddzwonimy najwcześniej: {when}.",
        "ru": "Ваше место в очереди: {place}. Мы перезвоним вам не раньше: {when}.",
    },
    "ticket": {
        "en": "Your ticket number is {number}. I repeat: {number}.",
        "de": "Ihre Ticketnummer lautet {number}. Ich wiederhole: {number}.",
        "pl": "Numer zgłoszenia to {number}. Powtarzam: {number}.",
        "ru": "Номер вашей заявки: {number}. Повторяю: {number}.",
    },
    "no_number": {
        "en": "Sorry, we could not take a number to call you back. Please call again. Goodbye.",
        "de": "Leider konnten wir keine Rückrufnummer aufnehmen. Bitte rufen Sie erneut an. "
        "Auf Wiederhören.",
        "pl": "Niestety, nie udało się przyjąć numeru do oddzwonienia. Prosimy zadzwonić "
        "ponownie. Do widzenia.",
        "ru": "К сожалению, нам не удалось получить номер для обратного звонка. Пожалуйста, "
        "позвоните ещё раз. До свидания.",
    },
}
"""Texts of the callback dialog by name and language; a node's `texts:` override them."""

PLACEHOLDERS: dict[str, frozenset[str]] = {
    "confirm": frozenset({"digits"}),
    "queued": frozenset({"place", "when"}),
    "queued_window": frozenset({"place", "when"}),
    "ticket": frozenset({"number"}),
}
"""The {names} each text may use; the others take none."""

_MOMENTS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # (tomorrow, another day, weekday names): no prepositions, so no grammatical case to get wrong
    "en": ("{time} tomorrow", "{time} on {day}",
           ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")),
    "de": ("morgen, {time} Uhr", "{day}, {time} Uhr",
           ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")),
    "pl": ("jutro, {time}", "{day}, {time}",
           ("poniedziałek", "wtorek", "środa", "czwartek", "piątek", "sobota", "niedziela")),
    "ru": ("завтра, {time}", "{day}, {time}",
           ("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье")),
}


def needed_texts(node: CallbackNode, offers_windows: bool) -> tuple[str, ...]:
    """The texts a callback node can say, given its settings."""
    names = ["key_in", "invalid_number", "queued", "ticket"]
    if node.confirm_number:
        names.append("confirm")
    if offers_windows:
        names += ["window", "queued_window"]
    if node.on_failure is None:
        names.append("no_number")
    return tuple(names)


def callback_text(node: CallbackNode, name: str, language: str, fallback: str) -> tuple[str, str]:
    """(text, language) of `name`: the node's override, else built-in, else in `fallback`."""
    return node_text(getattr(node.texts, name), BUILT_IN[name], language, fallback)


def placeholder_problem(name: str, text: str) -> str | None:
    """Why an override of callback text `name` cannot be filled in, or None."""
    return unknown_placeholder(text, PLACEHOLDERS.get(name, frozenset()))


def spoken_digits(digits: str) -> str:
    """Digits separated so text-to-speech reads them one by one."""
    return " ".join(digits)


def spoken_moment(moment: datetime, now: datetime, language: str) -> str:
    """A time the caller hears, in `moment`'s zone: '14:30', '8:00 tomorrow', '8:00 on Monday'."""
    local_now = now.astimezone(moment.tzinfo)
    time = _clock(moment, language)
    days = (moment.date() - local_now.date()).days
    if days <= 0:
        return time
    tomorrow, other, weekdays = _MOMENTS.get(language, ("", "", ()))
    if days == 1 and tomorrow:
        return tomorrow.format(time=time)
    if days < 7 and other:
        return other.format(time=time, day=weekdays[moment.weekday()])
    return f"{moment:%Y-%m-%d}, {time}"


def _clock(moment: datetime, language: str) -> str:
    if language == "en":
        hour = moment.hour % 12 or 12
        minutes = f":{moment:%M}" if moment.minute else ""
        return f"{hour}{minutes} {'a.m.' if moment.hour < 12 else 'p.m.'}"
    return f"{moment.hour}:{moment:%M}"


def queued_announcement(node: CallbackNode, language: str, fallback: str, place: int,
                        expect: datetime, now: datetime, windowed: bool,
                        ticket_number: str) -> tuple[Say, Say]:
    """What a caller hears once queued: place and expected time, then the ticket number.

    `expect` is the deadline (or, `windowed`, the window's start) in the calendar's zone;
    `ticket_number` is already spaced for speech.
    """
    queued, queued_language = callback_text(node, "queued_window" if windowed else "queued",
                                            language, fallback)
    ticket, ticket_language = callback_text(node, "ticket", language, fallback)
    when = spoken_moment(expect, now, queued_language)
    return (Say(queued.format(place=str(place), when=when), queued_language),
            Say(ticket.format(number=ticket_number), ticket_language))
