"""Rate model: Poisson regression with unit and period fixed effects and an exposure offset.

Counts of admissions or attendances are naturally modelled as rates per head of
population. :class:`PoissonDiD` estimates the DiD effect as a rate ratio: how much
the treated units' rate changed relative to the comparison units'. Fixed effects
are absorbed by weighted demeaning inside IRLS (no dummy columns); placebo refits for
every assignment run at once on the data's totals (:mod:`evallib.methods.did.poisson_fe`),
so the placebo test can be refitted under each null value its interval needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.methods.base.arrays import PanelArrays, as_binary, prepare_panel
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.did.poisson_fe import (  # noqa: F401 - fit_poisson_fe_balanced re-exported for callers
    fit_poisson_fe,
    fit_poisson_fe_balanced,
    poisson_fe_assignments,
)
from evallib.methods.did.twfe import MIN_TREATED_FOR_BOOTSTRAP
from evallib.methods.inference.decision import fewest_to_accept
from evallib.methods.inference.inversion import invert_by_search
from evallib.methods.inference.permutation import (
    EXHAUSTIVE_MAX_UNITS,
    mc_error,
    placebo_sets,
    random_single_sets,
    real_sets,
    sets_are_sampled,
    sets_to_matrix,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Units left out per batched solve in :meth:`PoissonDiD.leave_one_out` (its work arrays are this many x units).
LOO_BATCH = 64


@dataclass(frozen=True)
class RateRatioResult(EstimatorResult):
    """Read-only result of :meth:`PoissonDiD.fit`; ``headline.estimate`` is the rate ratio.

    ``placebo_estimates`` are the placebo assignments' log rate ratios (placebo inference only).
    ``placebo_draws`` is the number of random assignments behind the p-value when they were sampled (past
    ``max_exhaustive`` units with one treated unit, or several treated units; 0 when every unit was tried) and
    ``p_value_mc_error`` the p-value's Monte Carlo standard error
    (:func:`~evallib.methods.inference.permutation.mc_error`; 0 when exhaustive).
    """

    rows: tuple[Estimate, ...]
    log_rate_ratio: float
    iterations: int
    placebo_estimates: np.ndarray | None = field(default=None, repr=False)
    null_values_tested: int = 0
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    def plot(self, *, ax: Axes | None = None, title: str = "", xlabel: str = "log rate ratio") -> Figure:
        """The placebo log rate ratios with the site's marked on ``ax`` (a new figure when None)."""
        from evallib.methods.base.plotting import plot_placebo_distribution

        return plot_placebo_distribution(self, ax=ax, title=title, xlabel=xlabel, marked=self.log_rate_ratio)


