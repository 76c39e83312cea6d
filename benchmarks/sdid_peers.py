"""Synthetic difference-in-differences: evallib vs synthdid-py (a port of R synthdid), interleaved, one thread.

    pip install -e ".[bench]"       # the peer: synthdid-py
    python benchmarks/sdid_peers.py [--rounds 5] [--placebo-rounds 3]

Two panels: California's Proposition 99 (39 states x 31 years, the reference example) and a simulated
NHS-like panel (200 comparison trusts x 72 months, one site). First the estimates are checked to agree:
synthdid-py runs R's Frank-Wolfe iterations, which stop just short of the optimum, while evallib solves both
weight problems exactly, so the estimates agree to a relative 2e-3 and evallib's unit-weight objective is
never higher. Then, in interleaved rounds (see _bench.py), CPU and wall time of:
  * the point estimate from the same matrix (like for like: ``sdid_batch`` vs ``synthdid_estimate``);
  * the placebo work, like for like: the same N0 placebo assignments synthdid-py's placebo SE draws (N1
    controls relabelled treated, the real treated units left out), refitted by evallib's ``sdid_batch``
    in one batch and by synthdid-py's ``placebo_se`` (their standard errors checked to a relative 2e-2);
  * and the algorithmic comparison: evallib's whole fit from the long data (the exact placebo-in-space test,
    every unit treated in turn, with its test-inversion interval) vs synthdid-py's placebo SE.
"""

from __future__ import annotations

import argparse
import json

import _bench  # before numpy: pins every thread pool to one thread
import numpy as np
import pandas as pd

from evallib.methods.simulate import simulate_panel
from evallib.methods.synth.synthetic_did import SyntheticDiD, sdid_batch

EST_RTOL = 2e-3  # Frank-Wolfe's early stop vs an exact solution
SE_RTOL = 2e-2  # the same, through N0 refits


def unit_objective(Y: np.ndarray, n0: int, t0: int, omega: np.ndarray) -> float:
    """R synthdid's unit-weight objective (intercept, ridge zeta^2 = sqrt(N1 T1) sigma^2)."""
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    sigma = np.std(np.diff(Y[:n0, :t0], axis=1), ddof=1)
    A = Y[:n0, :t0].T - Y[:n0, :t0].T.mean(axis=0)
    b = Y[n0:, :t0].mean(axis=0)
    r = A @ omega - (b - b.mean())
    return float(r @ r / t0 + np.sqrt(n1 * t1) * sigma**2 * omega @ omega)


