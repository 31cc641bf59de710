"""Text messages to callers, in their language."""

from __future__ import annotations

import phonenumbers

TEXTS: dict[str, dict[str, str]] = {
    "callback_unreachable": {
        "en": "IT Service Desk: we tried to call you back {attempts} times{about} but could not "
        "reach you. Please call us again when it suits you.",
        "de": "IT-Service-Desk: Wir haben {attempts} Mal versucht, Sie zurückzurufen{about}, "
        "Sie aber nicht erreicht. Bitte rufen Sie uns wieder an, wenn es Ihnen passt.",
        "pl": "IT Service Desk: próbowaliśmy oddzwonić {attempts} razy{about}, ale nie udało "
        "się połączyć. Prosimy zadzwonić ponownie w dogodnej chwili.",
        "ru": "IT Service Desk: мы {attempts} раза пытались вам перезвонить{about}, но не "
        "дозвонились. Пожалуйста, позвоните нам снова, когда вам будет удобно.",
    },
    "ticket_resolved": {
        "en": "IT Service Desk: your ticket {number} is resolved. {note}",
        "de": "IT-Service-Desk: Ihr Ticket {number} ist gelöst. {note}",
        "pl": "IT Service Desk: zgłoszenie {number} zostało rozwiązane. {note}",
        "ru": "IT Service Desk: ваша заявка {number} решена. {note}",
    },
    "ticket_about": {
        "en": " about ticket {number}",
        "de": " wegen Ticket {number}",
        "pl": " w sprawie zgłoszenia {number}",
        "ru": " по заявке {number}",
    },
    "ticket_created": {
        "en": "IT Service Desk: we have your voicemail. Your ticket number is {number}. "
        "We will get back to you; please quote this number if you call again.",
        "de": "IT-Service-Desk: Wir haben Ihre Sprachnachricht erhalten. Ihre Ticketnummer "
        "ist {number}. Wir melden uns; bitte nennen Sie diese Nummer, wenn Sie erneut anrufen.",
        "pl": "IT Service Desk: otrzymaliśmy wiadomość głosową. Numer zgłoszenia: {number}. "
        "Skontaktujemy się; prosimy podawać ten numer przy kolejnym kontakcie.",
        "ru": "IT Service Desk: мы получили ваше голосовое сообщение. Номер заявки: {number}. "
        "Мы свяжемся с вами; при повторном звонке назовите этот номер.",
        "ko": "IT 서비스 데스크: 음성 메시지를 받았습니다. 접수 번호는 {number}입니다.",
    },
    "callback_queued": {
        "en": "IT Service Desk: your callback request is in our queue and we will call you "
        "back. Your ticket number is {number}; please quote it if you call again.",
        "de": "IT-Service-Desk: Ihr Rückrufwunsch ist eingegangen, wir rufen Sie zurück. Ihre "
        "Ticketnummer ist {number}; bitte nennen Sie sie, wenn Sie erneut anrufen.",
        "pl": "IT Service Desk: przyjęliśmy prośbę o oddzwonienie i oddzwonimy. Numer "
        "zgłoszenia: {number}; prosimy podawać go przy kolejnym kontakcie.",
        "ru": "IT Service Desk: ваша заявка на обратный звонок принята, мы вам перезвоним. "
        "Номер заявки: {number}; при повторном звонке назовите этот номер.",
    },
    "survey_question": {
        "en": "How satisfied are you with the help you got? Reply with a number from "
        "1 (not at all) to 5 (very).",
        "de": "Wie zufrieden sind Sie mit der Hilfe? Antworten Sie mit einer Zahl von "
        "1 (gar nicht) bis 5 (sehr).",
        "pl": "Jak bardzo jest Pan/Pani zadowolony/a z pomocy? Prosimy odpowiedzieć liczbą "
        "od 1 (wcale) do 5 (bardzo).",
        "ru": "Насколько вы довольны полученной помощью? Ответьте цифрой от 1 (совсем нет) "
        "до 5 (очень).",
    },
    "survey_after_call": {
        "en": "IT Service Desk: thank you for talking to us{about}.",
        "de": "IT-Service-Desk: Vielen Dank für das Gespräch{about}.",
        "pl": "IT Service Desk: dziękujemy za rozmowę{about}.",
        "ru": "IT Service Desk: спасибо за разговор{about}.",
    },
    "survey_thanks": {
        "en": "IT Service Desk: thank you for your feedback.",
        "de": "IT-Service-Desk: Vielen Dank für Ihre Rückmeldung.",
        "pl": "IT Service Desk: dziękujemy za opinię.",
        "ru": "IT Service Desk: спасибо за ваш отзыв.",
    },
    "survey_help": {
        "en": "IT Service Desk: please reply with one number from 1 (not at all satisfied) "
        "to 5 (very satisfied). For help, please call us.",
        "de": "IT-Service-Desk: Bitte antworten Sie mit einer Zahl von 1 (gar nicht "
        "zufrieden) bis 5 (sehr zufrieden). Für Hilfe rufen Sie uns bitte an.",
        "pl": "IT Service Desk: prosimy odpowiedzieć jedną liczbą od 1 (wcale niezadowolony) "
        "do 5 (bardzo zadowolony). W sprawie pomocy prosimy zadzwonić.",
        "ru": "IT Service Desk: пожалуйста, ответьте одной цифрой от 1 (совсем не доволен) "
        "до 5 (очень доволен). За помощью, пожалуйста, позвоните нам.",
    },
}


def sms_text(name: str, language: str, **values: str) -> str:
    """The text of message `name` in `language` (English if not translated)."""
    texts = TEXTS[name]
    return (texts.get(language) or texts["en"]).format(**values)


def can_receive_sms(number: str) -> bool:
    """Whether a caller id is a real number we could text (not withheld, not a SIP client)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    kind = phonenumbers.number_type(parsed)
    return phonenumbers.is_valid_number(parsed) and kind not in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.SHARED_COST,
    )
