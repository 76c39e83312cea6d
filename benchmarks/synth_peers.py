"""Synthetic control: evallib vs pysyncon on the same data, in one run (ratios and the weights each finds).

    pip install -e ".[bench]"
    python benchmarks/synth_peers.py

Data: the Texas prison example of Cunningham's *Causal Inference: The Mixtape* (PyPI ``causaldata``,
``texas``): black male prisoners per state 1985-2000, Texas treated from 1993; predictors are the
pre-period means of income, unemployment, poverty, alcohol, AIDS, % black and % aged 15-19, plus the
outcome in 1988, 1990, 1991 and 1992. Both libraries fit the nested (ADH) model; the better fit is the
lower pre-period MSPE of the outcome, which is what the nested problem minimises. Then the full
placebo run (every other state as treated, Texas among the donors) is timed for evallib; for pysyncon, whose fits take minutes each,
``--pysyncon-placebos`` fits are timed and the full run is projected from them (and labelled so).
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evallib.methods.synth.control import SyntheticControl  # noqa: E402

PREDICTORS = ("income", "ur", "poverty", "alcohol", "aidscapita", "black", "perc1519")
LAGS = (1988, 1990, 1991, 1992)


def load() -> pd.DataFrame:
    from causaldata import texas

    d = texas.load_pandas().data
    d["state"] = d["state"].astype(str)
    return d.dropna(subset=["bmprison"])


def pysyncon_fit(d: pd.DataFrame, treated: str, donors: list[str]):
    from pysyncon import Dataprep, Synth

    prep = Dataprep(
        foo=d,
        predictors=list(PREDICTORS),
        predictors_op="mean",
        time_predictors_prior=range(1985, 1993),
        special_predictors=[("bmprison", [y], "mean") for y in LAGS],
        dependent="bmprison",
        unit_variable="state",
        time_variable="year",
        treatment_identifier=treated,
        controls_identifier=donors,
        time_optimize_ssr=range(1985, 1993),
    )
    s = Synth()
    s.fit(dataprep=prep)
    return s


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pysyncon-placebos", type=int, default=2, help="placebo fits to time for pysyncon (minutes each)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    d = load()
    # Balanced panel of states with every predictor in every year.
    keep = d.groupby("state").filter(
        lambda g: g[list(PREDICTORS)].notna().all().all() and len(g) == d["year"].nunique()
    )
    states = sorted(keep["state"].unique())
    donors = [s for s in states if s != "Texas"]
    model = SyntheticControl(
        "bmprison",
        "state",
        "year",
        "Texas",
        1993,
        predictors=PREDICTORS,
        outcome_lags=LAGS,
        method="nested",
        placebo=False,
    )
    t = time.perf_counter()
    ours = model.fit(keep)
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    theirs = pysyncon_fit(keep, "Texas", donors)
    t_theirs = time.perf_counter() - t
    Y = keep.pivot(index="year", columns="state", values="bmprison")
    pre = Y.index < 1993
    w_theirs = theirs.weights(round=10).reindex(donors).fillna(0.0)
    mspe_ours = float(np.mean((Y.loc[pre, "Texas"] - Y.loc[pre, donors] @ ours.weights.reindex(donors)) ** 2))
    mspe_theirs = float(np.mean((Y.loc[pre, "Texas"] - Y.loc[pre, donors] @ w_theirs) ** 2))
    print(f"Texas, {len(donors)} donors, nested ADH fit")
    print(f"  evallib   {t_ours:7.2f} s   pre-period MSPE {mspe_ours:,.0f}")
    print(
        f"  pysyncon  {t_theirs:7.2f} s   pre-period MSPE {mspe_theirs:,.0f}   (evallib {t_theirs / t_ours:.1f}x faster)"
    )
    print("  weights above 0.01:")
    both = pd.DataFrame({"evallib": ours.weights.reindex(donors), "pysyncon": w_theirs}).fillna(0.0)
    print(both[(both > 0.01).any(axis=1)].sort_values("evallib", ascending=False).round(3).to_string())

    t = time.perf_counter()
    full = SyntheticControl(
        "bmprison", "state", "year", "Texas", 1993, predictors=PREDICTORS, outcome_lags=LAGS, method="nested"
    ).fit(keep)
    t_ours_pl = time.perf_counter() - t
    t = time.perf_counter()
    sample = donors[: args.pysyncon_placebos]
    for j in sample:
        pysyncon_fit(keep[keep["state"] != "Texas"], j, [u for u in donors if u != j])
    per_fit = (time.perf_counter() - t + t_theirs) / (len(sample) + 1)
    t_theirs_pl = per_fit * (len(donors) + 1)
    print(f"\nFull placebo run ({len(donors)} refits + the real fit)")
    print(
        f"  evallib   {t_ours_pl:7.2f} s   mean-gap placebo p = {full.headline.p_value:.3f} "
        f"(interval {full.headline.ci_low:,.0f} to {full.headline.ci_high:,.0f}); RMSPE-ratio p = {full.rmspe_ratio_p_value:.3f}"
    )
    print(
        f"  pysyncon  {t_theirs_pl:7.2f} s   projected from {len(sample) + 1} timed fits "
        f"({per_fit:.1f} s each; evallib {t_theirs_pl / t_ours_pl:.0f}x faster)"
    )
    t = time.perf_counter()
    fast = SyntheticControl("bmprison", "state", "year", "Texas", 1993).fit(keep)
    print(
        f"\nOutcome-only fit with all placebos: {time.perf_counter() - t:.2f} s, mean-gap p = {fast.headline.p_value:.3f}, "
        f"RMSPE-ratio p = {fast.rmspe_ratio_p_value:.3f}"
    )


if __name__ == "__main__":
    main()
