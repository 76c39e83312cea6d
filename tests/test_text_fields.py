"""One check of text for every published text field (issue 20): control characters (C0, C1, DEL), bidirectional
overrides and isolates, and line/paragraph separators are refused, with the field named, wherever text enters:
every text field of a params file and the unit codes and outcome names of the evaluator's own data file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from evallib.errors import DataError, ParamsError
from evallib.protocol import bounds
from evallib.protocol.params import load_params
from evallib.sources.files import FileSource, check_codes, load_file
from evallib.sources.text import text_problem

from .conftest import SMALL_SITE

pytestmark = pytest.mark.unit

#: Each character refused, by name: the issue's examples and one of each family.
HOSTILE = {
    "right-to-left override U+202E": "\u202e",
    "left-to-right isolate U+2066": "\u2066",
    "right-to-left mark U+200F": "\u200f",
    "line separator U+2028": "\u2028",
    "paragraph separator U+2029": "\u2029",
    "next line U+0085 (C1)": "\u0085",
    "escape": "\x1b",
    "bell": "\x07",
    "NUL": "\x00",
    "DEL": "\x7f",
    "newline": "\n",
}


def _site() -> dict[str, Any]:
    return yaml.safe_load(SMALL_SITE)


def _set(m: dict[str, Any], field: str, value: str) -> None:
    if field.startswith("data_source."):
        m["data_source"][field.split(".", 1)[1]] = value
    elif field == "secondary_outcomes":
        m[field] = [value]
    else:
        m[field] = value


#: Every free-text field of a params file that reaches a page, a figure or a download, with a valid value.
FIELDS = {
    "site_name": "Small counts test site",
    "not_evaluable_reason": "a reason",
    "notes": "a note",
    "announced": "2015-03",
    "data_source.unit_label": "practice",
    "data_source.attribution": "Our own extract",
    "data_source.unit": "trust",
    "data_source.denominator": "population",
    "secondary_outcomes": "admissions",
}


def _load(tmp_path: Path, m: dict[str, Any]) -> object:
    path = tmp_path / "S01.yaml"
    path.write_text(yaml.safe_dump(m, allow_unicode=False), encoding="utf-8")  # escapes as \u202e, \x1b, \0 ...
    return load_params(path)


#: Every field with every character, but a line break in notes (free text: allowed, tested below).
CASES = [
    pytest.param(field, char, id=f"{field}-{name}")
    for field in FIELDS
    for name, char in HOSTILE.items()
    if not (field == "notes" and char == "\n")
]


@pytest.mark.parametrize(("field", "char"), CASES)
def test_every_text_field_refuses_hidden_and_reordering_characters(tmp_path: Path, field: str, char: str) -> None:
    m = _site()
    if field == "data_source.denominator":
        m["data_source"]["measure"] = "rate"
    _set(m, field, FIELDS[field][:3] + char + FIELDS[field][3:])
    with pytest.raises(ParamsError) as err:
        _load(tmp_path, m)
    msg = str(err.value)
    assert f"'{field.split('.')[-1]}" in msg or f"'{field}'" in msg, msg
    assert char not in msg  # never echoed


def test_a_newline_in_unit_label_is_refused(tmp_path: Path) -> None:
    m = _site()
    m["data_source"]["unit_label"] = "practice\nor so"
    with pytest.raises(ParamsError, match="unit_label"):
        _load(tmp_path, m)


def test_notes_may_hold_line_breaks_but_nothing_else_hidden(tmp_path: Path) -> None:
    m = _site()
    m["notes"] = "first line\nsecond line"
    assert _load(tmp_path, m).notes == "first line\nsecond line"  # type: ignore[attr-defined]
    m["notes"] = "first line\n\u202esecond line"
    with pytest.raises(ParamsError, match="'notes' holds a bidirectional"):
        _load(tmp_path, m)


def test_plain_unicode_names_are_kept(tmp_path: Path) -> None:
    m = _site()
    m["site_name"] = "Ysbyty Gwynedd – Bro Môr (Café, naïve, Ελλάδα, 日本)"
    assert _load(tmp_path, m).site_name == m["site_name"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("char", list(HOSTILE.values()), ids=list(HOSTILE))
def test_one_function_decides_for_params_names_and_data_codes(char: str) -> None:
    """Params names (bounds.name_problem) and data codes (files.check_codes) refuse exactly what text_problem
    refuses."""
    value = "ab" + char + "cd"
    assert text_problem(value) is not None
    assert bounds.name_problem(value) is not None
    with pytest.raises(DataError, match="column 'trust'"):
        check_codes(pd.Series(["RTF", value]), "mine.csv", "trust", "unit codes")


def _own_file(tmp_path: Path, unit: str = "RTF", outcome: str = "admissions") -> FileSource:
    rows = ["trust,month,outcome,value"]
    for u in (unit, "RBL", "RX1"):
        rows += [f"{u},2014-{m:02d},{outcome},{100 + m}" for m in range(1, 13)]
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return FileSource(path="mine.csv", unit="trust", period="month", layout="long", outcomes=(outcome,))


@pytest.mark.parametrize("char", ["\u202e", "\u2028", "\x1b", "\u0085"])
def test_a_unit_code_or_outcome_name_with_hidden_characters_is_refused(tmp_path: Path, char: str) -> None:
    with pytest.raises(DataError, match=r"column 'trust' \(unit codes\) on line 2"):
        load_file(_own_file(tmp_path, unit=f"R{char}TF"), tmp_path)
    with pytest.raises(DataError, match=r"column 'outcome' \(outcome names\)"):
        load_file(_own_file(tmp_path, outcome=f"adm{char}issions"), tmp_path)


def test_a_100000_character_unit_code_is_refused_naming_the_column(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_file(_own_file(tmp_path, unit="R" * 100_000), tmp_path)
    msg = str(err.value)
    assert "column 'trust' (unit codes)" in msg and "100,000 characters long (at most 64)" in msg
    assert "RRRRRRRR" not in msg
