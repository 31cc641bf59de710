"""Keyword rules: the shipped file, classification in each language, located YAML errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from routing.errors import FlowInvalid
from speech.keywords import KeywordRules, normalize, words

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "flows" / "keywords.yaml"


@pytest.fixture(scope="module")
def rules() -> KeywordRules:
    return KeywordRules.load(SHIPPED)


def test_the_shipped_rules_cover_every_category_in_every_language(rules: KeywordRules) -> None:
    assert rules.priorities == ("P1", "P2", "P3", "P4")
    assert rules.default_priority == "P3" and rules.default_category == "other"
    assert rules.languages == ("en", "de", "pl", "ru", "ko")
    assert set(rules.categories) >= {"outage", "password", "locked", "network", "hardware",
                                      "software", "vdi"}
    for language in rules.languages:
        covered = {keyword.category for keyword in rules.keywords[language]}
        assert covered == set(rules.categories), language


@pytest.mark.parametrize(
    ("language", "text", "category", "priority"),
    [
        ("en", "Hi, the VPN is down and nobody can work from home", "outage", "P1"),
        ("en", "I forgot my password, can you reset it", "password", "P2"),
        ("en", "my account is locked since this morning", "locked", "P2"),
        ("en", "the wi-fi on the third floor keeps dropping", "network", "P2"),
        ("en", "Citrix says my virtual desktop is unavailable", "vdi", "P2"),
        ("en", "I need Excel installed please", "software", "P3"),
        ("en", "I got a suspicious email and clicked a link", "security", "P1"),
        ("de", "Mein Passwort ist abgelaufen und ich kann mich nicht anmelden", "password", "P2"),
        ("de", "Das WLAN im Besprechungsraum funktioniert nicht", "network", "P2"),
        ("de", "Der Bildschirm meines Laptops ist kaputt", "hardware", "P2"),
        ("de", "Die ganze Abteilung kann nicht arbeiten, Störung im Netz", "outage", "P1"),
        ("de", "Outlook stürzt beim Start ab mit einer Fehlermeldung", "software", "P3"),
        ("pl", "Zapomniałem hasła i nie mogę się zalogować", "password", "P2"),
        ("pl", "zapomnialem hasla i nie moge sie zalogowac", "password", "P2"),
        ("pl", "Moje konto jest zablokowane", "locked", "P2"),
        ("pl", "nie działa mi drukarka", "hardware", "P2"),
        ("pl", "awaria, nic nie działa w całym biurze", "outage", "P1"),
        ("pl", "Nie mam połączenia z VPN", "network", "P2"),
        ("ru", "Не могу войти, забыл пароль", "password", "P2"),
        ("ru", "Учётная запись заблокирована", "locked", "P2"),
        ("ru", "учетная запись заблокирована", "locked", "P2"),
        ("ru", "у всех не работает интернет", "outage", "P1"),
        ("ru", "ноутбук не включается", "hardware", "P2"),
        ("ru", "при запуске программы выдаёт ошибку", "software", "P3"),
        ("ko", "비밀번호를 잊어버렸어요", "password", "P2"),
        ("ko", "노트북 화면이 안 켜져요", "hardware", "P2"),
    ],
)
def test_classify_by_keywords(rules: KeywordRules, language: str, text: str, category: str,
                              priority: str) -> None:
    result = rules.classify(text, language)
    assert (result.category, result.priority) == (category, priority), result
    assert result.matched
    assert any(f"keyword '{result.matched[0]}'" in reason for reason in result.reasons)


def test_nothing_matched_gives_the_defaults(rules: KeywordRules) -> None:
    result = rules.classify("hello, just calling to say thank you", "en")
    assert (result.category, result.priority, result.matched) == ("other", "P3", ())
    assert result.reasons == ("no keyword found: category 'other'", "default priority P3")
    assert rules.classify("", "de").category == "other"
    assert rules.classify("password", "fr").matched == ()  # no rules for the language


def test_keywords_match_whole_words_only(rules: KeywordRules) -> None:
    assert rules.classify("the door was unlocked by the caretaker", "en").matched == ()
    assert rules.classify("we met at the dockside", "en").matched == ()
    assert rules.classify("passwords expire", "en").matched == ("password*",)


def test_the_menu_category_wins_and_the_most_urgent_priority_counts(
        rules: KeywordRules) -> None:
    result = rules.classify("my laptop screen is cracked", "en", menu_category="software",
                            menu_priority="P3")
    assert (result.category, result.priority) == ("software", "P2")
    assert result.reasons[0] == "category 'software' from the menu choice"
    assert "menu priority P3" in result.reasons

    urgent_menu = rules.classify("please install excel", "en", menu_category="outage",
                                 menu_priority="P1")
    assert (urgent_menu.category, urgent_menu.priority) == ("outage", "P1")
    low = rules.classify("please call me back about a new mouse", "en", menu_priority="P4")
    assert (low.category, low.priority) == ("hardware", "P2")
    assert rules.classify("please call me back", "en", menu_priority="P4").priority == "P4"
    unknown = rules.classify("x", "en", menu_priority="P9")
    assert unknown.priority == "P3"
    assert unknown.reasons[0] == "menu priority 'P9' is not one of P1, P2, P3, P4: ignored"


def test_the_most_urgent_keyword_picks_the_category(rules: KeywordRules) -> None:
    result = rules.classify("the printer is broken and now the whole office is down", "en")
    assert (result.category, result.priority) == ("outage", "P1")
    assert result.matched[0] in ("is down", "whole office")
    assert "printer*" in result.matched


def test_normalisation() -> None:
    assert normalize("Hasło ŻÓŁW Straße") == "haslo zolw strasse"
    assert normalize("Ёлка й") == "елка й"  # й keeps its breve; only ё folds
    assert normalize("비밀번호를") == "비밀번호를"
    assert words("Wi-Fi, VPN! can't") == ["wi", "fi", "vpn", "can", "t"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keywords.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(FlowInvalid) as caught:
        KeywordRules.load(path)
    return [str(error) for error in caught.value.errors]


GOOD = """\
priorities: [P1, P2, P3, P4]
languages: [en, de]
categories:
  outage:
    priority: P1
    keywords:
      en: [outage, "is down"]
      de: [ausfall*]
