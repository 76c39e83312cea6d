"""Synthetic control: evallib vs pysyncon on the same data, interleaved, one thread, CPU and wall time.

    pip install -e ".[bench]"       # the peers: pysyncon, and causaldata for the data
    python benchmarks/synth_peers.py [--rounds 5] [--skip-nested] [--pysyncon-placebos 0]

Data: the Texas prison example of Cunningham's *Causal Inference: The Mixtape* (PyPI ``causaldata``,
``texas``): black male prisoners per state 1985-2000, Texas treated from 1993; predictors are the
pre-period means of income, unemployment, poverty, alcohol, AIDS, % black and % aged 15-19, plus the
outcome in 1988, 1990, 1991 and 1992.

1. Like for like, the inner problem given the same V: the donor weights minimising
   (X1 - X0 w)' V (X1 - X0 w) on the simplex, on pysyncon's own covariate matrices (scaled by each
   predictor's standard deviation over the donors), for two fixed V (equal, and a seeded random one):
   evallib's ``simplex_least_squares`` (exact NNLS with the sum row) vs pysyncon's ``w_optimize`` (SLSQP).
   Checked first: evallib's objective is at most pysyncon's (relative 1e-9) and the weights agree to 1e-2 (SLSQP stops at its own tolerance).
2. Algorithmic: one nested (ADH) fit each, V searched too (evallib: Powell from six starts; pysyncon: its
   default Nelder-Mead); the better fit is the lower pre-period MSPE, which the nested problem minimises, so
   the estimates are not expected to be equal and both MSPEs are printed. pysyncon takes minutes a fit:
   ``--nested-rounds`` (default 1) rounds, ``--skip-nested`` to leave it out.
3. The full placebo run (every other state as treated) is timed for evallib; for pysyncon,
   ``--pysyncon-placebos`` fits are timed and the full run projected from them (labelled so).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import _bench  # before numpy: pins every thread pool to one thread
import numpy as np
import pandas as pd

from evallib.methods.synth.control import SyntheticControl, simplex_least_squares

PREDICTORS = ("income", "ur", "poverty", "alcohol", "aidscapita", "black", "perc1519")
LAGS = (1988, 1990, 1991, 1992)


def load() -> pd.DataFrame:
    from causaldata import texas

    d = texas.load_pandas().data
    d["state"] = d["state"].astype(str)
    d = d.dropna(subset=["bmprison"])
    # Balanced panel of states with every predictor in every year.
    return d.groupby("state").filter(
        lambda g: g[list(PREDICTORS)].notna().all().all() and len(g) == d["year"].nunique()
    )


def dataprep(d: pd.DataFrame, treated: str, donors: list[str]):
    from pysyncon import Dataprep

    return Dataprep(
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


def pysyncon_fit(d: pd.DataFrame, treated: str, donors: list[str]):
    from pysyncon import Synth

    s = Synth()
    s.fit(dataprep=dataprep(d, treated, donors))
    return s


def inner_problem(keep: pd.DataFrame, donors: list[str], rounds: int) -> dict[str, object]:
    from pysyncon import Synth

    X0, X1 = dataprep(keep, "Texas", donors).make_covariate_mats()
    X0, X1 = X0.to_numpy(float), X1.to_numpy(float)
    sd = X0.std(axis=1, ddof=1)
    sd[sd == 0] = 1.0
    X0n, X1n = X0 / sd[:, None], X1 / sd
    k = len(X1n)
    record: dict[str, object] = {}
    for label, v in (
        ("equal V", np.full(k, 1.0 / k)),
        ("random V (seed 0)", np.random.default_rng(0).dirichlet(np.ones(k))),
    ):
        r = np.sqrt(v)
        V = np.diag(v)

        def ours(r=r) -> np.ndarray:
            return simplex_least_squares(X0n * r[:, None], X1n * r)

        def theirs(V=V) -> np.ndarray:
            return Synth.w_optimize(V, X0n, X1n)[0]

        w_o, w_t = ours(), theirs()

        def obj(w: np.ndarray, v=v) -> float:
            e = X1n - X0n @ w
            return float(e @ (v * e))

        assert obj(w_o) <= obj(w_t) * (1 + 1e-9), (obj(w_o), obj(w_t))
        assert np.max(np.abs(w_o - w_t)) <= 1e-2, np.max(np.abs(w_o - w_t))  # SLSQP stops at its tolerance
        t = _bench.interleaved({"evallib": ours, "pysyncon w_optimize": theirs}, rounds)
        record[label] = _bench.report(
            t,
            "evallib",
            f"\nInner problem given the same V ({label}; {len(donors)} donors, {k} predictors), like for like, "
            f"{rounds} rounds: objective evallib {obj(w_o):.6g}, pysyncon {obj(w_t):.6g}; weights differ by at most "
            f"{np.max(np.abs(w_o - w_t)):.1e}",
        )
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--nested-rounds", type=int, default=1)
    ap.add_argument("--skip-nested", action="store_true", help="leave out pysyncon's nested fit (minutes)")
    ap.add_argument("--pysyncon-placebos", type=int, default=0, help="pysyncon placebo fits to time (minutes each)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(_bench.header())
    if not _bench.have("causaldata"):
        _bench.skip("causaldata (the Texas data)", "causaldata")
        return
    keep = load()
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
    record: dict[str, object] = {}
    have_peer = _bench.have("pysyncon")
    if have_peer:
        record["inner"] = inner_problem(keep, donors, args.rounds)
    else:
        _bench.skip("pysyncon", "pysyncon")
    ours = model.fit(keep)
    fns = {"evallib nested fit": lambda: model.fit(keep)}
    label = f"\nOne nested (ADH) fit, Texas, {len(donors)} donors, algorithmic"
    if have_peer and not args.skip_nested:
        # The first round's pysyncon fit is also the one whose solution is checked (it takes minutes).
        first = {n: _bench.Timing() for n in ("evallib nested fit", "pysyncon nested fit")}

        def timed(name: str, fn):
            c, w = time.process_time(), time.perf_counter()
            out = fn()
            first[name].cpu.append(time.process_time() - c)
            first[name].wall.append(time.perf_counter() - w)
            return out

        ours = timed("evallib nested fit", lambda: model.fit(keep))
        theirs = timed("pysyncon nested fit", lambda: pysyncon_fit(keep, "Texas", donors))
        Y = keep.pivot(index="year", columns="state", values="bmprison")
        pre = Y.index < 1993
        w_theirs = theirs.weights(round=10).reindex(donors).fillna(0.0)
        mspe_ours = float(np.mean((Y.loc[pre, "Texas"] - Y.loc[pre, donors] @ ours.weights.reindex(donors)) ** 2))
        mspe_theirs = float(np.mean((Y.loc[pre, "Texas"] - Y.loc[pre, donors] @ w_theirs) ** 2))
        print(f"{label}: pre-period MSPE evallib {mspe_ours:,.0f}, pysyncon {mspe_theirs:,.0f} (lower is better)")
        both = pd.DataFrame({"evallib": ours.weights.reindex(donors), "pysyncon": w_theirs}).fillna(0.0)
        print(both[(both > 0.01).any(axis=1)].sort_values("evallib", ascending=False).round(3).to_string())
        fns["pysyncon nested fit"] = lambda: pysyncon_fit(keep, "Texas", donors)
        if args.nested_rounds > 1:
            more = _bench.interleaved(fns, args.nested_rounds - 1, warmup=0, autorange=False)
            for n, tm in more.items():
                first[n].cpu += tm.cpu
                first[n].wall += tm.wall
        record["nested"] = _bench.report(first, "evallib nested fit", f"  {args.nested_rounds} round(s):")
    else:
        record["nested"] = _bench.report(
            _bench.interleaved(fns, args.rounds), "evallib nested fit", label + " (evallib only):"
        )

    full_model = SyntheticControl(
        "bmprison", "state", "year", "Texas", 1993, predictors=PREDICTORS, outcome_lags=LAGS, method="nested"
    )
    c, t = time.process_time(), time.perf_counter()
    full = full_model.fit(keep)
    c, t = time.process_time() - c, time.perf_counter() - t
    print(
        f"\nFull placebo run, evallib ({len(donors)} refits + the real fit, one run): CPU {_bench.fmt(c)}, wall "
        f"{_bench.fmt(t)}; mean-gap placebo p = {full.headline.p_value:.3f}; RMSPE-ratio p = {full.rmspe_ratio_p_value:.3f}"
    )
    record["placebo_run_evallib"] = {"cpu": c, "wall": t}
    if have_peer and args.pysyncon_placebos > 0:
        sample = donors[: args.pysyncon_placebos]
        c0 = time.process_time()
        for j in sample:
            pysyncon_fit(keep[keep["state"] != "Texas"], j, [u for u in donors if u != j])
        per_fit = (time.process_time() - c0) / len(sample)
        print(
            f"  pysyncon: {per_fit:.1f} s of CPU a fit over {len(sample)} timed fits; the full run projected at "
            f"{per_fit * (len(donors) + 1):,.0f} s ({per_fit * (len(donors) + 1) / c:.0f}x evallib), a projection"
        )
    c, t = time.process_time(), time.perf_counter()
    fast = SyntheticControl("bmprison", "state", "year", "Texas", 1993).fit(keep)
    print(
        f"Outcome-only fit with all placebos, evallib: CPU {_bench.fmt(time.process_time() - c)}, "
        f"mean-gap p = {fast.headline.p_value:.3f}, RMSPE-ratio p = {fast.rmspe_ratio_p_value:.3f}"
    )
    out = _bench.ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "synth_peers.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
