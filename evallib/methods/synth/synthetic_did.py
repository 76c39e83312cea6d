"""Synthetic difference-in-differences (Arkhangelsky, Athey, Hirshberg, Imbens & Wager 2021).

:class:`SyntheticDiD` re-weights comparison units so their pre-period path runs parallel
to the treated units' (unit weights, with the paper's ridge) and re-weights pre-periods
so they resemble the post-period for the comparison units (time weights), then takes
the weighted difference-in-differences. Inference is placebo-in-space: the whole
estimator, weights included, is refitted with every comparison unit (or random sets of
``k`` units) as the treated ones, in one batch of array operations
(:mod:`evallib.methods.synth.sdid_fits`), and the interval inverts the same test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.methods.base.arrays import Transform, as_binary, prepare_panel
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.inference.inversion import invert_linear
from evallib.methods.inference.permutation import (
    mc_error,
    random_single_sets,
    sets_are_sampled,
    sets_to_matrix,
    treatment_assignments,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

from evallib.methods.synth.sdid_fits import CHUNK, WORK_BYTES, batch_rows, sdid_batch, sdid_rows

__all__ = [
    "CHUNK",
    "EXHAUSTIVE_UNITS",
    "LOO_ALL_UNITS",
    "LOO_UNITS",
    "WORK_BYTES",
    "SDIDResult",
    "SyntheticDiD",
    "batch_rows",
    "p_value_mc_error",
    "placebo_assignments",
    "sdid_batch",
    "sdid_rows",
]

#: With one treated unit, every unit takes the treatment once while the panel has at most this many units; past it,
#: the real unit and ``n_draws`` others drawn at random (each refit solves two weight problems over every donor).
EXHAUSTIVE_UNITS = 500
#: :meth:`SyntheticDiD.leave_one_out` leaves out every comparison unit in turn while there are at most this many;
#: past it, only the :data:`LOO_UNITS` most heavily weighted (each refit is linear in the units, so the check is too).
LOO_ALL_UNITS = 500
#: Comparison units left out in turn past :data:`LOO_ALL_UNITS`: those with the largest unit weights.
LOO_UNITS = 100


@dataclass(frozen=True)
class SDIDResult(EstimatorResult):
    """Read-only result of :meth:`SyntheticDiD.fit`.

    ``unit_weights`` (comparison unit -> omega) and ``time_weights`` (pre-period ->
    lambda) are the fitted weights; ``treated_path`` is the treated units' mean outcome
    and ``synthetic_path`` the unit-weighted comparison outcome shifted to meet it on the
    time-weighted pre-period, so the mean post-period gap between them is the estimate.
    ``placebo_estimates`` holds the estimate under every treatment assignment used by the
    test (the real one included); ``min_p_value`` is the smallest p-value the test can give.
    ``placebo_draws`` is the number of random assignments the p-value ranks the real one among when they were
    sampled (0 when every assignment is used, as with one treated unit among at most :data:`EXHAUSTIVE_UNITS`
    units) and ``p_value_mc_error`` the Monte Carlo standard error of the p-value as an estimate of the
    exhaustive test's (:func:`~evallib.methods.inference.permutation.mc_error`; 0 when exhaustive).
    """

    rows: tuple[Estimate, ...]
    unit_weights: pd.Series
    time_weights: pd.Series
    treated_path: pd.Series = field(repr=False)
    synthetic_path: pd.Series = field(repr=False)
    start: object
    n_obs: int
    n_periods: int
    treated_units: tuple[str, ...] = ()
    placebo_estimates: np.ndarray | None = field(default=None, repr=False)
    min_p_value: float = float("nan")
    p_value_mc_error: float = 0.0
    placebo_draws: int = 0

    @property
    def effect_curve(self) -> pd.Series:
        """Treated minus synthetic path in each post-period (its mean is the estimate)."""
        gap = self.treated_path - self.synthetic_path
        return gap[gap.index >= self.start]

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "") -> Figure:
        """The treated units' path and the shifted synthetic path, start marked, on ``ax`` (new figure when None)."""
        from evallib.methods.base.plotting import plot_paths

        return plot_paths(
            self.treated_path,
            self.synthetic_path,
            self.start,
            ax=ax,
            title=title,
            ylabel=ylabel,
            labels=("treated units", "synthetic DiD comparison"),
        )


