"""Random-effects pooling: REML and Hartung-Knapp against R metafor, and coverage by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib import DataError, random_effects

from .conftest import FIXTURES
from .reference import json_output

pytestmark = pytest.mark.unit

#: metafor 4.6.0 (tests/reference/metafor: the R script, its stored output and the source).
_REF = json_output("metafor/metafor_rma.json")["cases"]
_DATA = pd.read_csv(FIXTURES / "metafor_small_sample.csv")


@pytest.mark.parametrize("case", _REF, ids=lambda c: f"{c['design']}-{c['method']}-{c['test']}")
def test_matches_metafor_rma(case: dict) -> None:
    """metafor 4.6.0 ``rma.uni(y, v, method=, test=)`` on four small designs (k = 5, 5, 10, 20).

    metafor stops its REML Fisher scoring once tau^2 changes by less than 1e-5 (its default
    ``threshold``); ours runs to 1e-12 and reaches a restricted likelihood at least as high, so
    REML numbers agree to 1e-5 relative (1e-6 absolute), DerSimonian-Laird (closed form) to 1e-9.
    """
    d = _DATA[_DATA["case"] == case["design"]]
    r = random_effects(
        d["y"].to_numpy(),
        np.sqrt(d["v"].to_numpy()),
        tau2_method=case["method"].lower(),
        interval="hartung_knapp" if case["test"] == "knha" else "normal",
    )
    rel, tol = (1e-5, 1e-6) if case["method"] == "REML" else (1e-9, 1e-12)
    assert r.tau2 == pytest.approx(case["tau2"], rel=rel, abs=tol)
    for ours, theirs in (
        (r.estimate, "beta"),
        (r.std_error, "se"),
        (r.ci_low, "ci_lb"),
        (r.ci_high, "ci_ub"),
        (r.p_value, "pval"),
    ):
        assert ours == pytest.approx(case[theirs], rel=rel, abs=tol), theirs
    assert 100 * r.i2 == pytest.approx(case["I2"], rel=rel)
    assert r.q == pytest.approx(case["QE"], rel=1e-9)
    assert r.dof == (case["dof"] if case["test"] == "knha" else np.inf)


def test_defaults_are_reml_and_hartung_knapp() -> None:
    r = random_effects(np.array([0.1, -0.05, 0.2, 0.02, 0.3]), np.array([0.05, 0.08, 0.1, 0.04, 0.06]))
    assert (r.tau2_method, r.interval, r.dof, r.k) == ("reml", "hartung_knapp", 4.0, 5)
    one = random_effects(np.array([0.1]), np.array([0.05]))
    assert (one.interval, one.tau2, one.std_error) == ("normal", 0.0, 0.05)
    with pytest.raises(DataError, match="tau2_method"):
        random_effects(np.array([0.1, 0.2]), np.array([0.05, 0.05]), tau2_method="pm")  # type: ignore[arg-type]


@pytest.mark.montecarlo
@pytest.mark.parametrize("k", [5, 8, 13])
def test_hartung_knapp_covers_with_few_sites(k: int) -> None:
    """True-mean coverage ~95% for k = 5-13 sites with unequal SEs and real heterogeneity, where the
    DerSimonian-Laird normal interval under-covers."""
    rng = np.random.default_rng(k)
    reps, mu, tau2 = 1000, 0.02, 0.03**2
    hk, dl = [], []
    for _ in range(reps):
        se = rng.uniform(0.02, 0.06, k)
        y = mu + rng.normal(0, np.sqrt(se**2 + tau2))
        r = random_effects(y, se)
        hk.append(r.ci_low <= mu <= r.ci_high)
        z = random_effects(y, se, tau2_method="dl", interval="normal")
        dl.append(z.ci_low <= mu <= z.ci_high)
    assert abs(np.mean(hk) - 0.95) < 3 * np.sqrt(0.95 * 0.05 / reps)
    assert np.mean(dl) < np.mean(hk)
