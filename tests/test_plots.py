"""Plot contract: every plot takes a result and ``ax=``, draws on that axis, returns its Figure, computes nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from evallib.methods.did import DiD
from evallib.methods.event_study import EventStudy
from evallib.methods.its import SegmentedITS
from evallib.methods.simulate import simulate_panel
from evallib.methods.staggered import CallawaySantAnna
from evallib.reporting import plots

from .conftest import FIXTURES

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    d = simulate_panel(30, 48, start_period=36, seed=1)
    es = EventStudy("value", "unit", "period", "treated", start=d["period"].sort_values().unique()[36]).fit(d)
    series = d[d["unit"] == "U000"].set_index("period")["value"]
    mp = pd.read_csv(FIXTURES / "mpdta.csv")
    cs = CallawaySantAnna(outcome="lemp", unit="countyreal", time="year", cohort="first.treat").fit(mp)
    trends = pd.DataFrame({"site": series / series.iloc[:12].mean() * 100, "comparison": 100.0})
    return {
        "did": DiD("value", "unit", "period", "treated", "post").fit(d),
        "event": es,
        "dynamic": cs.aggregate("dynamic"),
        "its": SegmentedITS(series.index[36]).fit(series),
        "trends": trends,
        "start": series.index[36],
    }


def _calls(r: dict[str, object]):
    return [
        lambda ax: plots.plot_trends(r["trends"], intervention_start=r["start"], ax=ax),
        lambda ax: plots.plot_placebo_distribution(r["did"], ax=ax),
        lambda ax: plots.plot_its(r["its"], ax=ax),
        lambda ax: plots.plot_event_study(r["event"], ax=ax),
        lambda ax: plots.plot_event_study(r["dynamic"], ax=ax),
    ]


def test_plots_draw_on_the_given_axis_and_return_its_figure(results: dict[str, object]) -> None:
    for call in _calls(results):
        fig = Figure()
        ax = fig.add_subplot()
        assert call(ax) is fig
        assert ax.has_data()
        new = call(None)
        assert isinstance(new, Figure) and new is not fig


def test_placebo_plot_needs_a_placebo_result(results: dict[str, object]) -> None:
    d = simulate_panel(20, 24, start_period=12, seed=2)
    with pytest.raises(ValueError, match="no placebo distribution"):
        plots.plot_placebo_distribution(
            DiD("value", "unit", "period", "treated", "post", inference="cluster_cr1").fit(d)
        )
