"""The caller directory: CSV and YAML loading, number normalisation, located problems."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
import pytest

from callbacks.directory import (
    Directory,
    DirectoryInvalid,
    Employee,
    load_directory,
    normalize_number,
)

SAMPLE = Path(__file__).resolve().parent.parent / "flows" / "directory.csv"


def write(tmp_path: Path, name: str, text: str) -> Path:
    """A directory file called `name` holding `text`."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """The problems load_directory reports, without the file name."""
    with pytest.raises(DirectoryInvalid) as caught:
        load_directory(path)
    return [problem.split(":", 1)[1] for problem in caught.value.problems]


# --- the sample file --------------------------------------------------------------------


def test_sample_directory_is_valid() -> None:
    directory = load_directory(SAMPLE)
    assert 8 <= len(directory) <= 10
    assert {e.department for e in directory} == {"Finance", "Sales", "Engineering",
                                                 "Executive", "HR"}
    assert sum(e.vip for e in directory) == 2
    for employee in directory:
        assert phonenumbers.is_valid_number(phonenumbers.parse(employee.number, None))


def test_lookup_normalises_the_caller_id() -> None:
    directory = load_directory(SAMPLE)
    expected = Employee("+4915112345678", "Katrin Schäfer", "Executive", True, "de")
    assert directory.lookup("+49 151 1234 5678") == expected
    assert directory.lookup("+49 (0)151-12345678") == expected
    assert directory.lookup("+48 601 234 567") is not None
    assert directory.lookup("+4915112345679") is None


@pytest.mark.parametrize("caller_id", [
    None, "", "anonymous", "Anonymous", "restricted", "+266696687", "+7378742833", "12345",
])
def test_withheld_or_unparseable_caller_ids_find_nobody(caller_id: str | None) -> None:
    assert load_directory(SAMPLE).lookup(caller_id) is None


def test_national_numbers_with_a_region(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "number,name,department\n0151 12345678,Jonas,Sales\n")
    directory = load_directory(path, region="DE")
    assert directory.lookup("+4915112345678") == Employee(
        "+4915112345678", "Jonas", "Sales", False, None)
    assert directory.lookup("015112345678") is not None
    assert normalize_number("015112345678") is None


# --- CSV --------------------------------------------------------------------------------


def test_csv_optional_columns_and_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "Number,Name,Department\n\n+48512345678,Ewa Nowak,HR\n")
    assert list(load_directory(path)) == [
        Employee("+48512345678", "Ewa Nowak", "HR", False, None)]


def test_csv_problems_name_their_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", """\
number,name,department,vip,language
+4915112345678,Katrin Schäfer,Executive,yes,de
+49 151 123,Jonas Becker,Finance,no,de
+49 151 1234 5678,Anna Wójcik,Finance,no,pl
+79161234567,,Engineering,maybe,russian

+48601234567,Piotr,Sales,no,pl,extra
""")
    assert problems_of(path) == [
        "3: '+49 151 123' is not a valid phone number; write it in international form, "
        "e.g. +4915112345678",
        "4: number +4915112345678 is listed twice (first at line 2)",
        "5: language 'russian' is not a code of 2 or 3 letters such as 'de'",
        "5: the name is missing",
        "5: vip must be yes or no, got 'maybe'",
        "7: 6 fields but the header has 5",
    ]


def test_csv_unknown_and_missing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "number,nmae,departement\n+4915112345678,A,B\n")
    assert problems_of(path) == [
        "1: missing column 'department'",
        "1: missing column 'name'",
        "1: unknown column 'departement' (did you mean 'department'?)",
        "1: unknown column 'nmae' (did you mean 'name'?)",
    ]


def test_csv_quoted_multiline_field_counts_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv",
                 'number,name,department\n+4915112345678,"Schäfer,\nKatrin",HR\nbad,X,HR\n')
    assert problems_of(path) == [
        "4: 'bad' is not a valid phone number; write it in international form, "
        "e.g. +4915112345678",
    ]


def test_empty_and_unknown_files(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, "d.csv", "\n")) == [
        "1: the directory is empty; the first row names the columns: "
        "number, name, department, vip, language",
    ]
    assert problems_of(write(tmp_path, "d.txt", "x")) == [
        "1: a directory must be a .csv or .yaml file"]


# --- YAML -------------------------------------------------------------------------------


def test_yaml_directory(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yaml", """\
- number: "+4916098765432"
  name: Emily Carter
  department: Executive
  vip: true
  language: en
- {number: +79031234567, name: Ольга Иванова, department: Sales, vip: no}
""")
    directory = load_directory(path)
    assert isinstance(directory, Directory)
    assert directory.lookup("+7 903 123-45-67") == Employee(
        "+79031234567", "Ольга Иванова", "Sales", False, None)
    assert directory.lookup("+49 160 98765432") == Employee(
        "+4916098765432", "Emily Carter", "Executive", True, "en")


def test_yaml_problems_name_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "d.yml", """\
- number: "+4916098765432"
  name: Emily Carter
  departmnet: Executive
- number: "+4916098765432"
  name: Emily Twice
  department: Executive
- just text
""")
    assert problems_of(path) == [
        "1:3: the department is missing",
        "3:3: unknown key 'departmnet' (did you mean 'department'?)",
        "4:3: number +4916098765432 is listed twice (first at line 1)",
        "7:3: an employee must be a mapping of number, name, department, vip, language",
    ]


def test_yaml_syntax_and_shape(tmp_path: Path) -> None:
    assert problems_of(write(tmp_path, "d.yaml", "number: +4916098765432\n")) == [
        "1:1: the directory must be a list of employees with "
        "number, name, department, vip, language",
    ]
    problems = problems_of(write(tmp_path, "d.yaml", "- {number: [\n"))
    assert len(problems) == 1 and problems[0].startswith("2:1:")
