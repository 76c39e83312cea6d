"""A volatile site's controlled ITS rows are withheld (plain placebo tests are not reliable for it). With several
treated units and sampled fake sites, the ITS method text must not then say that every set of comparison units was
tried (the exhaustive-sets branch), and the result's per-term Monte Carlo errors must not stand beside the withheld
p-values (each one is sqrt(p (1 - p) / draws), so it gives the withheld p-value back up to p <-> 1 - p)
(review of issue 22's controlled ITS changes).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from evallib import evaluate_site
from evallib.evaluation.site.volatile import withhold_headline
from evallib.reporting.sections import its

from .conftest import simulated_panel, simulated_site


def _text(html: object) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", str(html)))


@pytest.fixture(scope="module")
def withheld():  # type: ignore[no-untyped-def]
    protocol, long = simulated_site(60, 60, 24, seed=4)  # 3 of 60 treated: C(57, 3) = 29,260 fake sites, 999 drawn
    protocol = replace(protocol, treated_units=("T000", "T001", "T002"), primary_estimator="did")
    ev = evaluate_site(protocol, panel=simulated_panel(long))
    a = ev.primary
    assert a is not None and a.controlled is not None and a.controlled.placebo_draws == 999
    headline = {n: withhold_headline(h) if n == "controlled_its" else h for n, h in a.headline.items()}
    a = replace(a, headline=headline)
    return replace(ev, analyses=tuple(a if x is ev.primary else x for x in ev.analyses)), a.controlled


@pytest.mark.integration
def test_the_method_text_does_not_claim_every_set_was_tried_when_the_rows_are_withheld(withheld) -> None:  # type: ignore[no-untyped-def]
    ev, _ = withheld
    text = _text(its(ev))
    assert "every set of as many comparison units as the site has (few enough to try each once)" not in text


@pytest.mark.integration
def test_withheld_rows_state_no_monte_carlo_error(withheld) -> None:  # type: ignore[no-untyped-def]
    _, c = withheld
    assert c.term_mc_errors() == {}
    assert "p_value_mc_error" not in c.summary() and "Monte Carlo" not in c.summary()
