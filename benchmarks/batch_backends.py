"""The batch on several backends, in one run: a serial loop of the plain papermill command; `evallib run` on
all cores with one Jupyter kernel per notebook and with the forked executor (processes forked after the imports);
and `evallib run` on a Dask LocalCluster. Prints wall time and speed-up over the serial loop.

    python benchmarks/batch_backends.py                 # 12 sites (a mix of evaluable and not)
    python benchmarks/batch_backends.py --sites all     # every site (the serial loop takes ~10 minutes)
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evallib.pipeline.batch import run_batch  # noqa: E402
from evallib.protocol.params import find_params  # noqa: E402

DEFAULT = ["V01", "V04", "V05", "V08", "V10", "V25", "V45", "I01", "I03", "I09", "I12", "I18"]


def project(tmp: Path) -> Path:
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks")
    shutil.copytree(ROOT / "params", tmp / "params")
    return tmp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", nargs="*", default=DEFAULT, help="site ids, or 'all'")
    args = ap.parse_args()
    sites = None if args.sites == ["all"] else args.sites
    files = find_params(ROOT / "params", sites)
    n = len(files)
    cores = os.cpu_count() or 1
    print(f"{n} sites, {cores} cores")
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "serial"
        out.mkdir()
        env = {**os.environ, "EVALLIB_PROJECT_ROOT": str(ROOT)}
        t = time.perf_counter()
        for f in files:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "papermill",
                    str(ROOT / "notebooks" / "site_evaluation.ipynb"),
                    str(out / f"{f.stem}.ipynb"),
                    "-f",
                    str(f),
                    "-p",
                    "output_dir",
                    str(out / f.stem),
                    "--no-progress-bar",
                ],
                check=True,
                capture_output=True,
                env=env,
            )
        times["serial papermill CLI loop"] = time.perf_counter() - t
    for executor in ("kernel", "forked"):
        with tempfile.TemporaryDirectory() as tmp:
            root = project(Path(tmp))
            t = time.perf_counter()
            run_batch(sites, root=root, progress=False, executor=executor)
            times[f"evallib run, {executor} executor ({cores} processes)"] = time.perf_counter() - t
    try:
        from dask.distributed import LocalCluster

        with (
            tempfile.TemporaryDirectory() as tmp,
            LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        ):
            root = project(Path(tmp))
            t = time.perf_counter()
            run_batch(sites, root=root, progress=False, scheduler=cluster.scheduler_address)
            times[f"evallib run on Dask LocalCluster ({cores}x1)"] = time.perf_counter() - t
    except ImportError:
        print("dask not installed: skipping the LocalCluster run")
    base = times["serial papermill CLI loop"]
    for name, secs in times.items():
        print(f"  {name:<42} {secs:7.1f} s  {secs / n:5.2f} s/site  speed-up {base / secs:4.1f}x")


if __name__ == "__main__":
    main()
