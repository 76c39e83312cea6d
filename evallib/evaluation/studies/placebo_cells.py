"""The design step's placebo statistics at fake starts, for one estimator, pool and follow-up
(:mod:`evallib.evaluation.studies.design` reads the MDE, power and interval width off them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from evallib.evaluation.site.estimators import COSTLY_DRAWS
from evallib.methods.inference.fake_starts import (
    rolling_changes,
    rolling_swing,
    studentized_coefficient,
    studentized_placebos,
)
from evallib.methods.inference.permutation import placebo_sets, real_sets, set_estimates
from evallib.methods.inference.volatility import pre_period_swing
from evallib.methods.synth.synthetic_did import placebo_assignments, sdid_batch

#: Fake starts refitted by synthetic DiD per follow-up (spread over the history); its placebo assignments are the
#: report's (``COSTLY_DRAWS`` of them at most, the protocol's seed).
SDID_STARTS = 3


@dataclass(frozen=True)
class Cell:
    """Every placebo statistic (assignments x fake starts), how the real one moves per unit of effect, the real
    assignment's row, the fake starts and windows, and the drift factor they were scaled by.
    """

    placebos: np.ndarray
    coefficient: np.ndarray | float
    real: int
    n_starts: int
    windows: tuple[int, int]  # the fake windows' pre and post periods
    factor: float  # the spread at the protocol's windows over the spread at the fake windows


def scaled(cell: Cell, factor: float) -> Cell:
    """A cell fitted at factor 1 carried to another follow-up with the same fake windows (its drift factor)."""
    return replace(cell, placebos=factor * cell.placebos, factor=factor)


def fake_windows(T: int, pre: int, post: int) -> tuple[int, int]:
    """Fake windows that fit a history of ``T`` periods: the asked-for ones, or shorter ones leaving some starts."""
    if pre + post <= T:
        return pre, post
    p0 = min(pre, max(6, T // 3))
    return p0, max(3, min(post, T - p0 - T // 4))


def placebo_cell(
    name: str,
    Y: np.ndarray,
    is_treated: np.ndarray,
    windows: tuple[int, int],
    factor: float,
    n_draws: int,
    seed: int,
    sets: list[np.ndarray] | None = None,
    scale_pre: int = 0,
) -> Cell:
    """Every placebo statistic at every fake start for one estimator, scaled to the protocol's windows.

    ``sets``: the rows of ``Y`` in the design at each fake start (the site's first; default every row at every
    start); ``is_treated`` then describes one set.

    The studentized test: at each fake start each unit's change is divided by its swing over that start's own
    pre-period (:func:`rolling_swing`), out of sample as at the real start (divided by the swing over the
    protocol's pre-period, the months the fake windows lie in, the fake changes look small: predicted MDEs 43%
    below the reported ones at every CCG vanguard). How the site's statistic moves with the effect is known
    before the start: each unit's swing over the protocol's pre-period (``scale_pre``, the last periods of
    ``Y``) fixes it, as the test will use it. A swing over short fake windows is on a smaller scale than over
    the protocol's pre-period (shorter blocks), so the placebo statistics are carried to the protocol's scale by
    the comparison units' median ratio of the two (pre-start data and comparison units only; with the site's own
    short-window swing as its scale instead, the predicted MDEs were a median 98% too large, up to 192%).
    """
    pre, post = windows
    changes = rolling_changes(Y, pre, post)
    n_starts = changes.shape[1]
    # Assignments as index arrays of their treated units: linear in the units (no assignments x units matrix).
    draws = placebo_sets(is_treated, n_draws, seed)
    real = int(np.flatnonzero(real_sets(draws, is_treated))[0])
    if sets is not None and name != "synthetic_did":
        # Each fake start's own units: its column of the statistics, from that set's rows alone (the changes are
        # each unit's own, so computed once for every unit; the assignments are the same draws at every start).
        rows = np.asarray(sets)
        if name == "did":
            placebos = np.column_stack([set_estimates(changes[r, s], draws) for s, r in enumerate(rows)])
            return Cell(factor * placebos, 1.0, real, n_starts, windows, factor)
        parts = [_studentized(Y[r], changes[r], is_treated, pre, draws, scale_pre, s) for s, r in enumerate(rows)]
        placebos = np.column_stack([ratio * stats[:, 0] for stats, _, ratio in parts])
        coef = np.array([float(np.broadcast_to(c, (n_starts,))[s]) for s, (_, c, _) in enumerate(parts)])
        return Cell(factor * placebos, coef, real, n_starts, windows, factor)
    if name == "did":
        return Cell(factor * set_estimates(changes, draws), 1.0, real, n_starts, windows, factor)
    if name == "did_studentized":
        stats, coef, ratio = _studentized(Y, changes, is_treated, pre, draws, scale_pre)
        return Cell(factor * ratio * stats, coef, real, n_starts, windows, factor)
    # Synthetic DiD: a few fake starts spread over the history, the placebo assignments the report's fit draws.
    starts = np.unique(np.linspace(0, n_starts - 1, min(SDID_STARTS, n_starts)).round().astype(int))
    sub = placebo_assignments(is_treated, min(n_draws, COSTLY_DRAWS), seed)  # the report's fit's (capped past 500)
    post_mask = np.arange(pre + post) >= pre
    cols = [
        sdid_batch((Y if sets is None else Y[sets[s]])[:, s : s + pre + post], post_mask, sub, is_treated).estimates
        for s in starts
    ]
    real_sub = int(np.flatnonzero((sub == is_treated).all(axis=1))[0])
    return Cell(factor * np.column_stack(cols), 1.0, real_sub, len(starts), windows, factor)


def _studentized(
    Y: np.ndarray,
    changes: np.ndarray,
    is_treated: np.ndarray,
    pre: int,
    draws: np.ndarray,
    scale_pre: int,
    start: int | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """The studentized statistics (at every fake start, or only at ``start``), their coefficient and the ratio of
    the fake windows' scale to the protocol's (see :func:`placebo_cell`).
    """
    n_starts = changes.shape[1]
    scales = rolling_swing(Y, pre, n_starts)
    cols = slice(None) if start is None else slice(start, start + 1)
    stats = studentized_placebos(changes[:, cols], scales[:, cols], draws)
    P = min(scale_pre or pre, Y.shape[1])  # the protocol's pre-period, or all the history there is
    swing = pre_period_swing(Y[:, -P:], np.zeros(P, bool))
    ratio = float(np.median(scales[~is_treated].mean(axis=1) / swing[~is_treated]))  # fake-window scale / real
    return stats, studentized_coefficient(swing[:, None], is_treated), ratio