def placebo_assignments(
    real: np.ndarray, n_draws: int, seed: int, exhaustive_units: int = EXHAUSTIVE_UNITS
) -> np.ndarray:
    """The assignments the placebo test refits (bool, assignments x units; the real one included).

    With one treated unit: every unit once while there are at most ``exhaustive_units`` units; past that, the real
    unit and ``n_draws`` other units drawn at random without replacement (seeded, by the sampler the rate ratio and
    synthetic control share: :func:`~evallib.methods.inference.permutation.random_single_sets`), in unit order.
    With several treated units: :func:`~evallib.methods.inference.permutation.treatment_assignments` (the real set
    first, then ``n_draws`` random sets).
    """
    real = np.asarray(real, bool)
    n, k = len(real), int(real.sum())
    if k != 1 or n <= exhaustive_units or n_draws >= n - 1:
        return treatment_assignments(real, n_draws, seed)
    rows = np.sort(random_single_sets(real, n_draws, seed)[:, 0])  # the real unit in its place among the drawn
    return sets_to_matrix(rows[:, None], n)


def p_value_mc_error(p: float, n_assignments: int, n_possible: int | None) -> float:
    """Standard error of a placebo p-value from ``n_assignments`` (the real one included) of ``n_possible`` possible.

    Kept for callers of this name: the formula is :func:`~evallib.methods.inference.permutation.mc_error`, with
    ``n_assignments - 1`` draws taken without replacement from the ``n_possible - 1`` other assignments
    (``n_possible`` given) or independently (``n_possible=None``).
    """
    return mc_error(p, n_assignments - 1, None if n_possible is None else n_possible - 1)


