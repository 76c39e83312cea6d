"""Sensitivity of a DiD conclusion to violations of parallel trends: Rambachan and Roth's relative-magnitude bound.

How large would the post-period departure from parallel trends have to be, relative to the
largest departure seen before the start, to overturn the conclusion? A breakdown value of 2
means the conclusion stands unless trends diverged after the start twice as fast as they ever
did before it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from evallib.errors import DataError


@dataclass(frozen=True)
class RelativeMagnitudes:
    """Result of :func:`relative_magnitudes`.

    ``max_pre_violation`` is the largest change between consecutive pre-period event-time
    differences; ``bias_per_mbar`` the worst-case bias of the average post-period effect per
    unit of Mbar; ``breakdown`` the smallest Mbar at which the interval, widened by that bias,
    reaches zero (0 when the interval already contains zero; infinite when the pre-period
    shows no departure at all).
    """

    max_pre_violation: float
    bias_per_mbar: float
    breakdown: float
    n_pre_changes: int
    n_post_periods: int

    def robust(self, mbar: float = 1.0) -> bool:
        """True when post-period violations up to ``mbar`` times the largest pre-period one cannot overturn it."""
        return self.breakdown > mbar


def relative_magnitudes(
    leads: Mapping[int, float], *, n_post_periods: int, ci_low: float, ci_high: float
) -> RelativeMagnitudes:
    """Breakdown value of a DiD interval under Rambachan and Roth's relative-magnitude restriction.

    Parameters
    ----------
    leads : mapping of int to float
        Event-study estimates before the start, by event time (negative integers), relative to
        the reference period, which is included with value 0 (e.g. ``{-3: 0.01, -2: -0.02, -1: 0.0}``).
    n_post_periods : int
        Number of post-period event times the effect averages over.
    ci_low, ci_high : float
        The effect's interval (on the event-study scale).

    Notes
    -----
    Let ``delta_t`` be the difference in trends (treated minus comparison) at event time
    ``t``, with ``delta_ref = 0``. The restriction Delta^RM(Mbar) of Rambachan and Roth
    (2023) bounds every post-period change ``|delta_{t+1} - delta_t|`` by ``Mbar * m``, with
    ``m`` the largest pre-period change ``|delta_{s+1} - delta_s|`` (estimated here by the
    event-study leads). Post-period violations then accumulate: ``|delta_t| <= (t + 1) Mbar m``
    for the ``t``-th post period (``t = 0, ..., T - 1``), so the average over the ``T`` post
    periods is biased by at most ``Mbar m (T + 1) / 2``. The breakdown value is the Mbar at
    which the interval widened by that bias first contains zero.

    This is a simplification of their method: the bias bound is added to the effect's own
    interval instead of building the identified set with the joint sampling distribution of
    leads and lags, and ``m`` is taken from the estimated leads (their noise makes ``m``
    larger, so the check errs towards "not robust").
    """
    if n_post_periods < 1:
        raise DataError("relative_magnitudes: need at least one post-period event time")
    times = sorted(leads)
    if not times or times[-1] >= 0:
        raise DataError("relative_magnitudes: leads must be pre-period (negative) event times, the reference included")
    values = [float(leads[t]) for t in times]
    if not all(math.isfinite(v) for v in values):
        raise DataError("relative_magnitudes: leads must be finite numbers")
    changes = [abs(b - a) for a, b in zip(values[:-1], values[1:], strict=True)]
    m = max(changes) if changes else float("nan")
    bias_per_mbar = m * (n_post_periods + 1) / 2 if changes else float("nan")
    if ci_low <= 0 <= ci_high or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        breakdown = 0.0
    elif not changes:
        breakdown = float("nan")  # nothing to compare with: the check cannot run
    elif bias_per_mbar == 0:
        breakdown = float("inf")
    else:
        breakdown = min(abs(ci_low), abs(ci_high)) / bias_per_mbar
    return RelativeMagnitudes(
        max_pre_violation=m,
        bias_per_mbar=bias_per_mbar,
        breakdown=breakdown,
        n_pre_changes=len(changes),
        n_post_periods=n_post_periods,
    )
