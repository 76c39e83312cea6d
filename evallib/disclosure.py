"""Statistical disclosure control for published count tables.

NHS Digital's rule for sub-national counts: 0 stays 0; 1 to 7 are shown as ``*``;
8 and over are rounded to the nearest 5. Totals are rounded after summing the
unrounded counts. Model outputs (estimates, intervals, p-values) are not counts
and are never passed through here.
"""

from __future__ import annotations

import math

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