@dataclass(frozen=True)
class SyntheticDiD:
    """Synthetic difference-in-differences with a common start, and placebo inference.

    Parameters
    ----------
    outcome, unit, time : str
        Column roles: the outcome, the area identifier and the period (balanced panel).
    treated : str
        Column that is 1 for units that receive the intervention (constant within unit).
    post : str
        Column that is 1 for periods on or after the start (the same start for every unit).
    transform : {"identity", "log"}
        ``log`` estimates a proportional effect (scale ``log``).
    denominator : str, optional
        Divide the outcome by this column first (a rate).
    n_draws : int
        Random sets of ``k`` units given the treatment when ``k > 1`` units are treated. With one
        treated unit every unit is used once while the panel has at most ``exhaustive_units`` units,
        and past that the real unit and ``n_draws`` other units drawn at random. Each draw refits both
        sets of weights, so the default is 499 rather than :class:`~evallib.methods.did.twfe.DiD`'s 999
        (p-values in steps of 0.002; about 0.3 s on 200 units x 72 months).
    seed : int
        Seed of those draws.
    exhaustive_units : int
        Most units for which one treated unit's test uses every assignment (default
        :data:`EXHAUSTIVE_UNITS`, 500); each refit costs time linear in the units, so capping the
        refits keeps the whole test linear.
    alpha : float
        1 - confidence level of the interval.

    Notes
    -----
    Estimand: the average effect on the treated units over the post-period (ATT), under
    the assumption that, once the comparison units are weighted to share the treated
    units' pre-period path (up to a constant) and the pre-periods weighted to resemble
    the post-period, the weighted comparison change is what the treated units would have
    seen. Unit weights ``omega`` minimise ``|omega_0 + Y_co,pre' omega - ybar_tr,pre|^2 / T0
    + zeta^2 |omega|^2`` over the simplex with ``zeta = (N_tr T_post)^(1/4) sigma``,
    ``sigma`` the SD of the comparison units' first differences in the pre-period; time
    weights ``lambda`` minimise ``|lambda_0 + Y_co,pre lambda - ybar_co,post|^2 / N_co +
    (1e-6 sigma)^2 |lambda|^2``. Both problems are solved exactly (R ``synthdid`` stops its
    Frank-Wolfe iterations near the optimum, so its estimates can differ slightly).

    Inference: under the sharp null of no effect the treatment assignment is
    exchangeable; the whole estimator (weights, noise level, ridge) is refitted under
    every placebo assignment and the p-value is the share whose absolute estimate is at
    least the observed one, the real assignment included. The interval collects every
    effect ``tau`` the same test does not reject: removing ``tau`` from the real treated
    units' post-period outcomes changes nothing the unit weights or the noise level
    depend on (pre-period data only), moves the real estimate by ``-tau`` and each
    placebo's by ``-tau c``, with ``c`` the share of the placebo's treated units that are
    really treated minus the unit weight it gives the really treated units. The time
    weights of a placebo are held at their fitted values in that shift (they use the
    comparison units' post-period, which holds the real treated units), which is what
    makes the inversion exact and linear; at ``tau = 0`` the test is the p-value's, so
    ``p > alpha`` exactly when the interval contains 0.

    Past ``exhaustive_units`` units with one treated unit, the placebo units are a seeded random
    subset of ``n_draws`` (the real unit always included): the test stays exact (under the null the
    real unit is exchangeable with the units drawn), its p-value and interval estimate the exhaustive
    ones with the Monte Carlo error reported in ``p_value_mc_error`` (about 0.01 at p = 0.05 with 500
    assignments). Memory is linear in units and in pre-periods: the time weights' Gram matrices are
    the all-unit one less the units each assignment leaves out, problems are solved in batches of
    bounded size (:data:`~evallib.methods.synth.sdid_fits.WORK_BYTES`), and only the real
    assignment's unit weights are kept.
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    treated: str = "treated"
    post: str = "post"
    transform: Transform = "identity"
    n_draws: int = 499
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""
    exposure: str | None = None
    exhaustive_units: int = EXHAUSTIVE_UNITS

    @property
    def scale(self) -> str:
        """The estimate's scale: ``log`` (a proportional effect) or ``level``."""
        return "log" if self.transform == "log" else "level"

    def _matrix(self, data: Design | pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if isinstance(data, Design):
            if (~data.post).sum() < 2:
                raise DataError("SyntheticDiD: needs at least two pre-period periods")
            a = data.arrays(self.transform)
            return a.matrix(a.y), data.post, data.treated, a.units, a.periods
        p = prepare_panel(
            data,
            self.outcome,
            self.unit,
            self.time,
            self.treated,
            self.transform,
            extra=[self.post],
            denominator=self.exposure,
        )
        if not p.balanced:
            raise DataError(
                f"SyntheticDiD: needs a balanced panel (every {self.unit} in every {self.time}); got {len(p.y)} rows "
                f"for {p.n_units} units x {p.n_periods} periods. Drop incomplete units first."
            )
        post_row = as_binary(p.extra[self.post], self.post)
        post = np.zeros(p.n_periods, bool)
        post[p.time[post_row]] = True
        if np.any(post[p.time] != post_row):
            raise DataError(f"SyntheticDiD: {self.post!r} must be the same for every {self.unit} in a period")
        if post.all() or not post.any() or np.any(np.diff(post.astype(int)) < 0):
            raise DataError(f"SyntheticDiD: {self.post!r} must be 0 before the start and 1 from it on, with both")
        if (~post).sum() < 2:
            raise DataError("SyntheticDiD: needs at least two pre-period periods")
        return p.matrix(p.y), post, p.unit_treated, p.units, p.periods

    def fit(self, data: Design | pd.DataFrame) -> SDIDResult:
        """Estimate the effect with its placebo p-value and interval on a
        :class:`~evallib.methods.base.design.Design` (or long rows with the column roles named in the
        settings); returns a frozen :class:`SDIDResult`.
        """
        Y, post, real, units, periods = self._matrix(data)
        n, k = len(real), int(real.sum())
        if n - k < 2:
            raise DataError("SyntheticDiD: needs at least two comparison units")
        assign = placebo_assignments(real, self.n_draws, self.seed, self.exhaustive_units)
        i_real = int(np.flatnonzero((assign == real).all(axis=1))[0])
        batch = sdid_batch(Y, post, assign, real, keep=i_real)
        est = batch.estimates
        obs = float(est[i_real])
        p = float(np.mean(np.abs(est) >= abs(obs) - 1e-12))
        lo, hi = invert_linear(est, batch.coefficients, obs, self.alpha)
        omega, lam = batch.omega, batch.lam[i_real]
        n_possible = math.comb(n, k)
        # One treated unit: distinct other units drawn (none when every unit is used); several: independent sets.
        draws = len(assign) - 1 if (sets_are_sampled(n, k, self.n_draws) if k > 1 else len(assign) < n) else 0
        p_mc = mc_error(p, draws, n - 1 if k == 1 else None)
        treated_path = Y[real].mean(axis=0)
        synth = omega @ Y
        offset = float(lam @ (treated_path[~post] - synth[~post]))
        row = Estimate(
            outcome=self.outcome_label or (data.outcome if isinstance(data, Design) else "") or self.outcome,
            term="treated_x_post",
            estimate=obs,
            std_error=float(est.std(ddof=1)),
            ci_low=float(lo),
            ci_high=float(hi),
            p_value=p,
            method="did_synthetic",
            inference="placebo_in_space",
            scale=self.scale,
            n_treated=k,
            n_control=n - k,
        )
        est.setflags(write=False)
        return SDIDResult(
            rows=(row,),
            unit_weights=pd.Series(omega[~real], index=units[~real], name="omega"),
            time_weights=pd.Series(lam, index=periods[~post], name="lambda"),
            treated_path=pd.Series(treated_path, index=periods, name="treated"),
            synthetic_path=pd.Series(synth + offset, index=periods, name="synthetic"),
            start=periods[post][0],
            n_obs=int(Y.size),
            n_periods=len(periods),
            treated_units=tuple(units[real]),
            placebo_estimates=est,
            min_p_value=max(1.0 / len(assign), 1.0 / n_possible),
            p_value_mc_error=p_mc,
            placebo_draws=draws,
        )

    def leave_one_out(
        self, data: Design | pd.DataFrame, *, all_units: int = LOO_ALL_UNITS, top: int = LOO_UNITS
    ) -> pd.Series:
        """The point estimate refitted without each comparison unit in turn (no placebo inference).

        Every refit (weights, noise level and ridge recomputed without the unit, exactly as :meth:`fit`
        on the panel without it) is one row of a single batch, so the whole check costs about one
        placebo test. Returns the estimates indexed by the comparison unit left out, in unit order.

        Notes
        -----
        With at most ``all_units`` comparison units (:data:`LOO_ALL_UNITS`, 500) every one is left out in
        turn. Past that, only the ``top`` (:data:`LOO_UNITS`, 100) with the largest unit weights in the fit on
        the whole panel (ties in unit order), the units the answer rests on most; each of those estimates is
        still the exact refit without that unit, and the Series says which were left out by its index and the
        rule in ``attrs["left_out"]``. Leaving every unit out would be quadratic in units (every refit solves
        weight problems over all the others: about 30 s at 7,000 units). Units with no weight are not simply
        skipped because they still count: the noise level (hence the unit weights' ridge) and the time weights
        use every comparison unit, so leaving one out moves the estimate, if little.
        """
        Y, post, real, units, _ = self._matrix(data)
        n_comp = int((~real).sum())
        if n_comp < 3:
            raise DataError("SyntheticDiD: leaving one comparison unit out needs at least three")
        dropped = np.flatnonzero(~real)
        rule = ""
        if n_comp > all_units and top < n_comp:
            omega = sdid_batch(Y, post, real[None, :], real).omega[dropped]
            heaviest = np.argsort(-omega, kind="stable")[:top]
            dropped = np.sort(dropped[heaviest])
            rule = f"the {len(dropped)} most heavily weighted of {n_comp:,} comparison units"

        def assign_rows(lo: int, hi: int) -> np.ndarray:
            return np.tile(real, (hi - lo, 1))

        def comparison_rows(lo: int, hi: int) -> np.ndarray:
            comparison = np.tile(~real, (hi - lo, 1))
            comparison[np.arange(hi - lo), dropped[lo:hi]] = False
            return comparison

        est = sdid_rows(Y, post, len(dropped), assign_rows, comparison_rows, real).estimates
        out = pd.Series(est, index=pd.Index(units[dropped], name=self.unit), name="estimate")
        if rule:
            out.attrs["left_out"] = rule
        return out
