"""A batch on the forked executor loads its data windows once, in the process its workers fork from (not once per
worker, nor in a site's process), and each site's page is rendered from the notebook as written, without reading it
back: the same page as rendering the file, paths of this machine removed from both."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from evallib.pipeline import execute, executor
from evallib.reporting.static_site import render_report

from .conftest import make_project, run_v04_forked


@pytest.mark.integration
def test_a_batch_harmonises_each_data_window_once_before_its_workers_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not executor.available():
        pytest.skip("no fork")
    from evallib.evaluation.site import units
    from evallib.pipeline.batch import run_batch

    log = tmp_path / "harmonised.log"
    real = units.harmonise

    def counted(panel, start, end):  # type: ignore[no-untyped-def]
        with open(log, "a", encoding="utf-8") as f:  # appended by whichever process harmonises
            f.write(f"{os.getpid()} {panel.source} {start:%Y-%m} {end:%Y-%m}\n")
        return real(panel, start, end)

    monkeypatch.setattr(units, "harmonise", counted)
    for cached in (units._harmonised, units._breaks, units._resolved):
        cached.cache_clear()  # as in a fresh `evallib run`
    root = make_project(tmp_path / "p", ["V04", "V06", "V33"], programme=False)
    result = run_batch(None, root=root, progress=False, jobs=2, executor="forked")
    assert result.exit_code == 0, result.runs
    assert {r.status for r in result.runs} == {"evaluated"}
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines, "no window was harmonised"
    # In this process, or the helper it forks to harmonise most windows while it warms up (pipeline/warm.py);
    # every window is harmonised before the workers fork, so one harmonised again in a worker or a site's
    # process would show twice.
    assert len({line.split()[0] for line in lines}) <= 2
    windows = [line.split(" ", 1)[1] for line in lines]
    assert len(windows) == len(set(windows))  # each window once


def _notebook(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    out = nbformat.v4.new_output("execute_result", data={"text/html": f"<p>{text}</p>", "text/plain": repr(text)})
    nb.cells = [nbformat.v4.new_markdown_cell("## A section\n\nWords."), nbformat.v4.new_code_cell("x", outputs=[out])]
    nb.metadata["papermill"] = {"input_path": "in.ipynb", "output_path": "out.ipynb", "cwd": "/somewhere"}
    return nb


@pytest.mark.parametrize("shown", ["a result", "a file at {root}/data/x.csv"])
@pytest.mark.integration
def test_the_page_rendered_from_the_cleaned_notebook_is_the_page_rendered_from_its_file(
    tmp_path: Path, shown: str
) -> None:
    root = tmp_path / "project"
    root.mkdir()
    nb_path = tmp_path / "report.ipynb"
    nbformat.write(_notebook(shown.format(root=root)), nb_path)
    written = execute._clean_notebook(nb_path, "V04", root)
    assert str(root) not in nb_path.read_text(encoding="utf-8")
    assert nbformat.reads(nb_path.read_text(encoding="utf-8"), as_version=4) == written
    render_report(written, tmp_path / "memory.html", title="V04: x", root=root, fingerprint="f")
    render_report(nb_path, tmp_path / "file.html", title="V04: x", root=root, fingerprint="f")
    page = (tmp_path / "memory.html").read_bytes()
    assert page == (tmp_path / "file.html").read_bytes()
    assert str(root).encode() not in page


@pytest.mark.integration
def test_a_site_run_after_the_parent_warmed_with_another_site_gives_the_same_files(tmp_path: Path) -> None:
    if not executor.available():
        pytest.skip("no fork")
    from evallib.pipeline.warm import warm_with_site
    from evallib.protocol.params import load_params

    root = make_project(tmp_path / "p", ["V04", "V06"], programme=False)
    executor.warm_up()

    before = run_v04_forked(root, tmp_path / "before")
    assert warm_with_site(load_params(root / "params" / "vanguards" / "V06.yaml"), root)
    assert run_v04_forked(root, tmp_path / "after") == before


@pytest.mark.unit
def test_the_site_warm_up_never_raises_and_is_never_stopped_part_way(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import signal
    import threading
    import time

    from evallib.evaluation.site import evaluate
    from evallib.pipeline import warm
    from evallib.protocol.params import load_params

    from .conftest import ROOT

    protocol = load_params(ROOT / "params" / "vanguards" / "V04.yaml")
    handler = signal.getsignal(signal.SIGALRM)
    finished: list[bool] = []

    def slow(p: object) -> None:
        time.sleep(0.3)
        finished.append(True)  # no exception raised into it from outside: it reaches its end

    monkeypatch.setattr(evaluate, "evaluate_site", slow)
    monkeypatch.setattr("evallib.reporting.report.full_report", lambda r: None)
    assert warm.warm_with_site(protocol, tmp_path) is True and finished == [True]
    assert signal.getsignal(signal.SIGALRM) is handler and signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    def broken(p: object) -> None:
        raise ValueError("a site that fails")

    monkeypatch.setattr(evaluate, "evaluate_site", broken)
    assert warm.warm_with_site(protocol, tmp_path) is False
    found: list[bool] = []
    thread = threading.Thread(target=lambda: found.append(warm.warm_with_site(protocol, tmp_path)))
    thread.start()
    thread.join()
    assert found == [False]  # in another thread (a Dask worker's task) a failing site does not raise either


@pytest.mark.unit
def test_a_warm_up_site_is_one_reading_only_bundled_data() -> None:
    # Never stopped part-way, a warm-up is bounded by its site: the bundled data's size is fixed by the install,
    # an evaluator's own file may be as large as the size limit allows.
    from evallib.pipeline import warm
    from evallib.protocol.params import load_params
    from evallib.sources.files import FileSource

    from .conftest import ROOT

    bundled = load_params(ROOT / "params" / "vanguards" / "V04.yaml")
    own = replace(bundled, data_source=FileSource(path="data/mine.csv", unit="unit", period="period"))
    assert warm.reads_bundled_only(bundled) and not warm.reads_bundled_only(own)