"""


def test_a_small_valid_file(tmp_path: Path) -> None:
    rules = KeywordRules.load(write(tmp_path, GOOD))
    assert rules.default_priority == "P3"
    assert rules.classify("Totalausfall? Nein: Ausfall im Netz", "de").priority == "P1"


def test_yaml_problems_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, """\
priorities: [P1, P2, P3]
languages: [en, de]
categories:
  outage:
    priority: P7
    keywords:
      en: [outage]
      fr: [panne]
  password:
    priority: P2
    keyword:
      en: [password]
  network:
    priority: P2
    keywords:
      en: []
      de: [vpn, "*netz", outage]
  hardware:
    priority: P3
    keywords:
      en: [outage, laptop, laptop]
""")
    assert problems(path) == [
        f"{path}:5:15: unknown priority 'P7'; expected one of: P1, P2, P3",
        f"{path}:8:7: language 'fr' is not declared in 'languages'; declared: en, de",
        f"{path}:9:3: category 'password' needs 'keywords': a list per language",
        f"{path}:11:5: unknown key 'keyword' in category 'password' (did you mean 'keywords'?)",
        f"{path}:16:11: category 'network' has an empty keyword list for 'en'; remove the "
        "language or add keywords",
        f"{path}:17:17: keyword '*netz': '*' may only end a word (as in 'passw*')",
        f"{path}:21:12: keyword 'outage' (en) is also in category 'outage' (line 7)",
        f"{path}:21:28: keyword 'laptop' is listed twice",
    ]


def test_yaml_syntax_errors_are_located(tmp_path: Path) -> None:
    path = write(tmp_path, "priorities: [P1, P2\nlanguages: [en]\n")
    assert problems(path) == [
        f"{path}:2:10: expected ',' or ']', but got ':' (while parsing a flow sequence at line 1)"
    ]
    assert problems(write(tmp_path, "- outage\n- password\n")) == [
        f"{path}:1:1: the keywords file must be a mapping with 'priorities' and 'categories'"
    ]
    assert problems(write(tmp_path, "\n")) == [f"{path}:1:1: the keywords file is empty"]
    assert problems(tmp_path / "absent.yaml")[0].startswith(
        f"{tmp_path / 'absent.yaml'}:1:1: cannot read the file"
    )


def test_missing_sections_and_unknown_top_level_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "languages: [en]\ncategoires: {}\n")
    assert problems(path) == [
        f"{path}:1:1: categories must map each category name to its priority and keywords",
        f"{path}:1:1: missing 'priorities': the levels from most to least urgent, e.g. "
        "[P1, P2, P3, P4]",
        f"{path}:2:1: unknown key 'categoires' at the top level (did you mean 'categories'?)",
    ]


def test_a_default_priority_must_be_a_level(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("languages:", "default_priority: P5\nlanguages:"))
    assert problems(path) == [
        f"{path}:2:19: unknown priority 'P5'; expected one of: P1, P2, P3, P4"
    ]