@dataclass(frozen=True)
class PoissonDiD:
    """DiD as a rate ratio: Poisson regression with unit and period fixed effects.

    Parameters
    ----------
    outcome : str
        Count column.
    unit, time, treated, post : str
        Column roles, as for :class:`evallib.methods.did.twfe.DiD`.
    exposure : str, optional
        Population or other exposure; enters as ``log(exposure)`` offset.
    inference : {"auto", "placebo_in_space", "cluster_cr1", "model_based"}
        ``auto``: placebo-in-space below :data:`evallib.methods.did.twfe.MIN_TREATED_FOR_BOOTSTRAP`
        treated units, cluster-robust CR1 otherwise.
    n_draws : int
        Random placebo assignments (each is a refit) when several units are treated, or when one is and the
        panel has more than :data:`~evallib.methods.inference.permutation.EXHAUSTIVE_MAX_UNITS` units.
    seed, alpha : int, float
        Seed of those draws; 1 - confidence level of the interval.
    max_exhaustive : int
        With one treated unit, the most units for which every unit is refitted as the placebo treated one.

    Notes
    -----
    Estimand: the ratio of the treated units' post-period event rate to the rate they
    would have had, had it moved like the comparison units' rate (a multiplicative
    parallel-trends assumption on the rate scale). Poisson quasi-likelihood is
    consistent without the variance equalling the mean, so overdispersion affects only
    the SEs, which are cluster-robust (or placebo-based). ``std_error`` is on the log
    scale.

    Placebo inference refits the model with each comparison unit treated in turn (random
    sets of units when several are treated); the p-value is the share of assignments
    whose |log rate ratio| is at least the real assignment's, the real one counted
    explicitly. The interval inverts the same test: under the null "rate ratio =
    exp(tau)" the treated units' post-period counts are divided by exp(tau) and every
    assignment refitted; the interval is {exp(tau): p(tau) > alpha}. p(tau) is a step
    function; the test at tau = 0 predicts each end (the real estimate moves by about -tau
    and the placebo ones barely move: the estimate -+ the critical placebo |estimate|), the
    secant of the gap between the real |estimate| and the critical placebo one refines the
    prediction and the two null values 1/3 of the tolerance either side of it close the
    bracket: 8 null values in all where they do (at every pool size measured, 100 to 7,000
    units), where bracketing from the estimate in steps of the placebo SD took 10-16. Where that does not close it, each end is bracketed
    and narrowed to within 0.001 placebo SDs (log scale; 0.001 times their interquartile range / 1.349 where that
    is smaller, so one wild placebo cannot coarsen it; false position on that gap,
    safeguarded by bisection),
    reporting the last value the test accepts, with tau = 0 (the reported p-value) among the brackets, so the interval
    holds 1 exactly when p > alpha (when the accepted set is an interval).
    ``null_values_tested`` counts the null values refitted (each one refit of every
    assignment, on the data's totals).

    Each refit costs time linear in the units, so trying every unit is quadratic: with one treated unit
    and more than ``max_exhaustive`` units (default
    :data:`~evallib.methods.inference.permutation.EXHAUSTIVE_MAX_UNITS`, 500), the
    real assignment is ranked among ``n_draws`` other units drawn at random without replacement (seeded,
    :func:`~evallib.methods.inference.permutation.random_single_sets`). The test stays exact (the real
    unit's rank among a random subset of the others is uniform under the null); its p-value then estimates
    the exhaustive one with Monte Carlo standard error ``sqrt(p (1 - p) / n_draws)`` times the finite-population
    correction (:func:`~evallib.methods.inference.permutation.mc_error`: at most 0.035 with 199 draws; 0.015 at
    p = 0.05), reported as ``p_value_mc_error``, and the interval inverts the same sampled test. With several
    treated units the ``n_draws`` assignments are always random sets, and the same fields report it.
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    treated: str = "treated"
    post: str = "post"
    exposure: str | None = None
    inference: Literal["auto", "placebo_in_space", "cluster_cr1", "model_based"] = "auto"
    n_draws: int = 199
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""
    max_exhaustive: int = EXHAUSTIVE_MAX_UNITS

    def fit(self, data: Design | pd.DataFrame) -> RateRatioResult:
        """The rate ratio on a :class:`~evallib.methods.base.design.Design` (its counts, with its exposure as
        the offset) or on long rows with the column roles named in the settings.
        """
        pa, offset, post, label = self._prepared(data)
        y = pa.y
        unit, units, time = pa.unit, pa.units, pa.time
        dvar = (pa.treated & post).astype(float)
        beta, mu, d_t, w, iters = fit_poisson_fe(y, dvar, unit, time, offset)
        is_t = pa.unit_treated
        n_t, n_units = int(is_t.sum()), len(units)
        method = self.inference
        if method == "auto":
            method = "placebo_in_space" if n_t < MIN_TREATED_FOR_BOOTSTRAP else "cluster_cr1"
        info = float((w * d_t) @ d_t)
        placebo = None
        if method == "model_based":
            se = float(np.sqrt(1 / info))
        elif method == "cluster_cr1":
            score = np.bincount(unit, weights=d_t * (y - mu), minlength=n_units)
            n, k = len(y), 1 + time.max() + 1
            se = float(np.sqrt(score @ score / info**2 * n_units / (n_units - 1) * (n - 1) / (n - k)))
        elif method == "placebo_in_space":
            se = float("nan")
        else:
            raise DataError(f"PoissonDiD: unknown inference {method!r}")
        n_tested = n_sampled = 0
        if method == "placebo_in_space":
            p, se, lo, hi, placebo, n_tested, n_sampled = self._placebo(pa, offset, post, beta)
        else:
            z = stats.norm.ppf(1 - self.alpha / 2)
            lo, hi = beta - z * se, beta + z * se
            p = float(2 * stats.norm.sf(abs(beta / se)))
        row = Estimate(
            outcome=label,
            term="treated_x_post",
            estimate=float(np.exp(beta)),
            std_error=se,
            ci_low=float(np.exp(lo)),
            ci_high=float(np.exp(hi)),
            p_value=p,
            method="did_poisson_fe",
            inference=method,
            scale="rate_ratio",
            n_treated=n_t,
            n_control=n_units - n_t,
        )
        return RateRatioResult(
            rows=(row,),
            log_rate_ratio=float(beta),
            iterations=iters,
            placebo_estimates=placebo,
            null_values_tested=n_tested,
            placebo_draws=n_sampled,
            # One treated unit: other units drawn without replacement; several: independent random sets.
            p_value_mc_error=mc_error(p, n_sampled, n_units - 1 if n_t == 1 else None),
        )

    def _prepared(self, data: Design | pd.DataFrame) -> tuple[PanelArrays, np.ndarray | None, np.ndarray, str]:
        """The counts as panel arrays, the log exposure (or None), each row's post flag and the outcome's label."""
        e = None
        if isinstance(data, Design):
            pa = data.arrays("identity", values=data.counts if data.counts is not None else data.values)
            if data.exposure is not None:
                e = data.row_values(data.exposure)
            post = pa.extra["post"].astype(bool)
            label = self.outcome_label or data.outcome
        else:
            extra = [self.post] + ([self.exposure] if self.exposure else [])
            pa = prepare_panel(data, self.outcome, self.unit, self.time, self.treated, "identity", extra=extra)
            if self.exposure:
                e = pa.extra[self.exposure].astype(float)
            post = as_binary(pa.extra[self.post], self.post)
            label = self.outcome_label or self.outcome
        if (pa.y < 0).any():
            raise DataError(f"PoissonDiD: {label!r} must be non-negative counts")
        offset = None
        if e is not None:
            if not np.all(e > 0):
                raise DataError(f"PoissonDiD: the exposure of {label!r} must be positive")
            offset = np.log(e)
        return pa, offset, post, label

    def leave_one_out(self, data: Design | pd.DataFrame, units: Sequence[str] | None = None) -> pd.Series:
        """The log rate ratio refitted without each comparison unit in turn (or each of ``units``), no inference.

        Notes
        -----
        Leaving a unit out is the same model as giving it a total of zero (its fitted effect is then zero, so
        it adds nothing to any period's total), so every refit is one data set of a single batched solve on the
        data's totals (:func:`~evallib.methods.did.poisson_fe.poisson_fe_assignments`, the placebo test's
        solver): each estimate is the fit without that unit, to the solvers' tolerance (1e-10 on the log
        scale's steps), at the cost of one refit per :data:`LOO_BATCH` units left out. Returns the estimates
        (log rate ratios) indexed by the unit left out.
        """
        pa, offset, post, _ = self._prepared(data)
        is_t = pa.unit_treated
        names = [str(u) for u in pa.units]
        drop = np.flatnonzero(~is_t) if units is None else np.array([names.index(str(u)) for u in units], dtype=int)
        n_u, n_p = pa.n_units, pa.n_periods
        y = np.zeros((n_u, n_p))
        y[pa.unit, pa.time] = pa.y
        expo = np.zeros((n_u, n_p))
        expo[pa.unit, pa.time] = 1.0 if offset is None else np.exp(offset)
        post_t = np.zeros(n_p, bool)
        post_t[pa.time[post]] = True
        unit_post = (y * post_t).sum(axis=1)
        est = []
        for lo in range(0, len(drop), LOO_BATCH):
            part = drop[lo : lo + LOO_BATCH]
            rows = np.arange(len(part))
            unit_total = np.tile(y.sum(axis=1), (len(part), 1))
            unit_total[rows, part] = 0.0
            unit_post_total = np.tile(unit_post, (len(part), 1))
            unit_post_total[rows, part] = 0.0
            period_total = y.sum(axis=0)[None] - y[part]
            est.append(
                poisson_fe_assignments(unit_total, period_total, unit_post_total, is_t[None], post_t, expo)[:, 0]
            )
        out = np.concatenate(est) if est else np.zeros(0)
        return pd.Series(out, index=pd.Index([names[i] for i in drop], name=self.unit), name="estimate")

    def _placebo(
        self, pa: PanelArrays, offset: np.ndarray | None, post: np.ndarray, beta: float
    ) -> tuple[float, float, float, float, np.ndarray, int, int]:
        """Placebo p-value, SD, inverted interval (log scale), placebo estimates, null values tested and the
        number of random assignments drawn (0 when every unit was tried).
        """
        is_t = pa.unit_treated
        n_u, n_p = pa.n_units, pa.n_periods
        k = int(is_t.sum())
        if k == 1 and n_u > self.max_exhaustive:
            # Refits cost time linear in the units each: past the cap, the real assignment among random ones.
            sets = random_single_sets(is_t, self.n_draws, self.seed)
        else:
            sets = placebo_sets(is_t, self.n_draws, self.seed)
        # One treated unit with every unit drawn (n_draws >= the other units) is the exhaustive test: no draws.
        # Several treated units with no more distinct sets than draws: each set once, also no draws.
        sampled = sets_are_sampled(n_u, k, self.n_draws) if k > 1 else len(sets) < n_u
        n_sampled = len(sets) - 1 if sampled else 0
        assign = sets_to_matrix(sets, n_u)  # (assignments, n): the refits need it, and it is capped
        real = real_sets(sets, is_t)
        y = np.zeros((n_u, n_p))
        y[pa.unit, pa.time] = pa.y
        expo = np.zeros((n_u, n_p))  # a missing cell has no exposure, so it drops out of every total
        expo[pa.unit, pa.time] = 1.0 if offset is None else np.exp(offset)
        post_t = np.zeros(n_p, bool)
        post_t[pa.time[post]] = True
        y_post = y * post_t
        treated_post = y_post[is_t].sum(axis=0)  # (T,)
        unit_post = y_post.sum(axis=1)

        def estimates(taus: np.ndarray) -> np.ndarray:
            # Under "rate ratio = exp(tau)" the treated units' post-period counts divided by
            # exp(tau) have no effect; only the totals the solver needs change.
            shrink = np.expm1(-np.asarray(taus, float))[:, None]  # exp(-tau) - 1
            unit_total = y.sum(axis=1)[None] + shrink * (unit_post * is_t)[None]
            period_total = y.sum(axis=0)[None] + shrink * treated_post[None]
            unit_post_total = unit_post[None] + shrink * (unit_post * is_t)[None]
            return poisson_fe_assignments(unit_total, period_total, unit_post_total, assign, post_t, expo)

        n_real, n_all = int(real.sum()), len(real)
        # No rejection  <=>  at least `need` placebos reach the real |estimate|  <=>  it is at most
        # the need-th largest placebo |estimate|: the margin's sign is the test's verdict.
        need = fewest_to_accept(n_all, self.alpha) - n_real

        def p_values(ests: np.ndarray) -> np.ndarray:
            # The real assignment counts explicitly; the others against its own refit.
            obs = np.abs(ests[:, np.flatnonzero(real)[0]])
            return (n_real + (np.abs(ests[:, ~real]) >= obs[:, None]).sum(axis=1)) / n_all

        def margins(ests: np.ndarray) -> np.ndarray:
            obs = np.abs(ests[:, np.flatnonzero(real)[0]])
            if need <= 0 or need > n_all - n_real:
                return np.full(len(obs), -np.inf)
            critical = -np.sort(-np.abs(ests[:, ~real]), axis=1)[:, need - 1]
            return obs - critical

        tested = [0]

        def p_of(taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            tested[0] += len(taus)
            ests = estimates(taus)
            return p_values(ests), margins(ests)

        ests = estimates(np.zeros(1))[0]
        p = float(p_values(ests[None])[0])
        sd = float(np.std(ests, ddof=1))
        step = sd if sd > 0 else 0.1
        # Rate ratios beyond exp(+-20) are not worth refitting: the end is then reported infinite.
        reach = step * 2.0 ** int(np.clip(np.floor(np.log2(20 / step)), 1, 10))
        # The search's step and tolerance: the SD, or the placebos' IQR / 1.349 where smaller (the same for normal
        # placebos), so that one wild placebo (a unit with no events after the start) cannot coarsen the ends; the
        # search reaches as far as from the SD.
        finite = ests[np.isfinite(ests)]
        iqr = float(np.subtract(*np.percentile(finite, [75, 25]))) / 1.349 if finite.size > 1 else 0.0
        step = min(step, iqr) if iqr > 0 else step
        doublings = max(1, int(np.ceil(np.log2(reach / step) - 1e-9)))
        # Under the null tau the real estimate moves by about -tau and the placebos barely move, so the test at
        # tau = 0 predicts each end: the estimate -+ the critical placebo |estimate| (refined by the search).
        guesses = None
        if 0 < need <= n_all - n_real:
            critical = float(-np.sort(-np.abs(ests[~real]))[need - 1])
            guesses = (beta - critical, beta + critical)
        lo, hi = invert_by_search(
            p_of, beta, step, self.alpha, known={0.0: p}, max_doublings=doublings, guesses=guesses
        )
        ests.setflags(write=False)
        return p, sd, lo, hi, ests, tested[0] + 1, n_sampled
