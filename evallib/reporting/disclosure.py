"""Statistical disclosure control for published count tables.

NHS Digital's rule for sub-national counts: 0 stays 0; 1 to 7 are shown as ``*``;
8 and over are rounded to the nearest 5. Totals are rounded after summing the
unrounded counts. Model outputs (estimates, intervals, p-values) are not counts
and are never passed through here.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

SUPPRESSED = "*"


def safe_count(value: float) -> int | str:
    """One count under the small-number rule."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError("cannot publish a missing count; leave the row out instead")
    if value < 0:
        raise ValueError(f"counts cannot be negative, got {value}")
    if value == 0:
        return 0
    if value <= 7:
        return SUPPRESSED
    # Round half up to the nearest 5 (Python's round() would round half to even).
    return int(math.floor(value / 5 + 0.5) * 5)


def format_count(value: float) -> str:
    """A count as published text, with thousands separators."""
    v = safe_count(value)
    return v if isinstance(v, str) else f"{v:,}"


def safe_count_table(table: pd.DataFrame, count_columns: list[str]) -> pd.DataFrame:
    """Copy of ``table`` with ``count_columns`` passed through :func:`safe_count`."""
    out = table.copy()
    for c in count_columns:
        out[c] = [safe_count(v) for v in table[c]]
    return out


def check_published(folder: Path) -> list[str]:
    """Every count cell (``<td class="count">``) in the HTML under ``folder`` that breaks the rule.

    Reports mark each published count with ``class="count"`` (via :func:`count_cell`);
    a value passes when it is ``*``, ``0`` or a multiple of 5 of at least 10.
    """
    import re

    problems = []
    pattern = re.compile(r"<td class=['\"]count['\"]>([^<]*)</td>")
    for page in sorted(Path(folder).rglob("*.html")):
        for value in pattern.findall(page.read_text(encoding="utf-8")):
            text = value.replace(",", "").strip()
            ok = text in (SUPPRESSED, "0") or (text.isdigit() and int(text) >= 10 and int(text) % 5 == 0)
            if not ok:
                problems.append(f"{page.name}: unsuppressed count {value!r}")
    return problems


def count_cell(value: float) -> str:
    """A table cell for a published count, rounded and marked for :func:`check_published`."""
    return f"<td class='count'>{format_count(value)}</td>"
