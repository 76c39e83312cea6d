"""The NHS-like panel simulator behind the Monte Carlo suite: the model it documents."""

from __future__ import annotations

import numpy as np
import pytest

from evallib.methods.simulate import nhs_log_panels, simulate_nhs_panel

pytestmark = pytest.mark.unit


def test_nhs_panel_has_the_documented_shape_roles_and_effect() -> None:
    d = simulate_nhs_panel(40, 48, n_treated=2, start_period=36, effect=-0.2, seed=1)
    assert len(d) == 40 * 48 and d["unit"].nunique() == 40 and d["treated"].groupby(d["unit"]).first().sum() == 2
    assert set(d.loc[d["post"] == 1, "period"].dt.strftime("%Y-%m")) == {
        p.strftime("%Y-%m") for p in d["period"].drop_duplicates().sort_values().iloc[36:]
    }
    # The effect is in the expected log counts: the same draws with and without it differ by exactly -0.2.
    with_effect, _ = nhs_log_panels(1, 40, 48, n_treated=2, start_period=36, effect=-0.2, seed=1)
    without, _ = nhs_log_panels(1, 40, 48, n_treated=2, start_period=36, effect=0.0, seed=1)
    diff = (with_effect - without)[0]
    assert np.allclose(diff[:2, 36:], -0.2) and np.allclose(diff[:, :36], 0) and np.allclose(diff[2:], 0)


def test_nhs_panel_noise_is_ar1_and_the_volatile_option_scales_the_first_treated_trust() -> None:
    log_mu, vol = nhs_log_panels(200, 50, 96, treated_volatility=3.0, common_sd=0.0, trend_sd=0.0, seed=2)
    assert np.all(vol[:, 0] == 3.0) and np.median(vol[:, 1:]) == pytest.approx(1.0, abs=0.05)
    resid = log_mu - log_mu.mean(axis=2, keepdims=True)
    resid = resid - resid.mean(axis=1, keepdims=True)  # the national path is shared by every trust
    lag1 = (resid[..., 1:] * resid[..., :-1]).sum(axis=2) / (resid**2).sum(axis=2)
    assert np.median(lag1) == pytest.approx(0.6, abs=0.06)
    sd = resid.std(axis=2)
    assert np.median(sd[:, 0]) / np.median(sd[:, 1:]) == pytest.approx(3.0, rel=0.15)
