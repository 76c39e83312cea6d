"""Random-effects pooling of site estimates (DerSimonian-Laird), for the programme view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from evallib.errors import DataError


@dataclass(frozen=True)
class PooledEstimate:
    """A random-effects pooled estimate with its heterogeneity statistics."""

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    tau2: float
    i2: float
    q: float
    k: int


def random_effects(estimates: np.ndarray, std_errors: np.ndarray, alpha: float = 0.05) -> PooledEstimate:
    """DerSimonian-Laird random-effects meta-analysis.

    Notes
    -----
    Estimand: the mean of the distribution of true site effects. Each site's
    estimate is weighted by ``1 / (se^2 + tau^2)``, where the between-site variance
    ``tau^2 = max(0, (Q - (k - 1)) / (S1 - S2 / S1))`` with ``Q`` Cochran's statistic
    and ``S1, S2`` the sums of the fixed-effect weights and their squares;
    ``I^2 = max(0, (Q - (k - 1)) / Q)`` is the share of variation that is between
    sites. Assumes the site estimates are independent and roughly normal.
    """
    y = np.asarray(estimates, float)
    se = np.asarray(std_errors, float)
    ok = np.isfinite(y) & np.isfinite(se) & (se > 0)
    y, se = y[ok], se[ok]
    k = len(y)
    if k == 0:
        raise DataError("random_effects: no site has a finite estimate and standard error")
    w = 1 / se**2
    fixed = float(w @ y / w.sum())
    q = float(w @ (y - fixed) ** 2)
    s1, s2 = w.sum(), (w**2).sum()
    tau2 = max(0.0, (q - (k - 1)) / (s1 - s2 / s1)) if k > 1 else 0.0
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    w_re = 1 / (se**2 + tau2)
    est = float(w_re @ y / w_re.sum())
    se_re = float(np.sqrt(1 / w_re.sum()))
    z = stats.norm.ppf(1 - alpha / 2)
    return PooledEstimate(
        estimate=est,
        std_error=se_re,
        ci_low=est - z * se_re,
        ci_high=est + z * se_re,
        p_value=float(2 * stats.norm.sf(abs(est / se_re))),
        tau2=tau2,
        i2=i2,
        q=q,
        k=k,
    )
