"""evallib's TWFE DiD and placebo inference against peer libraries: interleaved, one thread, CPU and wall time.

    pip install -e ".[bench]"       # peers: pyfixest, linearmodels (statsmodels is a main dependency)
    python benchmarks/did_peers.py [--rounds 7] [--skip-statsmodels-large]

Compares, on simulated balanced panels of 200 x 120 and 2000 x 120 (units x months):
  * TWFE DiD with cluster-robust (CR1) SE, from the same long data frame (like for like): evallib.DiD vs
    pyfixest.feols, linearmodels.PanelOLS and statsmodels OLS with dummy columns (the last is skipped for
    2000 x 120 with the flag: it takes minutes);
  * placebo-in-space inference with one treated unit, every comparison unit treated in turn (180 re-estimates
    on 181 x 120: the 200 x 120 panel less its other treated units):
    evallib's fit (estimates, exact test and test-inversion interval) vs a loop of pyfixest fits (the
    algorithmic comparison) and vs a numpy closed form of the same 199 estimates (the like-for-like floor:
    with one treated unit and one start date, unit i's placebo estimate is (n d_i - sum d) / (n - 1), d being
    each unit's post-minus-pre mean; evallib's fit does more: it validates the data and inverts the test).
Every peer's estimate is checked equal to evallib's (absolute 1e-8) before any time is reported. Each
comparison runs in interleaved rounds (see _bench.py); a peer that is not installed is said and skipped.
"""

from __future__ import annotations

import argparse
import json
import warnings

import _bench  # before numpy: pins every thread pool to one thread
import numpy as np
import pandas as pd

from evallib.methods.did.twfe import DiD
from evallib.methods.simulate import simulate_panel

TOL = 1e-8


