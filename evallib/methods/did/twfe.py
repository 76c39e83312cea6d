"""Difference-in-differences with one common start date, right with one treated area.

:class:`DiD` fits two-way fixed effects (unit and period effects removed by the
within transformation, not dummy columns) and attaches the inference that suits
the number of treated units: placebo-in-space permutation inference when few
units are treated (the usual vanguard case), cluster-robust CR1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.methods.base.arrays import PanelArrays, Transform, as_binary, prepare_panel, within_rows
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.inference.permutation import PermutationTest, permutation_test
from evallib.methods.inference.volatility import VolatilityRank, pre_period_noise, pre_period_swing, volatility_rank
from evallib.methods.inference.wild_bootstrap import wild_cluster_bootstrap

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

Inference = Literal["auto", "placebo_in_space", "placebo_studentized", "wild_bootstrap", "cluster_cr1", "hc1"]
_PLACEBO = ("placebo_in_space", "placebo_studentized")

#: Below this many treated units the default inference is placebo-in-space; from it on,
#: the wild cluster bootstrap. Plain cluster-robust SEs need many treated clusters to be
#: trustworthy, so they are used only when asked for.
MIN_TREATED_FOR_BOOTSTRAP = 10


@dataclass(frozen=True)
class DiDResult(EstimatorResult):
    """Read-only result of :meth:`DiD.fit`.

    ``placebo_estimates`` holds the permutation distribution (the estimate with
    each assignment of treatment in turn) when placebo inference was used. With
    ``inference="placebo_studentized"`` the p-value and interval rank the studentized
    statistic instead: ``observed_statistic`` and ``placebo_statistics`` hold it, and
    ``statistic_per_effect`` how far the observed statistic moves per unit of effect.
    ``volatility`` says where each treated unit ranks on pre-period noise among the
    comparison units (placebo inference on a balanced panel only).
    ``placebo_draws`` and ``p_value_mc_error``: the random assignments behind a sampled placebo p-value (several
    treated units) and its Monte Carlo error (:func:`~evallib.methods.inference.permutation.mc_error`); 0 if exhaustive.
    """

    rows: tuple[Estimate, ...]
    n_obs: int
    n_periods: int
    placebo_estimates: np.ndarray | None = field(default=None, repr=False)
    treated_units: tuple[str, ...] = ()
    unit_effects: pd.Series | None = field(default=None, repr=False)
    volatility: VolatilityRank | None = None
    placebo_statistics: np.ndarray | None = field(default=None, repr=False)
    observed_statistic: float | None = None
    statistic_per_effect: float | None = None
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    def plot(self, *, ax: Axes | None = None, title: str = "", xlabel: str = "estimate") -> Figure:
        """The placebo distribution with the site's estimate marked on ``ax`` (a new figure when None)."""
        from evallib.methods.base.plotting import plot_placebo_distribution

        return plot_placebo_distribution(self, ax=ax, title=title, xlabel=xlabel)


