"""Each unit's pre-period noise and where the treated units rank on it among their comparators (a placebo
test assumes they are exchangeable with them), and each unit's pre-period swing, the scale of the studentized
placebo test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evallib.errors import DataError


def pre_period_noise(values: np.ndarray, post: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    """Each unit's pre-period noise: the SD of its month-to-month changes after removing period means.

    Parameters
    ----------
    values : (units, periods) array
        The outcome on the analysis scale (e.g. logs), periods in order.
    post : (units, periods) or (periods,) bool array
        True in post-period cells; only pre-period cells are used.
    units : array, optional
        Unit labels, to name a unit without pre-period variation in the error.

    Notes
    -----
    Why this measure: removing each period's mean across units takes out shocks shared
    by every unit and seasonality; first differences take out the unit's level, and the SD
    around their mean takes out a steady drift, so what is left is the unit's own
    month-to-month noise, the part of its variation that the placebo test assumes to be
    like its comparators'. It is what the volatile-site rule ranks a site on; the studentized
    test scales by :func:`pre_period_swing` instead (a unit's change over the start follows its
    slower variation, not this noise, on the bundled commissioner data). On the bundled A&E panel
    (96 trusts, 96 months from 2011-08) a unit's change over a start grows with this measure
    (correlation of the logs 0.35-0.39 for starts at months 48, 60 and 72), and scaling by
    it leaves the least relation between the two: correlation of log |scaled change| with
    log scale -0.01 to -0.06, against -0.12 to -0.23 for the SD of the pre-period levels
    with or without a linear trend removed.
    """
    y = np.asarray(values, float)
    p = np.broadcast_to(np.asarray(post, bool), y.shape)
    pre = np.where(p, np.nan, y)
    n_pre = (~p).sum(axis=1)
    if n_pre.min() < 3:
        raise DataError("studentized placebo: every unit needs at least 3 pre-period observations")
    n_t = (~p).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):  # post-only periods have no pre-period mean
        dev = pre - np.where(p, 0.0, y).sum(axis=0) / n_t
    steps = np.diff(dev, axis=1)  # NaN where a step crosses into the post-period
    ok = np.isfinite(steps)
    m = ok.sum(axis=1)
    mean = np.where(ok, steps, 0.0).sum(axis=1) / np.maximum(m, 1)
    ss = np.where(ok, (steps - mean[:, None]) ** 2, 0.0).sum(axis=1)
    scale = np.sqrt(ss / np.maximum(m - 1, 1))
    typical = float(np.nanmedian(scale)) if np.isfinite(scale).any() else 0.0
    bad = ~(np.isfinite(scale) & (scale > 1e-9 * typical))  # no noise beyond rounding
    if bad.any():
        names = ", ".join(str(u) for u in (units[bad][:5] if units is not None else np.flatnonzero(bad)[:5]))
        one = int(bad.sum()) == 1
        raise DataError(
            f"studentized placebo: no pre-period variation in {'unit' if one else 'units'} {names}; "
            f"drop {'it' if one else 'them'} or use placebo_in_space"
        )
    return scale


#: Months in a block of :func:`pre_period_swing` (half a year), and the fewest blocks it is measured on.
SWING_BLOCK = 6
SWING_MIN_BLOCKS = 4


def pre_period_swing(values: np.ndarray, post: np.ndarray, units: np.ndarray | None = None) -> np.ndarray:
    """Each unit's pre-period swing: the SD of its half-yearly means after removing period means.

    The scale of the studentized placebo test (``DiD(inference="placebo_studentized")``).

    Parameters
    ----------
    values : (units, periods) array
        The outcome on the analysis scale (e.g. logs), periods in order.
    post : (units, periods) or (periods,) bool array
        True in post-period cells; only pre-period cells are used (the periods must be common).
    units : array, optional
        Unit labels, to name a unit without pre-period variation in the error.

    Notes
    -----
    A unit's change over the start is a difference of means over many months, so its size is
    set by how far the unit wanders over months to years (drifts, level shifts), not by its
    month-to-month noise (:func:`pre_period_noise`). On the bundled commissioner data a CCG's
    change grows with its month-to-month noise with an elasticity of only 0.15-0.4, so dividing
    by that noise made the quietest tenth of CCGs reject 19% of true nulls (the noisiest 2%; 10
    calibration designs, 1,027 fake sites). Removing each period's mean across units (shared
    shocks and seasonality), then taking the SD of the unit's means over blocks of
    ``SWING_BLOCK`` months (the last pre-period months, blocks shorter when the pre-period has
    fewer than ``SWING_MIN_BLOCKS`` of them) measures variation at the frequency of the change:
    size 5.7% in the quietest and 4.0% in the noisiest tenth, 1.0-7.9% in every tenth, on the same
    fake sites. On simulated panels where noise and drift both scale with a unit's volatility it
    holds too (a treated trust three times the median volatility: 4.3%; Monte Carlo suite). It uses
    pre-period data only, so it does not move with the effect (the test's inversion stays exact).
    """
    y = np.asarray(values, float)
    p = np.broadcast_to(np.asarray(post, bool), y.shape)
    pre_cols = ~p.any(axis=0)
    n_pre = int(pre_cols.sum())
    if n_pre < 3:
        raise DataError("studentized placebo: every unit needs at least 3 pre-period observations")
    pre = y[:, pre_cols]
    dev = pre - pre.mean(axis=0)
    block = max(1, min(SWING_BLOCK, n_pre // SWING_MIN_BLOCKS))
    n_blocks = n_pre // block
    means = dev[:, n_pre - n_blocks * block :].reshape(len(y), n_blocks, block).mean(axis=2)
    scale = means.std(axis=1, ddof=1)
    typical = float(np.nanmedian(scale)) if np.isfinite(scale).any() else 0.0
    bad = ~(np.isfinite(scale) & (scale > 1e-9 * typical))  # no variation beyond rounding
    if bad.any():
        names = ", ".join(str(u) for u in (units[bad][:5] if units is not None else np.flatnonzero(bad)[:5]))
        one = int(bad.sum()) == 1
        raise DataError(
            f"studentized placebo: no pre-period variation in {'unit' if one else 'units'} {names}; "
            f"drop {'it' if one else 'them'} or use placebo_in_space"
        )
    return scale


@dataclass(frozen=True)
class VolatilityRank:
    """Where each treated unit ranks on pre-period noise (:func:`pre_period_noise`) among the comparison units.

    ``rank`` is 1 for a treated unit noisier than every comparison unit (among the
    comparison units and that unit); ``percentile`` is the percentage of comparison units
    with less noise than it; ``relative`` its noise over the comparison units' median.
    A treated unit far out in the tail (say above the 90th percentile) is less
    exchangeable with its comparators than a placebo test assumes; the studentized test
    (``DiD(inference="placebo_studentized")``) allows for it.
    """

    treated: tuple[str, ...]
    rank: tuple[int, ...]
    percentile: tuple[float, ...]
    relative: tuple[float, ...]
    n_comparison: int
    unit_scale: pd.Series = field(repr=False)

    def frame(self) -> pd.DataFrame:
        """One row per treated unit: noise, rank, percentile, relative to the comparison median."""
        return pd.DataFrame(
            {
                "unit": list(self.treated),
                "pre_period_noise": [float(self.unit_scale[u]) for u in self.treated],
                "rank": list(self.rank),
                "percentile": list(self.percentile),
                "relative_to_median": list(self.relative),
                "n_comparison": self.n_comparison,
            }
        )


def volatility_rank(scale: np.ndarray, is_treated: np.ndarray, units: np.ndarray) -> VolatilityRank:
    """Rank each treated unit's pre-period noise among the comparison units'."""
    scale = np.asarray(scale, float)
    is_treated = np.asarray(is_treated, bool)
    comp = np.sort(scale[~is_treated])
    s_t = scale[is_treated]
    below = np.searchsorted(comp, s_t, side="left")
    return VolatilityRank(
        treated=tuple(str(u) for u in units[is_treated]),
        rank=tuple(int(len(comp) - b + 1) for b in below),
        percentile=tuple(float(100 * b / len(comp)) for b in below),
        relative=tuple(float(v / np.median(comp)) for v in s_t),
        n_comparison=len(comp),
        unit_scale=pd.Series(scale, index=[str(u) for u in units], name="pre_period_noise"),
    )
