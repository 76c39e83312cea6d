"""A Dask worker warmed with a whole site, and a warm worker kept only for the files it warmed from
(``pipeline/dask_warm.py``, ``pipeline/warm.py``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from evallib.pipeline import dask_warm, warm
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import find_params
from evallib.sources import bundled

from .conftest import make_project


def _in_a_thread(*args: Any, **kwargs: Any) -> Any:
    """``run_site`` in a thread other than the main one, as a Dask worker runs its tasks."""
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.append(dask_warm.run_site(*args, **kwargs)))
    thread.start()
    thread.join()
    return found[0]


@pytest.mark.e2e
def test_a_site_run_on_a_worker_warmed_with_a_site_gives_the_same_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for v in dask_warm.BLAS_THREADS:
        monkeypatch.setenv(v, "1")
    root = make_project(tmp_path / "p", ["V04"], programme=False, small=True)
    [job] = [j for j in preflight(find_params(root / "params", None), root) if j.site_id == "V04"]
    files, env = dask_warm.site_files(root, job), dask_warm.site_env(root)
    calls: list[bool] = []
    real = dask_warm.warm_with_site

    def counted(*args: Any, **kwargs: Any) -> bool:
        calls.append(real(*args, **kwargs))
        return calls[-1]

    monkeypatch.setattr(dask_warm, "warm_with_site", counted)
    monkeypatch.setattr(dask_warm, "_WARMED", set())
    plain, plain_files = _in_a_thread(job, files, (), env)
    assert calls == []  # not asked for: no site warm-up
    monkeypatch.setattr(dask_warm, "_WARMED", set())
    warmed, warmed_files = _in_a_thread(job, files, (), env, warm_site=True)
    assert calls == [True]  # the warm-up site ran (and finished) in the worker's task thread
    assert "site" in dask_warm._WARMED
    assert plain.status == warmed.status == "evaluated"
    assert plain_files["results.json"] == warmed_files["results.json"]  # byte-identical
    _in_a_thread(job, files, (), env, warm_site=True)
    assert calls == [True]  # once per worker


def test_a_worker_whose_installed_files_changed_since_it_warmed_fails_its_sites_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for v in dask_warm.BLAS_THREADS:
        monkeypatch.setenv(v, "1")
    root = make_project(tmp_path / "p", ["V04"], programme=False)
    [job] = [j for j in preflight(find_params(root / "params", None), root) if j.site_id == "V04"]
    monkeypatch.setattr(dask_warm, "_INSTALLED", ["the state of an older install"])
    run, files = dask_warm.run_site(job, dask_warm.site_files(root, job), (), {})
    assert run.status == "failed" and "restart the `dask worker` commands" in run.reason and files == {}


def test_the_installed_state_follows_the_bundled_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    monkeypatch.setattr(bundled, "bundled_data_dir", lambda: tmp_path)
    before = dask_warm.installed_state()
    assert dask_warm.installed_state() == before
    (tmp_path / "a.csv").write_text("x\n2\n")
    assert dask_warm.installed_state() != before


_FAULTS = """
import os, resource, sys
import numpy as np
from evallib.pipeline.warm import malloc_defaults

def child_faults():
    pid = os.fork()
    if pid == 0:
        for _ in range(50):
            a = np.ones(2**17)  # 1 MiB: past the 128 KiB where the nanny's setting gives each array its own mapping
            del a
        os._exit(0)
    return os.wait4(pid, 0)[2].ru_minflt

np.ones(2**17)
plain = child_faults()
with malloc_defaults():
    kept = child_faults()
after = child_faults()
print(plain, kept, after)
"""


def test_a_site_forked_under_a_dask_nannys_malloc_trim_setting_reuses_its_heap(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", _FAULTS], env=env, capture_output=True, text=True, check=True)
    plain, kept, after = (int(x) for x in out.stdout.split())
    # each 1 MiB array freshly mapped and zeroed (256 page faults) under the nanny's setting, the heap reused
    # within malloc_defaults, and the nanny's setting back after it
    assert kept * 5 < plain and kept * 5 < after


def test_malloc_is_left_alone_without_a_nannys_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setattr(ctypes, "CDLL", lambda *a: pytest.fail("mallopt called without the nanny's setting"))
    with warm.malloc_defaults():
        pass


def test_a_site_run_on_a_worker_leaves_nothing_of_its_project_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task restores every variable the site's run set (its params file, root and key): a later site, or a
    notebook opened in the same process, must not load a params file from a temporary project that is gone."""
    import os

    from evallib.pipeline.notebook import PARAMS_FILE_ENV
    from evallib.protocol.paths import ROOT_ENV

    for v in dask_warm.BLAS_THREADS:
        monkeypatch.setenv(v, "1")
    monkeypatch.delenv(PARAMS_FILE_ENV, raising=False)
    before = dict(os.environ)
    root = make_project(tmp_path / "p", ["V04"], programme=False, small=True)
    [job] = [j for j in preflight(find_params(root / "params", None), root) if j.site_id == "V04"]
    run, _ = _in_a_thread(job, dask_warm.site_files(root, job), (), dask_warm.site_env(root))
    assert run.status == "evaluated"
    assert PARAMS_FILE_ENV not in os.environ and os.environ.get(ROOT_ENV) == before.get(ROOT_ENV)
    assert dict(os.environ) == before
