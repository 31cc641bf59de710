"""Text messages to callers, in their language: the texts come from the texts file
(`flows/texts.yaml`, see callbacks/tickets/texts.py), read once per process."""

from __future__ import annotations

import threading
from pathlib import Path

import phonenumbers

from callbacks.tickets.texts import SmsTexts, load_texts

DEFAULT_TEXTS_FILE = Path(__file__).resolve().parents[1] / "flows" / "texts.yaml"
"""The file a process reads when nothing configured another (a script, a unit test)."""

_default: list[SmsTexts] = []
_lock = threading.Lock()


def sms_texts() -> SmsTexts:
    """The texts of this process: IVR_TEXTS_FILE's as configured, else the shipped file."""
    from callbacks import runtime

    try:
        return runtime.sms_texts()
    except runtime.NotConfigured:
        with _lock:
            if not _default:
                _default.append(load_texts(DEFAULT_TEXTS_FILE))
            return _default[0]


def sms_text(name: str, language: str, **values: str) -> str:
    """The text of message `name` in `language` (English if not translated)."""
    return sms_texts().text(name, language, **values)


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
