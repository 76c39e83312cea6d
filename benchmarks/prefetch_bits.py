"""A batch's prefetch (every params file's bundled data windows imputed, harmonised and screened): its CPU time,
and its results pickled to compare two checkouts bit for bit (issue 22).

    python benchmarks/prefetch_bits.py time [--repeat 3]     CPU seconds of units.prefetch, each in a fresh process
    python benchmarks/prefetch_bits.py dump OUT.pkl           _harmonised and _breaks of every window and outcome
    python benchmarks/prefetch_bits.py compare A.pkl B.pkl    exit 1 unless every panel, area map, note and screen
                                                              is the same: values bit for bit, dtypes, order, text

Run ``dump`` from each checkout's root with its own interpreter (e.g. main's ``.venv/bin/python``, PYTHONPATH
unset), then ``compare``. Times are CPU time of the process (``time.process_time``): on a shared machine wall
time measures the other jobs.
"""

from __future__ import annotations

import argparse
import glob
import os
import pickle
import statistics
import subprocess
import sys
import time
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _windows() -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
    from evallib.evaluation.site.evaluate import data_windows
    from evallib.protocol.params import load_params

    files = sorted(glob.glob("params/vanguards/*.yaml") + glob.glob("params/ics/*.yaml"))
    return list(data_windows([load_params(p) for p in files]))


def _time_once() -> float:
    from evallib.evaluation.site import units

    windows = _windows()
    t = time.process_time()
    units.prefetch(windows)
    return time.process_time() - t


def _dump(path: str) -> None:
    from evallib.evaluation.site import units
    from evallib.sources.bundled import BUNDLED, load_bundled

    windows = _windows()
    out: dict[tuple[Any, ...], Any] = {}
    for source, start, end in windows:
        if source in BUNDLED:
            start, end = pd.Timestamp(start), pd.Timestamp(end)
            out[("h", source, start, end)] = units._harmonised(source, start, end)
            for outcome in load_bundled(source).outcomes:
                out[("b", source, outcome, start, end)] = units._breaks(source, outcome, start, end)
    with open(path, "wb") as f:
        pickle.dump((windows, out), f)
    print(f"{len(windows)} windows, {len(out)} entries -> {path}")


def _same_column(x: np.ndarray, y: np.ndarray) -> bool:
    if x.dtype != y.dtype or x.shape != y.shape:
        return False
    if x.dtype.kind == "f":
        return bool(np.array_equal(x, y, equal_nan=True) and np.array_equal(np.signbit(x), np.signbit(y)))
    if x.dtype.kind in "mM":
        return bool(np.array_equal(x.view(np.int64), y.view(np.int64)))
    return all(type(p) is type(q) and (p == q or (pd.isna(p) and pd.isna(q))) for p, q in zip(x, y, strict=True))


def _same_frame(x: pd.DataFrame, y: pd.DataFrame, what: str) -> list[str]:
    if not (x.equals(y) and list(x.columns) == list(y.columns) and list(x.dtypes) == list(y.dtypes)):
        return [f"{what}: frames differ"]
    if not (x.index.equals(y.index) and x.index.dtype == y.index.dtype and x.columns.dtype == y.columns.dtype):
        return [f"{what}: index or columns differ"]
    return [f"{what}: column {c} differs" for c in x.columns if not _same_column(x[c].to_numpy(), y[c].to_numpy())]


def _compare(a_path: str, b_path: str) -> int:
    with open(a_path, "rb") as f:
        wa, a = pickle.load(f)
    with open(b_path, "rb") as f:
        wb, b = pickle.load(f)
    problems = [] if wa == wb and list(a) == list(b) else ["the windows or entries differ"]
    for key in a if not problems else []:
        x, y = a[key], b[key]
        if key[0] == "b":
            problems += [] if x == y and list(x) == list(y) else [f"{key}: screens differ"]
            continue
        (px, mx, nx), (py, my, ny) = x, y
        problems += [] if nx == ny else [f"{key}: imputation notes differ"]
        problems += _same_frame(px.data, py.data, f"{key} panel")
        same_panel = (px.frequency, px.source, px.files) == (py.frequency, py.source, py.files)
        same_map = (mx.start, mx.end, list(mx.members.items())) == (my.start, my.end, list(my.members.items()))
        problems += [] if same_panel and same_map else [f"{key}: panel attributes or area members differ"]
        problems += _same_frame(mx.events, my.events, f"{key} events")
        problems += _same_frame(mx.links, my.links, f"{key} links")
    print("\n".join(problems) or f"identical: {len(a)} entries (every window's panel, area map, notes and screens)")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["time", "dump", "compare", "_once"])
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "_once":
        print(f"{_time_once():.4f}")
        return 0
    if args.mode == "dump":
        _dump(args.paths[0])
        return 0
    if args.mode == "compare":
        return _compare(*args.paths[:2])
    runs = []
    for _ in range(args.repeat):  # a fresh process each time: prefetch fills caches
        done = subprocess.run([sys.executable, __file__, "_once"], capture_output=True, text=True, check=True)
        runs.append(float(done.stdout.strip().splitlines()[-1]))
    print(f"prefetch CPU: median {statistics.median(runs):.3f} s of {', '.join(f'{r:.3f}' for r in runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
