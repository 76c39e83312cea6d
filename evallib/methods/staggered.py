"""Staggered adoption: Callaway & Sant'Anna (2021) group-time effects and their aggregations.

ICSs were designated in waves (2017, 2018, 2019, ...). A two-way fixed-effects
regression with staggered adoption compares later-treated units with
already-treated ones and is biased when effects grow over time; the group-time
ATT(g,t) of Callaway and Sant'Anna only ever compares a cohort with units not
(yet) treated. Analytic standard errors come from influence functions, exactly
as R's ``did`` package computes them without the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.methods.results import Estimate, tidy_frame

ControlGroup = Literal["never_treated", "not_yet_treated"]
Aggregation = Literal["simple", "group", "dynamic", "calendar"]


@dataclass(frozen=True)
class AggregateResult:
    """An aggregation of ATT(g,t): the overall effect and its components.

    ``overall`` is one tidy row; ``components`` has one row per group, event time
    or calendar period (``term`` says which), all with analytic SEs.
    """

    kind: str
    overall: Estimate
    components: tuple[Estimate, ...] = ()

    def tidy(self) -> pd.DataFrame:
        return tidy_frame([self.overall, *self.components])


@dataclass(frozen=True)
class CSResult:
    """Group-time average treatment effects with their influence functions (read-only)."""

    group_time: pd.DataFrame = field(repr=False)  # group, time, att, std_error
    influence: np.ndarray = field(repr=False)  # n_units x n_cells
    unit_cohort: np.ndarray = field(repr=False)  # cohort of each unit (0 = never treated)
    control_group: str
    outcome: str
    alpha: float
    n_units: int
    scale: str = "level"

    def _row(self, term: str, est: float, inf: np.ndarray, n_treated: int, n_control: int) -> Estimate:
        se = float(np.sqrt(np.mean(inf**2) / self.n_units))
        z = stats.norm.ppf(1 - self.alpha / 2)
        return Estimate(
            outcome=self.outcome,
            term=term,
            estimate=float(est),
            std_error=se,
            ci_low=float(est - z * se),
            ci_high=float(est + z * se),
            p_value=float(2 * stats.norm.sf(abs(est / se))) if se > 0 else float("nan"),
            method=f"did_callaway_santanna_{self.control_group}",
            inference="analytic_influence_function",
            scale=self.scale,
            n_treated=n_treated,
            n_control=n_control,
        )

    def tidy(self) -> pd.DataFrame:
        """One row per ATT(g,t), term ``ATT(g,t)``."""
        n_t = int((self.unit_cohort > 0).sum())
        rows = [
            self._row(f"ATT({int(g)},{int(t)})", a, self.influence[:, k], n_t, self.n_units - n_t)
            for k, (g, t, a) in enumerate(self.group_time[["group", "time", "att"]].itertuples(index=False))
        ]
        return tidy_frame(rows)

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
        cohort size. ``dynamic``: by event time ``e = t - g`` (pre-periods included), overall
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

    Notes
    -----
    Estimand: ATT(g,t), the average effect in period t on units first treated in
    period g, under parallel trends between cohort g and its controls and no
    anticipation. Post-treatment cells compare period t with g-1; pre-treatment
    cells compare t with t-1 ("varying" base period, R ``did``'s default), so they
    test parallel trends period by period. Panels must be balanced. Units already
    treated in the first period are dropped (they have no pre-period).
    """

    outcome: str
    unit: str
    time: str
    cohort: str
    control_group: ControlGroup = "never_treated"
    estimation: Literal["dr", "or"] = "dr"
    alpha: float = 0.05

    def fit(self, data: pd.DataFrame) -> CSResult:
        cols = [self.outcome, self.unit, self.time, self.cohort]
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(f"Callaway-Sant'Anna: missing column(s) {', '.join(missing)}")
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
        cohort = d.groupby(self.unit)[self.cohort].first().reindex(wide.index).to_numpy(float)
        keep = ~((cohort > 0) & (cohort <= periods[0]))  # treated from the start: no pre-period
        wide, cohort = wide[keep], cohort[keep]
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
                base = pos[periods[periods < g].max()] if t >= g else ti - 1
                treated = cohort == g
                if self.control_group == "never_treated":
                    control = cohort == 0
                else:
                    control = (cohort == 0) | ((cohort > t) & (cohort != g))
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
        gt["std_error"] = np.sqrt(np.mean(psi**2, axis=0) / n)
        return CSResult(
            group_time=gt,
            influence=psi,
            unit_cohort=cohort,
            control_group=self.control_group,
            outcome=self.outcome,
            alpha=self.alpha,
            n_units=n,
        )
