"""Rate model: Poisson regression with unit and period fixed effects and an exposure offset.

Counts of admissions or attendances are naturally modelled as rates per head of
population. :class:`PoissonDiD` estimates the DiD effect as a rate ratio: how much
the treated units' rate changed relative to the comparison units'. Fixed effects
are absorbed by weighted demeaning inside IRLS (no dummy columns), so hundreds of
placebo refits stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from evallib.errors import DataError
from evallib.methods.did import MIN_TREATED_FOR_BOOTSTRAP
from evallib.methods.inference import treatment_assignments
from evallib.methods.panel import as_binary, prepare_panel
from evallib.methods.results import Estimate, tidy_frame


@dataclass(frozen=True)
class RateRatioResult:
    """Read-only result of :meth:`PoissonDiD.fit`; ``row.estimate`` is the rate ratio."""

    row: Estimate
    log_rate_ratio: float
    iterations: int
    placebo_estimates: np.ndarray | None = field(default=None, repr=False)

    def tidy(self) -> pd.DataFrame:
        return tidy_frame([self.row])

    @property
    def estimate(self) -> float:
        return self.row.estimate


def _weighted_demean(
    x: np.ndarray, w: np.ndarray, unit: np.ndarray, time: np.ndarray, n_u: int, n_t: int, tol: float = 1e-11
) -> np.ndarray:
    """Remove weighted unit and period means from the columns of ``x`` (alternating projections)."""
    x = x.copy()
    wu = np.bincount(unit, weights=w, minlength=n_u)
    wt = np.bincount(time, weights=w, minlength=n_t)
    for _ in range(10_000):
        change = 0.0
        for codes, tot, n in ((unit, wu, n_u), (time, wt, n_t)):
            for j in range(x.shape[1]):
                m = np.bincount(codes, weights=w * x[:, j], minlength=n) / tot
                x[:, j] -= m[codes]
                change = max(change, float(np.abs(m).max()))
        if change < tol:
            break
    return x


def fit_poisson_fe(
    y: np.ndarray,
    d: np.ndarray,
    unit: np.ndarray,
    time: np.ndarray,
    offset: np.ndarray | None = None,
    *,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
    """IRLS for ``log E[y] = offset + unit + period + beta * d``.

    Returns ``beta``, fitted means, the weighted-demeaned regressor, the working
    weights and the number of iterations.
    """
    n_u, n_t = unit.max() + 1, time.max() + 1
    off = np.zeros_like(y, dtype=float) if offset is None else offset
    mu = (y + y.mean()) / 2
    eta = np.log(mu)
    beta = 0.0
    dev_old = np.inf
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        z = eta - off + (y - mu) / mu
        w = mu
        zd = _weighted_demean(np.column_stack([z, d]), w, unit, time, n_u, n_t)
        z_t, d_t = zd[:, 0], zd[:, 1]
        beta = float((w * d_t) @ z_t / ((w * d_t) @ d_t))
        eta = off + (z - (z_t - beta * d_t))
        mu = np.exp(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = 2 * np.sum(np.where(y > 0, y * np.log(y / mu), 0.0) - (y - mu))
        if abs(dev - dev_old) / (0.1 + abs(dev)) < tol:
            break
        dev_old = dev
    d_t = _weighted_demean(d[:, None].astype(float), mu, unit, time, n_u, n_t)[:, 0]
    return beta, mu, d_t, mu, it


def fit_poisson_fe_balanced(
    y: np.ndarray, d: np.ndarray, offset: np.ndarray | None = None, *, tol: float = 1e-10, max_iter: int = 500
) -> np.ndarray:
    """Poisson two-way FE coefficients for many treatment indicators at once.

    ``y`` and ``offset`` are ``(units, periods)``; ``d`` is ``(assignments, units,
    periods)``. Unit and period effects have closed forms given the rest, so each
    iteration updates them exactly and takes a Newton step on ``beta`` (profiled
    information), for every assignment in one array operation. 0/1 indicators only.
    """
    off = np.zeros_like(y, dtype=float) if offset is None else offset
    a = d.shape[0]
    beta = np.zeros(a)
    alpha = np.log(y.sum(axis=1) / np.exp(off).sum(axis=1))[None, :, None]
    row, col = y.sum(axis=1)[None, :, None], y.sum(axis=0)[None, None, :]
    # mu is kept up to date multiplicatively: each update changes one set of effects.
    mu = np.exp(alpha + off[None]) * np.ones_like(d)
    for _ in range(max_iter):
        mu *= col / mu.sum(axis=1, keepdims=True)
        mu *= row / mu.sum(axis=2, keepdims=True)
        score = (d * (y[None] - mu)).sum(axis=(1, 2))
        # Information for beta with the unit effects profiled out (the period effects' share is
        # small and absorbed by the next sweep): sum mu d^2 - sum_i (sum_t mu d)^2 / sum_t mu.
        md = (mu * d).sum(axis=2)
        info = md.sum(axis=1) - (md**2 / mu.sum(axis=2)).sum(axis=1)  # d is 0/1, so d^2 = d
        step = score / np.maximum(info, 1e-300)
        beta = beta + step
        mu *= 1 + d * np.expm1(step)[:, None, None]
        if np.max(np.abs(step)) < tol:
            break
    return beta


@dataclass(frozen=True)
class PoissonDiD:
    """DiD as a rate ratio: Poisson regression with unit and period fixed effects.

    Parameters
    ----------
    outcome : str
        Count column.
    unit, time, treated, post : str
        Column roles, as for :class:`evallib.methods.did.DiD`.
    exposure : str, optional
        Population or other exposure; enters as ``log(exposure)`` offset.
    inference : {"auto", "placebo_in_space", "cluster_cr1", "model_based"}
        ``auto``: placebo-in-space below :data:`evallib.methods.did.MIN_TREATED_FOR_BOOTSTRAP`
        treated units, cluster-robust CR1 otherwise.
    n_draws : int
        Random placebo assignments when several units are treated (each is a refit).

    Notes
    -----
    Estimand: the ratio of the treated units' post-period event rate to the rate they
    would have had, had it moved like the comparison units' rate (a multiplicative
    parallel-trends assumption on the rate scale). Poisson quasi-likelihood is
    consistent without the variance equalling the mean, so overdispersion affects only
    the SEs, which are cluster-robust (or placebo-based). ``std_error`` is on the log
    scale. Placebo inference refits the model with each comparison unit treated in
    turn; its interval is the estimate minus the placebo spread (Conley & Taber 2011).
    """

    outcome: str
    unit: str
    time: str
    treated: str
    post: str
    exposure: str | None = None
    inference: Literal["auto", "placebo_in_space", "cluster_cr1", "model_based"] = "auto"
    n_draws: int = 199
    seed: int = 2015
    alpha: float = 0.05
    outcome_label: str = ""

    def fit(self, data: pd.DataFrame) -> RateRatioResult:
        extra = [self.post] + ([self.exposure] if self.exposure else [])
        pa = prepare_panel(data, self.outcome, self.unit, self.time, self.treated, "identity", extra=extra)
        y = pa.y
        if (y < 0).any():
            raise DataError(f"PoissonDiD: {self.outcome!r} must be non-negative counts")
        offset = None
        if self.exposure:
            e = pa.extra[self.exposure].astype(float)
            if not np.all(e > 0):
                raise DataError(f"PoissonDiD: exposure {self.exposure!r} must be positive")
            offset = np.log(e)
        unit, units, time = pa.unit, pa.units, pa.time
        post = as_binary(pa.extra[self.post], self.post)
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
        if method == "placebo_in_space":
            # Placebo refits: the Poisson estimate is not linear in per-unit values, so each is refitted.
            assign = treatment_assignments(is_t, self.n_draws, self.seed)
            n_periods = time.max() + 1
            if len(y) == n_units * n_periods:  # balanced: all assignments in one vectorised fit
                shape = (n_units, n_periods)
                y_m = np.zeros(shape)
                y_m[unit, time] = y
                off_m = None
                if offset is not None:
                    off_m = np.zeros(shape)
                    off_m[unit, time] = offset
                post_t = np.zeros(n_periods, bool)
                post_t[time[post]] = True
                d_all = (assign[:, :, None] & post_t[None, None, :]).astype(float)
                ests = fit_poisson_fe_balanced(y_m, d_all, off_m)
            else:
                ests = np.array(
                    [fit_poisson_fe(y, (a[unit] & post).astype(float), unit, time, offset)[0] for a in assign]
                )
            p = float(np.mean(np.abs(ests) >= abs(beta) - 1e-12))
            se = float(np.std(ests, ddof=1))
            # Interval in the manner of Conley & Taber (2011): the site's estimate minus the
            # spread of the placebo estimates (refitting under every shifted null would
            # multiply the cost by the size of a grid).
            upper_q, lower_q = np.quantile(ests, [1 - self.alpha / 2, self.alpha / 2])
            lo, hi = beta - upper_q, beta - lower_q
            placebo = ests
        else:
            z = stats.norm.ppf(1 - self.alpha / 2)
            lo, hi = beta - z * se, beta + z * se
            p = float(2 * stats.norm.sf(abs(beta / se)))
        row = Estimate(
            outcome=self.outcome_label or self.outcome,
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
        return RateRatioResult(row=row, log_rate_ratio=float(beta), iterations=iters, placebo_estimates=placebo)
