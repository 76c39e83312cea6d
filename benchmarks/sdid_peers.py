"""Synthetic difference-in-differences: evallib vs synthdid-py (a port of R synthdid) in one run.

    pip install -e ".[bench]"
    python benchmarks/synth_peers.py  # synthetic control
    python benchmarks/sdid_peers.py   # this one

Two panels: California's Proposition 99 (39 states x 31 years, the reference example)
and a simulated NHS-like panel (200 comparison trusts x 72 months, one site). First the
estimates are checked to agree: synthdid-py runs R's Frank-Wolfe iterations, which stop
just short of the optimum, while evallib solves both weight problems exactly, so the
estimates agree to a relative 1e-3 and evallib's unit-weight objective is never higher.
Then the time of the point estimate, and of the placebo work (evallib: the exact
placebo-in-space test, the estimator refitted with every unit treated; synthdid-py: its
placebo standard error with one refit per comparison unit) are compared.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evallib.methods.simulate import simulate_panel  # noqa: E402
from evallib.methods.synth.synthetic_did import SyntheticDiD, sdid_batch  # noqa: E402


def best_of(fn, repeat: int = 3) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def unit_objective(Y: np.ndarray, n0: int, t0: int, omega: np.ndarray) -> float:
    """R synthdid's unit-weight objective (intercept, ridge zeta^2 = sqrt(N1 T1) sigma^2)."""
    n1, t1 = Y.shape[0] - n0, Y.shape[1] - t0
    sigma = np.std(np.diff(Y[:n0, :t0], axis=1), ddof=1)
    A = Y[:n0, :t0].T - Y[:n0, :t0].T.mean(axis=0)
    b = Y[n0:, :t0].mean(axis=0)
    r = A @ omega - (b - b.mean())
    return float(r @ r / t0 + np.sqrt(n1 * t1) * sigma**2 * omega @ omega)


def compare(name: str, data: pd.DataFrame, roles: dict[str, str]) -> None:
    from synthdid import synthdid_estimate

    model = SyntheticDiD(**roles)
    wide = data.pivot(index=roles["unit"], columns=roles["time"], values=roles["outcome"])
    if roles.get("transform") == "log":
        wide = np.log(wide)
    treated = data.groupby(roles["unit"])[roles["treated"]].first().reindex(wide.index).astype(bool)
    post = data.groupby(roles["time"])[roles["post"]].first().reindex(wide.columns).astype(bool).to_numpy()
    Y = np.vstack([wide[~treated].to_numpy(), wide[treated].to_numpy()])  # controls first, as synthdid wants
    n0, t0 = int((~treated).sum()), int((~post).sum())
    real = np.r_[np.zeros(n0, bool), np.ones(len(Y) - n0, bool)]

    t_ours, batch = best_of(lambda: sdid_batch(Y, post, real[None, :], real))
    t_theirs, theirs = best_of(lambda: synthdid_estimate(Y, n0, t0))
    ours = float(batch.estimates[0])
    theirs_est = float(theirs)
    assert abs(ours - theirs_est) <= 1e-3 * abs(theirs_est), (ours, theirs_est)
    obj_ours = unit_objective(Y, n0, t0, batch.omega[0][:n0])
    obj_theirs = unit_objective(Y, n0, t0, np.asarray(theirs.weights.omega))
    assert obj_ours <= obj_theirs + 1e-9, (obj_ours, obj_theirs)
    print(f"{name}: {n0} comparison units x {t0} + {len(post) - t0} periods")
    print(f"  estimate   evallib {ours:.6f}   synthdid-py {theirs_est:.6f}   (differ by {abs(ours - theirs_est):.1e})")
    print(f"  unit-weight objective   evallib {obj_ours:.6f}   synthdid-py {obj_theirs:.6f} (lower is better)")
    print(
        f"  point estimate   evallib {t_ours * 1e3:8.1f} ms   synthdid-py {t_theirs * 1e3:8.1f} ms   ratio {t_theirs / t_ours:.0f}x"
    )
    t_full, fit = best_of(lambda: model.fit(data), repeat=2)
    t_pl, se = best_of(lambda: theirs.se(method="placebo", replications=n0, random_state=0), repeat=1)
    row = fit.headline
    print(
        f"  with placebos    evallib {t_full * 1e3:8.1f} ms ({len(fit.placebo_estimates)} refits, exact test: "
        f"p = {row.p_value:.3f}, interval {row.ci_low:.4g} to {row.ci_high:.4g})"
    )
    print(
        f"                   synthdid-py {t_pl * 1e3:8.1f} ms ({n0} refits, placebo SE {se:.4g} only)   "
        f"ratio {t_pl / t_full:.0f}x"
    )


def main() -> None:
    prop99 = pd.read_csv(ROOT / "tests" / "fixtures" / "california_prop99.csv")
    prop99["california"] = (prop99["State"] == "California").astype(int)
    prop99["post"] = (prop99["Year"] >= 1989).astype(int)
    compare(
        "California Proposition 99",
        prop99,
        {"outcome": "PacksPerCapita", "unit": "State", "time": "Year", "treated": "california", "post": "post"},
    )
    nhs = simulate_panel(201, 72, treated=1, start_period=48, effect=0.05, seed=1)
    compare(
        "Simulated NHS-like panel (log monthly counts)",
        nhs,
        {
            "outcome": "value",
            "unit": "unit",
            "time": "period",
            "treated": "treated",
            "post": "post",
            "transform": "log",
        },
    )


if __name__ == "__main__":
    main()
