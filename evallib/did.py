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
Inference = Literal["auto", "placebo_in_space", "wild_bootstrap", "cluster_cr1", "hc1"]

#: Below this many treated units the default inference is placebo-in-space; from it on,
#: the wild cluster bootstrap. Plain cluster-robust SEs need many treated clusters to be
#: trustworthy, so they are used only when asked for.
MIN_TREATED_FOR_BOOTSTRAP = 10


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


@dataclass(frozen=True)
class PermutationTest:
    """Placebo-in-space results for one or more statistics (columns)."""

    estimate: np.ndarray
    std_error: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray
    placebo: np.ndarray  # assignments x statistics


def _invert(est: np.ndarray, c: np.ndarray, obs: float, alpha: float) -> tuple[float, float]:
    """Exact interval {tau: p(tau) > alpha} of a permutation test.

    p(tau) counts assignments with ``|est - tau c| >= |obs - tau|``; it only changes
    where the two sides are equal, at ``tau = (est -+ obs) / (c -+ 1)``, so evaluating
    it at those breakpoints and between them gives the interval exactly.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        cuts = np.concatenate([(est - obs) / (c - 1), (est + obs) / (c + 1)])
    cuts = np.unique(cuts[np.isfinite(cuts)])
    if cuts.size == 0:
        return -np.inf, np.inf
    mids = (cuts[:-1] + cuts[1:]) / 2
    cand = np.concatenate([cuts, mids, [cuts[0] - 1.0, cuts[-1] + 1.0]])
    tol = 1e-12 * (1 + np.abs(cand))
    p = np.mean(np.abs(est[None, :] - cand[:, None] * c[None, :]) >= np.abs(obs - cand)[:, None] - tol[:, None], axis=1)
    ok = cand[p > alpha]
    if ok.size == 0:
        return float("nan"), float("nan")
    outer = p[-2:] > alpha  # beyond every breakpoint the verdict no longer changes
    lo = -np.inf if outer[0] else float(ok.min())
    hi = np.inf if outer[1] else float(ok.max())
    return lo, hi


def permutation_test(
    unit_values: np.ndarray, is_treated: np.ndarray, *, n_draws: int, seed: int, alpha: float
) -> PermutationTest:
    """Placebo-in-space inference for treated-minus-comparison means of per-unit values.

    ``unit_values`` is ``(n_units,)`` or ``(n_units, k)``: e.g. each unit's mean
    post-minus-pre change (DiD), or its change relative to a reference period for
    each event time. Each statistic is the treated units' mean minus the others'.

    Notes
    -----
    Under the sharp null of no effect, which units were treated is exchangeable, so
    the observed statistic is ranked among its values under every placebo assignment
    (p-value = share at least as large in absolute value, the real assignment
    included). Under the null "effect = tau", the treated units' values shift by tau
    and each assignment's statistic moves by ``tau * c`` with ``c`` the share of real
    treated units it holds; the interval is every tau not rejected at ``alpha``.
    """
    values = np.asarray(unit_values, float)
    values = values[:, None] if values.ndim == 1 else values
    is_treated = np.asarray(is_treated, bool)
    n, k = len(is_treated), int(is_treated.sum())
    assign = treatment_assignments(is_treated, n_draws, seed)
    a = assign.astype(float)
    est = permutation_estimates(values, assign)  # assignments x stats
    obs = values[is_treated].mean(axis=0) - values[~is_treated].mean(axis=0)
    p = np.mean(np.abs(est) >= np.abs(obs)[None, :] - 1e-12, axis=0)
    m = a @ is_treated.astype(float)
    c = m / k - (k - m) / (n - k)
    sd = est.std(axis=0, ddof=1)
    lo, hi = np.full(len(obs), -np.inf), np.full(len(obs), np.inf)
    for j in range(len(obs)):
        lo[j], hi[j] = _invert(est[:, j], c, obs[j], alpha)
    est.setflags(write=False)
    return PermutationTest(obs, sd, lo, hi, p, est)


_RADEMACHER = np.array([-1.0, 1.0])
_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


def wild_cluster_bootstrap(
    d_w: np.ndarray,
    y_w: np.ndarray,
    *,
    k_params: int,
    n_draws: int,
    seed: int,
    alpha: float,
    weights: Literal["rademacher", "webb"] = "webb",
) -> tuple[float, float, float]:
    """Restricted wild cluster bootstrap-t (WCR) for the DiD coefficient, clustered by unit.

    ``d_w`` and ``y_w`` are the within-transformed regressor and outcome of a balanced
    panel as ``(units, periods)`` arrays. Returns the p-value and the interval (by test
    inversion over a grid).

    Notes
    -----
    For a moderate number of treated clusters, where placebo inference has few distinct
    assignments and CR1 over-rejects (MacKinnon, Nielsen & Webb 2023). Bootstrap samples
    are ``y* = b0 d + v_g u``, with ``u`` the residuals under the null ``beta = b0`` and
    ``v_g`` one Rademacher (+-1) or Webb six-point weight per unit. Each bootstrap
    regression is solved exactly in closed form: the coefficient is ``d'y*/d'd`` and its
    residuals need the period means of ``v_g u`` removed again (period effects are not
    nested in the clusters). Everything is matrix products over units, so 999 draws cost
    a few milliseconds.
    """
    g, _ = d_w.shape
    n = d_w.size
    rng = np.random.default_rng(seed)
    v = rng.choice(_RADEMACHER if weights == "rademacher" else _WEBB, size=(n_draws, g))
    sxx = float((d_w * d_w).sum())
    q = (d_w * d_w).sum(axis=1)
    factor = g / (g - 1) * (n - 1) / (n - k_params)
    beta = float((d_w * y_w).sum() / sxx)

    def cr1_se(resid: np.ndarray) -> float:
        score = (d_w * resid).sum(axis=1)
        return float(np.sqrt(score @ score / sxx**2 * factor))

    se_hat = cr1_se(y_w - beta * d_w)

    def p_value(b0: float) -> float:
        u = y_w - b0 * d_w  # restricted residuals
        s = (d_w * u).sum(axis=1)
        db = v @ s / sxx  # beta* - b0 for each draw
        corr = v @ (u @ d_w.T) / g  # d'(period means of v u), per cluster
        score = v * s[None, :] - corr - db[:, None] * q[None, :]
        se = np.sqrt((score**2).sum(axis=1) / sxx**2 * factor)
        t_obs = (beta - b0) / se_hat
        return float(np.mean(np.abs(db / se) >= abs(t_obs) - 1e-12))

    p = p_value(0.0)
    grid = beta + np.linspace(-8, 8, 161) * se_hat
    p_grid = np.array([p_value(b) for b in grid])
    kept = grid[p_grid > alpha]
    if kept.size == 0 or p_grid[0] > alpha or p_grid[-1] > alpha:
        return p, -np.inf, np.inf
    return p, float(kept.min()), float(kept.max())


@dataclass(frozen=True)
class PanelArrays:
    """A validated DiD panel as arrays: outcome, treatment and integer unit/period codes."""

    y: np.ndarray
    treated: np.ndarray  # bool, per row
    unit: np.ndarray  # codes 0..n_units-1
    time: np.ndarray  # codes 0..n_periods-1 (sorted periods)
    units: np.ndarray  # labels
    periods: np.ndarray  # labels, sorted
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return len(self.units)

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def balanced(self) -> bool:
        return len(self.y) == self.n_units * self.n_periods

    @property
    def unit_treated(self) -> np.ndarray:
        out = np.zeros(self.n_units, bool)
        out[self.unit[self.treated]] = True
        return out

    def matrix(self, values: np.ndarray) -> np.ndarray:
        """Values as a units x periods matrix (NaN where a unit lacks a period)."""
        shape = (self.n_units, self.n_periods)
        flat = self.unit * self.n_periods + self.time
        if self.balanced and np.all(flat[1:] > flat[:-1]):
            return np.asarray(values, float).reshape(shape)  # rows already in unit-period order
        m = np.full(shape, np.nan)
        m[self.unit, self.time] = values
        return m


def _binary(values: np.ndarray, name: str) -> np.ndarray:
    v = np.asarray(values)
    if v.dtype == bool:
        return v
    if not np.all((v == 0) | (v == 1)):
        raise DataError(f"DiD: column {name!r} must hold 0/1 values")
    return v.astype(bool)


def prepare_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    treated: str,
    transform: Transform,
    *,
    extra: list[str] = (),
    denominator: str | None = None,
) -> PanelArrays:
    """Check the column roles of a DiD panel; return it as arrays with the (transformed) outcome.

    Validation runs on integer codes with numpy, so it costs little next to the estimate.
    """
    cols = [outcome, unit, time, treated, *extra]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DataError(f"DiD: missing column(s) {', '.join(missing)}; data has {', '.join(map(str, data.columns))}")
    y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
    if np.isnan(y).any():
        raise DataError(f"DiD: outcome column {outcome!r} has missing or non-numeric values; drop those rows first")
    if denominator is not None:
        if denominator not in data.columns:
            raise DataError(f"DiD: denominator column {denominator!r} is missing")
        den = pd.to_numeric(data[denominator], errors="coerce").to_numpy(float)
        if not np.all(den > 0):
            raise DataError(f"DiD: denominator {denominator!r} must be positive in every row")
        y = y / den  # a rate: events per unit of the denominator (e.g. per head of population)
    tr = _binary(data[treated].to_numpy(), treated)
    u, units = pd.factorize(data[unit], sort=True)
    t, periods = pd.factorize(data[time], sort=True)
    n_u, n_t = len(units), len(periods)
    if np.bincount(u * n_t + t, minlength=n_u * n_t).max() > 1:
        raise DataError(f"DiD: more than one row per {unit} and {time}")
    rows_per_unit = np.bincount(u, minlength=n_u)
    treated_per_unit = np.bincount(u, weights=tr, minlength=n_u)
    if np.any((treated_per_unit > 0) & (treated_per_unit < rows_per_unit)):
        raise DataError(f"DiD: {treated!r} must be constant within each {unit}")
    if transform == "log":
        if (y <= 0).any():
            bad = data.loc[y <= 0, [unit, time]].head(5).to_dict("records")
            raise DataError(f"DiD: log transform needs positive {outcome!r}; zero or negative at {bad}")
        y = np.log(y)
    n_treated = int((treated_per_unit > 0).sum())
    if n_treated == 0:
        raise DataError("DiD: no treated units")
    if n_treated == n_u:
        raise DataError("DiD: no comparison units")
    return PanelArrays(
        y=y,
        treated=tr,
        unit=u,
        time=t,
        units=np.asarray(units),
        periods=np.asarray(periods),
        extra={c: data[c].to_numpy() for c in extra},
    )


def within_transform(
    x: np.ndarray, unit: np.ndarray, time: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """Remove unit and period means from each column of ``x`` (rows are observations).

    Exact in one step for a balanced panel (double demeaning of a units x periods
    array); alternating projections otherwise.
    """
    x = np.asarray(x, dtype=float)
    return _within_rows((x[:, None] if x.ndim == 1 else x).T, unit, time, tol=tol, max_iter=max_iter).T


def _within_rows(
    xt: np.ndarray, unit: np.ndarray, time: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """:func:`within_transform` on a ``(variables, observations)`` array (no transposes needed)."""
    k, n = xt.shape
    n_u, n_t = unit.max() + 1, time.max() + 1
    if n == n_u * n_t:
        flat = unit * n_t + time
        in_order = bool(np.all(flat[1:] > flat[:-1]))  # sorted by unit then period: a plain reshape
        if in_order or np.bincount(flat, minlength=n).max() == 1:
            if in_order:
                cube = np.array(xt, dtype=float, order="C").reshape(k, n_u, n_t)
            else:
                cube = np.empty((k, n))
                cube[:, flat] = xt
                cube = cube.reshape(k, n_u, n_t)
            cube -= cube.mean(axis=2, keepdims=True)
            cube -= cube.mean(axis=1, keepdims=True)
            out = cube.reshape(k, n)
            return out if in_order else out[:, flat]
    x = np.array(xt.T, dtype=float)
    cnt_u = np.bincount(unit, minlength=n_u).astype(float)
    cnt_t = np.bincount(time, minlength=n_t).astype(float)
    for _ in range(max_iter):
        before = x.copy()
        for codes, cnt, m in ((unit, cnt_u, n_u), (time, cnt_t, n_t)):
            sums = np.vstack([np.bincount(codes, weights=x[:, j], minlength=m) for j in range(k)]).T
            x -= (sums / cnt[:, None])[codes]
        if np.max(np.abs(x - before)) < tol:
            break
    return x.T


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
    inference : {"auto", "placebo_in_space", "wild_bootstrap", "cluster_cr1", "hc1"}
        ``auto`` uses placebo-in-space below :data:`MIN_TREATED_FOR_BOOTSTRAP` treated
        units and the restricted wild cluster bootstrap from there on; CR1 and HC1 only
        when asked for (they over-reject with few treated units).
    bootstrap_weights : {"webb", "rademacher"}
        Cluster weights for the wild bootstrap.
    denominator : str, optional
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
    bootstrap_weights: Literal["webb", "rademacher"] = "webb"
    denominator: str | None = None

    # ------------------------------------------------------------------ validation
    def _prepare(self, data: pd.DataFrame) -> tuple[PanelArrays, np.ndarray]:
        p = prepare_panel(
            data,
            self.outcome,
            self.unit,
            self.time,
            self.treated,
            self.transform,
            extra=[self.post],
            denominator=self.denominator,
        )
        post = _binary(p.extra[self.post], self.post)
        if post.all() or not post.any():
            raise DataError("DiD: need both pre- and post-period observations")
        return p, post

    def _chosen_inference(self, n_treated: int) -> str:
        if self.inference != "auto":
            return self.inference
        return "placebo_in_space" if n_treated < MIN_TREATED_FOR_BOOTSTRAP else "wild_bootstrap"

    @property
    def scale(self) -> str:
        return "log" if self.transform == "log" else "level"

    # ------------------------------------------------------------------ fitting
    def fit(self, data: pd.DataFrame) -> DiDResult:
        """Estimate the effect; returns a frozen :class:`DiDResult`."""
        pa, post = self._prepare(data)
        unit_codes, units, time_codes = pa.unit, pa.units, pa.time
        treated_units = tuple(units[pa.unit_treated])
        n_treated = len(treated_units)
        n_units, n_periods, n_obs = pa.n_units, pa.n_periods, len(pa.y)
        method = self._chosen_inference(n_treated)
        post_by_period = np.zeros(n_periods)
        np.maximum.at(post_by_period, time_codes, post.astype(float))
        common_start = pa.balanced and bool(np.all(post_by_period[time_codes] == post))
        if common_start and method in ("placebo_in_space", "cluster_cr1"):
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
            y_w, d_w = _within_rows(xy, unit_codes, time_codes)
            sxx = d_w @ d_w
            beta = (d_w @ y_w) / sxx
            resid = y_w - beta * d_w
            cluster_score = np.bincount(unit_codes, weights=d_w * resid, minlength=n_units)
        label = self.outcome_label or self.outcome
        placebo = None
        if method == "placebo_in_space":
            perm = self._placebo(pa, post)
            se, lo, hi, p, placebo = (
                perm.std_error[0],
                perm.ci_low[0],
                perm.ci_high[0],
                perm.p_value[0],
                perm.placebo[:, 0],
            )
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
                    f"DiD: unknown inference {method!r}; use auto, placebo_in_space, wild_bootstrap, cluster_cr1 or hc1"
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
            row=row, n_obs=n_obs, n_periods=int(n_periods), placebo_estimates=placebo, treated_units=treated_units
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

    def _placebo(self, p: PanelArrays, post: np.ndarray) -> PermutationTest:
        change = self._unit_changes(p, post)
        return permutation_test(change, p.unit_treated, n_draws=self.n_draws, seed=self.seed, alpha=self.alpha)


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
    perm = permutation_test(slopes, is_t, n_draws=n_draws, seed=seed, alpha=alpha)
    est_obs, sd, p = float(perm.estimate[0]), float(perm.std_error[0]), float(perm.p_value[0])
    return Estimate(
        outcome=outcome_label or outcome,
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


@dataclass(frozen=True)
class EventStudyResult:
    """Read-only event-study result: one row per event time (the reference excluded).

    ``pretrend`` is the joint test that every lead (pre-period event time) is zero.
    """

    rows: tuple[Estimate, ...]
    event_times: tuple[int, ...]
    reference: int
    pretrend: Estimate
    placebo: np.ndarray | None = field(default=None, repr=False)

    def tidy(self) -> pd.DataFrame:
        return tidy_frame(list(self.rows))

    def with_scale(self, scale: str) -> EventStudyResult:
        """The same result with its rows' ``scale`` relabelled (e.g. after aggregating logs)."""
        rows = tuple(Estimate(**{**r.__dict__, "scale": scale}) for r in self.rows)
        return EventStudyResult(rows, self.event_times, self.reference, self.pretrend, self.placebo)

    @property
    def leads(self) -> tuple[Estimate, ...]:
        return tuple(r for r, e in zip(self.rows, self.event_times, strict=True) if e < 0)

    def _repr_html_(self) -> str:
        return self.tidy().to_html(index=False, float_format=lambda x: f"{x:.4g}")


