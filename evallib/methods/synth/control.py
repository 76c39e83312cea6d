"""Synthetic control: a weighted average of comparison units that tracks the site before the start.

Two fits: a fast outcome-only fit (weights that best reproduce the pre-period
outcomes) and the Abadie-Diamond-Hainmueller nested fit, where predictor weights V
are chosen so that the synthetic unit built on the predictors reproduces the
pre-period outcomes. The inner problem (least squares on the simplex) is solved
exactly by non-negative least squares, so the outer search over V cannot stop at
weights the inner solver got wrong; several starting points guard the outer search.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from evallib.errors import DataError
from evallib.methods.base.arrays import Transform
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.inference.inversion import invert_linear
from evallib.methods.inference.permutation import EXHAUSTIVE_MAX_UNITS, mc_error, random_single_sets
from evallib.methods.synth.matching import match_comparators
from evallib.methods.synth.simplex import screened_simplex_nnls

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The name of the treated units' combined series when a design is fitted.
TREATED_LABEL = "treated units"


def simplex_least_squares(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin ||A w - b||`` subject to ``w >= 0`` and ``sum(w) = 1``.

    Solved as NNLS with the sum constraint as a heavily weighted extra row, then
    renormalised (the constraint holds to ~1e-10 before that). Past 512 donors the NNLS works on a screened set
    of donors, checked optimal on every one (:func:`~evallib.methods.synth.simplex.screened_simplex_nnls`).
    """
    scale = max(1.0, float(np.abs(A).max()))
    lam = 1e4 * scale
    w = screened_simplex_nnls(A, b, lam, maxiter=50 * A.shape[1])
    total = w.sum()
    return w / total if total > 0 else np.full(A.shape[1], 1.0 / A.shape[1])


@dataclass(frozen=True)
class SynthResult(EstimatorResult):
    """Read-only synthetic-control result.

    ``weights`` (donor -> weight), ``treated`` and ``synthetic`` series, ``gap`` =
    treated - synthetic, RMSPEs before and after the start. ``row`` is the mean
    post-period gap with its placebo-in-space p-value and the interval from inverting
    that test; ``min_p_value`` is the smallest p-value the test can give (1 / number of
    units ranked), so a caller can refuse a test that cannot reach its level. ``placebos`` has,
    for every unit given the treatment in turn (past ``max_exhaustive`` units, a random subset of them;
    the real one is among each placebo's donors), its pre- and post-period RMSPE, their ratio and its mean post-period gap; the post/pre RMSPE-ratio
    rank test of Abadie et al. (2010) is kept as a diagnostic in ``rmspe_ratio_p_value``.
    ``placebo_draws`` is the number of placebo units drawn at random when there were too many to refit
    every one (0 when every unit was refitted), and ``p_value_mc_error`` the p-value's Monte Carlo
    standard error (:func:`~evallib.methods.inference.permutation.mc_error`; 0 when exhaustive).
    """

    rows: tuple[Estimate, ...]
    weights: pd.Series
    treated: pd.Series = field(repr=False)
    synthetic: pd.Series = field(repr=False)
    start: object
    pre_rmspe: float
    post_rmspe: float
    v_weights: pd.Series | None = None
    placebos: pd.DataFrame | None = field(default=None, repr=False)
    placebo_gaps: pd.DataFrame | None = field(default=None, repr=False)
    rmspe_ratio_p_value: float = float("nan")
    min_p_value: float = float("nan")
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    @property
    def gap(self) -> pd.Series:
        """The treated series minus its synthetic control, by period."""
        return self.treated - self.synthetic

    @property
    def rmspe_ratio(self) -> float:
        """Post- over pre-period RMSPE (infinite when the pre-period fit is exact)."""
        return self.post_rmspe / self.pre_rmspe if self.pre_rmspe > 0 else float("inf")

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "") -> Figure:
        """The gap between the site and its synthetic control, over the placebos' gaps, on ``ax``."""
        from evallib.methods.base.plotting import plot_synthetic_control

        return plot_synthetic_control(self, ax=ax, title=title, ylabel=ylabel)


def _rmspe(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2))) if len(x) else float("nan")


