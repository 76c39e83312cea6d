"""Controlled interrupted time series with placebo-in-space inference: the treated units' series relative
to the comparison pool's, segmented regression, and every comparison unit in turn as a fake site.

Design-based, like :class:`~evallib.methods.did.twfe.DiD`: the p-value ranks the site's effect among the
fake sites' and the interval inverts that same test, so the two always agree.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.methods.base.arrays import prepare_panel
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.inference.inversion import PlaceboCount
from evallib.methods.inference.permutation import mc_error, random_sets, sets_are_sampled
from evallib.methods.its.model import SlopeCoding, its_design

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class ControlledITSResult(EstimatorResult):
    """Read-only result of :meth:`ControlledITS.fit`.

    ``observed``, ``fitted`` and ``counterfactual`` are the treated units' series relative
    to the comparison pool's (a ratio of totals with ``transform="log"``, a difference of
    means otherwise), indexed by period; ``counterfactual`` is the fit with the level and
    slope changes set to zero. ``placebo_estimates`` has one row per assignment (the real
    one first) and one column per term of ``terms``, on the analysis scale (logs).
    ``placebo_draws`` is the number of random fake sites the p-values rank the site among when they were sampled
    (several treated units and more distinct sets of comparison units than draws), 0 when every fake site was tried;
    ``p_value_mc_error`` is the headline (``mean_post_effect``) p-value's Monte Carlo standard error
    (:func:`~evallib.methods.inference.permutation.mc_error`) and ``p_value_mc_errors`` every term's, in the order of
    ``terms`` (every term ranks the site among the same draws; all zero when exhaustive). ``min_p_value`` is the smallest p-value the test
    can give, ``1 / (fake sites + 1)``: fake sites come from the comparison units only, so it is not that of a test
    giving the treatment to any units (``1 / C(units, k)``), which the verdict would otherwise assume.
    """

    rows: tuple[Estimate, ...]
    observed: pd.Series = field(repr=False)
    fitted: pd.Series = field(repr=False)
    counterfactual: pd.Series = field(repr=False)
    intervention_start: pd.Timestamp
    terms: tuple[str, ...]
    placebo_estimates: np.ndarray = field(repr=False)
    treated_units: tuple[str, ...] = ()
    n_pre: int = 0
    n_post: int = 0
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0
    min_p_value: float = float("nan")
    p_value_mc_errors: tuple[float, ...] = ()

    def term_mc_errors(self) -> dict[str, float]:
        """Each term's sampled p-value's Monte Carlo standard error, by term; empty when every fake site was tried.

        A term whose p-value is withheld (NaN) has none: its error would give the p-value back.
        """
        if self.placebo_draws <= 0:
            return {}
        shown = {r.term for r in self.rows if np.isfinite(r.p_value)}
        return {t: e for t, e in zip(self.terms, self.p_value_mc_errors, strict=True) if t in shown}

    headline_term: ClassVar[str | None] = "mean_post_effect"

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "", scale: float = 1.0) -> Figure:
        """The site's series relative to its pool, fitted and projected, on ``ax`` (a new figure when None)."""
        from evallib.methods.base.plotting import plot_its

        return plot_its(self, ax=ax, title=title, ylabel=ylabel, scale=scale)