@dataclass(frozen=True)
class DiD:
    """Two-way fixed-effects difference-in-differences with a common start.

    Parameters
    ----------
    outcome, unit, time : str
        Column roles: the outcome, the area identifier and the period.
    treated : str
        Column that is 1 for units that receive the intervention (constant within unit).
    post : str
        Column that is 1 for periods on or after the intervention start.
    transform : {"identity", "log"}
        ``log`` estimates a proportional effect (scale ``log``); values must be positive.
    inference : {"auto", "placebo_in_space", "placebo_studentized", "wild_bootstrap", "cluster_cr1", "hc1"}
        ``auto`` uses placebo-in-space below :data:`MIN_TREATED_FOR_BOOTSTRAP` treated
        units and the restricted wild cluster bootstrap from there on; CR1 and HC1 only
        when asked for (they over-reject with few treated units). ``placebo_studentized``
        ranks each unit's post-minus-pre change divided by its own pre-period swing
        (:func:`evallib.methods.inference.volatility.pre_period_swing`): the same estimate, with a
        p-value and interval that stay valid when units differ by a scale factor, e.g. a
        treated unit more volatile than its comparators (see Notes).
    bootstrap_weights : {"webb", "rademacher"}
        Cluster weights for the wild bootstrap.
    exposure : str, optional
        Divide the outcome by this column first (a rate outcome, e.g. admissions per head);
        with ``transform="log"`` the estimate is a proportional change in the rate.
    n_draws : int
        Random treatment assignments for placebo inference when more than one unit is
        treated (with one treated unit every comparison unit is used exactly once).
    seed : int
        Seed for those draws, so results are reproducible.
    alpha : float
        1 - confidence level of the interval.

    Notes
    -----
    Estimand: the average effect on the treated units over the post-period (ATT),
    on the chosen scale, identified under parallel trends: without the intervention
    the treated units' outcome would have moved like the comparison units'.
    With a balanced panel and one start date the TWFE coefficient equals the
    difference between treated and comparison units' mean post-minus-pre changes,
    which is what makes placebo inference a single matrix product.

    Placebo-in-space inference treats units as exchangeable under the null: the
    p-value is the share of treatment assignments (the real one included) whose
    absolute estimate is at least the observed one; the interval collects every
    effect size the test does not reject (test inversion). With fewer than
    ``1/alpha - 1`` comparison units no finite interval exists and the bounds are
    infinite. The studentized variant assumes instead that units' changes are
    exchangeable once divided by their pre-period swing, the SD of their half-yearly
    means (units may differ by a scale factor); it is inverted the same way, each
    studentized statistic moving linearly with the effect (by ``tau / swing`` of each
    treated unit it holds). On NHS-like
    panels (tests/montecarlo) with one treated trust three times as volatile as the
    median, the plain test rejects a true null 35% of the time and the studentized one
    about 6%. Scaled by month-to-month noise instead (as first built), it was not safe
    the other way round: a CCG of the bundled commissioner data in the quietest tenth
    of noise, whose change over the start is as large as its comparators', was rejected
    in 19% of fake sites; scaled by the swing, 5.7% (README, "Monte Carlo"). ``volatility``
    on the result shows where the site stands on month-to-month noise.

    Cluster-robust SEs use CR1 with the small-sample factor ``G/(G-1) (N-1)/(N-K)``
    where unit effects nested in the clusters are not counted in ``K`` (as fixest
    and pyfixest do).
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    treated: str = "treated"
    post: str = "post"
    transform: Transform = "identity"
    inference: Inference = "auto"
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""
    bootstrap_weights: Literal["webb", "rademacher"] = "webb"
    exposure: str | None = None

    # ------------------------------------------------------------------ validation
    def _prepare(self, data: Design | pd.DataFrame) -> tuple[PanelArrays, np.ndarray]:
        if isinstance(data, Design):
            p = data.arrays(self.transform)
            post = p.extra["post"].astype(bool)
        else:
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
            post = as_binary(p.extra[self.post], self.post)
        if post.all() or not post.any():
            raise DataError("DiD: need both pre- and post-period observations")
        return p, post

    def _chosen_inference(self, n_treated: int) -> str:
        if self.inference != "auto":
            return self.inference
        return "placebo_in_space" if n_treated < MIN_TREATED_FOR_BOOTSTRAP else "wild_bootstrap"

    @property
    def scale(self) -> str:
        """The estimate's scale: ``log`` (a proportional effect) or ``level``."""
        return "log" if self.transform == "log" else "level"

    # ------------------------------------------------------------------ fitting
    def fit(self, data: Design | pd.DataFrame) -> DiDResult:
        """Estimate the effect on a :class:`~evallib.methods.base.design.Design` (or long rows with the
        column roles named in the settings); returns a frozen :class:`DiDResult`.
        """
        pa, post = self._prepare(data)
        unit_codes, units, time_codes = pa.unit, pa.units, pa.time
        treated_units = tuple(units[pa.unit_treated])
        n_treated = len(treated_units)
        n_units, n_periods, n_obs = pa.n_units, pa.n_periods, len(pa.y)
        method = self._chosen_inference(n_treated)
        post_by_period = np.zeros(n_periods)
        np.maximum.at(post_by_period, time_codes, post.astype(float))
        common_start = pa.balanced and bool(np.all(post_by_period[time_codes] == post))
        if common_start and method in (*_PLACEBO, "cluster_cr1"):
            # Balanced panel, one start: the within-transformed treatment is the outer product
            # (a_i - mean a)(b_t - mean b), so the estimate and the cluster scores need one
            # matrix-vector product and no demeaning of the outcome.
            Y = pa.matrix(pa.y)
            ac = pa.unit_treated - pa.unit_treated.mean()
            bc = post_by_period - post_by_period.mean()
            yb, bb = Y @ bc, bc @ bc
            sxx = float((ac @ ac) * bb)
            beta = float(ac @ yb / sxx)
            cluster_score = ac * ((yb - Y.mean(axis=0) @ bc) - beta * ac * bb)
        else:
            xy = np.empty((2, n_obs))
            xy[0], xy[1] = pa.y, pa.treated & post
            y_w, d_w = within_rows(xy, unit_codes, time_codes)
            sxx = d_w @ d_w
            beta = (d_w @ y_w) / sxx
            resid = y_w - beta * d_w
            cluster_score = np.bincount(unit_codes, weights=d_w * resid, minlength=n_units)
        label = self.outcome_label or (data.outcome if isinstance(data, Design) else "") or self.outcome
        placebo = volatility = stat = stats_placebo = per_effect = perm = None
        if method in _PLACEBO:
            perm, volatility = self._placebo(pa, post, studentized=method == "placebo_studentized")
            se, lo, hi, p, placebo = (
                perm.std_error[0],
                perm.ci_low[0],
                perm.ci_high[0],
                perm.p_value[0],
                perm.placebo[:, 0],
            )
            if perm.statistic is not None and perm.placebo_statistic is not None:
                stat, stats_placebo = float(perm.statistic[0]), perm.placebo_statistic[:, 0]
                per_effect = perm.statistic_per_effect
        elif method == "wild_bootstrap":
            if n_obs != n_units * n_periods:
                raise DataError(
                    "DiD: the wild cluster bootstrap here needs a balanced panel; drop incomplete units first"
                )
            order = np.lexsort((time_codes, unit_codes))
            shape = (n_units, int(n_periods))
            p, lo, hi = wild_cluster_bootstrap(
                d_w[order].reshape(shape),
                y_w[order].reshape(shape),
                k_params=1 + int(n_periods),
                n_draws=self.n_draws,
                seed=self.seed,
                alpha=self.alpha,
                weights=self.bootstrap_weights,
            )
            k = 1 + n_periods
            se = float(
                np.sqrt((cluster_score @ cluster_score) / sxx**2 * n_units / (n_units - 1) * (n_obs - 1) / (n_obs - k))
            )
            method = f"wild_bootstrap_{self.bootstrap_weights}"
        else:
            if method == "cluster_cr1":
                g = n_units
                k = 1 + n_periods  # unit effects are nested in the unit clusters
                var = (cluster_score @ cluster_score) / sxx**2 * (g / (g - 1)) * ((n_obs - 1) / (n_obs - k))
                dof = g - 1
            elif method == "hc1":
                k = 1 + n_units + n_periods - 1
                var = ((d_w * resid) @ (d_w * resid)) / sxx**2 * n_obs / (n_obs - k)
                dof = n_obs - k
            else:
                raise DataError(
                    f"DiD: unknown inference {method!r}; use auto, placebo_in_space, placebo_studentized, "
                    "wild_bootstrap, cluster_cr1 or hc1"
                )
            se = float(np.sqrt(var))
            tcrit = stats.t.ppf(1 - self.alpha / 2, dof)
            lo, hi = beta - tcrit * se, beta + tcrit * se
            p = float(2 * stats.t.sf(abs(beta / se), dof))
        row = Estimate(
            outcome=label,
            term="treated_x_post",
            estimate=float(beta),
            std_error=float(se),
            ci_low=float(lo),
            ci_high=float(hi),
            p_value=float(p),
            method="did_twfe",
            inference=method,
            scale=self.scale,
            n_treated=n_treated,
            n_control=n_units - n_treated,
        )
        return DiDResult(
            rows=(row,),
            n_obs=n_obs,
            n_periods=int(n_periods),
            placebo_estimates=placebo,
            treated_units=treated_units,
            volatility=volatility,
            placebo_statistics=stats_placebo,
            observed_statistic=stat,
            statistic_per_effect=per_effect,
            placebo_draws=perm.placebo_draws if perm is not None else 0,
            p_value_mc_error=float(perm.p_value_mc_error[0]) if perm is not None else 0.0,
        )

    def _unit_changes(self, p: PanelArrays, post: np.ndarray) -> np.ndarray:
        """Each unit's mean post minus mean pre outcome (balanced panels only)."""
        if not p.balanced:
            raise DataError(
                "DiD: placebo-in-space inference needs a balanced panel (every unit observed in every period); "
                f"got {len(p.y)} rows for {p.n_units} units x {p.n_periods} periods. Drop incomplete units first."
            )
        s_post = np.bincount(p.unit, weights=p.y * post, minlength=p.n_units)
        s_pre = np.bincount(p.unit, weights=p.y * ~post, minlength=p.n_units)
        c_post = np.bincount(p.unit, weights=post.astype(float), minlength=p.n_units)
        return s_post / c_post - s_pre / (p.n_periods - c_post)

    def _placebo(
        self, p: PanelArrays, post: np.ndarray, studentized: bool
    ) -> tuple[PermutationTest, VolatilityRank | None]:
        change = self._unit_changes(p, post)
        scale: np.ndarray | None = None
        try:
            scale = pre_period_noise(p.matrix(p.y), p.matrix(post) > 0, p.units)
        except DataError:
            if studentized:
                raise  # else the ranking is a description: the plain test needs no scale
        perm = permutation_test(
            change,
            p.unit_treated,
            n_draws=self.n_draws,
            seed=self.seed,
            alpha=self.alpha,
            unit_scale=pre_period_swing(p.matrix(p.y), p.matrix(post) > 0, p.units) if studentized else None,
        )
        return perm, None if scale is None else volatility_rank(scale, p.unit_treated, p.units)


