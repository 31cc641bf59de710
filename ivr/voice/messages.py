"""What the line itself says when a flow cannot: apologies and notices, in each language."""

from __future__ import annotations

from routing.callback_texts import BUILT_IN

LOCALES = {"en": "en-US", "de": "de-DE", "pl": "pl-PL", "ru": "ru-RU", "ko": "ko-KR"}
"""Default <Say> locales when a flow does not set voices."""

MESSAGES: dict[str, dict[str, str]] = {
    "apology": {
        "en": "We are sorry, something went wrong on our side. Please leave a message after "
        "the tone with your name and your problem, and we will get back to you.",
        "de": "Es tut uns leid, bei uns ist ein Fehler aufgetreten. Bitte hinterlassen Sie "
        "nach dem Ton Ihren Namen und Ihr Anliegen, wir melden uns bei Ihnen.",
        "pl": "Przepraszamy, wystąpił błąd po naszej stronie. Proszę po sygnale zostawić "
        "wiadomość z imieniem i opisem problemu, a oddzwonimy.",
        "ru": "Извините, у нас произошла ошибка. Пожалуйста, после сигнала оставьте сообщение "
        "с вашим именем и описанием проблемы, и мы с вами свяжемся.",
        "ko": "죄송합니다. 시스템에 문제가 발생했습니다. 신호음이 울린 후 성함과 문제를 "
        "남겨 주시면 연락드리겠습니다.",
    },
    "message_saved": {
        "en": "Thank you. Your message has been saved. Goodbye.",
        "de": "Vielen Dank. Ihre Nachricht wurde gespeichert. Auf Wiederhören.",
        "pl": "Dziękujemy. Wiadomość została zapisana. Do widzenia.",
        "ru": "Спасибо. Ваше сообщение сохранено. До свидания.",
        "ko": "감사합니다. 메시지가 저장되었습니다.",
    },
    # the same sentence a callback's caller hears, plus the languages only the line speaks
    "ticket_number": {
        **BUILT_IN["ticket"],
        "ko": "접수 번호는 {number}입니다. 다시 말씀드립니다. {number}.",
    },
    "no_message": {
        "en": "We did not receive a message. Please call again if you still need help. Goodbye.",
        "de": "Wir haben keine Nachricht erhalten. Bitte rufen Sie erneut an, wenn Sie noch "
        "Hilfe brauchen. Auf Wiederhören.",
        "pl": "Nie otrzymaliśmy wiadomości. Jeśli nadal potrzebuje Pan lub Pani pomocy, proszę "
        "zadzwonić ponownie. Do widzenia.",
        "ru": "Мы не получили сообщения. Если вам всё ещё нужна помощь, позвоните ещё раз. "
        "До свидания.",
        "ko": "메시지가 녹음되지 않았습니다. 도움이 필요하시면 다시 전화해 주십시오.",
    },
}


def message(name: str, language: str, **values: str) -> str:
    """The text of a system message in `language`, English when it has no translation."""
    texts = MESSAGES[name]
    return (texts.get(language) or texts["en"]).format(**values)


def locale_for(language: str) -> str:
    """The <Say> locale of a language code."""
    return LOCALES.get(language, "en-US")
