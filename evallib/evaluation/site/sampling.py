"""What a placebo test ranks the site among: whether its assignments were sampled, and the smallest p-value they allow.

A placebo (rank) p-value is the share of assignments at least as extreme as the real one, so the fewest it can be is
one over the assignments it ranks the site among. Every unit in turn gives as many assignments as units (one treated
unit); random sets (several treated units, or past 500 units for the estimators that refit) give the draws plus the
real one, but never more distinct ones than exist: ``C(n, k)`` for ``k`` treated units among ``n``. The verdict
counts a placebo check as a test only when that smallest p-value could reject at 5%
(:func:`~evallib.evaluation.site.verdict.judge`), and a sampled p-value states its draws and Monte Carlo error
(:func:`~evallib.methods.inference.permutation.mc_error`) wherever it is shown, in the same words
(:func:`sampled_text`).
"""

from __future__ import annotations

import math
from typing import Any

from evallib.methods.base.results import Estimate

__all__ = ["distinct_sets", "sampled", "sampled_text", "smallest_p_value", "row_smallest_p_value"]


def sampled(row: Estimate, result: Any) -> tuple[int, float]:
    """``(draws, Monte Carlo error)`` of a placebo p-value ranked among random assignments; ``(0, 0.0)`` when every
    assignment was tried or the row's test is not a placebo test. Every estimator that samples says so on its result
    (``placebo_draws``, ``p_value_mc_error``; 0 draws when exhaustive).
    """
    draws = int(getattr(result, "placebo_draws", 0) or 0)
    if draws <= 0 or not row.inference.startswith("placebo"):
        return 0, 0.0
    return draws, float(getattr(result, "p_value_mc_error", 0.0) or 0.0)


def sampled_text(draws: int, error: float) -> str:
    """A sampled p-value's draws and Monte Carlo error in words (the short form; :func:`~evallib.reporting.words.
    sampled_words` is the summary's sentence): ``p-value from 999 random placebo assignments, Monte Carlo error 0.007``.
    """
    return f"p-value from {draws:,} random placebo assignments, Monte Carlo error {error:.3f}"


def distinct_sets(n_units: int, n_treated: int) -> int:
    """How many different sets of ``n_treated`` units ``n_units`` units hold (``C(n, k)``; ``n`` for one)."""
    return math.comb(n_units, n_treated) if 0 < n_treated < n_units else 1


def smallest_p_value(distinct: int, draws: int = 0) -> float:
    """The smallest p-value a placebo rank test can give: one over the assignments it ranks the site among.

    Parameters
    ----------
    distinct : int
        The distinct assignments that exist, the real one included (``C(n, k)``; the units, for one treated unit).
    draws : int
        Random assignments drawn beside the real one (0: every assignment tried).

    Notes
    -----
    Tried exhaustively, the real assignment is one of ``distinct``, so the smallest p-value is ``1 / distinct``
    (``1 / (comparators + 1)`` for one treated unit). Sampled, it is ranked among ``draws + 1``, so
    ``1 / (draws + 1)``, but never below ``1 / distinct``: draws beyond the distinct assignments only repeat them,
    and the real assignment's repeats tie with it (about ``draws / distinct`` of them).
    """
    floor = 1.0 / max(int(distinct), 1)
    return floor if draws <= 0 else max(floor, 1.0 / (int(draws) + 1))


def row_smallest_p_value(row: Estimate, result: Any) -> float:
    """The smallest p-value the test behind ``row`` (fitted as ``result``) can give; 0 when it is not a rank test.

    A result that knows its own (the synthetic control, which ranks the site's joined series among single
    donors, and synthetic DiD) says so in ``min_p_value``; otherwise the placebo sets hold as many units as the
    row's treated units, among its treated and comparison units (:func:`smallest_p_value`).
    """
    if not row.inference.startswith("placebo"):
        return 0.0
    own = float(getattr(result, "min_p_value", math.nan))
    if math.isfinite(own):
        return own
    draws, _ = sampled(row, result)
    return smallest_p_value(distinct_sets(row.n_treated + row.n_control, row.n_treated), draws)
