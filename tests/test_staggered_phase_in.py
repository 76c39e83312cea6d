"""``post_period_start`` with staggered starts: the same phase-in after every unit's own start, left out of its
effect (Callaway-Sant'Anna's ATT(g,t) for t at least the phase-in after g, the stacked DiD's post window moved by
it), accepted when every unit keeps follow-up after it and refused with the fix otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from evallib.errors import ParamsError
from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.did.stacked import StackedDiD
from evallib.methods.did.staggered import CallawaySantAnna
from evallib.protocol.params import SiteProtocol, load_params

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "staggered"
TRUE_LOG = math.log(0.88)


def _mapping(**changes: Any) -> dict[str, Any]:
    m = yaml.safe_load((EXAMPLE / "rollout.yaml").read_text())
    m.update(changes)
    return m


def _panel(seed: int, n_units: int = 30, n_periods: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    periods = pd.date_range("2015-01-01", periods=n_periods, freq="MS")
    logs = 6 + rng.normal(0, 0.3, n_units) + np.cumsum(rng.normal(0, 0.02, (n_periods, n_units)), axis=0)
    return pd.DataFrame(np.exp(logs), index=periods, columns=[f"U{i:02d}" for i in range(n_units)])


@pytest.mark.unit
def test_a_phase_in_is_accepted_when_every_unit_keeps_follow_up_after_it() -> None:
    p = SiteProtocol.from_mapping(_mapping(post_period_start="2016-07"), "params/other/rollout.yaml")
    assert p.staggered and p.post_period_start == "2016-07"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("post_start", "words"),
    [
        (
            "2018-05",
            "field 'post_period_start' gives a phase-in of 25 months after each unit's start, which leaves A03, A04 "
            "no follow-up before post_period_end 2018-12. Shorten the phase-in",
        ),
        ("2016-03", "The post-period must start at or after intervention_start"),  # before the first start
    ],
)
def test_a_phase_in_that_leaves_no_follow_up_or_precedes_the_first_start_is_refused(
    post_start: str, words: str
) -> None:
    with pytest.raises(ParamsError) as exc:
        SiteProtocol.from_mapping(_mapping(post_period_start=post_start), "params/other/rollout.yaml")
    assert words in str(exc.value), str(exc.value)


@pytest.mark.unit
@pytest.mark.parametrize("phase_in", [0, 3])
def test_a_phase_in_leaves_each_cohorts_first_periods_out_of_callaway_santanna(phase_in: int) -> None:
    wide = _panel(3)
    p = wide.index
    starts = {"U01": p[12], "U02": p[12], "U05": p[20], "U07": p[30]}
    fast = StaggeredPlacebo(n_draws=99, phase_in=phase_in).fit(Design.staggered(wide, starts, measure="count"))
    gt = CallawaySantAnna(control_group="not_yet_treated").fit(Design.staggered(np.log(wide), starts)).group_time
    # group and time are 1-based period numbers: ATT(g,t) from the phase-in's end on.
    by = {g: rows.loc[rows["time"] >= g + phase_in, "att"].mean() for g, rows in gt.groupby("group")}
    sizes = {13: 2, 21: 1, 31: 1}
    assert [r.estimate for r in fast.cohorts] == pytest.approx([by[g] for g in sorted(by)], abs=1e-12)
    overall = sum(sizes[g] * by[g] for g in by) / 4
    assert fast.overall.estimate == pytest.approx(overall, abs=1e-12)


@pytest.mark.unit
def test_a_phase_in_moves_the_stacked_post_window_and_its_clean_comparisons() -> None:
    wide = _panel(4)
    p = wide.index
    starts = {"U01": p[24], "U02": p[36], "U03": p[42]}
    res = StackedDiD(pre_periods=12, post_periods=6, phase_in=3, n_draws=99).fit(
        Design.staggered(wide, starts, measure="count")
    )
    y = np.log(wide)

    def change(u: str, s: int) -> float:
        return float(y[u].iloc[s + 3 : s + 9].mean() - y[u].iloc[s - 12 : s].mean())

    never = [u for u in wide.columns if u not in starts]
    # U02 starts at 36 >= 24 + 3 + 6: clean for the first cohort; U03 (42) is clean for it too, not for U02's.
    first = change("U01", 24) - np.mean([change(u, 24) for u in [*never, "U02", "U03"]])
    assert res.cohorts[0].estimate == pytest.approx(first, abs=1e-12)
    assert [r.n_control for r in res.cohorts] == [len(never) + 2, len(never), len(never)]


@pytest.mark.integration
def test_the_worked_example_with_a_phase_in_holds_the_truth(monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.protocol.paths import ROOT_ENV

    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    p = load_params(EXAMPLE / "rollout.yaml")
    ev = evaluate_site(SiteProtocol.from_mapping({**p.to_mapping(), "post_period_start": "2016-07"}))
    assert ev.status == "evaluated" and ev.staggered is not None and ev.staggered.phase_in == 3
    for row in (ev.staggered.overall, ev.staggered.stacked.overall if ev.staggered.stacked else None):
        assert row is not None and row.ci_low <= TRUE_LOG <= row.ci_high
    assert "Each area's first 3 months from its own start are a phase-in" in ev.flags[0]
    from evallib.reporting.staggered_section import staggered

    assert "start after a phase-in of 3 months;" in " ".join(staggered(ev).html.split())
