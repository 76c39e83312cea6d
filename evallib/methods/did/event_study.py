"""Event studies: DiD effects by period relative to a common start, with a joint test of the leads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, ClassVar, Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.methods.base.arrays import Transform, prepare_panel, within_transform
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate, EstimatorResult
from evallib.methods.did.twfe import MIN_TREATED_FOR_BOOTSTRAP
from evallib.methods.inference.permutation import mc_error, permutation_test

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class EventStudyResult(EstimatorResult):
    """Read-only event-study result: one row per event time (the reference excluded).

    ``pretrend`` is the joint test that every lead (pre-period event time) is zero. The headline is the
    first post-period event time. ``placebo_draws`` is the number of random assignments the placebo p-values rank
    the site among when they were sampled (several treated units), 0 when every unit was tried; ``p_value_mc_error``
    is the headline p-value's Monte Carlo standard error, and :meth:`term_mc_errors` every event time's (the
    summary and the notebook table show them beside the p-values).
    """

    headline_term: ClassVar[str | None] = "event_time_0"

    rows: tuple[Estimate, ...]
    event_times: tuple[int, ...]
    reference: int
    pretrend: Estimate
    placebo: np.ndarray | None = field(default=None, repr=False)
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    def with_scale(self, scale: str) -> EventStudyResult:
        """The same result with its rows' ``scale`` relabelled (e.g. after aggregating logs)."""
        rows = tuple(Estimate(**{**r.__dict__, "scale": scale}) for r in self.rows)
        return replace(self, rows=rows)

    def term_mc_errors(self) -> dict[str, float]:
        """Every event time's sampled placebo p-value's Monte Carlo standard error, by term; empty when every
        unit was tried. All of them rank the site among the same random assignments, so each has its own error
        (:func:`~evallib.methods.inference.permutation.mc_error` of its p-value), not only the headline's; a
        withheld (NaN) p-value has none, as its error would give it back.
        """
        if self.placebo_draws <= 0:
            return {}
        return {
            r.term: mc_error(r.p_value, self.placebo_draws)
            for r in self.rows
            if r.inference.startswith("placebo") and np.isfinite(r.p_value)
        }

    @property
    def leads(self) -> tuple[Estimate, ...]:
        """The pre-period (negative event time) estimates: the leads that test parallel trends."""
        return tuple(r for r, e in zip(self.rows, self.event_times, strict=True) if e < 0)

    def plot(self, *, ax: Axes | None = None, title: str = "", ylabel: str = "effect") -> Figure:
        """Effects by event time with their intervals on ``ax`` (a new figure when None); returns the Figure."""
        from evallib.methods.base.plotting import plot_event_study

        return plot_event_study(self, ax=ax, title=title, ylabel=ylabel)


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
    bin_periods : int
        With a design: average each unit's values within whole bins of this many periods relative to the
        start first (12 for years of monthly data); incomplete bins are dropped.
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
    staggered adoption use :class:`evallib.methods.did.staggered.CallawaySantAnna`.
    """

    outcome: str = "value"
    unit: str = "unit"
    time: str = "period"
    treated: str = "treated"
    start: object = None
    leads: int | None = None
    lags: int | None = None
    reference: int = -1
    transform: Transform = "identity"
    inference: Literal["auto", "placebo_in_space", "cluster_cr1"] = "auto"
    n_draws: int = 999
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""
    bin_periods: int = 1

    def fit(self, data: Design | pd.DataFrame) -> EventStudyResult:
        """Effects by event time on a :class:`~evallib.methods.base.design.Design` (or long rows with the
        column roles and ``start`` named in the settings).
        """
        if isinstance(data, Design):
            return self._fit_design(data)
        if self.start is None:
            raise DataError("EventStudy: give the start (the first treated value of the time column)")
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
        n_units, n_periods, n_obs = len(units), len(periods), len(pa.y)
        is_t = np.zeros(n_units, bool)
        is_t[np.unique(unit_codes[treated])] = True
        bins = (binned[:, None] == np.array(event_times)[None]).astype(float)  # (periods, event times)
        fast = _balanced_fit(pa.y, unit_codes, time_codes, treated, is_t, bins)
        if fast is not None:
            beta, xtx, resid_scores = fast
        else:
            X = np.column_stack([(treated & (binned[time_codes] == e)).astype(float) for e in event_times])
            xy = within_transform(np.column_stack([pa.y, X]), unit_codes, time_codes)
            y_w, X_w = xy[:, 0], xy[:, 1:]
            xtx = X_w.T @ X_w
            beta = np.linalg.solve(xtx, X_w.T @ y_w)

            def resid_scores(b: np.ndarray) -> np.ndarray:
                resid = y_w - X_w @ b
                return np.vstack(
                    [np.bincount(unit_codes, weights=X_w[:, j] * resid, minlength=n_units) for j in range(len(b))]
                ).T

        n_treated = int(is_t.sum())
        method = self.inference
        if method == "auto":
            method = "placebo_in_space" if n_treated < MIN_TREATED_FOR_BOOTSTRAP else "cluster_cr1"
        lead_idx = [i for i, e in enumerate(event_times) if e < 0]
        placebo, draws = None, 0
        if method == "placebo_in_space":
            if n_obs != n_units * n_periods:
                raise DataError("EventStudy: placebo inference needs a balanced panel; drop incomplete units first")
            y = np.full((n_units, n_periods), np.nan)
            y[unit_codes, time_codes] = pa.y
            ref = y[:, binned == self.reference].mean(axis=1)
            profile = np.column_stack([y[:, binned == e].mean(axis=1) - ref for e in event_times])
            perm = permutation_test(profile, is_t, n_draws=self.n_draws, seed=self.seed, alpha=self.alpha)
            se, lo_ci, hi_ci, p = perm.std_error, perm.ci_low, perm.ci_high, perm.p_value
            placebo, draws = perm.placebo, perm.placebo_draws
            if lead_idx:
                leads = placebo[:, lead_idx]
                cov = np.atleast_2d(np.cov(leads, rowvar=False))
                inv = np.linalg.pinv(cov)
                w_all = np.einsum("ij,jk,ik->i", leads, inv, leads)
                w_obs = float(beta[lead_idx] @ inv @ beta[lead_idx])
                real = perm.is_real if perm.is_real is not None else np.zeros(len(w_all), bool)
                # The real assignment counts explicitly (its row equals w_obs only up to rounding).
                pre_stat, pre_p = w_obs, float((real.sum() + np.sum(w_all[~real] >= w_obs)) / len(w_all))
            pre_inf = "placebo_in_space"
        elif method == "cluster_cr1":
            scores = resid_scores(beta)
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
        head = event_times.index(0) if 0 in event_times else 0
        return EventStudyResult(
            rows=rows,
            event_times=tuple(event_times),
            reference=self.reference,
            pretrend=pretrend,
            placebo=placebo,
            placebo_draws=draws,
            p_value_mc_error=mc_error(float(p[head]), draws),
        )

    def _fit_design(self, design: Design) -> EventStudyResult:
        """Bin the design's periods into whole bins of ``bin_periods`` relative to its start (each unit's mean
        on the analysis scale within a bin: a year's mean removes seasonality), then fit by event time.
        """
        if isinstance(design.periods, pd.DatetimeIndex) and isinstance(design.start, pd.Timestamp):
            # Calendar positions, so that a period missing from the data does not shift the bins.
            if design.periods_per_year == 52:  # weekly: whole weeks from the start
                pos = np.floor_divide(np.asarray((design.periods - design.start).days), 7)
            else:
                step = 12 // design.periods_per_year  # months per period
                months = (design.periods.year - design.start.year) * 12 + (design.periods.month - design.start.month)
                pos = np.floor_divide(np.asarray(months), step)
        else:
            pos = np.arange(design.n_periods) - int(np.argmax(design.post))
        a = design.arrays(self.transform)
        d = pd.DataFrame({"unit": a.units[a.unit], "_y": a.y, "treated": a.treated.astype(int)})
        d["event_time"] = np.floor_divide(pos[a.time], self.bin_periods)
        size = d.groupby(["unit", "event_time"])["_y"].transform("size")
        d = d[size == self.bin_periods]
        binned = d.groupby(["unit", "event_time"], as_index=False).agg(
            value=("_y", "mean"), treated=("treated", "first")
        )
        settings = replace(
            self,
            outcome="value",
            unit="unit",
            time="event_time",
            treated="treated",
            start=0,
            transform="identity",
            bin_periods=1,
            outcome_label=self.outcome_label or design.outcome,
        )
        return settings.fit(binned).with_scale("log" if self.transform == "log" else "level")


def _balanced_fit(
    y: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    treated: np.ndarray,
    is_t: np.ndarray,
    bins: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]] | None:
    """The event-study regression on a balanced panel without its ``(units x periods) x event times`` design.

    On a balanced panel the two-way within transform of ``treated_i x bin_e(t)`` is ``dc_i Bc_te`` (the treated
    indicator and the bin indicators, each centred), so ``X'X = (dc'dc) Bc'Bc`` and ``X'y = Bc' Yw' dc`` with
    ``Yw`` the double-demeaned outcome matrix: time and memory linear in units x periods. Returns the coefficients,
    ``X'X`` and a function giving each unit's score (``units x event times``) at given coefficients; ``None`` when
    the panel is unbalanced or a unit's treatment changes over time (the general path then applies).
    """
    n_u, n_t = len(is_t), bins.shape[0]
    if len(y) != n_u * n_t or not np.array_equal(treated, is_t[unit]):
        return None
    flat = unit * n_t + time
    if np.bincount(flat, minlength=n_u * n_t).max() != 1:
        return None
    yw = np.empty(n_u * n_t)
    yw[flat] = y
    yw = yw.reshape(n_u, n_t)
    yw -= yw.mean(axis=1, keepdims=True)
    yw -= yw.mean(axis=0, keepdims=True)
    dc = is_t - is_t.mean()
    bc = bins - bins.mean(axis=0)
    xtx = float(dc @ dc) * (bc.T @ bc)
    beta = np.linalg.solve(xtx, bc.T @ (yw.T @ dc))

    def resid_scores(b: np.ndarray) -> np.ndarray:
        resid = yw - dc[:, None] * (bc @ b)[None]
        return dc[:, None] * (resid @ bc)

    return beta, xtx, resid_scores
