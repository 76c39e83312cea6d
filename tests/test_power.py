"""Minimum detectable effect of a placebo test, read off its placebo distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evallib.methods.inference.power import placebo_mde

pytestmark = pytest.mark.unit


def test_mde_of_normal_placebos_matches_the_textbook_formula() -> None:
    # Symmetric normal noise: q = z_{0.975} sd and the 80%-power effect is (z_{0.975} + z_{0.8}) sd.
    e = np.random.default_rng(1).normal(0, 0.05, 200_001)
    assert placebo_mde(e) == pytest.approx((1.960 + 0.8416) * 0.05, rel=0.02)
    assert placebo_mde(e, direction="decrease") == pytest.approx(placebo_mde(e, direction="increase"), rel=0.02)


def test_an_effect_of_the_mde_is_detected_about_80_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    noise = rng.standard_t(5, 100_000) * 0.03  # heavy tails: no normal formula applies
    mde = placebo_mde(noise, direction="decrease")
    q = np.quantile(np.abs(noise[1:]), 0.95)
    detected = np.mean(np.abs(-mde + noise) >= q)
    assert detected == pytest.approx(0.80, abs=0.01)


def test_too_few_placebos_can_never_detect_anything() -> None:
    assert placebo_mde(np.zeros(10) + np.arange(10) * 0.01) == math.inf
    assert math.isnan(placebo_mde(np.array([0.1])))
