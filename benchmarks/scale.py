"""How one site's estimation grows with the number of comparison units: CPU, peak memory and growth exponents.

    python benchmarks/scale.py            # 100, 300, 1,000 comparison units x 72 months; 288 months up to 300
    python benchmarks/scale.py --full     # also 3,000 and 7,000 units, and 288 months up to 1,000 units
    python benchmarks/scale.py --budget 120 --per-run 30 --max-gb 4
    python benchmarks/scale.py --full --estimators SyntheticDiD --long-sizes 100 300 1000 3000 7000
    python benchmarks/scale.py --weekly   # also weekly panels: 156 and 312 ISO weeks at 100 and 300 units
    python benchmarks/scale.py --site --full  # a whole site's evaluation (evaluate_site), 100 to 7,000 units
    python benchmarks/scale.py --site --site-sizes 7000 --primary rate_ratio

Every headline estimator, through its public class with the inference a site gets by default: DiD (placebo in
space), the studentized DiD, EventStudy, PoissonDiD, ControlledITS, SyntheticControl and SyntheticDiD, each on a
panel from ``evallib.methods.simulate.simulate_panel`` with one treated unit (so ``n`` comparison units are
``n + 1`` units) and the start two thirds of the way through. Each (estimator, size) runs in a process of
its own, forked after the imports, one thread, so that its peak memory (``ru_maxrss``) is its own: the CPU time (``time.process_time``)
of ``fit`` (the minimum of three fits where one takes under 0.2 s), the process's peak resident memory, and the
rise over the process before the fit (imports and the panel already in memory).

The growth exponent k (time ~ n^k) is the least-squares slope of log CPU on log n over the sizes measured at 72
months; the local exponents between successive sizes are printed too. Before each size, its cost is predicted
from the last two sizes measured (time and memory extrapolated with their local exponents); a size predicted to
take longer than ``--per-run`` seconds or more than ``--max-gb`` is skipped and said so, and so is every size
once the whole run would pass ``--budget`` seconds. A child is also stopped at 2x ``--per-run`` seconds and
limited to ``--max-gb`` of address space. ``--weekly`` adds panels of 156 and 312 weekly periods (the same
simulation re-dated to consecutive Mondays, the controlled ITS with 52 periods a year), keyed ``100x156w``: the
cost of weekly data against 72 months at the same number of units. Writes benchmarks/results/scale.json.

``--site`` measures a whole site instead: a simulated own-data site (``simulate_nhs_panel``: one treated unit
among ``n`` comparison units, 72 months from April 2010, the start in April 2013, a -10% effect) evaluated
through the evaluator's own-data path, ``evaluate_site`` (every headline estimator, the answer's robustness
checks with its leave-one-out, the event study, the pre-trend test, the quality screen), with ``--primary`` as
the protocol's primary estimator (default synthetic DiD, the costliest leave-one-out). Each size in a process of
its own forked after the imports: the CPU time of ``evaluate_site`` (``time.process_time``), the process's peak
resident memory (panel included) and the growth exponents. Writes benchmarks/results/scale_site.json.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _scale import exponents, run_forked  # noqa: E402  (benchmarks/_scale.py, beside this file)

ROOT = Path(__file__).resolve().parents[1]

ESTIMATORS = (
    "DiD",
    "DiD studentized",
    "EventStudy",
    "PoissonDiD",
    "ControlledITS",
    "SyntheticControl",
    "SyntheticDiD",
)


def _fit(name: str, n: int, months: int, max_gb: float, weekly: bool, conn) -> None:
    """In a child forked after the imports: fit one estimator on one panel size; send its figures back."""
    try:
        limit = int(max_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        import pandas as pd

        from evallib.methods.did.event_study import EventStudy
        from evallib.methods.did.rate_ratio import PoissonDiD
        from evallib.methods.did.twfe import DiD
        from evallib.methods.its.controlled import ControlledITS
        from evallib.methods.simulate import simulate_panel
        from evallib.methods.synth.control import SyntheticControl
        from evallib.methods.synth.synthetic_did import SyntheticDiD

        d = simulate_panel(n + 1, months, treated=1, start_period=months * 2 // 3, effect=0.05, seed=1)
        if weekly:  # the same panel, one period a week (consecutive ISO weeks, dated by their Mondays)
            periods = sorted(d["period"].unique())
            mondays = pd.date_range("2014-01-06", periods=len(periods), freq="W-MON")
            d["period"] = d["period"].map(dict(zip(periods, mondays, strict=True)))
        start = d.loc[d["post"] == 1, "period"].min()
        site = str(d["unit"].iloc[0])
        model = {
            "DiD": lambda: DiD(transform="log"),
            "DiD studentized": lambda: DiD(transform="log", inference="placebo_studentized"),
            "EventStudy": lambda: EventStudy(start=start, transform="log"),
            "PoissonDiD": lambda: PoissonDiD(),
            "ControlledITS": lambda: ControlledITS(start=start, periods_per_year=52 if weekly else 12),
            "SyntheticControl": lambda: SyntheticControl(treated=site, start=start, transform="log"),
            "SyntheticDiD": lambda: SyntheticDiD(transform="log"),
        }[name]()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c = time.process_time()
        result = model.fit(d)
        cpu = time.process_time() - c
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if cpu < 0.2:
            for _ in range(2):
                c = time.process_time()
                model.fit(d)
                cpu = min(cpu, time.process_time() - c)
        row = result.headline
        conn.send(
            {
                "cpu": cpu,
                "peak_mb": peak / 1024,
                "rise_mb": (peak - before) / 1024,
                "estimate": row.estimate,
                "p_value": row.p_value,
            }
        )
    except MemoryError:
        conn.send({"skipped": f"over {max_gb:g} GB (MemoryError)"})
    except Exception as e:  # a benchmark reports a failure and goes on to the next size
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        conn.send({"skipped": f"failed: {type(e).__name__}: {msg}"})


def run_child(name: str, n: int, months: int, per_run: float, max_gb: float, weekly: bool = False) -> dict[str, object]:
    """One fit in a process forked from this one (imports done), so that its peak memory is its own."""
    return run_forked(_fit, (name, n, months, max_gb, weekly), 2 * per_run, max_gb)


def predict(done: list[tuple[int, dict]], n: int, key: str) -> float | None:
    """Extrapolate ``key`` to size ``n`` from the last two sizes measured (local exponent, at least 1)."""
    pts = [(m, r[key]) for m, r in done if key in r]
    if not pts:
        return None
    if len(pts) == 1:
        (m, v) = pts[0]
        return v * (n / m) ** 2  # a cautious guess: quadratic
    (m0, v0), (m1, v1) = pts[-2], pts[-1]
    k = max(1.0, math.log(max(v1, 1e-6) / max(v0, 1e-6)) / math.log(m1 / m0))
    return v1 * (n / m1) ** k


def predict_wall(walls: list[tuple[float, float]], cpu: float) -> float:
    """Seconds of wall time a fit of ``cpu`` seconds is expected to take, from the (wall, cpu) pairs so far."""
    if not walls:
        return 1.0 + 2.0 * cpu
    fixed = max(0.1, min(w - c for w, c in walls))
    big = sorted(w / c for w, c in walls if c > 0.2)
    factor = max(1.0, big[len(big) // 2]) if big else 2.0
    return fixed + factor * cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="add 3,000 and 7,000 comparison units")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole run (default 180; 600 --full)")
    ap.add_argument("--per-run", type=float, default=None, help="most seconds one fit may be predicted to take")
    ap.add_argument("--max-gb", type=float, default=8.0, help="most memory one fit may take (GB)")
    ap.add_argument("--estimators", nargs="*", default=list(ESTIMATORS), choices=ESTIMATORS)
    ap.add_argument("--long-sizes", nargs="*", type=int, help="units at 288 months (default 100, 300; --full 1,000)")
    ap.add_argument("--weekly", action="store_true", help="add weekly panels (156 and 312 weeks, 100 and 300 units)")
    ap.add_argument("--site", action="store_true", help="a whole site's evaluation (evaluate_site) at each size")
    ap.add_argument("--site-sizes", nargs="*", type=int, help="comparison units for --site (default as the fits)")
    ap.add_argument("--primary", default="synthetic_did", help="the site's primary estimator (--site)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.site:
        from scale_site import site_main  # benchmarks/scale_site.py, beside this file

        site_main(args)
        return
    import evallib.methods.did.event_study  # noqa: F401  (imports once, before the forks)
    import evallib.methods.did.rate_ratio  # noqa: F401
    import evallib.methods.did.twfe  # noqa: F401
    import evallib.methods.its.controlled  # noqa: F401
    import evallib.methods.simulate  # noqa: F401
    import evallib.methods.synth.control  # noqa: F401
    import evallib.methods.synth.synthetic_did  # noqa: F401

    budget = args.budget or (600.0 if args.full else 180.0)
    per_run = args.per_run or (120.0 if args.full else 30.0)
    sizes = [100, 300, 1000] + ([3000, 7000] if args.full else [])
    long_sizes = args.long_sizes or [100, 300] + ([1000] if args.full else [])
    # Cheapest first (units x months), so that a spent budget leaves out the costliest sizes.
    weekly = [(w, n, True) for w in (156, 312) for n in (100, 300)] if args.weekly else []
    plan = sorted(
        [(72, n, False) for n in sizes] + [(288, n, False) for n in long_sizes] + weekly, key=lambda p: p[0] * p[1]
    )
    load = os.getloadavg()[0]
    print(
        f"cores {os.cpu_count()}, load average (1 min) {load:.2f}; one thread; budget {budget:.0f} s, "
        f"{per_run:.0f} s and {args.max_gb:g} GB a fit; a forked process per fit"
    )
    t_start = time.perf_counter()
    results: dict[str, dict[str, dict]] = {e: {} for e in args.estimators}
    done: dict[tuple[str, int], list[tuple[int, dict]]] = {}
    # Wall time of a fit, predicted from its CPU: a fixed part (fork, the panel) and a factor (a loaded machine).
    walls: list[tuple[float, float]] = []
    # Sizes outermost, so that a spent budget leaves out the largest sizes of every estimator, not whole estimators.
    for months, n, is_weekly in plan:
        for name in args.estimators:
            key = f"{n}x{months}" + ("w" if is_weekly else "")
            seen = done.setdefault((name, key.split("x")[1]), [])
            t_pred = predict(seen, n, "cpu")
            mb_pred = predict(seen, n, "rise_mb")
            spent = time.perf_counter() - t_start
            if t_pred is not None and t_pred > per_run:
                r = {"skipped": f"predicted {t_pred:.0f} s CPU > {per_run:.0f} s a fit"}
            elif mb_pred is not None and mb_pred > args.max_gb * 1024:
                r = {"skipped": f"predicted {mb_pred / 1024:.1f} GB > {args.max_gb:g} GB"}
            elif spent + predict_wall(walls, t_pred or 0.0) > budget:
                r = {"skipped": f"run budget of {budget:.0f} s spent ({spent:.0f} s)"}
            else:
                w = time.perf_counter()
                r = run_child(name, n, months, per_run, args.max_gb, is_weekly)
                if "cpu" in r:
                    seen.append((n, r))
                    walls.append((time.perf_counter() - w, float(r["cpu"])))
            results[name][key] = r
            if "cpu" in r:
                print(
                    f"  {name:<17} {n:>5} x {months:<3}{'w' if is_weekly else ' '} CPU {r['cpu']:8.3f} s   peak {r['peak_mb']:7.0f} MB "
                    f"(+{r['rise_mb']:.0f} MB in the fit)",
                    flush=True,
                )
            else:
                print(
                    f"  {name:<17} {n:>5} x {months:<3}{'w' if is_weekly else ' '} skipped: {r['skipped']}", flush=True
                )
    print("\nGrowth exponents k (CPU ~ n^k at 72 months; least squares over the sizes measured; local ones beside)")
    summary: dict[str, dict] = {}
    for name, rows in results.items():
        pts = [(n, rows[f"{n}x72"]) for n in sizes if "cpu" in rows.get(f"{n}x72", {})]
        if len(pts) < 2:
            print(f"  {name:<17} fewer than two sizes measured")
            continue
        k, k_mem, local = exponents(pts, "rise_mb")
        k_t = ""
        for n in long_sizes:
            a, b = rows.get(f"{n}x72", {}), rows.get(f"{n}x288", {})
            if "cpu" in a and "cpu" in b:
                k_t += f"; months 72->288 at {n}: {math.log(b['cpu'] / a['cpu']) / math.log(4):.2f}"
        for n in (100, 300) if args.weekly else ():
            a, b = rows.get(f"{n}x72", {}), rows.get(f"{n}x312w", {})
            if "cpu" in a and "cpu" in b:
                k_t += f"; 72 months -> 312 weeks at {n}: {b['cpu'] / a['cpu']:.1f}x CPU, {b['rise_mb'] / max(a['rise_mb'], 1):.1f}x memory rise"
        print(f"  {name:<17} k = {k:.2f} (memory rise k = {k_mem:.2f}); local {local}{k_t}")
        summary[name] = {"k_cpu": k, "k_memory_rise": k_mem}
    totals = {}
    for n in sizes:
        key = f"{n}x72"
        if all("cpu" in results[e].get(key, {}) for e in args.estimators):
            totals[key] = sum(results[e][key]["cpu"] for e in args.estimators)
    if totals:
        print(
            "\nEvery estimator together (sum of CPU, 72 months): "
            + "; ".join(f"{k} {v:.2f} s" for k, v in totals.items())
        )
    print(f"\nwhole run: {time.perf_counter() - t_start:.0f} s wall")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(
        json.dumps({"results": results, "exponents": summary, "totals": totals, "load": load}, indent=2)
    )


if __name__ == "__main__":
    main()
