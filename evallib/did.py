"""Difference-in-differences with one common start date, right with one treated area.

:class:`DiD` fits two-way fixed effects (unit and period effects removed by the
within transformation, not dummy columns) and attaches the inference that suits
the number of treated units: placebo-in-space permutation inference when few
units are treated (the usual vanguard case), cluster-robust CR1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.results import Estimate, tidy_frame

Transform = Literal["identity", "log"]
Inference = Literal["auto", "placebo_in_space", "cluster_cr1", "hc1"]

#: Below this many treated units the default inference is placebo-in-space:
#: cluster-robust SEs need many treated clusters to be trustworthy.
MIN_TREATED_FOR_CLUSTER = 10


@dataclass(frozen=True)
class DiDResult:
    """Read-only result of :meth:`DiD.fit`.

    ``placebo_estimates`` holds the permutation distribution (the estimate with
    each assignment of treatment in turn) when placebo inference was used.
    """

    row: Estimate
    n_obs: int
    n_periods: int
    placebo_estimates: np.ndarray | None = field(default=None, repr=False)
    treated_units: tuple[str, ...] = ()
    unit_effects: pd.Series | None = field(default=None, repr=False)

    def tidy(self) -> pd.DataFrame:
        return tidy_frame([self.row])

    @property
    def estimate(self) -> float:
        return self.row.estimate

    @property
    def p_value(self) -> float:
        return self.row.p_value

    def _repr_html_(self) -> str:
        return self.tidy().to_html(index=False, float_format=lambda x: f"{x:.4g}")


def treatment_assignments(is_treated: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """Boolean matrix (assignment x unit) of placebo treatment assignments.

    With one treated unit every unit takes the treatment once (exhaustive, the real
    assignment included). With ``k > 1`` the real assignment comes first, then
    ``n_draws`` seeded random sets of ``k`` units.
    """
    n, k = len(is_treated), int(np.sum(is_treated))
    if k == 1:
        return np.eye(n, dtype=bool)
    rng = np.random.default_rng(seed)
    idx = np.argpartition(rng.random((n_draws, n)), k - 1, axis=1)[:, :k]
    assign = np.zeros((n_draws, n), bool)
    np.put_along_axis(assign, idx, True, axis=1)
    return np.vstack([np.asarray(is_treated, bool), assign])


def permutation_estimates(unit_values: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Mean of ``unit_values`` over each assignment's treated units minus the rest's.

    One matrix product gives every placebo estimate at once.
    """
    a = assign.astype(float)
    k = a[0].sum()
    return a @ unit_values / k - (1 - a) @ unit_values / (a.shape[1] - k)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(values, sort=True)
    return codes, np.asarray(uniques)


