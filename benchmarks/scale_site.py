"""A whole site's evaluation at 100 to 7,000 comparison units: ``python benchmarks/scale.py --site`` (see there).

A simulated own-data site evaluated through ``evaluate_site`` in a process of its own per size, forked after the
imports: CPU time, peak resident memory and the growth exponent k (CPU ~ n^k).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from _scale import exponents, run_forked  # benchmarks/_scale.py, beside this file

ROOT = Path(__file__).resolve().parents[1]


def _site(n: int, primary: str, max_gb: float, conn) -> None:
    """In a child forked after the imports: evaluate one simulated own-data site with ``n`` comparison units."""
    try:
        limit = int(max_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        from evallib.evaluation.site.evaluate import evaluate_site
        from evallib.evaluation.studies.simulated import simulated_panel, simulated_site

        protocol, long = simulated_site(
            n + 1,
            72,
            36,
            effect=-0.1,
            seed=1,
            first_month="2010-04",
            pre_period_start="2010-04",
            primary_estimator=primary,
        )
        panel = simulated_panel(long)
        del long
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        c = time.process_time()
        ev = evaluate_site(protocol, panel)
        cpu = time.process_time() - c
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        a = ev.primary
        rb = a.robustness if a is not None else None
        loo = next((ch.detail for ch in rb.checks if ch.name == "leave one comparator out"), "") if rb else ""
        conn.send(
            {
                "cpu": cpu,
                "peak_mb": peak / 1024,
                "rise_mb": (peak - before) / 1024,
                "status": ev.status,
                "estimates": {k: h.row.estimate for k, h in a.headline.items()} if a is not None else {},
                "verdict": rb.verdict if rb else "",
                "leave_one_out": loo,
            }
        )
    except MemoryError:
        conn.send({"skipped": f"over {max_gb:g} GB (MemoryError)"})
    except Exception as e:  # a benchmark reports a failure and goes on to the next size
        msg = str(e).splitlines()[0][:200] if str(e) else ""
        conn.send({"skipped": f"failed: {type(e).__name__}: {msg}"})


def run_site(n: int, primary: str, limit_s: float, max_gb: float) -> dict[str, object]:
    """One site's evaluation in a process forked from this one (imports done)."""
    return run_forked(_site, (n, primary, max_gb), limit_s, max_gb)


def site_main(args: argparse.Namespace) -> None:
    """``--site``: one whole site's evaluation at each size, CPU, peak memory and growth exponents."""
    import evallib.evaluation.site.evaluate  # noqa: F401  (imports once, before the forks)
    import evallib.evaluation.studies.simulated  # noqa: F401

    sizes = args.site_sizes or [100, 300, 1000] + ([3000, 7000] if args.full else [])
    limit = args.per_run or 300.0
    print(
        f"cores {os.cpu_count()}, load average (1 min) {os.getloadavg()[0]:.2f}; one thread; a whole site's "
        f"evaluate_site, primary estimator {args.primary}; 72 months; a forked process per size"
    )
    rows: dict[str, dict] = {}
    for n in sizes:
        r = run_site(n, args.primary, 2 * limit, args.max_gb)
        rows[str(n)] = r
        if "cpu" in r:
            print(
                f"  {n:>5} comparison units: CPU {r['cpu']:7.2f} s, peak {r['peak_mb']:6.0f} MB "
                f"(+{r['rise_mb']:.0f} MB in the evaluation); {r['verdict']}; {r['leave_one_out']}",
                flush=True,
            )
        else:
            print(f"  {n:>5} comparison units: skipped: {r['skipped']}", flush=True)
    pts = [(n, rows[str(n)]) for n in sizes if "cpu" in rows[str(n)]]
    summary: dict[str, float] = {}
    if len(pts) >= 2:
        k_cpu, k_peak, local = exponents(pts, "peak_mb")
        summary = {"k_cpu": k_cpu, "k_peak": k_peak}
        print(f"\nk = {k_cpu:.2f} in CPU (peak memory k = {k_peak:.2f}); local {local}")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "scale_site.json").write_text(
        json.dumps(
            {"primary": args.primary, "results": rows, "exponents": summary, "load": os.getloadavg()[0]}, indent=2
        )
    )
