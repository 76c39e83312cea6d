"""The batch's serial start overlapped with other work, without changing what a site computes: data windows
harmonised in a helper process (pickled back, taken into the batch's cache before the workers fork) give the same
files as windows harmonised in the batch's process; a helper that fails leaves its windows to the batch's process,
and none outlives the run; sites run longest first by the last run's times, so the batch does not end on a long
site with a core idle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from evallib.pipeline import executor
from evallib.pipeline.preflight import SiteJob, longest_first
from evallib.pipeline.warm import WindowHelper, split_windows

from .conftest import ROOT, make_project, run_v04_forked


def _clear_window_caches() -> None:
    from evallib.evaluation.site import units

    for cached in (units._harmonised, units._breaks, units._resolved):
        cached.cache_clear()  # as in a fresh `evallib run`


def _windows(*sites: str) -> list[tuple]:  # type: ignore[type-arg]
    from evallib.evaluation.site.evaluate import data_windows
    from evallib.protocol.params import load_params

    return data_windows([load_params(ROOT / "params" / "vanguards" / f"{s}.yaml") for s in sites])


@pytest.mark.integration
def test_a_site_run_on_windows_a_helper_harmonised_gives_the_same_files(tmp_path: Path) -> None:
    if not executor.available():
        pytest.skip("no fork")
    root = make_project(tmp_path / "p", ["V04"], programme=False)
    windows = _windows("V04")

    try:
        _clear_window_caches()
        executor.warm_up(tuple(windows))  # harmonised in this process
        here = run_v04_forked(root, tmp_path / "here")
        _clear_window_caches()
        with WindowHelper(windows) as helper:
            assert helper.adopt()
        from evallib.evaluation.site import units

        assert units._harmonised.cache_info().currsize == len(windows)
        executor.warm_up(tuple(windows))
        assert units._harmonised.cache_info().currsize == len(windows)  # nothing harmonised again here
        assert run_v04_forked(root, tmp_path / "shipped") == here
    finally:
        _clear_window_caches()


@pytest.mark.unit
def test_a_helper_that_fails_leaves_its_windows_here_and_none_outlives_its_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not executor.available():
        pytest.skip("no fork")
    from evallib.evaluation.site import units

    windows = _windows("V04")

    def broken(w: object) -> None:
        raise ValueError("a helper that fails")

    monkeypatch.setattr(units, "harmonised_windows", broken)  # in the forked helper too
    with WindowHelper(windows) as helper:
        process = helper._process
        assert process is not None
        assert helper.adopt() is False
    assert not process.is_alive()

    def stuck(w: object) -> None:
        import time

        time.sleep(60)

    monkeypatch.setattr(units, "harmonised_windows", stuck)
    with WindowHelper(windows) as helper:
        process = helper._process
        assert helper.adopt(limit=0.2) is False  # past its limit: stopped, its windows left here
    assert not process.is_alive()
    with WindowHelper(windows) as helper:  # left without adopting (a failed preflight, an interrupt)
        process = helper._process
    assert not process.is_alive()


@pytest.mark.unit
def test_the_helper_takes_two_thirds_of_the_windows_and_this_process_the_rest() -> None:
    windows = [("d", i, i + 1) for i in range(7)]
    own, helper = split_windows(windows)  # type: ignore[arg-type]
    assert sorted(own + helper) == windows and not set(own) & set(helper)
    assert len(own) == 2 and len(helper) == 5
    assert split_windows(windows[:2]) == ([], windows[:2])  # type: ignore[arg-type]


def _job(site: str) -> SiteJob:
    return SiteJob(site, f"params/vanguards/{site}.yaml", {"site_id": site})


@pytest.mark.unit
def test_sites_run_longest_first_by_their_last_runs_times(tmp_path: Path) -> None:
    batch = [_job(s) for s in ("V01", "V02", "V03", "V04", "V05", "V06")]
    assert longest_first(batch, tmp_path) == batch  # nothing run yet: the batch's order
    for site, record in {
        "V01": {"seconds": 1.5},
        "V02": {"seconds": 7.0},
        "V03": {"seconds": 0.0},  # not a time
        "V05": {"seconds": 3.2},
        "V06": {"seconds": "long"},
    }.items():
        (tmp_path / site).mkdir()
        (tmp_path / site / "run.json").write_text(json.dumps(record))
    order = [j.site_id for j in longest_first(batch, tmp_path)]
    assert order == ["V03", "V04", "V06", "V02", "V05", "V01"]  # untimed first, in the batch's order
    (tmp_path / "V04").mkdir()
    (tmp_path / "elsewhere.json").write_text(json.dumps({"seconds": 99.0}))
    (tmp_path / "V04" / "run.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "V03" / "run.json").write_text("[7]")
    assert [j.site_id for j in longest_first(batch, tmp_path)] == order  # never read through a link


_WARMED: list[int] = []


def _warm_more() -> None:
    _WARMED.append(os.getpid())


def _task(x: int) -> tuple[int, bool, int]:
    return x, bool(_WARMED), os.getpid()


@pytest.mark.unit
def test_later_tasks_run_in_workers_forked_after_the_extra_warm_up_and_none_is_lost() -> None:
    from evallib.pipeline.pool import WorkerPool

    if not executor.available():
        pytest.skip("no fork")
    _WARMED.clear()
    pool = WorkerPool(2, then=_warm_more)
    try:
        assert len(pool.pids) == 1  # the first worker starts before the extra warm-up
        done = dict(pool.run(_task, [(i, (i,)) for i in range(6)], on_error=lambda job, why: why))
    finally:
        pool.close()
        _WARMED.clear()
    assert sorted(done) == list(range(6))
    first = done[0]
    assert first[1] is False  # forked before it: the first task ran while it was under way
    assert all(done[i][1] for i in range(1, 6))  # every later one in a worker forked after it
    assert first[2] not in {done[i][2] for i in range(1, 6)}  # the first worker was replaced after its task
    assert len(pool.pids) == 2 and not pool._retired


@pytest.mark.integration
def test_the_run_command_leaves_at_once_with_its_status_and_every_line_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = make_project(tmp_path / "p", ["V45"], programme=False)  # V45: not evaluable, quick
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "evallib", "run", "--no-progress", "--jobs", "1"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "V45" in done.stdout and done.stdout.rstrip().endswith("Published outputs/site/index.html")
    assert (root / "outputs" / "run-summary.json").is_file() and not (root / "outputs" / ".staging").exists()
    (root / "params" / "vanguards" / "V45.yaml").write_text("site_id: [", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "evallib", "run", "--no-progress"], cwd=root, env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and done.stderr.startswith("error: ")  # a refused run: its message, then exit 2
