"""``evaluate_site`` and the batch's pre-run check accept the same ``design_pool`` codes: a params file that passes the
pre-run check is never refused by the notebook it then runs (a batch site turned into a failure), and one the check
refuses is refused by a notebook run on its own. A code of the data outside the analysis window (a PCT whose rows end
in March 2013, linked by no succession to the window's codes) is one the two once judged differently (review).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from evallib.errors import ParamsError
from evallib.evaluation.site.coverage import analysis_frame, load_source
from evallib.pipeline import preflight as pf
from evallib.protocol.params import SiteProtocol, load_params

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
#: A PCT of the commissioner data whose rows end in March 2013, before V30's window (April 2013 on).
OUT_OF_WINDOW = "5A9"


def _both(protocol: SiteProtocol) -> tuple[str, str]:
    """(the pre-run check's problem, analysis_frame's refusal) for the primary analysis; '' when none."""
    spec = protocol.analyses[0]
    panel = load_source(spec.data_source)
    check = pf._check_against_data(protocol, spec, panel.periods().min(), set(panel.units))
    try:
        analysis_frame(protocol, panel, spec)
    except ParamsError as exc:
        return check, str(exc)
    return check, ""


def test_a_data_code_outside_the_window_is_judged_alike() -> None:
    protocol = load_params(ROOT / "params" / "vanguards" / "V30.yaml")
    panel = load_source(protocol.data_source)
    rows = panel.data[panel.data["unit"] == OUT_OF_WINDOW]
    assert len(rows) and rows["period"].max() < protocol.windows.pre_start  # in the data, not in the window
    check, refusal = _both(replace(protocol, design_pool=(*protocol.design_pool, OUT_OF_WINDOW)))
    assert check == refusal == ""


def test_a_code_the_data_lack_is_refused_alike() -> None:
    protocol = load_params(ROOT / "params" / "vanguards" / "V30.yaml")
    check, refusal = _both(replace(protocol, design_pool=(*protocol.design_pool, "Z99")))
    assert check and check == refusal


@pytest.mark.parametrize("site", ["ics/I01", "ics/I07", "vanguards/V30"])
def test_the_committed_design_pools_pass_both(site: str) -> None:
    protocol = load_params(ROOT / "params" / f"{site}.yaml")
    assert protocol.design_pool
    assert _both(protocol) == ("", "")
