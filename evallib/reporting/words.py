"""Numbers in words for readers: effects with their intervals, p-values, minimum detectable effects.

Used by the summary box, the findings, the index and the tables, so that every page says the same
thing the same way ("3.1% lower", "p < 0.001"). The domain's names (outcomes, periods, units, methods,
inference) are :mod:`evallib.vocabulary`'s.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from evallib.vocabulary import be


def article(word: str) -> str:
    """``a decrease``, ``an increase``; numbers as they are read aloud: ``an 11.0% fall``, ``an 8% fall``,
    ``a 4.6% fall``, ``an 18-month follow-up``.
    """
    if word[:1].isdigit():
        whole = re.match(r"[\d,]+", word)
        digits = whole.group(0).replace(",", "") if whole else ""
        # "eight...", "eleven", "eighteen" (and their thousands: "eleven thousand") begin with a vowel sound
        vowel = digits.startswith("8") or (digits[:2] in ("11", "18") and len(digits) % 3 == 2)
        return ("an " if vowel else "a ") + word
    return ("an " if word[:1].lower() in "aeiou" else "a ") + word


def p_text(p: float | None) -> str:
    """A p-value as read: ``p < 0.001``, ``p = 0.04``, ``p = 1``; empty when there is none."""
    if p is None or not math.isfinite(p):
        return ""
    if p < 0.001:
        return "p < 0.001"
    return f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def _num(v: Any) -> float:
    return math.nan if v is None else float(v)


def percent(value: float, scale: str) -> float:
    """A proportional effect as a percent change (from logs, rate ratios or percents)."""
    if not math.isfinite(value):
        return value
    if scale == "log":
        return 100 * (math.exp(value) - 1)
    if scale == "rate_ratio":
        return 100 * (value - 1)
    return value


def is_points(scale: str) -> bool:
    """Whether a scale is in percentage points."""
    return scale.startswith("percentage_points")


def is_proportional(scale: str) -> bool:
    """Whether a scale is proportional (log, rate ratio or percent change)."""
    return scale in ("log", "rate_ratio", "percent")


def _amount(v: float, scale: str) -> str:
    """Size of a change without its sign: ``3.1%``, ``1.2 percentage points``, ``0.052``."""
    if math.isnan(v):
        return "unknown"
    if math.isinf(v):
        return "unbounded"
    a = abs(v)
    if is_proportional(scale):
        return f"{a:.0f}%" if a >= 100 else f"{a:.1f}%"
    if is_points(scale):
        return f"{a:.1f} percentage point" + ("" if round(a, 1) == 1 else "s")
    return f"{a:,.3g}"


def change_words(v: float, scale: str) -> str:
    """One change in words: ``3.1% lower``, ``1.2 percentage points higher``, ``no different``."""
    if math.isnan(v):
        return "unknown"
    if math.isinf(v):
        return "unboundedly " + ("higher" if v > 0 else "lower")
    if abs(v) < 0.05 and (is_proportional(scale) or is_points(scale)):
        return "no different"
    return f"{_amount(v, scale)} {'higher' if v > 0 else 'lower'}"


def effect_sentence(row: Mapping[str, Any], *, outcome: str, units: str) -> str:
    """The headline effect and its interval in words, from a tidy row (a dict or an Estimate's ``__dict__``).

    "Relative to comparable CCGs, emergency admissions were 3.1% lower than expected; the data are consistent
    with anything from 8.0% lower to 2.0% higher."
    """
    scale = str(row["scale"])
    est, lo, hi = (percent(_num(row[k]), scale) for k in ("estimate", "ci_low", "ci_high"))
    lo = -math.inf if row.get("ci_low") is None and row.get("estimate") is not None else lo
    hi = math.inf if row.get("ci_high") is None and row.get("estimate") is not None else hi
    head = f"Relative to comparable {units}, {outcome} {be(outcome, past=True)} {change_words(est, scale)}"
    head += " than expected" if change_words(est, scale) != "no different" else " from what was expected"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return head + "; the interval is unbounded, so the data rule out no effect of any size."
    return (
        head + f"; the data are consistent with anything from {change_words(lo, scale)} to {change_words(hi, scale)}."
    )


def short_effect(row: Mapping[str, Any]) -> tuple[str, str]:
    """(estimate, interval) in short form for tables: ``-3.1%``, ``-8.0% to +2.0%``; points as ``pts``."""
    scale = str(row["scale"])

    def one(v: Any) -> str:
        x = percent(_num(v), scale) if v is not None else math.nan
        if v is None or math.isnan(x):
            return "unbounded"
        if is_proportional(scale):
            return f"{x:+.0f}%" if abs(x) >= 100 else f"{x:+.1f}%"
        if is_points(scale):
            return f"{x:+.1f} pts"
        return f"{x:+,.3g}"

    return one(row["estimate"]), f"{one(row['ci_low'])} to {one(row['ci_high'])}"


#: The markers a page and the index show, as (class, symbol, words), one per kind of answer: a confirmed change the
#: protocol hoped for, a confirmed change the other way, a clear change the checks do not confirm (or that was not
#: checked), no clear effect, and a site that could not be evaluated. The index filters on the class.
MARKERS: dict[str, tuple[str, str, str]] = {
    "good": ("good", "\u2714", "good"),
    "bad": ("bad", "\u2716", "bad"),
    "unconfirmed": ("unconfirmed", "?", "not confirmed"),
    "unclear": ("unclear", "\u2022", "unclear"),
    "not-evaluable": ("not-evaluable", "\u2013", "not evaluable"),
}


def marker(verdict: str, direction: str) -> tuple[str, str, str]:
    """(class, symbol, words) of the marker for an answer, from its robustness ``verdict`` and its ``direction``.

    Good or bad only for a confirmed clear change (hoped for, or the opposite); a clear change whose checks disagree
    or did not run is "not confirmed", never good; no clear effect is "unclear"; ``verdict`` "not evaluable" gives
    that marker. The one place a marker or an index colour is decided.
    """
    if verdict == "not evaluable":
        return MARKERS["not-evaluable"]
    if direction not in ("hoped for", "opposite"):
        return MARKERS["unclear"]
    if verdict != "confirmed":
        return MARKERS["unconfirmed"]
    return MARKERS["good" if direction == "hoped for" else "bad"]


#: The phrase for a rank test one placebo assignment away from the other conclusion.
EDGE_OF_SIGNIFICANCE = "at the edge of significance"


def edge_words(clear: bool) -> str:
    """A sentence for an answer at the edge of significance (its rank test one placebo assignment from changing).

    ``clear``: whether the answer is a clear change (its p-value rejects no effect).
    """
    if clear:
        return (
            f"This is {EDGE_OF_SIGNIFICANCE}: had one more placebo among the comparison areas changed as much as the "
            "site, it would not count as a clear change."
        )
    return (
        f"This is {EDGE_OF_SIGNIFICANCE}: had one fewer placebo among the comparison areas changed as much as the "
        "site, it would count as a clear change."
    )


def mde_words(mde: float | None, scale: str) -> str:
    """The minimum detectable effect in words (``mde`` on the log scale, or in points)."""
    if mde is None or math.isnan(mde):
        return ""
    if math.isinf(mde):
        return "with so few comparison units the design could not have detected a change of any size"
    size = f"{mde:.1f} percentage points" if is_points(scale) else f"{100 * (math.exp(mde) - 1):.0f}%"
    return f"the design could have detected a change of about {size} either way (80% power)"


def sampled_words(draws: int, error: float, n_treated: int, units: str) -> str:
    """What a sampled placebo p-value ranks the site among, and its Monte Carlo error (one sentence).

    ``units`` is the comparison units' plural (``CCGs``); with several treated units the random placebo
    assignments are sets of as many comparison units as the site has.
    """
    among = f"comparison {units}" if n_treated <= 1 else f"sets of {n_treated} comparison {units}"
    return (
        f"The p-value ranks the site among {draws:,} randomly chosen {among}, not every "
        f"one; its Monte Carlo error is {error:.3f}."
    )