@dataclass(frozen=True)
class ControlledITS:
    """Controlled ITS on a panel: the treated units against the comparison pool, with placebo inference.

    Parameters
    ----------
    outcome, unit, time, treated : str
        Column roles, as for :class:`~evallib.methods.did.twfe.DiD` (``time`` holds dates).
    start : object
        The first treated value of ``time``.
    transform : {"log", "identity"}
        ``log``: the series is log(treated units' total) - log(comparison units' total);
        ``identity``: the treated units' mean minus the comparison units' mean.
    harmonics : int
        Fourier pairs for seasonality left in the relative series (0 for none).
    horizons : tuple of int
        Report the effect this many periods after the start (1 = the first period).
    n_draws : int
        Random fake sites (sets of comparison units) when several units are treated (the p-value then
        estimates the exhaustive test's, with its Monte Carlo error in ``p_value_mc_error``); with
        one treated unit every comparison unit is the fake site once.
    seed, alpha, outcome_label, periods_per_year, slope_coding
        As for :class:`~evallib.methods.its.segmented.SegmentedITS`.

    Notes
    -----
    Estimand: the change in the treated units' series relative to the comparison pool's
    at the start (``level_change``, the jump in the first post period), in its trend
    (``slope_change``, per year), at each horizon, and on average over the post-period
    (``mean_post_effect``), against the relative series' pre-period trend and seasonality
    projected forward. The pool absorbs shocks common to all units; the segmented
    regression absorbs a steady divergence.

    Inference is placebo-in-space: each comparison unit (or random set of as many units as
    are treated; every distinct set once when there are no more of them than ``n_draws``) is a fake site against the other comparison units, the real treated
    units left out, and refitted. The p-value is the share of assignments whose
    |estimate| is at least the real one's (the real one counted). Each term is a linear
    function of the relative series (OLS), and an effect ``tau`` on the treated units'
    post-period values (a ratio exp(tau) with ``log``) moves the real series by
    ``tau`` in every post period and no fake site's series at all: the real estimate
    moves by exactly ``tau`` (``tau`` per year for ``slope_change``, whose null adds a
    post-period trend instead) and the placebo estimates stay. So the interval
    ``{tau: p(tau) > alpha}`` is exact: the estimate plus or minus the ``K``-th largest
    |placebo estimate|. It needs at least ``1/alpha - 1`` fake sites to be finite.
    The effect terms are reported in percent with ``log`` (the interval's ends
    transformed), the level and slope changes on the log scale.
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    treated: str = "treated"
    start: object = None
    transform: Literal["log", "identity"] = "log"
    harmonics: int = 2
    periods_per_year: int = 12
    horizons: tuple[int, ...] = (12, 24)
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""
    slope_coding: SlopeCoding = "itsa"

    def fit(self, data: Design | pd.DataFrame) -> ControlledITSResult:
        """Estimate the effect with placebo inference on a :class:`~evallib.methods.base.design.Design` (its
        start unless ``start`` is set) or on long rows with the column roles named in the settings.
        """
        name = "ControlledITS"
        if isinstance(data, Design):
            if not self.outcome_label and data.outcome:
                return replace(self, outcome_label=data.outcome).fit(data)
            pa = data.arrays("identity")
            start_value = data.start if self.start is None else self.start
        else:
            pa = prepare_panel(data, self.outcome, self.unit, self.time, self.treated, "identity")
            start_value = self.start
        if not pa.balanced:
            raise DataError(f"{name}: needs every unit in every period; drop incomplete units first")
        if start_value is None:
            raise DataError(f"{name}: give the start (the first treated period)")
        index = pd.DatetimeIndex(pd.to_datetime(pa.periods))
        start = pd.Timestamp(start_value)
        if start not in index:
            raise DataError(f"{name}: start {start_value!r} is not one of the {self.time!r} values")
        values = pa.matrix(pa.y)
        if self.transform == "log" and not np.all(values > 0):
            raise DataError(f"{name}: log transform needs positive {self.outcome!r} in every unit and period")
        is_t = pa.unit_treated
        k, comp = int(is_t.sum()), np.flatnonzero(~is_t)
        X = its_design(
            index,
            [start],
            seasonality="fourier" if self.harmonics else "none",
            harmonics=self.harmonics,
            periods_per_year=self.periods_per_year,
            slope_coding=self.slope_coding,
        )
        post = np.asarray(index >= start)
        n_pre, n_post = int((~post).sum()), int(post.sum())
        if n_pre < X.shape[1] + 2 or n_post < 1:
            raise DataError(f"{name}: {n_pre} pre-period and {n_post} post-period observations are too few")
        if len(comp) <= k:
            raise DataError(f"{name}: needs more comparison units ({len(comp)}) than treated units ({k})")
        sets = self._fake_sites(len(comp), k)  # fake sites among the comparison units, as index arrays
        series = self._relative(values[is_t].sum(axis=0), values[~is_t].sum(axis=0), k, len(comp))[None]
        vc = values[comp]
        fake = vc[sets[:, 0]].copy()  # each fake site's sum: (assignments, T), linear in the units
        for j in range(1, k):
            fake += vc[sets[:, j]]
        rest = vc.sum(axis=0)[None] - fake
        series = np.vstack([series, self._relative(fake, rest, k, len(comp) - k)])
        Xn = X.to_numpy()
        hat = np.linalg.pinv(Xn)  # (p, T): every term is a linear function of the series
        terms, contrasts = self._contrasts(X, post)
        est = series @ hat.T @ contrasts.T  # (assignments, terms), the real one first
        rows = []
        for j, term in enumerate(terms):
            count = PlaceboCount(est[1:, j], np.zeros(len(est) - 1), est[0, j], n_real=1)
            lo, hi = count.interval(self.alpha)
            sd = float(est[:, j].std(ddof=1))
            rows.append(self._row(term, float(est[0, j]), sd, lo, hi, count.p_value(0.0), k, len(comp)))
        beta = hat @ series[0]
        level_cols = [c for c in X.columns if c.startswith(("level_change", "slope_change"))]
        Xcf = X.assign(**{c: 0.0 for c in level_cols}).to_numpy()
        back = np.exp if self.transform == "log" else (lambda v: v)
        est.setflags(write=False)
        # Sampled by the rule every placebo test shares, applied to the comparison units the fake sites come from.
        draws = len(sets) if sets_are_sampled(len(comp), k, self.n_draws) else 0
        errors = tuple(mc_error(r.p_value, draws) for r in rows)  # every term ranks the site among the same draws
        return ControlledITSResult(
            rows=tuple(rows),
            observed=pd.Series(back(series[0]), index=index, name="relative"),
            fitted=pd.Series(back(Xn @ beta), index=index),
            counterfactual=pd.Series(back(Xcf @ beta), index=index),
            intervention_start=start,
            terms=tuple(terms),
            placebo_estimates=est,
            treated_units=tuple(str(u) for u in pa.units[is_t]),
            n_pre=n_pre,
            n_post=n_post,
            placebo_draws=draws,
            p_value_mc_error=errors[-1],  # mean_post_effect, the last term
            min_p_value=1.0 / (len(sets) + 1),  # the real site is never a fake one: no ties with it
            p_value_mc_errors=errors,
        )

    def _fake_sites(self, n_comp: int, k: int) -> np.ndarray:
        """The fake sites' comparison units as index arrays (``(assignments, k)``): every unit once when one unit
        is treated, else ``n_draws`` seeded random sets (never an ``n x n`` matrix).
        """
        if k == 1:
            return np.arange(n_comp)[:, None]
        if not sets_are_sampled(n_comp, k, self.n_draws):
            # Few distinct fake sites: every one once. Random draws would repeat them and let the p-value fall
            # below 1 / (distinct sets + 1), a precision the few fake sites cannot give.
            return np.array(list(itertools.combinations(range(n_comp), k)), np.intp)
        return random_sets(n_comp, k, self.n_draws, self.seed)

    def _relative(self, site: np.ndarray, pool: np.ndarray, k: int, n_pool: int) -> np.ndarray:
        if self.transform == "log":
            return np.log(site) - np.log(pool)
        return site / k - pool / n_pool

    def _contrasts(self, X: pd.DataFrame, post: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Each term as a row vector on the coefficients, scaled so that its null shift moves it by tau."""
        cols = list(X.columns)
        level, slope = np.eye(len(cols))[cols.index("level_change")], np.eye(len(cols))[cols.index("slope_change")]
        effect = X[["level_change", "slope_change"]].to_numpy()  # each period's effect = level + slope x time
        post_idx = np.flatnonzero(post)
        terms, rows = ["level_change", "slope_change"], [level, slope * self.periods_per_year]
        for h in self.horizons:
            if h <= len(post_idx):
                terms.append(f"effect_at_{h}")
                rows.append(effect[post_idx[h - 1]] @ np.vstack([level, slope]))
        terms.append("mean_post_effect")
        rows.append(effect[post_idx].mean(axis=0) @ np.vstack([level, slope]))
        return terms, np.array(rows)

    def _row(
        self, term: str, est: float, sd: float, lo: float, hi: float, p: float, k: int, n_control: int
    ) -> Estimate:
        if self.transform == "log" and term.startswith(("effect_at", "mean_post")):
            est, lo, hi, scale = 100 * np.expm1(est), 100 * np.expm1(lo), 100 * np.expm1(hi), "percent"
        elif term == "slope_change":
            scale = "log_per_year" if self.transform == "log" else "level_per_year"
        else:
            scale = "log" if self.transform == "log" else "level"
        return Estimate(
            outcome=self.outcome_label or self.outcome,
            term=term,
            estimate=float(est),
            std_error=sd,
            ci_low=float(lo),
            ci_high=float(hi),
            p_value=float(p),
            method="its_controlled_placebo",
            inference="placebo_in_space",
            scale=scale,
            n_treated=k,
            n_control=n_control,
        )
