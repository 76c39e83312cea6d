"""The design step sizes the answer the report will give: its estimator (the volatile-site rule read on the
pre-period), its test's rejection rule (``p <= alpha``) and its comparison pool (units complete over the
protocol's pre-period, however far back their data go).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib import SiteProtocol
from evallib.evaluation.studies.design import design_site
from evallib.methods.inference.decision import rejects
from evallib.methods.inference.fake_starts import critical_values

from .conftest import simulated_panel, simulated_site

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("m", [20, 39, 40, 80, 154, 199])
def test_the_critical_value_is_the_reports_rule_p_at_most_alpha(m: int) -> None:
    rng = np.random.default_rng(m)
    others = rng.normal(0, 1, (m - 1, 3))
    q = critical_values(np.vstack([others, np.zeros((1, 3))]))  # the real assignment at zero: ranks below all

    def p(stat: np.ndarray) -> np.ndarray:
        return (1 + (np.abs(others) >= stat).sum(axis=0)) / m

    assert np.all(rejects(p(q * (1 + 1e-9)))) and not np.any(rejects(p(q)))
    if m == 40:  # p = 2/40 = 0.05 rejects: a statistic above all but one of 39 others
        assert np.allclose(q, -np.sort(-np.abs(others), axis=0)[1])


def test_a_site_volatile_before_the_start_is_sized_with_the_studentized_test() -> None:
    protocol, long = _site(treated_volatility=4.0)
    noisy = design_site(protocol, panel=_panel(long), pools=("protocol",), follow_ups=())
    assert noisy.primary_estimator == "did_studentized"
    assert any("studentized" in n for n in noisy.notes)
    protocol, long = _site()
    plain = design_site(protocol, panel=_panel(long), pools=("protocol",), follow_ups=())
    assert plain.primary_estimator == "synthetic_did"


def test_a_unit_with_data_from_the_pre_period_only_stays_in_the_pool_and_the_history_is_shortened() -> None:
    protocol, long = _site()
    full = design_site(protocol, panel=_panel(long), pools=("protocol",), follow_ups=())
    late = long[~((long["unit"] == "T007") & (pd.to_datetime(long["period"]) < "2011-04-01"))]
    short = design_site(protocol, panel=_panel(late), pools=("protocol",), follow_ups=())
    assert "T007" in full.pool_units["protocol"] and "T007" in short.pool_units["protocol"]
    assert short.pool_units["protocol"] == full.pool_units["protocol"]
    assert short.history[0] == pd.Timestamp("2011-04-01")  # where T007's data begin: the protocol's pre-period


def _site(treated_volatility: float | None = None, seed: int = 5) -> tuple[SiteProtocol, pd.DataFrame]:
    return simulated_site(40, 84, 48, first_month="2009-04", treated_volatility=treated_volatility, seed=seed)


_panel = simulated_panel
