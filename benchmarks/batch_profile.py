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

Then the floor beside the batch, on the same sites: what a batch cannot do without, measured warm in
this process (every site's data loaded first, untimed) as CPU time: ``evaluate_site`` + ``write_results``
(estimation) and ``full_report`` (the page's HTML with its figures), and the programme page the batch publishes
with them (``load_programme`` over those results and every block its notebook shows). The batch is the command
itself, ``evallib run --force``, in a fresh copy of the project (every page and board paper made anew), and its CPU
is that process's and its waited-for children's (``getrusage``), from the interpreter's start: the imports and the
data windows' harmonising count, as they do in a real run. The ratio batch CPU / floor CPU is what the batch adds:
imports, harmonising, warm-up, the workers, papermill, nbconvert and publishing, board papers included (issue 22's
target: within 1.2x); figures / estimation says whether the figures cost more than the statistics.

    python benchmarks/batch_profile.py --skip-one-site --sites V04 V06 I01   # floor and batch, three sites
    python benchmarks/batch_profile.py --skip-one-site --keep-results /tmp/new  # and keep the batch's results
    python benchmarks/batch_profile.py --skip-one-site --rounds 3  # interleaved rounds: min and median ratio

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
# One BLAS thread per process, before numpy loads, as `evallib run` sets it (pipeline/cli.py): the batch runs a
# process per core. Left to OpenBLAS's default (a thread per core) the floor and the batch both pay for threads
# spinning between calls, more so the more the machine is loaded: on 2 loaded cores the floor's estimation took
# 27-30 s of CPU for 12 sites with the default and 8 s with one thread.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


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


def _site_params(sites: list[str] | None) -> list[Path]:
    files = sorted((ROOT / "params" / "vanguards").glob("*.yaml")) + sorted((ROOT / "params" / "ics").glob("*.yaml"))
    return [f for f in files if not sites or f.stem in sites]


def profile_floor(sites: list[str] | None) -> dict[str, float]:
    """CPU seconds of the floor, warm: every site's estimation (with results.json) and page with its figures, then
    the programme page's (its pooled estimates over those results, and its page with figures).
    """
    import matplotlib.pyplot as plt

    from evallib import load_programme, write_results
    from evallib.evaluation.site.evaluate import data_windows, evaluate_site
    from evallib.evaluation.site.units import prefetch
    from evallib.protocol.params import load_params
    from evallib.reporting import programme_page
    from evallib.reporting.report import attribution, full_report

    protocols = [load_params(f) for f in _site_params(sites)]
    # Warm as a batch worker is before it forks: every data window loaded and harmonised (the batch's own
    # prefetch), and one site evaluated and drawn for the one-off costs of a first call; nothing timed.
    prefetch(list(data_windows(protocols)))
    if protocols:
        full_report(evaluate_site(protocols[0]))
        plt.close("all")
    est = page = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for protocol in protocols:
            c = time.process_time()
            ev = evaluate_site(protocol)
            write_results(ev, Path(tmp) / protocol.site_id)
            est += time.process_time() - c
            c = time.process_time()
            full_report(ev)
            plt.close("all")
            page += time.process_time() - c
        # The programme page is a page of the batch too: what its notebook computes and shows, cell by cell (once,
        # as the batch does: its comparisons with NHS England's figures are computed on first use).
        c = time.process_time()
        data = load_programme(Path(tmp))
        blocks = (programme_page.pooled_answer, programme_page.pooled_table, programme_page.overview)
        programme = "".join(block(data).html for block in blocks)
        programme += programme_page.forest(data).html + programme_page.growth(data).html
        programme += programme_page.nhs_england_comparison().html + attribution().html
        plt.close("all")
        programme_cpu = time.process_time() - c
    return {
        "sites": len(protocols),
        "estimation CPU": est,
        "page with figures CPU": page,
        "programme page CPU (its estimates and figures)": programme_cpu,
        "floor CPU": est + page + programme_cpu,
        "figures / estimation": page / est if est else float("nan"),
    }


def _children_cpu() -> float:
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def profile_batch(sites: list[str] | None, jobs: int | None, keep: Path | None = None) -> dict[str, object]:
    """The batch as an evaluator runs it: the ``evallib run --force`` command, in a fresh process and a fresh copy
    of the project (every page, board paper and programme page made anew). Its CPU is that process's and its
    waited-for children's (``getrusage``), from the interpreter's start: the imports and the data windows'
    harmonising count, as they do in a real run (run in this process, after the floor, it would find them done
    and look cheaper than it is)."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "notebooks", root / "notebooks")
        shutil.copytree(ROOT / "params", root / "params")
        command = [sys.executable, "-m", "evallib", "run", "--force", "--no-progress", *(sites or [])]
        command += ["--jobs", str(jobs)] if jobs else []
        t, c = time.perf_counter(), _children_cpu()
        done = subprocess.run(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall, cpu = time.perf_counter() - t, _children_cpu() - c
        if done.returncode not in (0, 1):  # 1: a site failed, which the statuses show
            raise SystemExit(f"evallib run failed ({done.returncode}): {done.stderr[-2000:]}")
        runs = json.loads((root / "outputs" / "run-summary.json").read_text())["runs"]
        if keep is not None:  # every site's results.json, for tools/compare_results.py against another run
            for f in (root / "outputs").glob("*/results.json"):
                (keep / f.parent.name).mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, keep / f.parent.name / "results.json")
    return {
        "sites": len(runs),
        "workers": jobs or os.cpu_count(),
        "wall seconds (the whole command)": wall,
        "CPU seconds (the command and its children)": cpu,
        "mean seconds per site (in its worker)": statistics.mean(r["seconds"] for r in runs),
        "sum of notebook execution": sum(r["timings"].get("execute", 0.0) for r in runs),
        "sum of html rendering": sum(r["timings"].get("render", 0.0) for r in runs),
        "statuses": {s: sum(r["status"] == s for r in runs) for s in sorted({r["status"] for r in runs})},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", default="V04", help="site for the stage-by-stage profile")
    ap.add_argument("--sites", nargs="*", help="sites for the batch (default: all)")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=1, help="floor and batch this many times, interleaved")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--skip-one-site", action="store_true", help="leave out the stage-by-stage profile")
    ap.add_argument("--skip-floor", action="store_true", help="leave out the floor")
    ap.add_argument("--keep-results", type=Path, help="copy the batch's results.json files into this folder")
    args = ap.parse_args()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["EVALLIB_PROJECT_ROOT"] = str(ROOT)
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}")
    record: dict[str, object] = {"site": args.site, "load average at start": os.getloadavg()[0]}
    if not args.skip_one_site:
        one = profile_one_site(args.site, args.repeat)
        print(f"\nOne site ({args.site}), medians of {args.repeat}:")
        for k, v in one.items():
            print(f"  {k:<18} {v:7.2f} s")
        record["one_site"] = one
    rounds = []
    for n in range(1, args.rounds + 1):  # floor then batch, round after round: a drift in the machine hits both
        floor: dict[str, float] = {}
        this: dict[str, object] = {}
        if not args.skip_floor:
            floor = profile_floor(args.sites)
            print(f"\nFloor, round {n} (warm, CPU seconds):")
            for k, v in floor.items():
                print(f"  {k:<40} {v:.2f}")
            this["floor"] = floor
        if not args.skip_batch:
            batch = profile_batch(args.sites, args.jobs, args.keep_results)
            print(f"\nBatch, round {n}:")
            for k, v in batch.items():
                print(f"  {k:<44} {v if not isinstance(v, float) else f'{v:.1f}'}")
            if floor:
                ratio = float(batch["CPU seconds (the command and its children)"]) / floor["floor CPU"]  # type: ignore[arg-type]
                batch["batch CPU / floor CPU"] = ratio
                print(f"  {'batch CPU / floor CPU':<44} {ratio:.2f}   (issue 22's target: at most 1.2)")
            this["batch"] = batch
        rounds.append(this)
    ratios = [
        float(r["batch"]["batch CPU / floor CPU"]) for r in rounds if "batch CPU / floor CPU" in r.get("batch", {})
    ]  # type: ignore[union-attr,index]
    if len(ratios) > 1:
        print(
            f"\nbatch CPU / floor CPU over {len(ratios)} rounds: min {min(ratios):.2f}, median {statistics.median(ratios):.2f}"
        )
    record["rounds"] = rounds
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "batch_profile.json").write_text(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