def pretrend_test(
    data: Design | pd.DataFrame,
    *,
    outcome: str = "value",
    unit: str = "unit",
    time: str = "period",
    treated: str = "treated",
    transform: Transform = "log",
    periods_per_year: int | None = None,
    alpha: float = 0.05,
    outcome_label: str = "",
    n_draws: int = 999,
    seed: int = 2015,
) -> Estimate:
    """Difference in linear pre-period trend between treated and comparison units.

    Give a :class:`~evallib.methods.base.design.Design` (its pre-period is used) or pre-period rows
    only with the column roles. Each unit's slope on time is taken after removing
    the period means (so common shocks and seasonality drop out); the estimate is
    the treated units' mean slope minus the comparison units' (per year), and the
    p-value and interval come from the same placebo-in-space permutation as
    :class:`DiD`, so the check is honest with one treated unit.

    Notes
    -----
    A small p-value says the treated and comparison series were already diverging
    before the intervention, so parallel trends are doubtful and the DiD estimate
    may carry that divergence.
    """
    if isinstance(data, Design):
        pre = ~data.post
        values = data.values[:, pre]
        y = (np.log(values) if transform == "log" else values).T
        is_t = data.treated
        ppy = data.periods_per_year if periods_per_year is None else periods_per_year
        label = outcome_label or data.outcome
    else:
        d = data[[outcome, unit, time, treated]].copy()
        d["_y"] = np.log(d[outcome].astype(float)) if transform == "log" else d[outcome].astype(float)
        wide = d.pivot(index=time, columns=unit, values="_y")
        if wide.isna().any().any():
            raise DataError("pretrend_test: needs a balanced pre-period panel")
        y = wide.to_numpy()
        is_t = d.groupby(unit)[treated].first().reindex(wide.columns).astype(bool).to_numpy()
        ppy = 12 if periods_per_year is None else periods_per_year
        label = outcome_label or outcome
    y = y - y.mean(axis=1, keepdims=True)  # remove period effects
    t = np.arange(len(y), dtype=float)
    t -= t.mean()
    slopes = (t @ y) / (t @ t) * ppy
    n, k = len(slopes), int(is_t.sum())
    perm = permutation_test(slopes, is_t, n_draws=n_draws, seed=seed, alpha=alpha)
    est_obs, sd, p = float(perm.estimate[0]), float(perm.std_error[0]), float(perm.p_value[0])
    return Estimate(
        outcome=label,
        term="pre_trend_difference",
        estimate=float(est_obs),
        std_error=sd,
        ci_low=float(perm.ci_low[0]),
        ci_high=float(perm.ci_high[0]),
        p_value=p,
        method="did_pretrend",
        inference="placebo_in_space",
        scale="log_per_year" if transform == "log" else "level",
        n_treated=k,
        n_control=n - k,
    )