def within_transform(
    x: np.ndarray, unit: np.ndarray, time: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """Remove unit and period means from each column of ``x``.

    Exact in one pass for a balanced panel; alternating projections otherwise.
    """
    x = np.array(x, dtype=float, copy=True)
    if x.ndim == 1:
        x = x[:, None]
    n_u, n_t = unit.max() + 1, time.max() + 1
    cnt_u = np.bincount(unit, minlength=n_u).astype(float)
    cnt_t = np.bincount(time, minlength=n_t).astype(float)
    balanced = len(x) == n_u * n_t and np.all(cnt_u == n_t)
    for _ in range(1 if balanced else max_iter):
        before = x.copy() if not balanced else None
        for codes, cnt, n in ((unit, cnt_u, n_u), (time, cnt_t, n_t)):
            sums = np.vstack([np.bincount(codes, weights=x[:, j], minlength=n) for j in range(x.shape[1])]).T
            x -= (sums / cnt[:, None])[codes]
        if before is not None and np.max(np.abs(x - before)) < tol:
            break
    return x


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
    inference : {"auto", "placebo_in_space", "cluster_cr1", "hc1"}
        ``auto`` uses placebo-in-space below :data:`MIN_TREATED_FOR_CLUSTER` treated
        units and cluster-robust CR1 above.
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
    infinite.

    Cluster-robust SEs use CR1 with the small-sample factor ``G/(G-1) (N-1)/(N-K)``
    where unit effects nested in the clusters are not counted in ``K`` (as fixest
    and pyfixest do).
    """

    outcome: str
    unit: str
    time: str
    treated: str
    post: str
    transform: Transform = "identity"
    inference: Inference = "auto"
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""

    # ------------------------------------------------------------------ validation
    def _prepare(self, data: pd.DataFrame) -> pd.DataFrame:
        cols = [self.outcome, self.unit, self.time, self.treated, self.post]
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(
                f"DiD: missing column(s) {', '.join(missing)}; data has {', '.join(map(str, data.columns))}"
            )
        d = data[cols].copy()
        if d[self.outcome].isna().any():
            raise DataError(f"DiD: outcome column {self.outcome!r} has missing values; drop those rows first")
        for c in (self.treated, self.post):
            if not d[c].isin([0, 1, True, False]).all():
                raise DataError(f"DiD: column {c!r} must hold 0/1 values")
        if d.duplicated([self.unit, self.time]).any():
            raise DataError(f"DiD: more than one row per {self.unit} and {self.time}")
        if d.groupby(self.unit)[self.treated].nunique().max() > 1:
            raise DataError(f"DiD: {self.treated!r} must be constant within each {self.unit}")
        y = d[self.outcome].astype(float)
        if self.transform == "log":
            if (y <= 0).any():
                bad = d.loc[y <= 0, [self.unit, self.time]].head(5).to_dict("records")
                raise DataError(f"DiD: log transform needs positive {self.outcome!r}; zero or negative at {bad}")
            y = np.log(y)
        d["_y"] = y
        d["_d"] = d[self.treated].astype(int) * d[self.post].astype(int)
        n_t = d.loc[d[self.treated].astype(bool), self.unit].nunique()
        if n_t == 0:
            raise DataError("DiD: no treated units")
        if n_t == d[self.unit].nunique():
            raise DataError("DiD: no comparison units")
        if d[self.post].nunique() < 2:
            raise DataError("DiD: need both pre- and post-period observations")
        return d

    def _chosen_inference(self, n_treated: int) -> str:
        if self.inference != "auto":
            return self.inference
        return "placebo_in_space" if n_treated < MIN_TREATED_FOR_CLUSTER else "cluster_cr1"

    @property
    def scale(self) -> str:
        return "log" if self.transform == "log" else "level"

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame) -> DiDResult:
        """Estimate the effect; returns a frozen :class:`DiDResult`."""
        d = self._prepare(data)
        unit_codes, units = _codes(d[self.unit])
        time_codes, _ = _codes(d[self.time])
        xy = within_transform(np.column_stack([d["_y"].to_numpy(), d["_d"].to_numpy(float)]), unit_codes, time_codes)
        y_w, d_w = xy[:, 0], xy[:, 1]
        sxx = d_w @ d_w
        beta = (d_w @ y_w) / sxx
        resid = y_w - beta * d_w
        treated_units = tuple(units[np.unique(unit_codes[d[self.treated].astype(bool).to_numpy()])])
        n_treated = len(treated_units)
        n_units, n_periods, n_obs = len(units), time_codes.max() + 1, len(d)
        method = self._chosen_inference(n_treated)
        label = self.outcome_label or self.outcome
        placebo = None
        if method == "placebo_in_space":
            se, lo, hi, p, placebo = self._placebo(d, units, unit_codes, time_codes, beta)
        else:
            if method == "cluster_cr1":
                g = n_units
                k = 1 + n_periods  # unit effects are nested in the unit clusters
                score = np.bincount(unit_codes, weights=d_w * resid, minlength=n_units)
                var = (score @ score) / sxx**2 * (g / (g - 1)) * ((n_obs - 1) / (n_obs - k))
                dof = g - 1
            elif method == "hc1":
                k = 1 + n_units + n_periods - 1
                var = ((d_w * resid) @ (d_w * resid)) / sxx**2 * n_obs / (n_obs - k)
                dof = n_obs - k
            else:
                raise DataError(f"DiD: unknown inference {method!r}; use auto, placebo_in_space, cluster_cr1 or hc1")
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
            row=row, n_obs=n_obs, n_periods=int(n_periods), placebo_estimates=placebo, treated_units=treated_units
        )

    def _unit_changes(
        self, d: pd.DataFrame, units: np.ndarray, unit_codes: np.ndarray, time_codes: np.ndarray
    ) -> np.ndarray:
        """Each unit's mean post minus mean pre outcome (balanced panels only)."""
        n_units, n_periods = len(units), time_codes.max() + 1
        if len(d) != n_units * n_periods:
            raise DataError(
                "DiD: placebo-in-space inference needs a balanced panel (every unit observed in every period); "
                f"got {len(d)} rows for {n_units} units x {n_periods} periods. Drop incomplete units first."
            )
        post = d[self.post].to_numpy().astype(bool)
        y = d["_y"].to_numpy()
        s_post = np.bincount(unit_codes, weights=y * post, minlength=n_units)
        s_pre = np.bincount(unit_codes, weights=y * ~post, minlength=n_units)
        c_post = np.bincount(unit_codes, weights=post.astype(float), minlength=n_units)
        return s_post / c_post - s_pre / (n_periods - c_post)

    def _placebo(
        self, d: pd.DataFrame, units: np.ndarray, unit_codes: np.ndarray, time_codes: np.ndarray, beta: float
    ) -> tuple[float, float, float, float, np.ndarray]:
        change = self._unit_changes(d, units, unit_codes, time_codes)
        is_treated = np.zeros(len(units), bool)
        is_treated[np.unique(unit_codes[d[self.treated].astype(bool).to_numpy()])] = True
        n, k = len(units), int(is_treated.sum())
        assign = treatment_assignments(is_treated, self.n_draws, self.seed)
        a = assign.astype(float)
        est = permutation_estimates(change, assign)
        p = float(np.mean(np.abs(est) >= abs(beta) - 1e-12))
        # Under H0 "effect = tau" the treated units' changes shift by tau; each assignment's
        # estimate moves by tau * c, with c the share of real treated units it holds.
        m = a @ is_treated.astype(float)
        c = m / k - (k - m) / (n - k)
        sd = float(np.std(est, ddof=1))
        grid = beta + np.linspace(-12, 12, 4801) * max(sd, 1e-12)
        stat_obs = np.abs(beta - grid)  # observed estimate under each tau
        p_grid = np.mean(np.abs(est[None, :] - grid[:, None] * c[None, :]) >= stat_obs[:, None] - 1e-12, axis=1)
        keep = grid[p_grid > self.alpha]
        if keep.size == 0 or p_grid[0] > self.alpha or p_grid[-1] > self.alpha:
            lo, hi = -np.inf, np.inf
        else:
            lo, hi = float(keep.min()), float(keep.max())
        est.setflags(write=False)
        return sd, lo, hi, p, est


def pretrend_test(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    treated: str,
    transform: Transform = "log",
    periods_per_year: int = 12,
    alpha: float = 0.05,
    outcome_label: str = "",
    n_draws: int = 999,
    seed: int = 2015,
) -> Estimate:
    """Difference in linear pre-period trend between treated and comparison units.

    Pass pre-period rows only. Each unit's slope on time is taken after removing
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
    d = data[[outcome, unit, time, treated]].copy()
    d["_y"] = np.log(d[outcome].astype(float)) if transform == "log" else d[outcome].astype(float)
    wide = d.pivot(index=time, columns=unit, values="_y")
    if wide.isna().any().any():
        raise DataError("pretrend_test: needs a balanced pre-period panel")
    y = wide.to_numpy()
    y = y - y.mean(axis=1, keepdims=True)  # remove period effects
    t = np.arange(len(wide), dtype=float)
    t -= t.mean()
    slopes = (t @ y) / (t @ t) * periods_per_year
    is_t = d.groupby(unit)[treated].first().reindex(wide.columns).astype(bool).to_numpy()
    n, k = len(slopes), int(is_t.sum())
    est_obs = slopes[is_t].mean() - slopes[~is_t].mean()
    est = permutation_estimates(slopes, treatment_assignments(is_t, n_draws, seed))
    p = float(np.mean(np.abs(est) >= abs(est_obs) - 1e-12))
    sd = float(np.std(est, ddof=1))
    z = stats.norm.ppf(1 - alpha / 2)
    return Estimate(
        outcome=outcome_label or outcome,
        term="pre_trend_difference",
        estimate=float(est_obs),
        std_error=sd,
        ci_low=float(est_obs - z * sd),
        ci_high=float(est_obs + z * sd),
        p_value=p,
        method="did_pretrend",
        inference="placebo_in_space",
        scale="log_per_year" if transform == "log" else "level",
        n_treated=k,
        n_control=n - k,
    )