def compare(name: str, data: pd.DataFrame, roles: dict[str, str], rounds: int, placebo_rounds: int) -> dict:
    model = SyntheticDiD(**roles)
    wide = data.pivot(index=roles["unit"], columns=roles["time"], values=roles["outcome"])
    if roles.get("transform") == "log":
        wide = np.log(wide)
    treated = data.groupby(roles["unit"])[roles["treated"]].first().reindex(wide.index).astype(bool)
    post = data.groupby(roles["time"])[roles["post"]].first().reindex(wide.columns).astype(bool).to_numpy()
    Y = np.vstack([wide[~treated].to_numpy(), wide[treated].to_numpy()])  # controls first, as synthdid wants
    n0, t0 = int((~treated).sum()), int((~post).sum())
    n1 = len(Y) - n0
    real = np.r_[np.zeros(n0, bool), np.ones(n1, bool)]
    print(f"\n{name}: {n0} comparison units x {t0} + {len(post) - t0} periods")
    record: dict[str, object] = {}
    ours = float(sdid_batch(Y, post, real[None, :], real).estimates[0])
    fit = model.fit(data)
    point = {"evallib sdid_batch": lambda: sdid_batch(Y, post, real[None, :], real)}
    whole = {"evallib fit (exact test)": lambda: model.fit(data)}
    # The placebo assignments synthdid-py's placebo SE draws with random_state=0, for evallib to refit too.
    rng = np.random.default_rng(0)
    perms = [rng.permutation(n0) for _ in range(n0)]
    assign = np.zeros((n0, n0), bool)
    for b, ind in enumerate(perms):
        assign[b, ind[n0 - n1 :]] = True
    Yc = Y[:n0]

    def ours_placebo_se() -> float:
        draws = sdid_batch(Yc, post, assign, assign[0]).estimates
        return float(np.sqrt((n0 - 1) / n0) * np.std(draws, ddof=1))

    if not _bench.have("synthdid"):
        _bench.skip("synthdid-py", "synthdid")
        record["point"] = _bench.report(_bench.interleaved(point, rounds), "evallib sdid_batch", "  point estimate:")
        return record
    from synthdid import synthdid_estimate

    theirs = synthdid_estimate(Y, n0, t0)
    theirs_est = float(theirs)
    assert abs(ours - theirs_est) <= EST_RTOL * abs(theirs_est), (ours, theirs_est)
    obj_ours = unit_objective(Y, n0, t0, sdid_batch(Y, post, real[None, :], real).omega[0][:n0])
    obj_theirs = unit_objective(Y, n0, t0, np.asarray(theirs.weights.omega))
    assert obj_ours <= obj_theirs + 1e-9, (obj_ours, obj_theirs)
    print(f"  estimate   evallib {ours:.6f}   synthdid-py {theirs_est:.6f}   (differ by {abs(ours - theirs_est):.1e})")
    print(f"  unit-weight objective   evallib {obj_ours:.6f}   synthdid-py {obj_theirs:.6f} (lower is better)")
    se_ours = ours_placebo_se()
    se_theirs = theirs.se(method="placebo", replications=n0, random_state=0)
    assert abs(se_ours - se_theirs) <= SE_RTOL * se_theirs, (se_ours, se_theirs)
    print(f"  placebo SE, the same {n0} assignments: evallib {se_ours:.6g}   synthdid-py {se_theirs:.6g}")
    point["synthdid-py synthdid_estimate"] = lambda: synthdid_estimate(Y, n0, t0)
    record["point"] = _bench.report(
        _bench.interleaved(point, rounds), "evallib sdid_batch", f"  point estimate, like for like ({rounds} rounds):"
    )
    # One group, so that both ratios come from the same rounds: synthdid-py's placebo SE takes seconds a call.
    placebo = {
        "evallib sdid_batch": ours_placebo_se,
        "evallib fit (exact test)": whole["evallib fit (exact test)"],
        "synthdid-py placebo_se": lambda: theirs.se(method="placebo", replications=n0, random_state=0),
    }
    t = _bench.interleaved(placebo, placebo_rounds, warmup=0, autorange=False)
    row = fit.headline
    print(
        f"  placebo work ({placebo_rounds} rounds): like for like, the same {n0} placebo refits by evallib's "
        f"sdid_batch and synthdid-py's placebo_se; algorithmic, evallib's whole fit ({len(fit.placebo_estimates)} "
        f"refits, p = {row.p_value:.3f}, interval {row.ci_low:.4g} to {row.ci_high:.4g}) vs the placebo SE only:"
    )
    record["placebo_same_assignments"] = _bench.report(
        {k: t[k] for k in ("evallib sdid_batch", "synthdid-py placebo_se")}, "evallib sdid_batch"
    )
    record["algorithmic"] = _bench.report(
        {k: t[k] for k in ("evallib fit (exact test)", "synthdid-py placebo_se")}, "evallib fit (exact test)"
    )
    return record


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--placebo-rounds", type=int, default=3)
    ap.add_argument("--panels", nargs="*", default=["prop99", "nhs"], choices=["prop99", "nhs"])
    args = ap.parse_args()
    print(_bench.header())
    prop99 = pd.read_csv(_bench.ROOT / "tests" / "fixtures" / "california_prop99.csv")
    prop99["california"] = (prop99["State"] == "California").astype(int)
    prop99["post"] = (prop99["Year"] >= 1989).astype(int)
    record: dict[str, object] = {}
    if "prop99" in args.panels:
        record["prop99"] = compare(
            "California Proposition 99",
            prop99,
            {"outcome": "PacksPerCapita", "unit": "State", "time": "Year", "treated": "california", "post": "post"},
            args.rounds,
            args.placebo_rounds,
        )
    if "nhs" in args.panels:
        nhs = simulate_panel(201, 72, treated=1, start_period=48, effect=0.05, seed=1)
        roles = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}
        record["nhs_200x72"] = compare(
            "Simulated NHS-like panel (log monthly counts)",
            nhs,
            {**roles, "transform": "log"},
            args.rounds,
            args.placebo_rounds,
        )
    out = _bench.ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "sdid_peers.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
