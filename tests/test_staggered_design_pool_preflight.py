"""The pre-run check of a staggered site sees the pool the analysis will use: ``design_pool`` narrows it, never widens
it, so a design_pool that leaves no unit that never started (or fewer than the starts the placebo test gives out) is
refused before any notebook runs, naming the field and the fix (review of the staggered preflight).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evallib.evaluation.site.staggered_site import staggered_data_problem
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import SiteProtocol, find_params

from .test_staggered_params import _mapping, _preflight_refuses, _project

pytestmark = pytest.mark.unit

NEVER_STARTED = {f"A{i:02d}" for i in range(5, 41)}  # the example's 36 areas that never start
PERIODS = pd.date_range("2012-01-01", "2018-12-01", freq="MS")
UNITS = {"A01", "A02", "A03", "A04"} | NEVER_STARTED


def _problem(**changes: object) -> str:
    return staggered_data_problem(SiteProtocol.from_mapping(_mapping(**changes), "p.yaml"), PERIODS, UNITS)


def test_a_design_pool_outside_the_data_is_refused_before_any_notebook(tmp_path: Path) -> None:
    msg = _preflight_refuses(_project(tmp_path, design_pool=["Z98", "Z99"]))
    # Codes the data do not hold are refused as such first (tests/test_design_pool_unknown_codes.py); a code is not
    # data, so the message names them.
    assert "field 'design_pool' (site rollout) has 2 codes of 2 that are not a unit of the data (Z98, Z99)" in msg
    assert "Re-run `evallib design` for the site on this data" in msg
    # The staggered check on its own still refuses a pool that leaves no unit that never started.
    assert "field 'design_pool' (site rollout) leaves 0 areas that never started" in _problem(design_pool=["Z98"])


def test_a_design_pool_with_fewer_units_than_starts_is_refused() -> None:
    msg = _problem(design_pool=["A05", "A06"])  # four starts to give out, two units to take them
    assert msg.startswith("field 'design_pool' (site rollout) leaves 2 areas that never started")
    assert "gives the 4 starts to other units, so it needs at least as many" in msg


def test_a_design_pool_only_narrows_the_pool() -> None:
    assert _problem(design_pool=sorted(NEVER_STARTED)[:25]) == ""  # 25 of the 36: enough
    assert _problem(design_pool=[*sorted(NEVER_STARTED)[:4], "Z99"]) == ""  # a code not in the data adds nothing
    # Units outside the include list stay out whatever design_pool says (it cannot widen the pool).
    msg = _problem(comparison_include=["A05", "A06"], design_pool=["A05", "A06", "A07", "A08"])
    assert msg.startswith("field 'treated_units'") and "only 2 areas could compare with them" in msg
    assert _problem() == ""  # no design_pool: the protocol's own pool


def test_a_narrowed_pool_that_still_holds_the_starts_passes_preflight(tmp_path: Path) -> None:
    root = _project(tmp_path, design_pool=sorted(NEVER_STARTED)[:10])
    assert [j.site_id for j in preflight(find_params(root / "params"), root)] == ["rollout"]
