"""The caller directory: employees by phone number, read from CSV or YAML.

Numbers are stored in E.164; a caller id is normalised the same way before a lookup, so
"+49 151 1234 5678" finds "+4915112345678". Withheld or unparseable caller ids find nobody.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import phonenumbers

from routing.errors import FlowInvalid
from routing.field_problems import did_you_mean
from routing.loader import LocatedTree, compose_tree

MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
COLUMNS = ("number", "name", "department", "vip", "language")
REQUIRED = ("number", "name", "department")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_YES = ("yes", "y", "true", "1")
_NO = ("no", "n", "false", "0", "")


class DirectoryInvalid(ValueError):
    """A directory file that cannot be used; carries every problem as 'file:line: message'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class Employee:
    """A person who may call the desk: E.164 number, name, department, VIP flag, language."""

    number: str
    name: str
    department: str
    vip: bool
    language: str | None


def normalize_number(text: str | None, region: str | None = None) -> str | None:
    """`text` as an E.164 number if it is a valid phone number, else None."""
    if not text or not text.strip():
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


class Directory:
    """Employees by E.164 number."""

    def __init__(self, employees: list[Employee] | tuple[Employee, ...] = (),
                 region: str | None = None) -> None:
        self.region = region
        self._by_number = {employee.number: employee for employee in employees}

    def lookup(self, number: str | None) -> Employee | None:
        """The employee calling from `number`, or None if unknown, withheld or unparseable."""
        normalized = normalize_number(number, self.region)
        return self._by_number.get(normalized) if normalized else None

    def __len__(self) -> int:
        return len(self._by_number)

    def __iter__(self) -> Iterator[Employee]:
        return iter(self._by_number.values())


