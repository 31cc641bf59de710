"""A caller's likely language, guessed from the country of their number."""

from __future__ import annotations

import functools

import phonenumbers

REGION_LANGUAGES = {
    "DE": "de", "AT": "de", "CH": "de", "LI": "de", "LU": "de",
    "PL": "pl",
    "RU": "ru", "BY": "ru", "KZ": "ru", "KG": "ru",
    "US": "en", "CA": "en", "GB": "en", "IE": "en", "AU": "en", "NZ": "en",
    "KR": "ko",
}


def language_for_number(number: str, languages: list[str], default: str) -> str:
    """The flow language matching the caller's country, else `default`."""
    language = _country_language(number)
    return language if language in languages else default


@functools.lru_cache(maxsize=8192)
def _country_language(number: str) -> str | None:
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None
    return REGION_LANGUAGES.get(region or "")