@dataclass(frozen=True)
class SyntheticControl:
    """Synthetic control for one treated unit.

    Parameters
    ----------
    outcome, unit, time : str
        Column roles (balanced panel).
    treated : str
        The unit that received the intervention (long rows); a design's treated units are combined.
    start : object
        First treated value of ``time``.
    predictors : tuple of str
        Columns averaged over the pre-period as predictors (nested fit only).
    outcome_lags : tuple of period
        ``time`` values whose outcome is also a predictor (nested fit only).
    method : {"outcome", "nested"}
        ``outcome``: weights reproducing every pre-period outcome (fast). ``nested``:
        ADH predictor weights chosen to minimise the pre-period outcome MSPE.
    demean : bool
        Subtract each unit's pre-period mean first (compares trajectories, not levels;
        needed when the site is larger than every donor, as a group of trusts is).
    placebo : bool
        Refit with every other unit as the treated one (the real one joins the donors)
        for the p-value, the interval and the RMSPE-ratio diagnostic.
    transform : {"identity", "log"}
        With a design: the scale the units are compared on (the treated units summed on a log scale).
    donors : int, optional
        With a design: keep only this many comparison units, the nearest to the treated units before the
        start (:func:`~evallib.methods.synth.matching.match_comparators`); all of them when ``None``.
    n_starts : int
        Starting points for the outer search of the nested fit.
    n_draws : int
        Placebo units refitted, drawn at random without replacement (seeded by ``seed``), when there are more
        than ``max_exhaustive`` units; up to that every unit is refitted.
    max_exhaustive : int
        The most units for which every unit is refitted as the placebo treated one
        (default :data:`~evallib.methods.inference.permutation.EXHAUSTIVE_MAX_UNITS`, 500).

    Notes
    -----
    Estimand: the treated unit's post-period outcome minus that of a weighted
    combination of donors (weights non-negative, summing to one) that matched it
    before the start; reported as the mean post-period gap. Assumes the donors'
    weighted outcome is what the treated unit would have had (no interference, no
    donor affected by the intervention, a good pre-period fit).

    Inference is placebo-in-space on that same statistic: under the sharp null of no
    effect, which unit was treated is exchangeable, so the whole fit is repeated with
    every unit as the treated one and all the others as donors; the p-value is the
    share of units (the real one included) whose absolute mean gap is at least the
    observed one. Weights depend only on pre-period data, so removing an effect
    ``tau`` from the treated unit's post-period outcomes moves its mean gap by
    ``-tau`` and a placebo's by ``+tau w``, ``w`` the weight that placebo gives the
    treated unit; the interval is every ``tau`` the test does not reject (exact
    inversion), so ``p > alpha`` exactly when it holds 0. With ``N`` units the
    smallest attainable p-value is ``1/N`` (``min_p_value``): with fewer than
    ``1/alpha`` units the test cannot reject and the interval is unbounded.
    The post/pre RMSPE-ratio rank test (Abadie, Diamond & Hainmueller 2010) tests a
    different statistic and is kept as a diagnostic. Keep donors fewer than pre-period
    observations: with more, the pre-period is interpolated exactly and the RMSPE ratio
    loses its meaning.

    Each placebo refit costs time linear in the donors, so refitting every unit is quadratic: with more
    than ``max_exhaustive`` units (default 500), ``n_draws``
    placebo units drawn at random without replacement are refitted instead. The test stays exact (the
    real unit and a random subset of the others are exchangeable under the null, so its rank among them
    is uniform); the p-value, now on ``n_draws + 1`` units (``min_p_value`` ``1 / (n_draws + 1)``),
    estimates the exhaustive one with Monte Carlo standard error ``sqrt(p (1 - p) / n_draws)`` times the
    finite-population correction (``p_value_mc_error``, :func:`~evallib.methods.inference.permutation.mc_error`:
    at most 0.035 with 199 draws), and the interval inverts the same test.
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    treated: str = ""
    start: object = None
    predictors: tuple[str, ...] = ()
    outcome_lags: tuple[object, ...] = ()
    method: Literal["outcome", "nested"] = "outcome"
    demean: bool = False
    placebo: bool = True
    n_starts: int = 6
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""
    scale: str = "level"
    transform: Transform = "identity"
    donors: int | None = None
    n_draws: int = 199
    max_exhaustive: int = EXHAUSTIVE_MAX_UNITS

    def _matrices(self, data: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
        cols = [self.outcome, self.unit, self.time, *self.predictors]
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(
                f"SyntheticControl: missing {'column' if len(missing) == 1 else 'columns'} {', '.join(missing)}"
            )
        Y = data.pivot(index=self.time, columns=self.unit, values=self.outcome).sort_index()
        if Y.isna().any().any():
            raise DataError("SyntheticControl: the panel must be balanced (every unit in every period)")
        if self.treated not in Y.columns:
            raise DataError(f"SyntheticControl: treated unit {self.treated!r} is not in the data")
        if self.start not in set(Y.index):
            raise DataError(f"SyntheticControl: start {self.start!r} is not a {self.time!r} value")
        if Y.shape[1] < 3:
            raise DataError("SyntheticControl: need at least two donors")
        P = None
        if self.method == "nested":
            pre = data[data[self.time] < self.start]
            rows = [pre.groupby(self.unit)[c].mean() for c in self.predictors]
            rows += [Y.loc[lag] for lag in self.outcome_lags]
            if not rows:
                raise DataError("SyntheticControl: the nested fit needs predictors or outcome_lags")
            P = pd.DataFrame(rows).reindex(columns=Y.columns)
            if P.isna().any().any():
                raise DataError("SyntheticControl: predictors have missing values")
        return Y, P

    def _weights(
        self, Z1: np.ndarray, Z0: np.ndarray, X1: np.ndarray | None, X0: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.method == "outcome" or X1 is None:
            return simplex_least_squares(Z0, Z1), None
        assert X0 is not None  # predictors come for the treated and the comparison units together
        sd = X0.std(axis=1, ddof=1)
        sd[sd == 0] = 1.0
        X1n, X0n = X1 / sd, X0 / sd[:, None]
        k = len(X1n)

        def inner(v: np.ndarray) -> np.ndarray:
            r = np.sqrt(v)
            return simplex_least_squares(X0n * r[:, None], X1n * r)

        def loss(theta: np.ndarray) -> float:
            v = np.exp(theta - theta.max())
            v /= v.sum()
            w = inner(v)
            return float(np.mean((Z1 - Z0 @ w) ** 2))

        rng = np.random.default_rng(self.seed)
        # Starts: equal weights; weights from how well each predictor alone predicts the
        # pre-period outcomes; and random points.
        starts = [np.zeros(k)]
        fit_each = np.array([loss(np.where(np.arange(k) == i, 5.0, 0.0)) for i in range(k)])
        starts.append(-np.log(fit_each / fit_each.min()))
        starts += [rng.normal(0, 2, k) for _ in range(max(0, self.n_starts - 2))]
        best = None
        for theta0 in starts:
            # Powell's direction search suits this piecewise-smooth loss: on the Texas example it
            # reaches a lower pre-period MSPE than Nelder-Mead with a tenth of the evaluations.
            res = minimize(loss, theta0, method="Powell", options={"xtol": 1e-3, "ftol": 1e-8, "maxfev": 3000})
            if best is None or res.fun < best.fun:
                best = res
        assert best is not None  # there is always the equal-weights start
        v = np.exp(best.x - best.x.max())
        v /= v.sum()
        return inner(v), v

    def fit(self, data: Design | pd.DataFrame) -> SynthResult:
        """Fit on a :class:`~evallib.methods.base.design.Design` (its treated units together, against its
        comparison units or the ``donors`` nearest of them) or on long rows with the roles in the settings.
        """
        if isinstance(data, Design):
            Y, treated = self._design_matrix(data)
            return replace(
                self, treated=treated, start=data.start, outcome_label=self.outcome_label or data.outcome
            )._fit(Y, None)
        Y, P = self._matrices(data)
        return self._fit(Y, P)

    def _design_matrix(self, d: Design) -> tuple[pd.DataFrame, str]:
        """The treated units as one series (summed on a log scale, else averaged) beside the comparison units."""
        wide = d.frame()
        treated = list(d.treated_units)
        site = wide[treated].sum(axis=1) if self.transform == "log" else wide[treated].mean(axis=1)
        pool = wide[list(d.comparison_units)]
        pre = ~d.post
        if self.donors is not None and d.positive:
            donors = match_comparators(site[pre], pool.loc[pre], k=min(self.donors, pool.shape[1])).units
        else:
            donors = list(pool.columns)
        # The treated series takes the place a unit labelled "SITE" sorts to, as the long-format entry point did,
        # so that the solver sees the units in the same order whichever entry point was used.
        order = sorted(donors)
        at = bisect.bisect_left(order, "SITE")
        label = TREATED_LABEL
        Y = pd.concat([pool[order[:at]], site.rename(label), pool[order[at:]]], axis=1)
        Y = np.log(Y) if self.transform == "log" else Y
        # One block laid out as pandas lays out a pivoted table, so that pandas sums (the pre-period means of
        # the demeaned fit) add in the same order as before designs existed.
        return pd.DataFrame(np.array(Y.to_numpy(float), order="C"), index=Y.index, columns=Y.columns, copy=False), label

    def _fit(self, Y: pd.DataFrame, P: pd.DataFrame | None) -> SynthResult:
        pre = Y.index < self.start
        if pre.sum() < 2 or (~pre).sum() < 1:
            raise DataError("SyntheticControl: need at least two pre-period and one post-period observations")
        if self.demean:
            Y = Y - Y[pre].mean()
        units = list(Y.columns)
        # Arrays, not labels, inside the placebo loop: the fit is refitted once per unit.
        Yv, Pv = Y.to_numpy(dtype=float), None if P is None else P.to_numpy(dtype=float)
        Ypre = Yv[np.asarray(pre)]
        col = {u: i for i, u in enumerate(units)}

        def fit_one(t: int, d: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
            Z1, Z0 = Ypre[:, t], Ypre[:, d]
            X1 = Pv[:, t] if Pv is not None else None
            X0 = Pv[:, d] if Pv is not None else None
            w, v = self._weights(Z1, Z0, X1, X0)
            return w, v, Yv[:, t] - Yv[:, d] @ w

        donors = [u for u in units if u != self.treated]
        every = np.arange(len(units))
        t_real = col[self.treated]
        w, v, gap = fit_one(t_real, np.delete(every, t_real))
        pre_r, post_r = _rmspe(gap[pre]), _rmspe(gap[~pre])
        est = float(gap[~pre].mean())
        placebos = gaps = None
        p = lo = hi = se = ratio_p = float("nan")
        n_sampled = n_tried = 0
        if self.placebo:
            recs, gap_cols, shift = [], {}, []
            tried = donors
            if len(units) > self.max_exhaustive and self.n_draws < len(donors):
                # Each refit is linear in the donors: past the cap, a seeded random subset of placebo units.
                # The sampler the rate ratio and synthetic DiD share; the treated series is the one "real" unit.
                drawn = random_single_sets(np.array([u == self.treated for u in units]), self.n_draws, self.seed)
                tried = [units[i] for i in drawn[1:, 0]]
                n_sampled = len(tried)
            for j in tried:
                t = col[j]
                wj, _, g = fit_one(t, np.delete(every, t))  # the real treated unit is a donor too
                recs.append((j, _rmspe(g[pre]), _rmspe(g[~pre]), float(g[~pre].mean())))
                gap_cols[j] = g
                shift.append(-wj[t_real - (t_real > t)])  # the real unit's place among the others
            n_tried = len(recs)
            placebos = pd.DataFrame(recs, columns=["unit", "pre_rmspe", "post_rmspe", "mean_post_gap"])
            placebos["ratio"] = placebos["post_rmspe"] / placebos["pre_rmspe"]
            gaps = pd.DataFrame(gap_cols, index=Y.index)
            ratio = post_r / pre_r if pre_r > 0 else np.inf
            ratio_p = float((1 + (placebos["ratio"] >= ratio - 1e-12).sum()) / (1 + len(placebos)))
            stats_all = np.append(placebos["mean_post_gap"].to_numpy(), est)
            coef = np.append(shift, 1.0)  # d statistic / d tau under "effect = tau"
            p = float(np.mean(np.abs(stats_all) >= abs(est) - 1e-12))
            lo, hi = invert_linear(stats_all, coef, est, self.alpha)
            se = float(np.std(stats_all, ddof=1))
        row = Estimate(
            outcome=self.outcome_label or self.outcome,
            term="mean_post_gap",
            estimate=est,
            std_error=se,
            ci_low=float(lo),
            ci_high=float(hi),
            p_value=p,
            method=f"synthetic_control_{self.method}",
            inference="placebo_in_space" if self.placebo else "none",
            scale=self.scale,
            n_treated=1,
            n_control=len(donors),
        )
        return SynthResult(
            rows=(row,),
            weights=pd.Series(w, index=donors).sort_values(ascending=False),
            treated=Y[self.treated],
            synthetic=pd.Series(Y[donors].to_numpy() @ w, index=Y.index),
            start=self.start,
            pre_rmspe=pre_r,
            post_rmspe=post_r,
            v_weights=None if v is None or P is None else pd.Series(v, index=P.index.astype(str)),
            placebos=placebos,
            placebo_gaps=gaps,
            rmspe_ratio_p_value=ratio_p,
            min_p_value=1.0 / (1 + n_tried) if self.placebo else float("nan"),
            placebo_draws=n_sampled,
            p_value_mc_error=mc_error(p, n_sampled, len(donors)) if self.placebo else 0.0,
        )
