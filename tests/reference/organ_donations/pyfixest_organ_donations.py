"""Recompute the organ-donations reference values with pyfixest (the Python port of R fixest).

Run by hand, in an environment with the ``bench`` extra (``pip install -e '.[bench]'``), from the repository root::

    python tests/reference/organ_donations/pyfixest_organ_donations.py > tests/reference/organ_donations/pyfixest_organ_donations.out

It prints ``name = value`` lines in the same names as ``fixest_organ_donations.out`` (the R output), at full precision.
The tests read the R output; ``tests/test_reference_files.py`` checks that this one agrees with it.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pandas as pd
import pyfixest as pf

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "organ_donations.csv"


def main() -> None:
    od = pd.read_csv(DATA)
    od["california"] = (od["State"] == "California").astype(int)
    od["treated"] = od["california"] * (od["Quarter_Num"] >= 4)
    print(f"# pyfixest {version('pyfixest')}, pandas {version('pandas')}; data tests/fixtures/organ_donations.csv")

    # TWFE DiD, state and quarter fixed effects, clustered by state (fixest's CR1 small-sample factor).
    twfe = pf.feols("Rate ~ treated | State + Quarter_Num", data=od, vcov={"CRV1": "State"})
    print(f"twfe.estimate = {twfe.coef()['treated']:.10f}")
    print(f"twfe.std_error = {twfe.se()['treated']:.10f}")
    print(f"twfe.p_value = {twfe.pvalue()['treated']:.10f}")

    # Event study, reference quarter 3 (the last before treatment).
    for q in (1, 2, 4, 5, 6):
        od[f"q{q}"] = od["california"] * (od["Quarter_Num"] == q)
    es = pf.feols("Rate ~ q1 + q2 + q4 + q5 + q6 | State + Quarter_Num", data=od, vcov={"CRV1": "State"})
    for q in (1, 2, 4, 5, 6):
        print(f"event.q{q}.estimate = {es.coef()[f'q{q}']:.10f}")
        print(f"event.q{q}.std_error = {es.se()[f'q{q}']:.10f}")

    # Placebo in space: every state in turn as the treated one; two-sided rank p of California's estimate.
    estimates = {}
    for state in sorted(od["State"].unique()):
        fake = od.assign(treated=(od["State"] == state).astype(int) * (od["Quarter_Num"] >= 4))
        estimates[state] = pf.feols("Rate ~ treated | State + Quarter_Num", data=fake, vcov="iid").coef()["treated"]
    observed = abs(estimates["California"])
    as_extreme = sum(abs(v) >= observed - 1e-12 for v in estimates.values())
    print(f"placebo.n_states = {len(estimates)}")
    print(f"placebo.n_as_extreme = {as_extreme}")
    print(f"placebo.p_value = {as_extreme / len(estimates):.10f}")


if __name__ == "__main__":
    main()