def panel(n_units: int, n_periods: int) -> pd.DataFrame:
    d = simulate_panel(
        n_units, n_periods, treated=max(1, n_units // 10), start_period=n_periods * 2 // 3, effect=0.05, seed=1
    )
    d["y"] = np.log(d["value"])
    d["D"] = d["treated"] * d["post"]
    d["t"] = d["period"].rank(method="dense").astype(int)
    return d


def twfe(n_units: int, n_periods: int, rounds: int, skip_sm_large: bool) -> dict[str, object]:
    d = panel(n_units, n_periods)
    model = DiD("y", "unit", "t", "treated", "post", inference="cluster_cr1")
    ours = model.fit(d)
    fns = {"evallib": lambda: model.fit(d)}
    label = f"\nTWFE + CR1 from a long data frame, {n_units} x {n_periods} (rounds: {rounds})"
    if _bench.have("pyfixest"):
        import pyfixest as pf

        def run_pf():
            return pf.feols("y ~ D | unit + t", data=d, vcov={"CRV1": "unit"})

        fit = run_pf()
        assert abs(fit.coef()["D"] - ours.estimate) < TOL, "pyfixest estimate differs"
        assert abs(fit.se()["D"] - ours.headline.std_error) < TOL, "pyfixest SE differs"
        fns["pyfixest"] = run_pf
    else:
        _bench.skip("pyfixest", "pyfixest")
    if _bench.have("linearmodels"):
        from linearmodels.panel import PanelOLS

        lm_data = d.set_index(["unit", "t"])

        def run_lm():
            return PanelOLS(lm_data["y"], lm_data[["D"]], entity_effects=True, time_effects=True).fit(
                cov_type="clustered", cluster_entity=True
            )

        assert abs(run_lm().params["D"] - ours.estimate) < TOL, "linearmodels estimate differs"
        fns["linearmodels"] = run_lm
    else:
        _bench.skip("linearmodels", "linearmodels")
    rec = _bench.report(_bench.interleaved(fns, rounds), "evallib", label)
    if not (skip_sm_large and n_units > 500):
        import statsmodels.formula.api as smf

        def run_sm():
            return smf.ols("y ~ D + C(unit) + C(t)", d).fit(cov_type="cluster", cov_kwds={"groups": d["unit"]})

        assert abs(run_sm().params["D"] - ours.estimate) < TOL, "statsmodels estimate differs"
        # Seconds to minutes a fit: 3 rounds of its own, each beside an evallib run.
        sm = _bench.interleaved({"evallib": fns["evallib"], "statsmodels (dummies)": run_sm}, 3, warmup=0)
        rec["statsmodels"] = _bench.report(sm, "evallib", "  statsmodels, 3 rounds of its own:")
    return rec


def placebo(rounds: int) -> dict[str, object]:
    d = panel(200, 120)
    first = d.loc[d["treated"] == 1, "unit"].iloc[0]
    d = d[(d["treated"] == 0) | (d["unit"] == first)].reset_index(drop=True)  # one treated unit
    model = DiD("y", "unit", "t", "treated", "post", inference="placebo_in_space")
    ours = model.fit(d)
    units = sorted(d["unit"].unique())
    fake_units = [u for u in units if u not in ours.treated_units]
    ours_by_unit = dict(zip(units, ours.placebo_estimates, strict=True))
    want = np.array([ours_by_unit[u] for u in fake_units])
    order = d.sort_values(["unit", "t"])
    n, n_t = len(units), d["t"].nunique()
    post_mask = (order["post"].to_numpy().reshape(n, n_t)[0]).astype(bool)
    is_fake = np.isin(np.array(units), fake_units)

    def closed_form() -> np.ndarray:
        # From the long frame's values in (unit, time) order: one reshape, two means, one vector formula.
        Y = order["y"].to_numpy().reshape(n, n_t)
        delta = Y[:, post_mask].mean(axis=1) - Y[:, ~post_mask].mean(axis=1)
        return ((n * delta - delta.sum()) / (n - 1))[is_fake]

    assert np.allclose(closed_form(), want, atol=TOL, rtol=0), "closed form differs"
    fns = {"evallib": lambda: model.fit(d), "numpy closed form": closed_form}
    label = (
        f"\nPlacebo-in-space, {len(fake_units)} re-estimates on {n} x {n_t} (evallib: estimates, exact test and "
        f"test-inversion interval; closed form: the {len(fake_units)} estimates only"
    )
    if _bench.have("pyfixest"):
        import pyfixest as pf

        def pyfixest_loop() -> list[float]:
            out = []
            for u in fake_units:
                fake = d.assign(D=((d["unit"] == u) & (d["post"] == 1)).astype(int))
                out.append(float(pf.feols("y ~ D | unit + t", data=fake).coef()["D"]))
            return out

        assert np.allclose(pyfixest_loop(), want, atol=TOL, rtol=0), "pyfixest loop differs"
        # The loop takes seconds: 3 rounds, each interleaved with the other two.
        t = _bench.interleaved({**fns, "pyfixest loop": pyfixest_loop}, min(rounds, 3), warmup=0)
        label += "; 3 rounds with the pyfixest loop)"
        rec = _bench.report(t, "evallib", label)
        for slow, fast in (("pyfixest loop", "numpy closed form"), ("evallib", "numpy closed form")):
            r = _bench.ratio(t, slow, fast)
            print(
                f"  {slow} / {fast}: CPU {r['cpu_median']:.1f}x (rounds {r['cpu_lo']:.1f}-{r['cpu_hi']:.1f}x), "
                f"wall {r['wall_median']:.1f}x"
            )
            rec[f"{slow}/{fast}"] = r
        return rec
    _bench.skip("pyfixest", "pyfixest")
    return _bench.report(_bench.interleaved(fns, rounds), "evallib", label + ")")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-statsmodels-large", action="store_true")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(_bench.header())
    record: dict[str, object] = {}
    for n_units, n_periods in ((200, 120), (2000, 120)):
        record[f"twfe_cr1_{n_units}x{n_periods}"] = twfe(n_units, n_periods, args.rounds, args.skip_statsmodels_large)
    record["placebo_199"] = placebo(args.rounds)
    print(f"\n{_bench.pin_threads()}")  # pools loaded by the peers were pinned too
    out = _bench.ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "did_peers.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
