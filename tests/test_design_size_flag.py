"""The design table's ``holds_size`` flag: a candidate's size holds when its rejection rate at fake starts (true
nulls) is within three Monte Carlo standard errors of 5%, and not beyond."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evallib.evaluation.studies.site_design import ALPHA, power_columns


class _Tests:
    """Fake-start tests stand-in: only what power_columns reads."""

    def detectable(self, power: float, direction: str) -> float:
        return 0.05

    def power(self, effects: np.ndarray) -> np.ndarray:
        return np.full(len(effects), 0.9)


@pytest.mark.parametrize("n_starts", [40, 100, 400])
def test_size_holds_up_to_three_monte_carlo_errors_above_five_percent_and_not_beyond(n_starts: int) -> None:
    edge = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / n_starts)
    flag = lambda rejection: power_columns(_Tests(), rejection, n_starts, "log", 0.05, "decrease")["holds_size"]  # noqa: E731
    assert flag(0.0) and flag(ALPHA) and flag(edge - 1e-9)
    assert not flag(edge + 1e-9) and not flag(0.5)


def test_the_flag_is_recorded_with_the_rejection_rate_and_the_number_of_fake_starts() -> None:
    row = power_columns(_Tests(), 0.2, 100, "log", 0.05, "decrease")
    assert row["fake_start_rejection"] == 0.2 and row["fake_starts"] == 100 and row["holds_size"] is False