@dataclass(frozen=True)
class EventStudy:
    """Dynamic DiD: effects by period relative to a common start, leads included.

    Parameters
    ----------
    outcome, unit, time, treated : str
        Column roles, as for :class:`DiD`.
    start : object
        The first treated value of ``time``.
    leads, lags : int, optional
        Bin event times below ``-leads`` into ``-leads`` and above ``lags`` into ``lags``
        (default: no binning).
    reference : int
        Event time normalised to zero (default -1, the period before the start).
    transform, inference, n_draws, seed, alpha
        As for :class:`DiD`; ``auto`` means placebo-in-space below
        :data:`MIN_TREATED_FOR_BOOTSTRAP` treated units, else cluster-robust CR1.

    Notes
    -----
    Estimand: for each event time e, the treated-minus-comparison difference in the
    outcome relative to the reference period. Leads (e < 0) estimate differences
    before the start: if parallel trends hold they are zero, which the joint pre-trend
    test checks (a Wald statistic, referred to its placebo distribution or, with CR1,
    to an F distribution). Lags (e >= 0) are dynamic effects. Common timing only; for
    staggered adoption use :class:`evallib.staggered.CallawaySantAnna`.
    """

    outcome: str
    unit: str
    time: str
    treated: str
    start: object
    leads: int | None = None
    lags: int | None = None
    reference: int = -1
    transform: Transform = "identity"
    inference: Literal["auto", "placebo_in_space", "cluster_cr1"] = "auto"
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""

    def fit(self, data: pd.DataFrame) -> EventStudyResult:
        pa = prepare_panel(data, self.outcome, self.unit, self.time, self.treated, self.transform)
        periods = pa.periods
        if self.start not in set(periods):
            raise DataError(f"EventStudy: start {self.start!r} is not one of the {self.time!r} values")
        pos = {p: i for i, p in enumerate(periods)}
        rel = np.array([pos[p] for p in periods]) - pos[self.start]
        lo = -self.leads if self.leads is not None else rel.min()
        hi = self.lags if self.lags is not None else rel.max()
        binned = np.clip(rel, lo, hi)
        if self.reference not in set(binned) or self.reference >= 0:
            raise DataError(f"EventStudy: reference event time {self.reference} must be a pre-period in the data")
        event_times = [int(e) for e in sorted(set(binned)) if e != self.reference]
        unit_codes, units, time_codes, treated = pa.unit, pa.units, pa.time, pa.treated
        X = np.column_stack([(treated & (binned[time_codes] == e)).astype(float) for e in event_times])
        xy = within_transform(np.column_stack([pa.y, X]), unit_codes, time_codes)
        y_w, X_w = xy[:, 0], xy[:, 1:]
        xtx = X_w.T @ X_w
        beta = np.linalg.solve(xtx, X_w.T @ y_w)
        n_units, n_periods, n_obs = len(units), len(periods), len(pa.y)
        is_t = np.zeros(n_units, bool)
        is_t[np.unique(unit_codes[treated])] = True
        n_treated = int(is_t.sum())
        method = self.inference
        if method == "auto":
            method = "placebo_in_space" if n_treated < MIN_TREATED_FOR_BOOTSTRAP else "cluster_cr1"
        lead_idx = [i for i, e in enumerate(event_times) if e < 0]
        placebo = None
        if method == "placebo_in_space":
            if n_obs != n_units * n_periods:
                raise DataError("EventStudy: placebo inference needs a balanced panel; drop incomplete units first")
            y = np.full((n_units, n_periods), np.nan)
            y[unit_codes, time_codes] = pa.y
            ref = y[:, binned == self.reference].mean(axis=1)
            profile = np.column_stack([y[:, binned == e].mean(axis=1) - ref for e in event_times])
            perm = permutation_test(profile, is_t, n_draws=self.n_draws, seed=self.seed, alpha=self.alpha)
            se, lo_ci, hi_ci, p = perm.std_error, perm.ci_low, perm.ci_high, perm.p_value
            placebo = perm.placebo
            if lead_idx:
                leads = placebo[:, lead_idx]
                cov = np.atleast_2d(np.cov(leads, rowvar=False))
                inv = np.linalg.pinv(cov)
                w_all = np.einsum("ij,jk,ik->i", leads, inv, leads)
                w_obs = float(beta[lead_idx] @ inv @ beta[lead_idx])
                pre_stat, pre_p = w_obs, float(np.mean(w_all >= w_obs - 1e-12))
            pre_inf = "placebo_in_space"
        elif method == "cluster_cr1":
            resid = y_w - X_w @ beta
            scores = np.vstack(
                [np.bincount(unit_codes, weights=X_w[:, j] * resid, minlength=n_units) for j in range(len(beta))]
            ).T
            bread = np.linalg.inv(xtx)
            k = len(beta) + n_periods
            vcov = bread @ (scores.T @ scores) @ bread * n_units / (n_units - 1) * (n_obs - 1) / (n_obs - k)
            se = np.sqrt(np.diag(vcov))
            tcrit = stats.t.ppf(1 - self.alpha / 2, n_units - 1)
            lo_ci, hi_ci = beta - tcrit * se, beta + tcrit * se
            p = 2 * stats.t.sf(np.abs(beta / se), n_units - 1)
            if lead_idx:
                b = beta[lead_idx]
                v = vcov[np.ix_(lead_idx, lead_idx)]
                pre_stat = float(b @ np.linalg.solve(v, b) / len(lead_idx))
                pre_p = float(stats.f.sf(pre_stat, len(lead_idx), n_units - 1))
            pre_inf = "cluster_cr1"
        else:
            raise DataError(f"EventStudy: unknown inference {method!r}; use auto, placebo_in_space or cluster_cr1")
        label = self.outcome_label or self.outcome
        scale = "log" if self.transform == "log" else "level"
        rows = tuple(
            Estimate(
                label,
                f"event_time_{e}",
                float(beta[i]),
                float(se[i]),
                float(lo_ci[i]),
                float(hi_ci[i]),
                float(p[i]),
                "did_event_study",
                method,
                scale,
                n_treated,
                n_units - n_treated,
            )
            for i, e in enumerate(event_times)
        )
        if not lead_idx:
            pre_stat, pre_p = float("nan"), float("nan")
        pretrend = Estimate(
            label,
            "joint_leads_wald",
            pre_stat,
            float("nan"),
            float("nan"),
            float("nan"),
            pre_p,
            "did_event_study_pretrend",
            pre_inf,
            "statistic",
            n_treated,
            n_units - n_treated,
        )
        return EventStudyResult(
            rows=rows, event_times=tuple(event_times), reference=self.reference, pretrend=pretrend, placebo=placebo
        )
