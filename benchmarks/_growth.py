"""Growth exponents (cost ~ n^k) of the scale benchmarks, ``scale.py`` and ``scale_site.py``: computed and worded once."""

from __future__ import annotations

import math


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
