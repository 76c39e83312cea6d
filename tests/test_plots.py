"""Plot contract: every plot takes a result and ``ax=``, draws on that axis, returns its Figure, computes nothing."""

from __future__ import annotations

import pandas as pd
import pytest
from matplotlib.figure import Figure

from evallib.methods.did.event_study import EventStudy
from evallib.methods.did.staggered import CallawaySantAnna
from evallib.methods.did.twfe import DiD
from evallib.methods.its.segmented import SegmentedITS
from evallib.methods.simulate import simulate_panel
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


@pytest.mark.integration
def test_report_figures_have_labels_of_at_least_10_points_and_nothing_clipped() -> None:
    """Shown 360 px wide (a phone) a 4.8 in figure's 10 pt labels are 10.4 px; every label inside the canvas."""
    import numpy as np

    from evallib import evaluate_site, load_params
    from evallib.evaluation.studies.programme import ProgrammeData, pooled_by_care_model
    from evallib.reporting.plots import FIG_WIDTH, FONT

    from .conftest import ROOT

    a = evaluate_site(load_params(ROOT / "params" / "vanguards" / "V04.yaml")).primary
    rb = a.robustness
    names = ["Northumberland Accountable Care Organisation", "Mid Nottinghamshire Better Together", "x"]
    sites = pd.DataFrame(
        {
            "site_id": [f"V{i:02d}" for i in range(30)],
            "site_name": [names[i % 3] for i in range(30)],
            "care_model": ["PACS", "MCP", "EHCH"] * 10,
            "status": "evaluated",
            "scale": "log",
            "estimate": np.linspace(-0.3, 0.3, 30),
            "std_error": 0.05,
            "ci_low": np.linspace(-0.5, 0.1, 30),
            "ci_high": np.linspace(-0.1, 0.5, 30),
            "p_value": 0.5,
            "inputs": [f"i{i}" for i in range(30)],
        }
    )
    data = ProgrammeData(sites)
    figures = {
        "trends": plots.plot_trends(a.trends, intervention_start=a.its.intervention_start, title="A long title " * 4),
        "placebo": plots.plot_placebo_distribution(a.did, title="placebos", xlabel="difference in log outcome"),
        "its": plots.plot_its(a.its, title="ITS", ylabel="index"),
        "event": plots.plot_event_study(a.event_study, title="event study", ylabel="difference in log outcome"),
        "synthetic": plots.plot_synthetic_control(rb.synthetic, title="gap", ylabel="log difference"),
        "balance": plots.plot_balance(rb.balance, title="Pre-period balance by comparison set"),
        "forest": plots.plot_forest(data, pooled_by_care_model(data)),
    }
    for name, fig in figures.items():
        assert fig.get_figwidth() <= FIG_WIDTH, name
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        for text in fig.findobj(lambda o: hasattr(o, "get_text") and hasattr(o, "get_fontsize")):
            if text.get_visible() and str(text.get_text()).strip():
                assert text.get_fontsize() >= FONT, (name, text.get_text(), text.get_fontsize())
        drawn = fig.get_tightbbox(renderer)  # every drawn artist, in inches
        assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, (name, drawn)
        assert drawn.x1 <= fig.get_figwidth() + 0.01 and drawn.y1 <= fig.get_figheight() + 0.01, (name, drawn)
