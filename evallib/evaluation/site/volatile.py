"""The volatile-site rule: a site noisier before the start than most of its placebo sites gets only the
studentized test's p-value and interval; plain placebo tests, which assume the site is as noisy as the units it
is ranked among, are withheld for it.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from evallib.evaluation.site.estimators import Headline
from evallib.methods.base.results import Estimate
from evallib.methods.inference.volatility import VolatilityRank
from evallib.methods.its.controlled import ControlledITSResult

#: A site noisier before the start than this share of its comparison units (percentile) is "volatile": a plain
#: placebo test is not reliable for it (the Monte Carlo suite shows it rejecting about a third of true nulls for a
#: site three times as noisy as the median), so only the studentized test's p-value and interval are published.
VOLATILE_PERCENTILE = 90.0
#: The ``inference`` of a row whose p-value and interval are withheld for a volatile site.
WITHHELD = "withheld_volatile_site"


def site_noise_percentile(vol: VolatilityRank | None, seed: int, draws: int = 999) -> float:
    """How noisy the site is before the start, as a percentile among what placebo assignments would give.

    With one treated unit, the percentage of comparison units with less pre-period noise; with
    ``k`` units, the percentage of random sets of ``k`` comparison units whose mean noise is below
    the site's (a set's mean is less extreme than one unit's, so individual ranks would overstate it).
    """
    if vol is None or not vol.rank:
        return float("nan")
    if len(vol.treated) == 1:
        return float(vol.percentile[0])
    scale = vol.unit_scale
    site = float(scale[list(vol.treated)].mean())
    comp = scale.drop(list(vol.treated)).to_numpy()
    k = len(vol.treated)
    if len(comp) < k:
        return float("nan")
    rng = np.random.default_rng(seed)
    means = np.argsort(rng.random((draws, len(comp))), axis=1)[:, :k]
    return float(100 * np.mean(comp[means].mean(axis=1) < site))


def withhold(row: Estimate) -> Estimate:
    """The row with its p-value and interval withheld (a plain placebo test on a volatile site)."""
    nan = float("nan")
    return Estimate(
        **{**row.__dict__, "std_error": nan, "ci_low": nan, "ci_high": nan, "p_value": nan, "inference": WITHHELD}
    )


def withhold_headline(h: Headline) -> Headline:
    """A headline estimate of a volatile site with its plain placebo p-value and interval withheld.

    The controlled ITS publishes every term of its result (level, slope, effects at 12 and 24 months), all
    from the same plain placebo test, so its result's rows are withheld too: with a site three times as noisy
    as the median they rejected about 40% of true nulls in the Monte Carlo suite.
    """
    result = h.result
    if isinstance(result, ControlledITSResult):
        result = replace(result, rows=tuple(withhold(r) for r in result.rows))
    return replace(h, row=withhold(h.row), result=result)
