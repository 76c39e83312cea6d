"""evallib's TWFE DiD and placebo inference against peer libraries, in one run (ratios, not seconds).

    pip install -e ".[bench]"
    python benchmarks/did_peers.py [--repeat 5] [--skip-statsmodels-large]

Compares, on simulated balanced panels of 200 x 120 and 2000 x 120 (units x months):
  * TWFE DiD with cluster-robust (CR1) SE: evallib.DiD vs pyfixest.feols, linearmodels.PanelOLS
    and statsmodels OLS with dummy columns (the last is skipped for 2000 x 120 with the flag:
    it takes minutes);
  * placebo-in-space inference with 199 re-estimates: evallib's one matrix product vs a loop of
    pyfixest fits.
Every peer's estimate is checked against evallib's before its time is reported.
Targets (issue 3): at least 10x pyfixest for TWFE and 100x for placebo inference.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evallib.methods.did.twfe import DiD  # noqa: E402
from evallib.methods.simulate import simulate_panel  # noqa: E402


def timed(fn, repeat: int) -> tuple[float, object]:
    out = fn()  # warm-up (imports, JIT, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def panel(n_units: int, n_periods: int) -> pd.DataFrame:
    d = simulate_panel(
        n_units, n_periods, treated=max(1, n_units // 10), start_period=n_periods * 2 // 3, effect=0.05, seed=1
    )
    d["y"] = np.log(d["value"])
    d["D"] = d["treated"] * d["post"]
    d["t"] = d["period"].rank(method="dense").astype(int)
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-statsmodels-large", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import pyfixest as pf
    import statsmodels.formula.api as smf
    from linearmodels.panel import PanelOLS

    print(f"cores: {os.cpu_count()}  numpy {np.__version__}  pyfixest {pf.__version__}")
    record: dict[str, dict[str, float]] = {}
    for n_units, n_periods in ((200, 120), (2000, 120)):
        d = panel(n_units, n_periods)
        key = f"{n_units}x{n_periods}"
        model = DiD("y", "unit", "t", "treated", "post", inference="cluster_cr1")
        t_ev, ours = timed(lambda d=d, model=model: model.fit(d), args.repeat)
        times = {"evallib": t_ev}
        t_pf, pf_fit = timed(lambda d=d: pf.feols("y ~ D | unit + t", data=d, vcov={"CRV1": "unit"}), args.repeat)
        assert abs(pf_fit.coef()["D"] - ours.estimate) < 1e-8 and abs(pf_fit.se()["D"] - ours.headline.std_error) < 1e-8
        times["pyfixest"] = t_pf
        lm_data = d.set_index(["unit", "t"])
        t_lm, lm_fit = timed(
            lambda lm_data=lm_data: PanelOLS(lm_data["y"], lm_data[["D"]], entity_effects=True, time_effects=True).fit(
                cov_type="clustered", cluster_entity=True
            ),
            max(1, args.repeat // 2),
        )
        assert abs(lm_fit.params["D"] - ours.estimate) < 1e-8
        times["linearmodels"] = t_lm
        if not (args.skip_statsmodels_large and n_units > 500):
            t_sm, sm_fit = timed(
                lambda d=d: smf.ols("y ~ D + C(unit) + C(t)", d).fit(
                    cov_type="cluster", cov_kwds={"groups": d["unit"]}
                ),
                1,
            )
            assert abs(sm_fit.params["D"] - ours.estimate) < 1e-8
            times["statsmodels"] = t_sm
        record[f"twfe_cr1_{key}"] = times
        print(f"\nTWFE + CR1, {key}: evallib {t_ev * 1e3:.1f} ms")
        for peer, t in times.items():
            if peer != "evallib":
                print(f"  {peer:<13} {t * 1e3:10.1f} ms   evallib is {t / t_ev:8.1f}x faster")

    # Placebo-in-space: 199 re-estimates on 200 x 120.
    d = panel(200, 120)
    d = d[(d["treated"] == 0) | (d["unit"] == d.loc[d["treated"] == 1, "unit"].iloc[0])]  # one treated unit
    units = sorted(d["unit"].unique())[:200]
    d = d[d["unit"].isin(units)]
    model = DiD("y", "unit", "t", "treated", "post", inference="placebo_in_space")
    t_ev, ours = timed(lambda: model.fit(d), args.repeat)
    fake_units = [u for u in units if u not in ours.treated_units][:199]

    def pyfixest_loop() -> list[float]:
        out = []
        for u in fake_units:
            fake = d.assign(D=((d["unit"] == u) & (d["post"] == 1)).astype(int))
            out.append(float(pf.feols("y ~ D | unit + t", data=fake).coef()["D"]))
        return out

    t_loop, loop = timed(pyfixest_loop, 1)
    ours_by_unit = dict(zip(sorted(d["unit"].unique()), ours.placebo_estimates, strict=True))
    assert np.allclose(loop, [ours_by_unit[u] for u in fake_units], atol=1e-8)
    record["placebo_199"] = {"evallib": t_ev, "pyfixest_loop": t_loop}
    print(f"\nPlacebo-in-space, {len(fake_units)} re-estimates on {d['unit'].nunique()} x 120:")
    print(f"  evallib (all {d['unit'].nunique()} assignments, with test-inversion interval) {t_ev * 1e3:.1f} ms")
    print(f"  pyfixest loop {t_loop * 1e3:10.1f} ms   evallib is {t_loop / t_ev:8.1f}x faster")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "did_peers.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
