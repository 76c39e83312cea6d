"""The design step's speed: one site with every candidate estimator, pool and follow-up, and its placebo refits
vectorised against a loop of refits done one at a time, in the same run (ratios; seconds only as context).

    python benchmarks/design_speed.py [--site V01] [--repeat 3]

Reports (issue 21: one site's design step under 5 s on 2 cores):
  * the whole design step for the site (data loaded once beforehand, as in a notebook session);
  * the plain DiD's placebo estimates at every fake start of the protocol's pool for every follow-up: the
    design step's closed form (one matrix product) against one ``DiD.fit`` per unit and fake start, with
    the estimates checked equal before any time is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evallib.evaluation.site.coverage import load_source  # noqa: E402
from evallib.evaluation.studies.design import FOLLOW_UPS, design_history, design_site  # noqa: E402
from evallib.methods.base.design import Design  # noqa: E402
from evallib.methods.did.twfe import DiD  # noqa: E402
from evallib.methods.inference.fake_starts import rolling_changes  # noqa: E402
from evallib.methods.inference.permutation import permutation_estimates  # noqa: E402
from evallib.protocol.params import find_params, load_params  # noqa: E402


def _best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--site", default="V01")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    (path,) = find_params(ROOT / "params", [args.site])
    protocol = load_params(path)
    load_source(protocol.data_source)  # the data once, as a notebook session has them
    design_site(protocol)  # warm caches (area maps, screens)
    whole = _best(lambda: design_site(protocol), args.repeat)
    print(f"{args.site}: whole design step (3 estimators x pools x follow-ups): {whole:.2f} s (target < 5 s)")

    hist = design_history(protocol)
    units = [*hist.treated, *hist.pools["protocol"]]
    Y = hist.values[units].to_numpy(dtype=float).T
    t = design_site(protocol, estimators=("did",), pools=("protocol",), follow_ups=FOLLOW_UPS).table
    windows = [(int(r.fake_pre), int(r.fake_post)) for r in t.itertuples()]  # the fake windows the step uses
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
    t_closed = statistics.median(_best(closed, args.repeat) for _ in range(3))
    t_loop = _best(loop, 1)
    fits = sum(x.size for x in a)
    print(
        f"DiD placebo estimates at fake starts ({fits} refits, windows {windows}): closed form {t_closed * 1e3:.1f} ms, "
        f"one refit at a time {t_loop:.1f} s: {t_loop / t_closed:,.0f}x"
    )


if __name__ == "__main__":
    main()
