"""The design step: data before the start only, the MDE read off the placebo distribution at fake starts,
sub-population effects at area level, the command's exit codes and messages, and the design notebook."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import papermill as pm
import pytest
from matplotlib.figure import Figure

from evallib import SiteProtocol
from evallib.errors import DataError
from evallib.evaluation.studies.design import area_effect, design_history, design_site
from evallib.methods.base.design import Design
from evallib.methods.did.twfe import DiD
from evallib.methods.inference.fake_starts import detectable_effect, fake_start_power, rolling_changes
from evallib.pipeline.cli import main
from evallib.reporting.design_page import design_html, plot_power_curve

from .conftest import ROOT, simulated_panel, simulated_site

pytestmark = pytest.mark.integration


def test_the_design_step_reads_no_follow_up_data() -> None:
    protocol, long = _site()
    before = design_site(protocol, panel=_panel(long), pools=("protocol",)).tidy()
    changed = long.copy()
    after = pd.to_datetime(changed["period"]) >= "2013-04-01"
    rng = np.random.default_rng(1)
    changed.loc[after, "value"] = np.round(changed.loc[after, "value"] * rng.uniform(0.2, 5.0, after.sum())) + 1
    again = design_site(protocol, panel=_panel(changed), pools=("protocol",)).tidy()
    assert len(before) == 3 * 3  # follow-ups 12, 24, 36 (36: the protocol's own) x three estimators
    pd.testing.assert_frame_equal(before, again)
    short = _panel(long[pd.to_datetime(long["period"]) < "2013-04-01"])  # no follow-up in the data at all
    pd.testing.assert_frame_equal(before, design_site(protocol, panel=short, pools=("protocol",)).tidy())


def test_the_mde_is_where_the_placebo_tests_at_fake_starts_reach_80_percent_power() -> None:
    protocol, long = _site(n_units=30)
    d = design_site(protocol, panel=_panel(long), estimators=("did",), pools=("protocol",), follow_ups=(12,))
    row = d.table[d.table["follow_up"] == 12].iloc[0]
    assert (row["fake_pre"], row["fake_post"], row["spread_factor"]) == (24, 12, 1.0)  # the history is long enough
    # The same placebo estimates, one DiD refit at a time: every unit in turn treated, at every fake start.
    hist = design_history(protocol, _panel(long))
    wide = hist.values[[*hist.treated, *hist.pools["protocol"]]]  # the units the pool rules keep, on the log scale
    assert len(wide) == 48 and row["n_comparators"] == wide.shape[1] - 1
    starts = range(24, len(wide) - 12 + 1)
    loop = np.empty((wide.shape[1], len(starts)))
    for j, s in enumerate(starts):
        window = np.exp(wide.iloc[s - 24 : s + 12])
        for i, unit in enumerate(wide.columns):
            fit = DiD(transform="log", inference="hc1").fit(Design.from_wide(window, [unit], window.index[24]))
            loop[i, j] = fit.headline.estimate
    assert loop.shape[1] == row["fake_starts"]
    closed = rolling_changes(wide.to_numpy().T, 24, 12)
    vector = closed - (closed.sum(axis=0) - closed) / (closed.shape[0] - 1)
    np.testing.assert_allclose(vector, loop, atol=1e-10)

    # The MDE: the smallest effect the rank test at each fake start rejects in 80% of (unit, start) draws.
    # With 30 units the rank test (p = (1 + c) / 30 <= 0.05, the report's rule) rejects only a statistic above all 29.
    def power_at(tau: float) -> float:
        others = [np.delete(np.abs(loop), i, axis=0).max(axis=0) for i in range(loop.shape[0])]
        return float(np.mean(np.abs(loop + tau) > np.vstack(others)))

    power = {sign: lambda tau, sign=sign: power_at(sign * tau) for sign in (-1.0, 1.0)}
    mde = row["mde"]
    assert min(power[-1.0](mde), power[1.0](mde)) >= 0.8
    assert min(power[-1.0](mde * 0.98), power[1.0](mde * 0.98)) < 0.8
    assert mde == pytest.approx(detectable_effect(loop), rel=1e-9)


def test_power_rises_with_the_effect_and_is_the_size_at_none() -> None:
    rng = np.random.default_rng(2)
    e = rng.normal(0, 0.05, (2000, 10))
    p = fake_start_power(e, np.array([0.0, 0.05, 0.1, 0.2]))
    assert p[0] <= 0.05 and p[0] == pytest.approx(0.05, abs=0.005) and np.all(np.diff(p) > 0) and p[-1] > 0.95
    # Normal noise: 80% power at (1.96 + 0.84) standard deviations.
    assert detectable_effect(e) == pytest.approx(2.80 * 0.05, rel=0.03)


def test_an_effect_on_a_sub_population_is_its_share_at_area_level() -> None:
    assert area_effect(20.0, 0.05, "decrease") == pytest.approx(math.log(1 - 0.01))
    assert area_effect(10.0, 1.0, "increase") == pytest.approx(math.log(1.1))
    assert area_effect(4.0, 0.5, "decrease", scale="points") == pytest.approx(-2.0)
    with pytest.raises(DataError, match="share"):
        area_effect(20.0, 1.5, "decrease")
    protocol, long = _site()
    panel = _panel(long)
    whole = design_site(protocol, panel=panel, estimators=("did",), hoped_for_percent=25.0)
    group = design_site(protocol, panel=panel, estimators=("did",), hoped_for_percent=25.0, share=0.04)
    assert group.hoped_for_area == pytest.approx(math.log(1 - 0.01))
    assert (group.table["power_hoped_for"] < whole.table["power_hoped_for"]).all()
    assert "NOT detectable" in group.verdict() and "about 1% at area level" in group.verdict()
    assert "detectable after" in whole.verdict()


def test_the_design_page_and_power_curve_come_from_the_result() -> None:
    protocol, long = _site()
    d = design_site(protocol, panel=_panel(long))
    assert set(d.tidy()["estimator"]) == {"did", "did_studentized", "synthetic_did"}
    assert set(d.curves["follow_up"]) == {12, 24, 36}
    fig = plot_power_curve(d)
    assert isinstance(fig, Figure) and len(fig.axes[0].lines) == 3 + 2  # a line per follow-up, hoped-for, 80%
    page = design_html(d)
    assert "Design: SIM" in page and d.verdict().split(".")[0] in page and "<script" not in page


def test_design_command_names_an_unknown_site_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["design", "V99", "--params-dir", str(ROOT / "params")]) == 2
    assert "V99" in capsys.readouterr().err


def test_design_command_refuses_a_share_outside_0_to_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = ["design", "V01", "--params-dir", str(ROOT / "params"), "--share", "3", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "share" in capsys.readouterr().err


def test_design_command_writes_the_page_and_table(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "design"
    assert main(["design", "V01", "--params-dir", str(ROOT / "params"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Recommended comparison pool" in printed
    assert (out / "design.html").is_file()
    table = pd.read_csv(out / "design.csv")
    assert set(table["pool"]) == {"protocol", "nearest", "same_region"} and (table["site_id"] == "V01").all()


def test_design_notebook_runs(tmp_path: Path) -> None:
    out = tmp_path / "design.ipynb"
    pm.execute_notebook(
        str(ROOT / "notebooks" / "design_evaluation.ipynb"),
        str(out),
        parameters={"site_id": "V02", "share": 0.5},
        cwd=str(ROOT),
        progress_bar=False,
    )
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("detects" in "".join(o.get("text", "")) for o in outputs)


def test_the_recommended_pool_written_into_the_protocol_is_the_pool_the_analysis_then_uses() -> None:
    from dataclasses import replace

    from evallib.evaluation.site.coverage import analysis_frame
    from evallib.protocol.safe_yaml import parse_params_text

    protocol, long = _site(n_units=60)
    panel = _panel(long)
    d = design_site(protocol, panel=panel, estimators=("did",))
    assert d.protocol_line("protocol") == ""
    line = d.protocol_line("nearest")
    include = parse_params_text(line.encode(), "line")["design_pool"]
    assert len(include) == d.pool_sizes["nearest"] == 30
    fixed = SiteProtocol.from_mapping({**protocol.to_mapping(), "design_pool": include})
    _, _, cov = analysis_frame(fixed, panel, protocol.primary_outcome)
    assert cov.comparators == tuple(sorted(include))
    assert replace(fixed, design_pool=()) == protocol


def test_the_nearest_pool_at_a_fake_start_is_chosen_without_its_pretend_follow_up() -> None:
    from evallib.evaluation.studies.pre_start import nearest_sets

    rng = np.random.default_rng(4)
    Y = rng.normal(0, 0.05, (41, 30)).cumsum(axis=1)
    before = nearest_sets(Y, 1, 8, 30 - 8 - 6 + 1, 10)
    changed = Y.copy()
    changed[:, 8 + 3 :] += rng.normal(0, 1.0, (41, 30 - 11))  # everything after the fourth start's pre-period
    after = nearest_sets(changed, 1, 8, 30 - 8 - 6 + 1, 10)
    assert all(np.array_equal(a, b) for a, b in zip(before[:4], after[:4], strict=True))
    assert all(a[0] == 0 and len(a) == 11 for a in after)


def _site(n_units: int = 40, seed: int = 5) -> tuple[SiteProtocol, pd.DataFrame]:
    """A simulated site: 48 months of history before an April 2013 start, 36 months of follow-up."""
    return simulated_site(n_units, 84, 48, first_month="2009-04", seed=seed)


_panel = simulated_panel
