"""What the scale benchmarks (``scale.py``, ``scale_site.py``) share: one measurement in a forked child, and the
growth exponents (cost ~ n^k) computed and worded once."""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable


def run_forked(target: Callable[..., None], args: tuple, limit_s: float, max_gb: float) -> dict[str, object]:
    """``target(*args, conn)`` in a process forked from this one (imports done), so that its peak memory is its
    own: what it sends back, or why nothing came (stopped after ``limit_s`` seconds, or it died)."""
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe(duplex=False)
    p = ctx.Process(target=target, args=(*args, there))
    p.start()
    there.close()
    if not here.poll(limit_s):
        p.kill()
        p.join()
        return {"skipped": f"stopped after {limit_s:.0f} s"}
    try:
        r = here.recv()
    except EOFError:
        r = {"skipped": f"the process died (exit {p.exitcode}; over {max_gb:g} GB?)"}
    p.join()
    return r


def slope(xs: list[float], ys: list[float]) -> float:
    """The least-squares slope of log ``ys`` on log ``xs``: the growth exponent k of y ~ x^k."""
    lx, ly = [math.log(x) for x in xs], [math.log(max(y, 1e-6)) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    sxx = sum((x - mx) ** 2 for x in lx)
    return sum((x - mx) * (y - my) for x, y in zip(lx, ly, strict=True)) / sxx if sxx else float("nan")


def exponents(pts: list[tuple[int, dict]], memory: str) -> tuple[float, float, str]:
    """CPU's and ``memory``'s growth exponents over the sizes measured, and CPU's local ones between successive sizes.

    ``pts`` holds ``(n, result)`` for each size measured, in increasing ``n``; each result has ``cpu`` and
    ``memory``. Returns ``(k_cpu, k_memory, "100->300: 1.02, 300->1000: 1.10")``.
    """
    ns = [n for n, _ in pts]
    local = ", ".join(
        f"{a}->{b}: {math.log(rb['cpu'] / ra['cpu']) / math.log(b / a):.2f}"
        for (a, ra), (b, rb) in zip(pts, pts[1:], strict=False)
    )
    return slope(ns, [r["cpu"] for _, r in pts]), slope(ns, [r[memory] for _, r in pts]), local
