"""Where does a batch run's time go? Times one site stage by stage, then the whole batch.

    python benchmarks/batch_profile.py                 # one site + every site
    python benchmarks/batch_profile.py --sites V04 I03 # one site + the named sites
    python benchmarks/batch_profile.py --skip-batch    # one site only

Stages for one site (medians of --repeat runs):
  python start       a bare interpreter (the floor of any kernel)
  kernel start       an IPC kernel started and ready, then shut down
  imports            importing evallib's analysis and report modules in a fresh interpreter
  estimation         evaluate_site() in a warm process (data already loaded)
  report blocks      the report's HTML blocks, most of it drawing figures
  html rendering     nbconvert of the executed notebook
  papermill (API)    the whole site notebook through papermill, as the batch runs it

Run from the project root with the project's virtual environment. Writes a JSON copy
of the figures to benchmarks/results/ (not tracked).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _python_start() -> None:
    subprocess.run([sys.executable, "-c", "pass"], check=True)


def _imports() -> None:
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import evallib.evaluation.site.evaluate, evallib.reporting.report, evallib.pipeline.notebook",
        ],
        check=True,
    )


def _kernel_start() -> None:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="python3", transport="ipc")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def profile_one_site(site: str, repeat: int) -> dict[str, float]:
    import papermill as pm

    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.protocol.params import load_params
    from evallib.reporting import report
    from evallib.reporting.static_site import render_report

    kind = "vanguards" if site.startswith("V") else "ics"
    params_file = ROOT / "params" / kind / f"{site}.yaml"
    protocol = load_params(params_file)
    evaluate_site(protocol)  # warm: data loaded and cached
    ev = evaluate_site(protocol)
    out: dict[str, float] = {
        "python start": _median_time(_python_start, repeat),
        "kernel start": _median_time(_kernel_start, repeat),
        "imports": _median_time(_imports, repeat),
        "estimation": _median_time(lambda: evaluate_site(protocol), repeat),
        "report blocks": _median_time(lambda: [report.trends(ev), report.did(ev), report.its(ev)], repeat),
    }
    out["imports"] -= out["python start"]
    with tempfile.TemporaryDirectory() as tmp:
        nb = Path(tmp) / "report.ipynb"
        params = {**pm.iorw.read_yaml_file(str(params_file)), "output_dir": tmp}

        def run_papermill() -> None:
            pm.execute_notebook(
                str(ROOT / "notebooks" / "site_evaluation.ipynb"),
                str(nb),
                parameters=params,
                progress_bar=False,
                cwd=tmp,
            )

        out["papermill (API)"] = _median_time(run_papermill, repeat)
        out["html rendering"] = _median_time(lambda: render_report(nb, Path(tmp) / "r.html", title=site), repeat)
    return out


def profile_batch(sites: list[str] | None, jobs: int | None) -> dict[str, object]:
    import shutil

    from evallib.pipeline.batch import run_batch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "notebooks", root / "notebooks")
        shutil.copytree(ROOT / "params", root / "params")
        t = time.perf_counter()
        result = run_batch(sites or None, root=root, jobs=jobs, progress=True)
        wall = time.perf_counter() - t
    runs = result.runs
    return {
        "sites": len(runs),
        "workers": jobs or os.cpu_count(),
        "wall seconds": wall,
        "mean seconds per site (in its worker)": statistics.mean(r.seconds for r in runs),
        "sum of notebook execution": sum(r.timings.get("execute", 0.0) for r in runs),
        "sum of html rendering": sum(r.timings.get("render", 0.0) for r in runs),
        "statuses": {s: sum(r.status == s for r in runs) for s in {r.status for r in runs}},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", default="V04", help="site for the stage-by-stage profile")
    ap.add_argument("--sites", nargs="*", help="sites for the batch (default: all)")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-batch", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["EVALLIB_PROJECT_ROOT"] = str(ROOT)
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}")
    one = profile_one_site(args.site, args.repeat)
    print(f"\nOne site ({args.site}), medians of {args.repeat}:")
    for k, v in one.items():
        print(f"  {k:<18} {v:7.2f} s")
    record: dict[str, object] = {"one_site": one, "site": args.site}
    if not args.skip_batch:
        batch = profile_batch(args.sites, args.jobs)
        print("\nBatch:")
        for k, v in batch.items():
            print(f"  {k:<40} {v if not isinstance(v, float) else f'{v:.1f}'}")
        record["batch"] = batch
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "batch_profile.json").write_text(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
