"""Staggered adoption: Callaway & Sant'Anna (2021) group-time effects and their aggregations.

ICSs were designated in waves (2017, 2018, 2019, ...). A two-way fixed-effects
regression with staggered adoption compares later-treated units with
already-treated ones and is biased when effects grow over time; the group-time
ATT(g,t) of Callaway and Sant'Anna only ever compares a cohort with units not
(yet) treated. Analytic standard errors come from influence functions, exactly
as R's ``did`` package computes them without the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ControlGroup = Literal["never_treated", "not_yet_treated"]
Aggregation = Literal["simple", "group", "dynamic", "calendar"]


@dataclass(frozen=True)
class AggregateResult(EstimatorResult):
    """An aggregation of ATT(g,t): the overall effect (the headline) and its components.

    ``overall`` is one tidy row; ``components`` has one row per group, event time
    or calendar period (``term`` says which), all with analytic SEs.
    """

    kind: str
    overall: Estimate
    components: tuple[Estimate, ...] = ()

    @property
    def rows(self) -> tuple[Estimate, ...]:  # type: ignore[override]
        """The overall effect followed by its components, as tidy rows."""
        return (self.overall, *self.components)

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "effect") -> Figure:
        """Effects by event time (the dynamic aggregation) on ``ax`` (a new figure when None)."""
        from evallib.methods.base.plotting import plot_event_study

        return plot_event_study(self, ax=ax, title=title, ylabel=ylabel)


@dataclass(frozen=True)
class CSResult(EstimatorResult):
    """Group-time average treatment effects with their influence functions (read-only).

    ``rows`` are the ATT(g,t); the headline is their simple aggregate (:meth:`aggregate`), the average effect
    on the treated across cohorts and periods.
    """

    group_time: pd.DataFrame = field(repr=False)  # group, time, att, std_error
    influence: np.ndarray = field(repr=False)  # n_units x n_cells
    unit_cohort: np.ndarray = field(repr=False)  # cohort of each unit (0 = never treated)
    control_group: str
    outcome: str
    alpha: float
    n_units: int
    scale: str = "level"
    cluster_codes: np.ndarray | None = field(default=None, repr=False)  # cluster of each unit, 0..G-1
    anticipation: int = 0

    @property
    def n_clusters(self) -> int | None:
        """Number of clusters (None when standard errors are not clustered)."""
        return None if self.cluster_codes is None else int(self.cluster_codes.max()) + 1

    def std_errors(self, inf: np.ndarray) -> np.ndarray:
        """Standard errors of estimates with influence functions ``inf`` (units x estimates).

        Unit-level: ``sqrt(mean(psi^2) / n)`` as R ``did``. Clustered: the influence
        functions are summed within clusters, ``sqrt(G/(G-1) sum_c S_c^2) / n``.
        """
        inf = inf.reshape(len(inf), -1)
        if self.cluster_codes is None:
            return np.sqrt(np.mean(inf**2, axis=0) / self.n_units)
        g = self.n_clusters
        assert g is not None  # clustered: there are cluster codes
        sums = np.zeros((g, inf.shape[1]))
        np.add.at(sums, self.cluster_codes, inf)
        return np.sqrt(g / (g - 1) * (sums**2).sum(axis=0)) / self.n_units

    def _row(self, term: str, est: float, inf: np.ndarray, n_treated: int, n_control: int) -> Estimate:
        se = float(self.std_errors(inf)[0])
        if self.cluster_codes is None:
            crit, dist, inference = stats.norm.ppf(1 - self.alpha / 2), stats.norm, "analytic_influence_function"
        else:  # few clusters: t with G - 1 degrees of freedom
            assert self.n_clusters is not None
            dist = stats.t(self.n_clusters - 1)
            crit, inference = dist.ppf(1 - self.alpha / 2), "analytic_influence_function_cluster"
        return Estimate(
            outcome=self.outcome,
            term=term,
            estimate=float(est),
            std_error=se,
            ci_low=float(est - crit * se),
            ci_high=float(est + crit * se),
            p_value=float(2 * dist.sf(abs(est / se))) if se > 0 else float("nan"),
            method=f"did_callaway_santanna_{self.control_group}",
            inference=inference,
            scale=self.scale,
            n_treated=n_treated,
            n_control=n_control,
        )

    @property
    def rows(self) -> tuple[Estimate, ...]:  # type: ignore[override]
        """One row per ATT(g,t), term ``ATT(g,t)``."""
        n_t = int((self.unit_cohort > 0).sum())
        return tuple(
            self._row(f"ATT({int(g)},{int(t)})", a, self.influence[:, k], n_t, self.n_units - n_t)
            for k, (g, t, a) in enumerate(self.group_time[["group", "time", "att"]].itertuples(index=False))
        )

    @property
    def headline(self) -> Estimate:
        """The simple aggregate ATT."""
        return self.aggregate("simple").overall

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "effect") -> Figure:
        """Effects by event time (the dynamic aggregation) on ``ax`` (a new figure when None)."""
        return self.aggregate("dynamic").plot(ax=ax, title=title, ylabel=ylabel)

    def _wif(self, keepers: np.ndarray, pg: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Influence of estimating the group-share weights (n_units x len(keepers))."""
        member = (self.unit_cohort[:, None] == groups[keepers][None, :]).astype(float)
        centred = member - pg[keepers][None, :]
        total = pg[keepers].sum()
        if1 = centred / total
        if2 = centred.sum(axis=1, keepdims=True) * (pg[keepers] / total**2)[None, :]
        return if1 - if2

    def aggregate(self, kind: Aggregation = "simple") -> AggregateResult:
        """Aggregate ATT(g,t) as R ``did::aggte`` does (``simple``, ``group``, ``dynamic``, ``calendar``).

        Notes
        -----
        Weights are cohort shares of all units. ``simple``: post-treatment cells weighted by
        cohort size. ``group``: each cohort's mean post-treatment effect, then weighted by
        cohort size (a cohort without any post-treatment cell, e.g. no control left, is left
        out rather than counted as a zero effect). ``dynamic``: by event time ``e = t - g`` (pre-periods included), overall
        = mean over ``e >= 0``. ``calendar``: by period, overall = mean over periods.
        Influence functions include the estimation of the weights, so SEs match ``did``.
        """
        gt = self.group_time
        groups, times, att = gt["group"].to_numpy(), gt["time"].to_numpy(), gt["att"].to_numpy()
        psi = self.influence
        cohorts = np.array(sorted(set(groups)))
        share = {g: float(np.mean(self.unit_cohort == g)) for g in cohorts}
        pg = np.array([share[g] for g in groups])
        n_t = int((self.unit_cohort > 0).sum())
        n_c = self.n_units - n_t

        def combine(idx: np.ndarray, weights: np.ndarray, wif: np.ndarray | None) -> tuple[float, np.ndarray]:
            est = float(att[idx] @ weights)
            inf = psi[:, idx] @ weights
            if wif is not None:
                inf = inf + wif @ att[idx]
            return est, inf

        if kind == "simple":
            keep = np.flatnonzero(groups <= times)
            est, inf = combine(keep, pg[keep] / pg[keep].sum(), self._wif(keep, pg, groups))
            return AggregateResult(kind, self._row("simple", est, inf, n_t, n_c))
        if kind == "group":
            comps, infs, ests = [], [], []
            cohorts = np.array([g for g in cohorts if np.any((groups == g) & (g <= times))])  # no invented zeros
            for g in cohorts:
                keep = np.flatnonzero((groups == g) & (g <= times))
                est, inf = combine(keep, pg[keep] / pg[keep].sum(), None)
                ests.append(est)
                infs.append(inf)
                comps.append(self._row(f"group {int(g)}", est, inf, int((self.unit_cohort == g).sum()), n_c))
            pgg = np.array([share[g] for g in cohorts])
            wif = self._wif(np.arange(len(cohorts)), pgg, cohorts)
            inf_mat = np.column_stack(infs)
            overall_inf = inf_mat @ (pgg / pgg.sum()) + wif @ np.array(ests)
            overall = float(np.array(ests) @ (pgg / pgg.sum()))
            return AggregateResult(kind, self._row("group", overall, overall_inf, n_t, n_c), tuple(comps))
        if kind == "dynamic":
            event = times - groups
            comps, infs, ests, es = [], [], [], []
            for e in sorted(set(event)):
                keep = np.flatnonzero(event == e)
                est, inf = combine(keep, pg[keep] / pg[keep].sum(), self._wif(keep, pg, groups))
                ests.append(est)
                infs.append(inf)
                es.append(e)
                comps.append(self._row(f"event time {int(e)}", est, inf, n_t, n_c))
            pos = np.array(es) >= 0
            inf_mat = np.column_stack(infs)[:, pos]
            overall = float(np.mean(np.array(ests)[pos]))
            return AggregateResult(kind, self._row("dynamic", overall, inf_mat.mean(axis=1), n_t, n_c), tuple(comps))
        if kind == "calendar":
            comps, infs, ests = [], [], []
            for t in sorted(set(times[times >= cohorts.min()])):
                keep = np.flatnonzero((times == t) & (groups <= t))
                est, inf = combine(keep, pg[keep] / pg[keep].sum(), self._wif(keep, pg, groups))
                ests.append(est)
                infs.append(inf)
                comps.append(self._row(f"period {t}", est, inf, n_t, n_c))
            overall = float(np.mean(ests))
            inf = np.column_stack(infs).mean(axis=1)
            return AggregateResult(kind, self._row("calendar", overall, inf, n_t, n_c), tuple(comps))
        raise DataError(f"unknown aggregation {kind!r}; use simple, group, dynamic or calendar")


