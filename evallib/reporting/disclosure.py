"""Statistical disclosure control: the one place that decides how a count may be published.

NHS Digital's rule for sub-national counts: 0 stays 0; 1 to 7 are shown as ``*``;
other counts are rounded to the nearest 5. Here a value is first rounded to a whole
count (half up), then suppressed or rounded, so 7.2 is ``*`` (not 5) and the
smallest published non-zero count is 10. It fails closed: a missing, infinite,
negative, boolean or non-numeric value raises instead of printing something.

Every published place goes through here: count cells in tables
(:func:`count_cell`, marked ``class='count'`` for :func:`check_published`), values
derived one-to-one from a count such as the balance table's mean log count
(:func:`log_count_text`), and figures of counts (:func:`count_series_policy`:
indexed, or withheld when any month is small). Model outputs (estimates,
intervals, p-values) are not counts and never pass through here.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from markupsafe import Markup

    from evallib.methods.its.model import ITSResult

SUPPRESSED = "*"
#: Largest count that is suppressed.
SMALL = 7
#: Published counts are multiples of this.
ROUND_TO = 5


def _checked(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"a published count must be a number, got {type(value).__name__}")
    v = float(value)
    if math.isnan(v):
        raise ValueError("cannot publish a missing count; leave the row out instead")
    if math.isinf(v):
        raise ValueError("cannot publish an infinite count")
    if v < 0:
        raise ValueError(f"counts cannot be negative, got {v}")
    return v


def safe_count(value: float) -> int | str:
    """One count under the small-number rule: rounded to a whole count, then ``*`` for 1-7, else nearest 5."""
    v = _checked(value)
    if v == 0:
        return 0
    whole = math.floor(v + 0.5)  # rounding first: 7.2 is 7 (suppressed), 7.5 is 8 (published as 10)
    if whole <= SMALL:
        return SUPPRESSED  # includes 0 < v < 0.5: not zero, so not published as 0
    # Round half up to the nearest 5 (Python's round() would round half to even).
    return int(math.floor(whole / ROUND_TO + 0.5) * ROUND_TO)


def format_count(value: float) -> str:
    """A count as published text, with thousands separators."""
    v = safe_count(value)
    return v if isinstance(v, str) else f"{v:,}"


def is_small(value: float) -> bool:
    """Whether the rule suppresses ``value`` (a count of 1-7 after rounding)."""
    return safe_count(value) == SUPPRESSED


def log_count_text(value: float, digits: int = 2) -> str:
    """A mean log count as published: ``*`` when the count it stands for is small, else ``digits`` decimals.

    ``exp(1.843)`` is 6.3: printing the log would undo the ``*`` beside it.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError("cannot publish a missing or infinite log count")
    return SUPPRESSED if is_small(math.exp(float(value))) else f"{float(value):.{digits}f}"


def count_series_policy(values: Iterable[float]) -> str:
    """How a figure may show a series of counts: ``"indexed"`` (never raw counts on a labelled axis), or
    ``"withheld"`` when any value is a small count (an index of 3, 5 and 6 still reveals them).
    """
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return "withheld" if any(is_small(v) for v in vals) else "indexed"


def withheld_note(what: str, cls: str = "") -> Markup:
    """The note shown in place of a figure of small counts (from its template, ``what`` escaped)."""
    from evallib.reporting.templating import render

    return render("withheld.html.j2", what=what, cls=cls)


def its_count_figure(result: ITSResult, *, title: str, alt: str, counts: pd.Series | None = None) -> Markup:
    """HTML of an ITS figure of a count (or rate) series: indexed to its pre-period mean (= 100), or withheld.

    ``counts`` are the events behind the series when it is a rate (the rule applies to them); by default the
    series itself.
    """
    from evallib.reporting.plots import plot_its
    from evallib.reporting.templating import figure_html

    observed = result.observed
    if count_series_policy(observed if counts is None else counts) == "withheld":
        return withheld_note(alt)
    pre = observed[observed.index < result.intervention_start]
    base = float(pre.mean()) if len(pre) else float("nan")
    if not math.isfinite(base) or base <= 0:
        return withheld_note(alt)
    fig = plot_its(result, title=title, ylabel="index (pre-period mean = 100)", scale=100 / base)
    return figure_html(fig, alt)


def safe_count_table(table: pd.DataFrame, count_columns: list[str]) -> pd.DataFrame:
    """Copy of ``table`` with ``count_columns`` passed through :func:`safe_count`."""
    out = table.copy()
    for c in count_columns:
        out[c] = [safe_count(v) for v in table[c]]
    return out


_COUNT_CELL = re.compile(r"<(td|span)\s+class=['\"]count['\"]>([^<]*)</\1>")


def count_violations(html: str) -> list[str]:
    """Values of count cells in ``html`` that break the rule (``*``, ``0`` or a multiple of 5 of at least 10)."""
    bad = []
    for _, value in _COUNT_CELL.findall(html):
        text = value.replace(",", "").strip()
        ok = text in (SUPPRESSED, "0") or (text.isdigit() and int(text) > SMALL and int(text) % ROUND_TO == 0)
        if not ok:
            bad.append(value)
    return bad


def check_published(folder: Path) -> list[str]:
    """Every count cell (``class="count"``) in the HTML under ``folder`` that breaks the rule."""
    problems = []
    for page in sorted(Path(folder).rglob("*.html")):
        for value in count_violations(page.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{page.name}: unsuppressed count {value!r}")
    return problems


def count_cell(value: float) -> dict[str, str]:
    """A table cell (for the ``simple_table`` template macro) holding a published count, rounded and marked
    ``class="count"`` for :func:`check_published`.
    """
    return {"cls": "count", "text": format_count(value)}
