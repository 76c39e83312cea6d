"""The design step's speed: one site with every candidate estimator, pool and follow-up, and its placebo refits
vectorised against a loop of refits done one at a time, interleaved in the same run (CPU seconds and ratios).

    python benchmarks/design_speed.py [--site I15] [--repeat 3] [--all]

Reports (issue 21: one site's design step under 5 s on 2 cores), all in CPU time of this process
(``time.process_time``: on a machine shared with other jobs wall time measures the other jobs):
  * the whole design step for the site, data loaded once beforehand: its first call in the process (the data's
    windows harmonised too), cold (the history built) and warm (the history built once per protocol and data,
    as in a notebook trying options);
  * the plain DiD's placebo estimates at every fake start of the protocol's pool for every follow-up: the
    design step's closed form (one matrix product) against one ``DiD.fit`` per unit and fake start, run in turn
    (closed, loop, closed, loop, ...), with the estimates checked equal before any time is reported;
  * with ``--all``: the cold design step of every protocol under ``params/`` (slowest first, and the total).
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evallib.errors import EvalLibError  # noqa: E402
from evallib.evaluation.site.coverage import load_source  # noqa: E402
from evallib.evaluation.studies.design import FOLLOW_UPS, design_history, design_site  # noqa: E402
from evallib.evaluation.studies.pre_start import forget_histories  # noqa: E402
from evallib.methods.base.design import Design  # noqa: E402
from evallib.methods.did.twfe import DiD  # noqa: E402
from evallib.methods.inference.fake_starts import rolling_changes  # noqa: E402
from evallib.methods.inference.permutation import permutation_estimates  # noqa: E402
from evallib.protocol.params import SiteProtocol, find_params, load_params  # noqa: E402


def _cpu(fn: Callable[[], object]) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def _cold(protocol: SiteProtocol) -> float:
    forget_histories()  # no history kept from an earlier call: the first call of a session
    return _cpu(lambda: design_site(protocol))


def every_site() -> None:
    times = {}
    for path in sorted(glob.glob(str(ROOT / "params" / "**" / "*.yaml"), recursive=True)):
        protocol = load_params(path)
        try:
            load_source(protocol.data_source)
            times[protocol.site_id] = _cold(protocol)
        except EvalLibError as err:  # not evaluable: the design step stops at the same check the report does
            times[protocol.site_id + " (stops: " + type(err).__name__ + ")"] = float("nan")
    done = {k: v for k, v in times.items() if np.isfinite(v)}
    slow = sorted(done, key=done.get, reverse=True)  # type: ignore[arg-type]
    print(f"every protocol ({len(times)}; {len(done)} sized): cold design step, CPU s, slowest first:")
    print("  " + ", ".join(f"{k} {done[k]:.2f}" for k in slow[:12]))
    print(
        f"  median {statistics.median(done.values()):.2f} s, slowest {done[slow[0]]:.2f} s ({slow[0]}), "
        f"total {sum(done.values()):.1f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", default="I15")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--all", action="store_true", help="also the cold design step of every protocol")
    args = ap.parse_args()
    (path,) = find_params(ROOT / "params", [args.site])
    protocol = load_params(path)
    load_source(protocol.data_source)  # the data once, as a notebook session has them
    # The first call of a process also harmonises the bundled data for each window the history tries (cached
    # for every later call and site sharing a window, as the batch prefetches them).
    first = _cpu(lambda: design_site(protocol))
    cold = [_cold(protocol) for _ in range(args.repeat)]
    warm = [_cpu(lambda: design_site(protocol)) for _ in range(args.repeat)]
    print(
        f"{args.site}: whole design step (3 estimators x pools x follow-ups), CPU s: first in the process "
        f"{first:.2f}; then cold {min(cold):.2f} (median {statistics.median(cold):.2f}), history built once "
        f"{min(warm):.2f} (median {statistics.median(warm):.2f}); target < 5 s"
    )

    hist = design_history(protocol)
    units = [*hist.treated, *hist.pools["protocol"]]
    Y = hist.values[units].to_numpy(dtype=float).T
    t = design_site(protocol, estimators=("did",), pools=("protocol",), follow_ups=FOLLOW_UPS).table
    windows = sorted({(int(r.fake_pre), int(r.fake_post)) for r in t.itertuples()})  # the fake windows it uses
    eye = np.eye(len(units), dtype=bool)

    def closed() -> list[np.ndarray]:
        return [permutation_estimates(rolling_changes(Y, p, m), eye) for p, m in windows]

    def loop() -> list[np.ndarray]:
        out = []
        frame = np.exp(hist.values[units])
        for p, m in windows:
            starts = range(p, Y.shape[1] - m + 1)
            est = np.empty((len(units), len(starts)))
            for j, s in enumerate(starts):
                window = frame.iloc[s - p : s + m]
                for i, u in enumerate(units):
                    fit = DiD(transform="log", inference="hc1").fit(Design.from_wide(window, [u], window.index[p]))
                    est[i, j] = fit.headline.estimate
            out.append(est)
        return out

    a, b = closed(), loop()
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, atol=1e-9)
    t_closed, t_loop = [], []
    for _ in range(args.repeat):  # interleaved: the machine's load falls on both alike
        t_closed.append(min(_cpu(closed) for _ in range(20)))
        t_loop.append(_cpu(loop))
    fits = sum(x.size for x in a)
    c, lp = statistics.median(t_closed), statistics.median(t_loop)
    print(
        f"DiD placebo estimates at fake starts ({fits} refits, windows {windows}), CPU: closed form "
        f"{c * 1e3:.2f} ms, one refit at a time {lp:.1f} s (medians of {args.repeat}, interleaved): {lp / c:,.0f}x"
    )
    if args.all:
        every_site()


if __name__ == "__main__":
    main()
