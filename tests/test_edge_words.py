"""A site whose rank sits at the edge of significance says so, and its page, answer and results file agree: a clear
change at p = 0.05 exactly (first of 20), with an interval that leaves out no change (issue 18, point 2)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from evallib import SiteProtocol, evaluate_site
from evallib.evaluation.site.estimators import Headline
from evallib.evaluation.site.volatile import WITHHELD
from evallib.methods.base.results import Estimate
from evallib.reporting.agreement import disagreements
from evallib.reporting.findings import _secondary, summary
from evallib.reporting.words import EDGE_OF_SIGNIFICANCE
from evallib.sources.panel import Panel

from .conftest import simulated_panel, simulated_site

pytestmark = pytest.mark.integration


def test_a_first_of_twenty_rank_is_a_clear_change_at_the_edge_and_says_so() -> None:
    ev = evaluate_site(*_site(21, math.log(0.6)))
    ans = ev.answer
    assert ans is not None
    assert ans.row.p_value == pytest.approx(0.05) and not ans.row.ci_low <= 0 <= ans.row.ci_high
    assert ans.conclusion == "decrease" and ans.direction == "hoped for" and ans.edge
    html = str(summary(ev))
    assert EDGE_OF_SIGNIFICANCE in html and "would not count as a clear change" in html
    assert "no clear effect" not in html.split("Robustness")[0]
    assert 'class="marker good"' not in html or ans.verdict == "confirmed"  # good only when confirmed
    data = ev.to_json_dict()
    assert data["answer"]["edge_of_significance"] is True
    assert disagreements(data) == []


def test_a_rank_far_from_the_edge_says_nothing_of_it() -> None:
    ev = evaluate_site(*_site(60, math.log(0.6)))
    ans = ev.answer
    assert ans is not None and ans.conclusion == "decrease" and not ans.edge
    assert EDGE_OF_SIGNIFICANCE not in str(summary(ev))


def _headline(name: str, p: float, lo: float, hi: float, inference: str = "placebo_in_space") -> Headline:
    row = Estimate("ae", "treated_x_post", -0.137, 0.06, lo, hi, p, "did_twfe", inference, "log", 1, 40)
    return Headline(name, row)


def _secondary_of(**headline: Headline) -> str:
    a = SimpleNamespace(
        headline=headline, label="A&E attendances", is_proportion=False, coverage=SimpleNamespace(units="trusts")
    )
    return _secondary(a)  # type: ignore[arg-type]


def test_a_secondary_outcome_at_p_equal_alpha_is_worded_by_the_same_rule() -> None:
    """V21's A&E sentence: -12.8% (-23.0% to -0.5%, p = 0.05) was 'no clear effect'; now 'a clear decrease'."""
    said = _secondary_of(did=_headline("did", 0.05, -0.261, -0.005))
    assert said.endswith("p = 0.05): a clear decrease.")
    assert _secondary_of(did=_headline("did", 0.075, -0.261, 0.01)).endswith("no clear effect.")


def test_a_volatile_secondary_outcome_reads_the_studentized_test_never_a_clear_unknown() -> None:
    """V20's A&E sentence said 'a clear unknown' beside a withheld interval."""
    withheld = _headline("did", math.nan, math.nan, math.nan, WITHHELD)
    said = _secondary_of(did=withheld, did_studentized=_headline("did_studentized", 0.05, -0.48, -0.014))
    assert "studentized test" in said and said.endswith("a clear decrease.") and "unknown" not in said
    assert "without a p-value" in _secondary_of(did=withheld)


def _site(n_units: int, effect: float) -> tuple[SiteProtocol, Panel]:
    protocol, long = simulated_site(n_units, 60, 24, effect=effect, treated_volatility=1.0, seed=3)
    return protocol, simulated_panel(long)
