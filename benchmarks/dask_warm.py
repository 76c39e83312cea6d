"""CPU of a batch on warm Dask workers against the local forked run of the same sites.

A real scheduler (``dask scheduler``) and two workers (plain ``dask worker --nthreads 1``, each with its nanny and
Dask's default configuration) on 127.0.0.1, started in a folder of their own (not the project); the client is
``evallib run --scheduler``. The first site on each worker stops its stack profiler and slows its housekeeping
(``dask_warm.calm_worker``); ``--lean`` also starts the workers without a nanny and the whole cluster with the
profiler off and calmer housekeeping in its configuration (``LEAN``), for comparison. Each run starts
from fresh processes and is timed as CPU time of everything it started (client, scheduler, workers and every
process they fork; ``RUSAGE_CHILDREN`` once all have exited), so imports and warm-up count on both sides.
Rounds are interleaved (local, Dask, local, Dask, ...); the minimum and median of each are printed with their
ratio, and the two runs' results are checked equal first (``tools/compare_results.py``).

    python benchmarks/dask_warm.py                  # 8 sites, 2 rounds
    python benchmarks/dask_warm.py --sites all --rounds 1   # the full batch
    python benchmarks/dask_warm.py --standing --rounds 3    # one cluster: a cold run, then two on it standing

``--standing`` starts the scheduler and workers once and runs local and Dask interleaved on it: the first Dask
run is counted from the cluster's start (cold), each later one as the CPU the scheduler, workers and nannies
spent during it (psutil, living processes and what they reaped) plus the client's, i.e. a run's cost on a
cluster already started and warm.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["V01", "V04", "V05", "V45", "I01", "I03", "I09", "I12"]
BIN = Path(sys.executable).parent


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _project(tmp: Path, sites: list[str] | None) -> Path:
    shutil.copytree(ROOT / "notebooks", tmp / "notebooks")
    shutil.copytree(ROOT / "params", tmp / "params")
    if sites is not None:  # keep only the chosen sites' params files
        for f in (tmp / "params").rglob("*.yaml"):
            if f.stem not in sites:
                f.unlink()
    return tmp


def _evallib(root: Path, *extra: str, env: dict[str, str] | None = None) -> None:
    cmd = [str(BIN / "evallib"), "run", "--force", "--no-progress", *extra]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        sys.exit(f"evallib run failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_local(root: Path) -> float:
    """CPU seconds of ``evallib run --force --jobs 2`` (forked executor) and everything it started."""
    before = _children_cpu()
    _evallib(root, "--jobs", "2")
    return _children_cpu() - before


#: Dask's housekeeping at a calmer pace (the defaults poll every 10 ms to 500 ms in every process): the
#: scheduler's and workers' own CPU scales with the run's wall time, which a loaded machine stretches.
LEAN = {
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
    "DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING_INTERVAL": "1s",
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",  # the task profiler samples stacks every 10 ms
    "DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__GIL__ENABLED": "False",
}


def _cpu_tree(pid: int) -> float:
    """CPU seconds of a living process, its reaped children and its living descendants (psutil)."""
    import psutil

    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


@contextmanager
def _cluster(workdir: Path, lean: bool = False) -> Iterator[tuple[str, list[int], dict[str, str]]]:
    """A scheduler and two one-thread workers on 127.0.0.1: their address, pids and environment; stopped after."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **(LEAN if lean else {})}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": workdir, "env": env}
    scheduler = subprocess.Popen(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    worker_cmd = [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    if lean:  # no nanny process per worker; one BLAS thread each, as a nanny would set (dask_warm.BLAS_THREADS)
        worker_cmd.append("--no-nanny")
        env = {**env, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    workers = [subprocess.Popen(worker_cmd, **{**quiet, "env": env}) for _ in range(2)]
    try:
        time.sleep(3)  # the workers register; the client waits for them anyway
        yield address, [scheduler.pid, *(w.pid for w in workers)], env
    finally:
        for p in [*workers, scheduler]:  # SIGTERM: each exits after reaping what it forked
            p.send_signal(signal.SIGTERM)
        for p in [*workers, scheduler]:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _client_run(root: Path, address: str, env: dict[str, str]) -> float:
    """CPU seconds of ``evallib run --scheduler`` (the client) and what it started."""
    before = _children_cpu()
    _evallib(root, "--scheduler", address, env=env)
    return _children_cpu() - before


def run_dask(root: Path, workdir: Path, lean: bool = False) -> float:
    """CPU seconds of a scheduler, two one-thread workers and ``evallib run --scheduler`` (all they started)."""
    before = _children_cpu()
    with _cluster(workdir, lean) as (address, pids, env):
        client = _client_run(root, address, env)
        parts = {"scheduler": _cpu_tree(pids[0]), "workers": sum(_cpu_tree(p) for p in pids[1:])}
        shown = ", ".join(f"{k} {v:.1f} s" for k, v in parts.items())
        print(f"  dask: client {client:.1f} s, {shown} (live, before they exit)", flush=True)
    return _children_cpu() - before


def standing(local: Path, on_dask: Path, workdir: Path, rounds: int, lean: bool) -> None:
    """Local and Dask runs interleaved on one cluster started once: the first Dask run counts the cluster's
    start and warm-up (cold), each later one only the CPU the scheduler, workers and nannies spent during it
    (psutil deltas) plus the client's (standing).
    """
    lo: list[float] = []
    cold = 0.0
    warm: list[float] = []
    with _cluster(workdir, lean) as (address, pids, env):
        for i in range(rounds):
            lo.append(run_local(local))
            before = [_cpu_tree(p) for p in pids] if i else [0.0] * len(pids)  # cold: from the cluster's start
            client = _client_run(on_dask, address, env)
            cluster = [a - b for a, b in zip([_cpu_tree(p) for p in pids], before, strict=True)]
            total = client + sum(cluster)
            shown = f"client {client:.1f} s, scheduler {cluster[0]:.1f} s, workers and nannies {sum(cluster[1:]):.1f} s"
            print(
                f"round {i + 1}: local {lo[-1]:.1f} s, dask {'cold' if i == 0 else 'standing'} {total:.1f} s ({shown})"
            )
            if i == 0:
                cold = total
                _check_equal(local, on_dask)
            else:
                warm.append(total)
    print(f"local forked: min {min(lo):.1f} s, median {statistics.median(lo):.1f} s")
    print(f"dask cold (cluster start, warm-up, first run): {cold:.1f} s, {cold / lo[0]:.2f}x its round's local run")
    if warm:
        later = lo[1:]
        print(f"dask standing: min {min(warm):.1f} s, median {statistics.median(warm):.1f} s")
        print(
            f"ratio standing/local (rounds 2+): {min(warm) / min(later):.2f}x (min), "
            f"{statistics.median(warm) / statistics.median(later):.2f}x (median)"
        )


def _check_equal(local: Path, on_dask: Path) -> None:
    compare = [sys.executable, str(ROOT / "tools" / "compare_results.py"), str(local / "outputs")]
    same = subprocess.run([*compare, str(on_dask / "outputs")], capture_output=True, text=True)
    if same.returncode != 0:
        sys.exit(f"the Dask run's results differ from the local run's:\n{same.stdout[-3000:]}")
    print("results equal (tools/compare_results.py)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", nargs="*", default=DEFAULT, help="site ids, or 'all'")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--lean", action="store_true", help="Dask's housekeeping at a calmer pace (LEAN) and workers without a nanny"
    )
    ap.add_argument(
        "--standing",
        action="store_true",
        help="one cluster for every round: the first Dask run cold, each later one as the CPU it added (psutil)",
    )
    args = ap.parse_args()
    sites = None if args.sites == ["all"] else args.sites
    times: dict[str, list[float]] = {"local": [], "dask": []}
    with tempfile.TemporaryDirectory() as tmp:
        local = _project(Path(tmp) / "local", sites)
        on_dask = _project(Path(tmp) / "dask", sites)
        workdir = Path(tmp) / "workers"
        workdir.mkdir()
        n = len(list((local / "params").rglob("*.yaml")))
        print(f"{n} sites, {os.cpu_count()} cores; CPU seconds, children included (machine may be loaded)")
        if args.standing:
            standing(local, on_dask, workdir, max(2, args.rounds), args.lean)
            return
        for i in range(args.rounds):
            times["local"].append(run_local(local))
            times["dask"].append(run_dask(on_dask, workdir, args.lean))
            print(f"round {i + 1}: local {times['local'][-1]:.1f} s, dask {times['dask'][-1]:.1f} s", flush=True)
            if i == 0:
                _check_equal(local, on_dask)
    lo, da = times["local"], times["dask"]
    print(f"local forked: min {min(lo):.1f} s, median {statistics.median(lo):.1f} s")
    print(f"dask warm:    min {min(da):.1f} s, median {statistics.median(da):.1f} s")
    print(
        f"ratio dask/local: {min(da) / min(lo):.2f}x (min), {statistics.median(da) / statistics.median(lo):.2f}x (median)"
    )


if __name__ == "__main__":
    main()