def load_directory(path: str | os.PathLike[str], region: str | None = None) -> Directory:
    """Read a .csv or .yaml directory; DirectoryInvalid listing every problem with its line.

    `region` (e.g. "DE") lets the file and caller ids use national numbers; without it every
    number must be international (+49...).
    """
    filename = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_DIRECTORY_BYTES + 1)
    except OSError as exc:
        raise DirectoryInvalid([f"{filename}:1: cannot read the file: {exc}"]) from exc
    if len(raw) > MAX_DIRECTORY_BYTES:
        raise DirectoryInvalid([f"{filename}:1: the file is larger than "
                                f"{MAX_DIRECTORY_BYTES // (1024 * 1024)} MiB"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DirectoryInvalid([f"{filename}:1: the file is not valid UTF-8"]) from None
    extension = os.path.splitext(filename)[1].lower()
    if extension == ".csv":
        return parse_directory_csv(text, filename, region)
    if extension in (".yaml", ".yml"):
        return parse_directory_yaml(text, filename, region)
    raise DirectoryInvalid([f"{filename}:1: a directory must be a .csv or .yaml file"])


def parse_directory_csv(text: str, filename: str, region: str | None = None) -> Directory:
    """A directory from CSV `text` with a header row; problems as 'file:line: message'."""
    builder = _Builder(region)
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    last_line = 0
    for row in reader:
        line, last_line = last_line + 1, reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            for problem in _header_problems(header):
                builder.problems.append((line, f"{filename}:{line}: {problem}"))
            if builder.problems:
                break
            continue
        if len(row) > len(header):
            builder.problems.append((line, f"{filename}:{line}: {len(row)} fields but the "
                                     f"header has {len(header)}"))
            continue
        fields = dict(zip(header, (cell.strip() for cell in row), strict=False))
        for problem in builder.add(fields, f"line {line}"):
            builder.problems.append((line, f"{filename}:{line}: {problem}"))
    if header is None:
        raise DirectoryInvalid([f"{filename}:1: the directory is empty; the first row names "
                                f"the columns: {', '.join(COLUMNS)}"])
    return builder.directory()


def parse_directory_yaml(text: str, filename: str, region: str | None = None) -> Directory:
    """A directory from a YAML list of employees; problems as 'file:line:column: message'."""
    if not text.strip():
        raise DirectoryInvalid([f"{filename}:1:1: the directory is empty"])
    try:
        tree: LocatedTree = compose_tree(text, filename)
    except FlowInvalid as exc:
        raise DirectoryInvalid([str(error) for error in exc.errors]) from None
    builder = _Builder(region)

    def report(path: tuple[str | int, ...], message: str, *, at_key: bool = False) -> None:
        line, column = tree.locate_key(path) if at_key else tree.locate(path)
        builder.problems.append((line, f"{filename}:{line}:{column}: {message}"))

    if not isinstance(tree.data, list):
        report((), "the directory must be a list of employees with "
               f"{', '.join(COLUMNS)}")
        raise DirectoryInvalid([message for _, message in builder.problems])
    for index, item in enumerate(tree.data):
        if not isinstance(item, dict):
            report((index,), f"an employee must be a mapping of {', '.join(COLUMNS)}")
            continue
        for key in item:
            if key not in COLUMNS:
                hint = did_you_mean(str(key), COLUMNS) or f"; expected one of: {', '.join(COLUMNS)}"
                report((index, key), f"unknown key '{key}'{hint}", at_key=True)
        fields = {key: _text(value) for key, value in item.items() if key in COLUMNS}
        line = tree.locate((index,))[0]
        for problem in builder.add(fields, f"line {line}"):
            report((index,), problem)
    return builder.directory()


def _text(value: Any) -> str:
    """A YAML value as the text a CSV cell would hold (true -> 'yes')."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value).strip()


def _header_problems(header: list[str]) -> list[str]:
    problems = []
    for column in header:
        if column not in COLUMNS:
            hint = did_you_mean(column, COLUMNS) or f"; expected: {', '.join(COLUMNS)}"
            problems.append(f"unknown column '{column}'{hint}")
        elif header.count(column) > 1:
            problems.append(f"column '{column}' appears twice")
    problems.extend(f"missing column '{column}'" for column in REQUIRED if column not in header)
    return list(dict.fromkeys(problems))


class _Builder:
    """Checks employees one by one, remembering numbers seen and every problem."""

    def __init__(self, region: str | None) -> None:
        self.region = region
        self.employees: list[Employee] = []
        self.seen: dict[str, str] = {}  # E.164 -> where it was first listed
        self.problems: list[tuple[int, str]] = []

    def add(self, fields: dict[str, str], where: str) -> list[str]:
        """Problems with one employee's fields; it is kept when there are none."""
        problems = []
        raw_number = fields.get("number", "")
        number = normalize_number(raw_number, self.region)
        if not raw_number:
            problems.append("the number is missing")
        elif number is None:
            problems.append(f"'{raw_number}' is not a valid phone number; write it in "
                            "international form, e.g. +4915112345678")
        elif number in self.seen:
            problems.append(f"number {number} is listed twice (first at {self.seen[number]})")
        name, department = fields.get("name", ""), fields.get("department", "")
        if not name:
            problems.append("the name is missing")
        if not department:
            problems.append("the department is missing")
        vip_text = fields.get("vip", "").lower()
        if vip_text not in _YES + _NO:
            problems.append(f"vip must be yes or no, got '{fields.get('vip')}'")
        language = fields.get("language", "").lower() or None
        if language is not None and not _LANGUAGE.match(language):
            problems.append(f"language '{fields.get('language')}' is not a code of 2 or 3 "
                            "letters such as 'de'")
        if number is not None and number not in self.seen:
            self.seen[number] = where
        if not problems and number is not None:
            self.employees.append(
                Employee(number, name, department, vip_text in _YES, language)
            )
        return problems

    def directory(self) -> Directory:
        if self.problems:
            raise DirectoryInvalid([message for _, message in sorted(self.problems)])
        return Directory(self.employees, self.region)
