"""The rate ratio's interval ends are located to a tolerance that one wild placebo cannot coarsen.

The search's tolerance was 0.001 placebo SDs. A comparison unit with no events after the start (a closed
department, a tiny area) has a placebo log rate ratio far out in the tail, and the SD with it: 165 log units on the
panel below, so each end was located only to 0.17 on the log scale (an 18% rate ratio), on the accepted side, so the
interval came out narrower than the test's (here 1.00 to 1.07 where the test accepts 0.95 to 1.08). The search's step
and tolerance now use the smaller of the SD and the placebos' interquartile range / 1.349, which the SD of normal
placebos matches, so the ends stay within 0.001 placebo SDs as documented (review of issue 22's search).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from evallib.methods.did import rate_ratio
from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.inference.decision import rejects
from evallib.methods.simulate import simulate_panel

pytestmark = pytest.mark.unit


def _panel():  # type: ignore[no-untyped-def]
    d = simulate_panel(20, 36, treated=1, start_period=18, effect=0.0, overdispersion=np.inf, seed=3)
    d.loc[(d.unit == "U019") & (d.post == 1), "value"] = 0.0  # one comparison unit with no events after the start
    return d


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``seen["p_of"]``: the p-value function of the null effect that the rate ratio's interval search inverts,
    caught as the search is called (the search itself runs unchanged)."""
    caught: dict[str, Any] = {}
    search = rate_ratio.invert_by_search

    def spy(p_of, *args, **kwargs):  # type: ignore[no-untyped-def]
        caught["p_of"] = p_of
        return search(p_of, *args, **kwargs)

    monkeypatch.setattr(rate_ratio, "invert_by_search", spy)
    return caught


def test_each_end_is_within_a_hundredth_of_where_the_test_starts_to_reject(seen: dict[str, Any]) -> None:
    model = PoissonDiD(inference="placebo_in_space", alpha=0.34, exposure="population")
    r = model.fit(_panel())
    assert r.headline.std_error > 100  # the wild placebo's SD
    lo, hi = np.log(r.headline.ci_low), np.log(r.headline.ci_high)
    for end, side in ((lo, -1), (hi, 1)):
        p_end = seen["p_of"](np.array([end]))[0][0]
        beyond = seen["p_of"](end + side * np.linspace(0.0005, 0.01, 20))[0]
        assert not rejects(p_end, 0.34) and rejects(beyond, 0.34).any(), (end, side)


def test_a_tied_sparse_panel_reports_the_end_where_the_test_rejects_not_an_infinite_one(seen: dict[str, Any]) -> None:
    # Tiny counts and a copy of the treated unit among the comparison units (ties): the plain search's steps of the
    # placebo SD (296 log units here) reached null values where the refit breaks down and accepts, and reported no
    # lower end; the test rejects from tau = 0 down.
    d = simulate_panel(30, 8, treated=1, start_period=4, effect=0.05, baseline_rate=2e-6, overdispersion=5.0, seed=33)
    twin = d[d.unit == "U000"].assign(unit="U999", treated=0)
    d = pd.concat([d, twin], ignore_index=True)
    r = PoissonDiD(inference="placebo_in_space", alpha=0.34, exposure="population").fit(d)
    lo = np.log(r.headline.ci_low)
    assert np.isfinite(lo)
    assert not rejects(seen["p_of"](np.array([lo]))[0][0], 0.34)
    assert rejects(seen["p_of"](lo - np.linspace(0.0005, 0.01, 20))[0], 0.34).any()
