"""What a design could have detected: the minimum detectable effect of a placebo-in-space test.

Beside every null result a report says how large an effect the same test, on the same
comparison units, would have found most of the time. It is read off the placebo
distribution itself, so it needs no model of the errors.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from evallib.errors import DataError
from evallib.methods.inference.decision import rank_critical_value


def placebo_mde(
    placebo_estimates: np.ndarray,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    direction: Literal["decrease", "increase", "either"] = "either",
    skip_first: bool = True,
) -> float:
    """Smallest effect (on the estimate's scale) the placebo test detects with probability ``power``.

    Parameters
    ----------
    placebo_estimates : array
        The estimate under each placebo assignment (the real assignment first, left out when
        ``skip_first``).
    alpha : float
        The test's level.
    power : float
        Required probability of rejecting.
    direction : {"decrease", "increase", "either"}
        The sign of the effect: ``"either"`` gives the larger of the two magnitudes.

    Returns
    -------
    float
        A magnitude (non-negative); ``inf`` when the test can never reject (fewer than
        ``1/alpha - 1`` placebo assignments), NaN without placebos.

    Notes
    -----
    The test rejects when ``p <= alpha``, i.e. when ``|estimate|`` exceeds ``q``, the
    ``floor(alpha (n + 1))``-th largest absolute placebo estimate (the rank test's critical value). If a true effect
    ``tau`` shifts the estimate and the noise ``e`` is distributed as the placebo estimates
    (what the test itself assumes under the null), the test rejects with probability
    ``P(|tau + e| >= q)``; for an increase that is about ``P(e >= q - tau)``, at least ``power``
    when ``tau >= q - Q_e(1 - power)``; for a decrease ``|tau| >= q + Q_e(power)``. Effects that
    vary across units, or noise that grows with the effect, are not covered.
    """
    e = np.asarray(placebo_estimates, float)
    e = e[1:] if skip_first else e
    e = e[np.isfinite(e)]
    if e.size == 0:
        return float("nan")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise DataError("placebo_mde: alpha and power must lie between 0 and 1")
    # The rank test rejects when p = (1 + #{|e| >= |estimate|}) / (n + 1) <= alpha, i.e. when at most
    # floor(alpha (n + 1)) - 1 placebos are as large: |estimate| beyond the rank test's critical value.
    q = float(rank_critical_value(e, e.size + 1, alpha))
    if not math.isfinite(q):
        return float("inf")  # the rank test's smallest p-value, 1 / (n + 1), cannot reject
    up = q - float(np.quantile(e, 1 - power))
    down = q + float(np.quantile(e, power))
    sides = {"increase": up, "decrease": down, "either": max(up, down)}
    value = sides[direction]
    return max(0.0, value) if math.isfinite(value) else value
