"""Shared timing rules for the peer benchmarks, so that a sceptic can rerun them and get the same ratios.

Import this module before numpy (it pins every thread pool to one thread through the environment):

* one thread everywhere: BLAS, OpenMP, MKL, numexpr, numba and polars read these variables when they
  load, and threadpoolctl (when installed) limits any pool already loaded; process CPU time then counts
  one core's work for every library alike;
* interleaved rounds: each round runs every contender once, in an order that rotates from round to round,
  so a burst of load on a shared machine hits all of them rather than one block of repeats;
* CPU time (``time.process_time``) and wall time, each reported as the minimum and median of the rounds
  (a sample repeats a function of under 20 ms enough times to last about that long, and is divided back);
  ratios are the median of the per-round ratios (same load within a round) with their range.
"""

from __future__ import annotations

import os

for _var in (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMBA_NUM_THREADS",
    "POLARS_MAX_THREADS",
    "RAYON_NUM_THREADS",
):
    os.environ[_var] = "1"

import importlib.util  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pin_threads() -> str:
    """Limit thread pools already loaded (threadpoolctl); returns a line saying what was pinned."""
    if importlib.util.find_spec("threadpoolctl") is None:
        return "threads: environment variables set to 1 (threadpoolctl not installed)"
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(1)
    pools = sorted({f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()})
    return f"threads: environment variables set to 1; threadpoolctl: {', '.join(pools) or 'no pools loaded'}"


def have(module: str) -> bool:
    """Whether an optional peer is importable."""
    return importlib.util.find_spec(module) is not None


def skip(peer: str, module: str) -> None:
    print(f"  {peer}: not installed (module {module!r}), skipped; install with: pip install -e '.[bench]'")


@dataclass
class Timing:
    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"CPU min {fmt(min(self.cpu))} median {fmt(statistics.median(self.cpu))}; "
            f"wall min {fmt(min(self.wall))} median {fmt(statistics.median(self.wall))}"
        )

    def as_dict(self) -> dict[str, float]:
        return {
            "cpu_min": min(self.cpu),
            "cpu_median": statistics.median(self.cpu),
            "wall_min": min(self.wall),
            "wall_median": statistics.median(self.wall),
            "rounds": len(self.cpu),
        }


def fmt(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1, autorange: bool = True
) -> dict[str, Timing]:
    """Run every function once per round (order rotating), after ``warmup`` untimed rounds.

    ``autorange=False`` (for functions of seconds) times one call per sample and skips the calibrating call.
    """
    pin_threads()  # pools that a peer loaded since the last call
    names = list(fns)
    out = {n: Timing() for n in names}
    # Calls per timed sample: enough for 20 ms of CPU (as timeit's autorange), so that clock resolution and
    # one-off interruptions weigh little on functions of microseconds; times are then per call.
    number = dict.fromkeys(names, 1)
    for name in names if autorange else ():
        c = time.process_time()
        fns[name]()
        number[name] = max(1, min(1000, int(0.02 / max(time.process_time() - c, 1e-7))))
    for r in range(warmup + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, m = fns[name], number[name]
            c, w = time.process_time(), time.perf_counter()
            for _ in range(m):
                fn()
            c, w = (time.process_time() - c) / m, (time.perf_counter() - w) / m
            if r >= warmup:
                out[name].cpu.append(c)
                out[name].wall.append(w)
    return out


def ratio(t: dict[str, Timing], slow: str, fast: str) -> dict[str, float]:
    """``slow / fast`` per round on CPU and wall time: median and range, plus the ratio of the minima."""
    rc = [a / b for a, b in zip(t[slow].cpu, t[fast].cpu, strict=True) if b > 0]
    rw = [a / b for a, b in zip(t[slow].wall, t[fast].wall, strict=True) if b > 0]
    return {
        "cpu_median": statistics.median(rc),
        "cpu_lo": min(rc),
        "cpu_hi": max(rc),
        "cpu_of_minima": min(t[slow].cpu) / max(min(t[fast].cpu), 1e-12),
        "wall_median": statistics.median(rw),
    }


def report(t: dict[str, Timing], base: str, label: str = "") -> dict[str, object]:
    """Print each contender's times and its ratio to ``base``; return a JSON-able record."""
    if label:
        print(label)
    rec: dict[str, object] = {}
    for name, tm in t.items():
        line = f"  {name:<28} {tm.summary()}"
        rec[name] = tm.as_dict()
        if name != base:
            r = ratio(t, name, base)
            rec[f"{name}/{base}"] = r
            if r["cpu_median"] >= 1:
                line += (
                    f"   {name}/{base}: CPU {r['cpu_median']:.1f}x (rounds {r['cpu_lo']:.1f}-{r['cpu_hi']:.1f}x, "
                    f"of minima {r['cpu_of_minima']:.1f}x), wall {r['wall_median']:.1f}x"
                )
            else:  # the contender is the faster one: say how many times the base takes
                r = ratio(t, base, name)
                line += (
                    f"   {base}/{name}: CPU {r['cpu_median']:.1f}x (rounds {r['cpu_lo']:.1f}-{r['cpu_hi']:.1f}x), "
                    f"wall {r['wall_median']:.1f}x"
                )
        print(line)
    return rec


def header() -> str:
    import numpy as np

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"python {sys.version.split()[0]}  numpy {np.__version__}  cores {os.cpu_count()}  "
        f"load average (1 min) at start {load:.2f}\n{pin_threads()}"
    )