@dataclass(frozen=True)
class CallawaySantAnna:
    """Group-time ATT(g,t) for staggered adoption, without covariates.

    Parameters
    ----------
    outcome, unit, time : str
        Column roles. ``time`` must be numeric and evenly spaced (e.g. a year, or a
        month number).
    cohort : str
        The period a unit is first treated; 0 (or missing) for never treated.
    control_group : {"never_treated", "not_yet_treated"}
        Units never treated, or also those not treated by the period compared.
    estimation : {"dr", "or"}
        Doubly robust or outcome regression; without covariates both reduce to the
        same difference in mean changes and the same influence function.
    anticipation : int
        Periods before its start in which a cohort may already be affected (R ``did``'s
        ``anticipation``): post-treatment cells compare with period ``g - 1 - anticipation``
        and not-yet-treated controls must start after ``t + anticipation``.
    cluster : str, optional
        Column (constant within unit) to cluster standard errors by, e.g. the system an
        NHS trust belongs to when systems were designated together; influence functions
        are summed within clusters and intervals use t with ``G - 1`` degrees of freedom.

    Notes
    -----
    Estimand: ATT(g,t), the average effect in period t on units first treated in
    period g, under parallel trends between cohort g and its controls and no
    anticipation beyond ``anticipation`` periods. Post-treatment cells compare period t
    with g-1-anticipation; pre-treatment cells compare t with t-1 ("varying" base
    period, R ``did``'s default), so they test parallel trends period by period. Panels
    must be balanced. Units treated in the first period (plus ``anticipation``) are
    dropped (they have no clean pre-period); units first treated after the last period
    count as never treated, as R ``did`` does. Unit-level standard errors assume units
    are independent; when treatment was assigned to groups of units (trusts designated
    with their system), cluster by that group.
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    cohort: str = "cohort"
    control_group: ControlGroup = "never_treated"
    estimation: Literal["dr", "or"] = "dr"
    alpha: float = 0.05
    anticipation: int = 0
    cluster: str | None = None

    def fit(self, data: Design | pd.DataFrame) -> CSResult:
        """ATT(g,t) on a :class:`~evallib.methods.base.design.Design` (its units' own starts, periods numbered
        from 1) or on long rows with the column roles named in the settings.
        """
        if isinstance(data, Design):
            return replace(self, outcome="value", unit="unit", time="period", cohort="cohort", cluster=None).fit(
                _long_with_cohorts(data)
            )
        cols = list(
            dict.fromkeys([self.outcome, self.unit, self.time, self.cohort, *([self.cluster] if self.cluster else [])])
        )
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(
                f"Callaway-Sant'Anna: missing {'column' if len(missing) == 1 else 'columns'} {', '.join(missing)}"
            )
        if self.control_group not in ("never_treated", "not_yet_treated"):
            raise DataError(f"control_group {self.control_group!r}: use never_treated or not_yet_treated")
        d = data[cols].copy()
        d[self.cohort] = d[self.cohort].fillna(0)
        if d.groupby(self.unit)[self.cohort].nunique().max() > 1:
            raise DataError(f"Callaway-Sant'Anna: {self.cohort!r} must be constant within each unit")
        wide = d.pivot(index=self.unit, columns=self.time, values=self.outcome)
        if wide.isna().any().any():
            raise DataError("Callaway-Sant'Anna: the panel must be balanced (every unit in every period)")
        periods = np.array(wide.columns, dtype=float)
        if self.anticipation < 0 or int(self.anticipation) != self.anticipation:
            raise DataError(
                f"Callaway-Sant'Anna: anticipation must be a whole number of periods >= 0, not {self.anticipation}"
            )
        step = float(np.min(np.diff(periods))) if len(periods) > 1 else 1.0
        ahead = self.anticipation * step  # anticipation in units of the time column
        cohort = d.groupby(self.unit)[self.cohort].first().reindex(wide.index).to_numpy(float)
        cohort[cohort > periods[-1]] = 0.0  # first treated after the data end: never treated here
        keep = ~((cohort > 0) & (cohort <= periods[0] + ahead))  # no clean pre-period
        wide, cohort = wide[keep], cohort[keep]
        codes = None
        if self.cluster:
            if d.groupby(self.unit)[self.cluster].nunique(dropna=False).max() > 1:
                raise DataError(
                    f"Callaway-Sant'Anna: cluster column {self.cluster!r} must be constant within each unit"
                )
            cl = d.groupby(self.unit)[self.cluster].first().reindex(wide.index)
            if cl.isna().any():
                raise DataError(f"Callaway-Sant'Anna: cluster column {self.cluster!r} has missing values")
            codes = pd.factorize(cl)[0]
            if codes.max() < 1:
                raise DataError("Callaway-Sant'Anna: clustered standard errors need at least two clusters")
        y = wide.to_numpy(float)
        n = len(y)
        groups = np.array(sorted(set(cohort[cohort > 0])))
        if groups.size == 0:
            raise DataError("Callaway-Sant'Anna: no treated cohort")
        if self.control_group == "never_treated" and not (cohort == 0).any():
            raise DataError("Callaway-Sant'Anna: no never-treated units; use control_group='not_yet_treated'")
        pos = {p: i for i, p in enumerate(periods)}
        cells, infs = [], []
        for g in groups:
            for ti in range(1, len(periods)):
                t = periods[ti]
                before = periods[periods < g - ahead]
                if t >= g and before.size == 0:
                    continue
                base = pos[before.max()] if t >= g else ti - 1
                treated = cohort == g
                if self.control_group == "never_treated":
                    control = cohort == 0
                else:  # not yet treated, nor anticipating, by period t
                    control = (cohort == 0) | ((cohort > t + ahead) & (cohort != g))
                if not control.any():
                    continue
                dy = y[:, ti] - y[:, base]
                n_sub = treated.sum() + control.sum()
                p = treated.sum() / n_sub
                mu1, mu0 = dy[treated].mean(), dy[control].mean()
                inf = np.zeros(n)
                inf[treated] = (dy[treated] - mu1) / p
                inf[control] = -(dy[control] - mu0) / (1 - p)
                cells.append((g, t, mu1 - mu0))
                infs.append(inf * n / n_sub)  # rescaled to the full sample, as did does
        gt = pd.DataFrame(cells, columns=["group", "time", "att"])
        psi = np.column_stack(infs)
        res = CSResult(
            group_time=gt,
            influence=psi,
            unit_cohort=cohort,
            control_group=self.control_group,
            outcome=self.outcome,
            alpha=self.alpha,
            n_units=n,
            cluster_codes=codes,
            anticipation=int(self.anticipation),
        )
        gt["std_error"] = res.std_errors(psi)
        return res


def _long_with_cohorts(design: Design) -> pd.DataFrame:
    """A design's rows with periods numbered 1..T and each unit's first treated period (0: never treated)."""
    a = design.arrays()
    starts = design.unit_starts or tuple(design.start if t else None for t in design.treated)
    position = {p: i + 1 for i, p in enumerate(design.periods)}
    cohort = np.array([0 if s is None else position[s] for s in starts])
    return pd.DataFrame({"unit": a.units[a.unit], "period": a.time + 1, "value": a.y, "cohort": cohort[a.unit]})
