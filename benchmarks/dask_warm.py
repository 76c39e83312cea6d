"""CPU of a batch on warm Dask workers against the local forked run of the same sites: cold and standing.

A real scheduler (``dask scheduler``) and two workers with one thread each on 127.0.0.1, started in a folder of
their own (not the project); the client is ``evallib run --scheduler``. How the workers start (``--launch``,
:data:`LAUNCHES`): ``preload`` (the default, README's recommended command), one ``dask worker --nworkers 2``
whose two nannies fork their workers from one warm process (``--preload-nanny evallib.pipeline.nanny``);
``plain``, two plain ``dask worker`` commands, each with its nanny and Dask's defaults; ``lean``, without nannies
and with calmer housekeeping in the configuration. Each round runs local, then for each launch a fresh cluster:
its first run is counted from the cluster's start (cold: the CPU of the scheduler, the ``dask worker`` processes,
their workers and everything those forked, psutil, plus the client's), then, on the first launch's cluster,
``--standing`` more runs, each counted as the CPU it added (a run on a cluster already started and warm).
Local runs count ``evallib run --jobs 2`` and everything it forked. The first round's results are checked equal
(``tools/compare_results.py``); the minimum and median of each are printed with their ratio to local.

    python benchmarks/dask_warm.py                          # 8 sites, 2 rounds, preload launch
    python benchmarks/dask_warm.py --sites all --rounds 1   # the full batch: local, cold, standing
    python benchmarks/dask_warm.py --sites all --rounds 1 --launch preload plain   # both launches, cold
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["V01", "V04", "V05", "V45", "I01", "I03", "I09", "I12"]
BIN = Path(sys.executable).parent
DEFAULT_LAUNCH = "preload"


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
_ONE_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: How the two workers are started (``dask worker`` arguments after the scheduler's address and ``--nthreads 1``,
#: and environment): ``plain``, two ``dask worker`` commands with Dask's defaults (a nanny each); ``lean``,
#: without nannies and with the housekeeping of :data:`LEAN` (one BLAS thread set by hand, as a nanny would).
LAUNCHES: dict[str, dict[str, Any]] = {
    "plain": {"args": []},
    "lean": {"args": ["--no-nanny"], "env": {**LEAN, **_ONE_BLAS}},
    "preload": {"args": ["--nworkers", "2", "--preload-nanny", "evallib.pipeline.nanny"]},
}


def _own_cpu(p: object) -> float:
    t = p.cpu_times()  # type: ignore[attr-defined]
    return float(t.user + t.system + t.children_user + t.children_system)


def _cpu_parts(pids: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each part of a running cluster (psutil): the scheduler, the processes ``dask worker``
    started (its nannies, or the workers themselves without one) and everything below them (workers, the sites
    they forked and reaped, Dask's helper processes).
    """
    import psutil

    parts = {"scheduler": 0.0, "dask worker": 0.0, "below": 0.0}
    for name, ids in pids.items():
        for pid in ids:
            try:
                top = psutil.Process(pid)
                below = top.children(recursive=True)
                parts[name] += _own_cpu(top)
            except psutil.Error:
                continue
            for p in below:
                try:
                    parts["below"] += _own_cpu(p)
                except psutil.Error:
                    pass
    return parts


@contextmanager
def _cluster(workdir: Path, launch: str) -> Iterator[tuple[str, dict[str, list[int]], dict[str, str]]]:
    """A scheduler and two one-thread workers on 127.0.0.1 (:data:`LAUNCHES`): the address, the pids of the
    scheduler and of the ``dask worker`` processes, and the environment; stopped after.
    """
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **LAUNCHES[launch].get("env", {})}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": workdir, "env": env}
    scheduler = subprocess.Popen(
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet
    )
    worker_cmd = [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    worker_cmd += LAUNCHES[launch]["args"]
    n = 1 if "--nworkers" in worker_cmd else 2
    workers = [subprocess.Popen(worker_cmd, **quiet) for _ in range(n)]
    try:
        time.sleep(3)  # the workers register; the client waits for them anyway
        yield address, {"scheduler": [scheduler.pid], "dask worker": [w.pid for w in workers]}, env
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


def _shown(client: float, parts: dict[str, float]) -> str:
    return f"client {client:.1f}, " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())


def run_dask(root: Path, workdir: Path, launch: str, standing: int) -> tuple[float, list[float]]:
    """CPU seconds of a cold Dask run (a fresh scheduler and two workers, counted from their start, and the client)
    and of ``standing`` further runs on the same cluster (the CPU each added to it, and its client's).
    """
    with _cluster(workdir, launch) as (address, pids, env):
        client = _client_run(root, address, env)
        parts = _cpu_parts(pids)
        cold = client + sum(parts.values())
        print(f"  dask cold {cold:.1f} s ({_shown(client, parts)})", flush=True)
        warm = []
        for _ in range(standing):
            client = _client_run(root, address, env)
            after = _cpu_parts(pids)
            added = {k: after[k] - parts[k] for k in parts}
            parts = after
            warm.append(client + sum(added.values()))
            print(f"  dask standing {warm[-1]:.1f} s ({_shown(client, added)})", flush=True)
    return cold, warm


def _check_equal(local: Path, on_dask: Path) -> None:
    compare = [sys.executable, str(ROOT / "tools" / "compare_results.py"), str(local / "outputs")]
    same = subprocess.run([*compare, str(on_dask / "outputs")], capture_output=True, text=True)
    if same.returncode != 0:
        sys.exit(f"the Dask run's results differ from the local run's:\n{same.stdout[-3000:]}")
    print("results equal (tools/compare_results.py)", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sites", nargs="*", default=DEFAULT, help="site ids, or 'all'")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of local, Dask cold, Dask standing")
    ap.add_argument(
        "--standing", type=int, default=1, help="Dask runs on the first launch's cluster after its cold one, each round"
    )
    ap.add_argument(
        "--launch", nargs="+", choices=sorted(LAUNCHES), default=[DEFAULT_LAUNCH], help="how the workers start"
    )
    args = ap.parse_args()
    sites = None if args.sites == ["all"] else args.sites
    times: dict[str, list[float]] = {"local": [], **{f"{k} cold": [] for k in args.launch}, "standing": []}
    with tempfile.TemporaryDirectory() as tmp:
        local = _project(Path(tmp) / "local", sites)
        on_dask = _project(Path(tmp) / "dask", sites)
        workdir = Path(tmp) / "workers"
        workdir.mkdir()
        n = len(list((local / "params").rglob("*.yaml")))
        print(f"{n} sites, {os.cpu_count()} cores; CPU seconds, children included (machine may be loaded)")
        for i in range(args.rounds):
            times["local"].append(run_local(local))
            print(f"round {i + 1}: local {times['local'][-1]:.1f} s", flush=True)
            for j, launch in enumerate(args.launch):
                print(f"  workers: {launch}", flush=True)
                cold, warm = run_dask(on_dask, workdir, launch, 0 if j else args.standing)
                times[f"{launch} cold"].append(cold)
                times["standing"].extend(warm)
                if i == 0:
                    _check_equal(local, on_dask)
    lo = times["local"]
    print(f"local forked:  min {min(lo):.1f} s, median {statistics.median(lo):.1f} s")
    for name, da in times.items():
        if da and name != "local":
            print(
                f"dask {name + ':':14} min {min(da):.1f} s, median {statistics.median(da):.1f} s; "
                f"{min(da) / min(lo):.2f}x local (min), {statistics.median(da) / statistics.median(lo):.2f}x (median)"
            )


if __name__ == "__main__":
    main()
