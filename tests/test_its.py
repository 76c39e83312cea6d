"""ITS: the Bernal, Cummins & Gasparrini (2017) Sicily results, and known effects on simulated series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.methods.its.model import newey_west_lags
from evallib.methods.its.poisson import PoissonITS
from evallib.methods.its.segmented import SegmentedITS

from .reference import values

pytestmark = pytest.mark.unit
START = "2005-01-01"  # smokban = 1 from month 37
#: The published models in R (tests/reference/sicily: the script, its output and the source).
BERNAL = values("sicily/bernal2017_sicily.out")


def _ratio(name: str) -> tuple[float, float, float]:
    return BERNAL[f"{name}.rate_ratio"], BERNAL[f"{name}.ci_low"], BERNAL[f"{name}.ci_high"]


def _fit(sicily: pd.DataFrame, **kw) -> object:
    return PoissonITS(START, **kw).fit(sicily["aces"], sicily["stdpop"])


def test_poisson_rate_ratio_matches_reference(sicily: pd.DataFrame) -> None:
    # Poisson: RR 0.8944 (0.8647-0.9251), to 1e-4.
    r = _fit(sicily).row("level_change")
    assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx(_ratio("poisson"), abs=1e-4)
    assert r.scale == "rate_ratio" and r.method == "its_poisson"


def test_quasi_poisson_reports_dispersion(sicily: pd.DataFrame) -> None:
    res = _fit(sicily, dispersion="quasi")
    r = res.row("level_change")
    assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx(_ratio("quasipoisson"), abs=1e-4)
    assert res.dispersion == pytest.approx(BERNAL["quasipoisson.dispersion"], abs=1e-3)


def test_harmonic_model_and_ljung_box(sicily: pd.DataFrame) -> None:
    res = _fit(sicily, dispersion="quasi", harmonics=2)
    r = res.row("level_change")
    assert (r.estimate, r.ci_low, r.ci_high) == pytest.approx(_ratio("harmonic"), abs=1e-4)
    assert res.dispersion == pytest.approx(BERNAL["harmonic.dispersion"], abs=1e-3)
    assert res.trend_per_year == pytest.approx(BERNAL["harmonic.trend_per_year"], abs=1e-3)  # underlying trend per year
    assert res.ljung_box_lags == BERNAL["harmonic.ljung_box_lags"]
    assert res.ljung_box_p == pytest.approx(BERNAL["harmonic.ljung_box_p"], abs=1e-3)
    assert res.autocorrelated


def test_slope_change_model(sicily: pd.DataFrame) -> None:
    # The published model codes time since the ban as 1 in its first month (Bernal et al. 2017).
    res = _fit(sicily, dispersion="quasi", harmonics=2, slope_change=True, slope_coding="bernal2017")
    step, slope = res.row("level_change"), res.row("slope_change")
    assert (step.estimate, step.ci_low, step.ci_high) == pytest.approx(_ratio("slope_change.step"), abs=1e-3)
    assert (slope.estimate, slope.ci_low, slope.ci_high) == pytest.approx(_ratio("slope_change.slope"), abs=1e-4)


def test_level_change_is_the_jump_in_the_first_post_period(sicily: pd.DataFrame) -> None:
    """itsa coding (the default): the same fit, with the step measured in the ban's first month."""
    kw = {"dispersion": "quasi", "harmonics": 2, "slope_change": True}
    itsa, bernal = _fit(sicily, **kw), _fit(sicily, **kw, slope_coding="bernal2017")
    np.testing.assert_allclose(itsa.fitted, bernal.fitted, rtol=1e-9)
    step, slope = itsa.row("level_change").estimate, itsa.row("slope_change").estimate
    assert slope == pytest.approx(bernal.row("slope_change").estimate, rel=1e-9)
    assert step == pytest.approx(bernal.row("level_change").estimate * slope, rel=1e-9)  # reference x one month
    assert step == pytest.approx(
        BERNAL["slope_change.step.rate_ratio"] * BERNAL["slope_change.slope.rate_ratio"], abs=1e-3
    )
    first = sicily.index[sicily["smokban"] == 1][0]
    jump = itsa.fitted[first] / itsa.counterfactual[first]
    assert jump == pytest.approx(step, rel=1e-9)


def _series(
    level: float, slope_per_year: float, n: int = 96, start: int = 60, seed: int = 0, ar: float = 0.4
) -> pd.Series:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2012-04-01", periods=n, freq="MS")
    t = np.arange(n)
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = ar * e[i - 1] + rng.normal(0, 0.02)
    post = t >= start
    log_y = (
        8
        + 0.002 * t
        + 0.1 * np.cos(2 * np.pi * idx.month / 12)
        + level * post
        + slope_per_year / 12 * np.where(post, t - start, 0)
        + e
    )
    return pd.Series(np.exp(log_y), index=idx)


def test_segmented_its_recovers_known_level_and_slope() -> None:
    levels, slopes = [], []
    for seed in range(40):
        r = SegmentedITS(pd.Timestamp("2017-04-01"), outcome_label="sim").fit(_series(-0.05, 0.03, seed=seed))
        levels.append(r.row("level_change").estimate)
        slopes.append(r.row("slope_change").estimate)
    assert np.mean(levels) == pytest.approx(-0.05, abs=0.01)
    assert np.mean(slopes) == pytest.approx(0.03, abs=0.01)
    assert r.hac_lags == newey_west_lags(96) == 3
    assert r.counterfactual.index.equals(r.observed.index)


def test_segmented_its_validates_input() -> None:
    s = _series(0, 0)
    with pytest.raises(DataError, match="DatetimeIndex"):
        SegmentedITS("2017-04-01").fit(s.reset_index(drop=True))
    with pytest.raises(DataError, match="missing values"):
        SegmentedITS("2017-04-01").fit(s.where(s.index != s.index[10]))
    with pytest.raises(DataError, match="pre-period"):
        SegmentedITS("2012-05-01").fit(s)
    with pytest.raises(DataError, match="positive"):
        SegmentedITS("2017-04-01").fit(s * 0)


def test_poisson_its_rejects_non_counts(sicily: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="whole numbers"):
        PoissonITS(START).fit(sicily["aces"] + 0.5, sicily["stdpop"])
    with pytest.raises(DataError, match="exposure"):
        PoissonITS(START).fit(sicily["aces"], sicily["stdpop"] * 0)
