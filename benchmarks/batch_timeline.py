"""A timeline of one ``evallib run``: when each serial phase starts and ends, when each site runs, and how long the
batch leaves a core idle.

    python benchmarks/batch_timeline.py run --force              # any `evallib` arguments after the script
    python benchmarks/batch_timeline.py --log /tmp/t.log run V04 V06 --force

The command runs in this process with the pipeline's phases wrapped (nothing else changes): preflight, the
parent's warm-up, the site warm-up, each worker's start, each site (in the worker), publishing (the programme
notebook, the static site). Times are seconds from the process's start (from ``/proc``, so the interpreter's own
start and imports count). Under load the wall times stretch, but the phases' order, and the seconds in which
fewer than two lanes (the parent's serial phases, or a worker's site) are busy, are what a run's shape is: the
core-idle seconds printed at the end are that, before the first site starts, between the last site's end and the
exit, and in between.

Linux only (``/proc``). Prints the timeline and a summary; ``--log`` keeps the raw events.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _process_start() -> float:
    """This process's start, in seconds since the epoch (``/proc/self/stat`` and the boot time)."""
    ticks = os.sysconf("SC_CLK_TCK")
    start = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
    )
    return boot + start / ticks


T0 = _process_start()
LOG = Path(os.environ.get("EVALLIB_TIMELINE") or tempfile.mkstemp(prefix="timeline-", suffix=".log")[1])


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def event(name: str, detail: str = "") -> None:
    """Append one event (time since the process started, pid, CPU of this process and its waited children)."""
    line = f"{time.time() - T0:.3f} {os.getpid()} {_cpu():.2f} {name} {detail}\n"
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _wrap(module: Any, name: str, label: str, detail: Callable[..., str] | None = None) -> None:
    real = getattr(module, name)

    @functools.wraps(real)
    def traced(*args: Any, **kwargs: Any) -> Any:
        d = detail(*args, **kwargs) if detail else ""
        event(f"{label}:start", d)
        try:
            return real(*args, **kwargs)
        finally:
            event(f"{label}:end", d)

    setattr(module, name, traced)


def _install() -> None:
    event("imports:start")
    from evallib.pipeline import batch, execute, executor, pool, preflight, publish, warm
    from evallib.reporting import static_site

    event("imports:end")
    for mod in (batch, preflight):
        if hasattr(mod, "preflight"):
            _wrap(mod, "preflight", "preflight")
    _wrap(executor, "warm_up", "warm_up")
    for mod in (batch, warm):
        if hasattr(mod, "warm_with_site"):
            _wrap(mod, "warm_with_site", "warm_site")
    _wrap(execute, "execute_site", "site", lambda job, *a, **k: job.site_id)
    _wrap(publish, "run_programme", "programme")
    _wrap(publish, "build_site", "build_site")
    _wrap(static_site, "make_papers", "papers")
    _wrap(batch, "publish", "publish")
    _wrap(batch, "_finish", "finish")
    from evallib.evaluation.site import units

    _wrap(units, "harmonised_windows", "helper_windows", lambda w: str(len(w)))
    if hasattr(warm, "WindowHelper"):
        _wrap(warm.WindowHelper, "adopt", "adopt")
    _wrap(pool.WorkerPool, "close", "pool_close")
    real_spawn = pool.WorkerPool._spawn

    def spawn(self: Any) -> Any:
        event("fork_worker")
        return real_spawn(self)

    pool.WorkerPool._spawn = spawn  # type: ignore[method-assign]
    atexit.register(event, "exit")


def summarise(log: Path, parent: int | None = None) -> str:
    """The timeline and the core-idle seconds of a log."""
    rows = [line.split(" ", 4) for line in log.read_text().splitlines()]
    events = [(float(t), int(pid), float(cpu), name, d.strip()) for t, pid, cpu, name, d in rows]
    parent = parent or events[0][1]
    out = []
    for t, pid, cpu, name, d in events:
        if name.startswith("site:") or pid != parent and not name.startswith("helper"):
            continue
        out.append(f"{t:8.2f}  cpu {cpu:7.2f}  {name} {d}")
    end = max(t for t, *_ in events)
    sites = [t for t, _, _, name, _ in events if name == "site:start"]
    lines = ["\n".join(out)]
    if not sites:
        return lines[0]
    first_fork = min(t for t, _, _, name, _ in events if name == "fork_worker")
    last_end = max(t for t, _, _, name, _ in events if name == "site:end")
    # Lanes busy: each running site, and this process before its first worker forks (the window helper beside
    # it is not counted: a second lane at most), in the warm-up site and after the last site. Idle core-seconds
    # on two cores: the time integral of 2 - lanes.
    marks = [(0.0, 1), (first_fork, -1), (last_end, 1), (end, -1)]
    marks += [
        (t, 1 if name == "site:start" else -1) for t, _, _, name, _ in events if name in ("site:start", "site:end")
    ]
    warm_site = [t for t, _, _, name, _ in events if name.startswith("warm_site:")]
    if len(warm_site) == 2 and warm_site[0] >= first_fork:  # beside the first worker's first site
        marks += [(warm_site[0], 1), (warm_site[1], -1)]
    idle = {"before the first site": 0.0, "while sites run": 0.0, "after the last site": 0.0}
    busy, last = 0, 0.0
    for t, step in sorted(marks):
        part = (
            "before the first site"
            if t <= min(sites)
            else "after the last site"
            if last >= last_end
            else "while sites run"
        )
        idle[part] += max(0, 2 - busy) * (t - last)
        busy, last = busy + step, t
    lines.append(
        f"first site starts {min(sites):.2f} s; last site ends {last_end:.2f} s; exit {end:.2f} s; {len(sites)} sites\n"
        "idle core-seconds (2 cores): " + ", ".join(f"{v:.2f} {k}" for k, v in idle.items())
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run ``evallib`` with the given arguments, traced; print the timeline."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log", type=Path, default=None, help="keep the raw events here")
    p.add_argument("args", nargs=argparse.REMAINDER, help="evallib's arguments")
    ns = p.parse_args(argv)
    global LOG
    if ns.log is not None:
        LOG = ns.log
        LOG.unlink(missing_ok=True)
    # As `evallib` itself sets them before anything heavy is imported (pipeline/cli.py).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    _install()
    from evallib.pipeline.cli import main as evallib

    try:
        code = evallib(ns.args)
    finally:
        event("main:end")
        print(summarise(LOG, os.getpid()), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
