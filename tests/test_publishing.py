"""What reaches the public site, and what exploration may touch: disclosure control in every published place,
generic failure notes, the notebook's site_id rule, scratch outputs, path scrubbing, and the records a
failure leaves (the rest of the fault matrix is in test_faults.py and test_hostile.py)."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path

import nbformat
import pytest

from evallib.errors import ParamsError
from evallib.evaluation.record.results_file import write_results
from evallib.evaluation.site.evaluate import evaluate_site
from evallib.pipeline import execute
from evallib.pipeline.batch import run_batch
from evallib.pipeline.executor import run_forked, warm_up
from evallib.pipeline.notebook import protocol_from_namespace
from evallib.protocol.params import load_params
from evallib.reporting import report
from evallib.reporting.disclosure import SUPPRESSED, check_published, log_count_text, safe_count
from evallib.reporting.publishing import scan_pages
from evallib.reporting.static_site import scrub_paths

from .conftest import ROOT, tree_digest

TEMPLATE = ROOT / "notebooks" / "site_evaluation.ipynb"


def _cell_defaults() -> dict[str, object]:
    """The parameters cell's values, as the notebook starts with them."""
    nb = nbformat.read(TEMPLATE, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    tree = ast.parse(cell.source)
    return {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}


@pytest.mark.unit
@pytest.mark.parametrize(
    ("value", "published"),
    [(0, 0), (0.3, SUPPRESSED), (1, SUPPRESSED), (7, SUPPRESSED), (7.2, SUPPRESSED), (7.5, 10), (8, 10), (12, 10)]
    + [(12.5, 15), (13, 15), (1234, 1235)],
)
def test_counts_are_rounded_first_then_suppressed(value: float, published: object) -> None:
    assert safe_count(value) == published


@pytest.mark.unit
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1, True, "12", None])
def test_disclosure_fails_closed(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        safe_count(bad)  # type: ignore[arg-type]


@pytest.mark.unit
def test_a_log_count_never_undoes_its_star() -> None:
    assert log_count_text(math.log(6.3)) == SUPPRESSED and log_count_text(math.log(250)) == f"{math.log(250):.2f}"


@pytest.mark.e2e
def test_small_counts_are_suppressed_in_every_published_place(published_project: Path) -> None:
    site = published_project / "outputs" / "site"
    page = (site / "S01.html").read_text()
    assert check_published(site) == [] and scan_pages(site, published_project) == []
    cells = re.findall(r"class=['\"]count['\"]>([^<]*)<", page)
    assert SUPPRESSED in cells and all(c == SUPPRESSED or int(c.replace(",", "")) >= 10 for c in cells)
    assert re.search(r"mean log count per period\)</td><td>\*</td>", page)  # the log does not undo the *
    assert page.count("figure is withheld") == 2  # trend and ITS: no figure of 1-7 counts, even indexed
    v04 = (site / "V04.html").read_text()
    assert "figure is withheld" not in v04 and v04.count("<img") > page.count("<img")


@pytest.mark.integration
def test_site_id_alone_loads_that_sites_params_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALLIB_PROJECT_ROOT", str(ROOT))
    ns = _cell_defaults() | {"site_id": "I12"}
    protocol = protocol_from_namespace(ns)
    assert protocol == load_params(ROOT / "params" / "ics" / "I12.yaml") and protocol.departures == ()
    explored = protocol_from_namespace(ns | {"comparison_pool": "all_eligible", "site_id": "i12"})
    assert explored.site_id == "I12" and [d.split(":")[0] for d in explored.departures] == ["comparison_pool"]
    html = report.full_report(evaluate_site(explored))
    assert "Exploration, not the protocol" in html and "comparison_pool" in html


@pytest.mark.integration
def test_exploration_never_writes_into_the_published_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALLIB_PROJECT_ROOT", str(tmp_path))
    ev = evaluate_site(load_params(ROOT / "params" / "vanguards" / "V45.yaml"))
    assert write_results(ev) == tmp_path / "scratch" / "V45" / "results.json"
    with pytest.raises(ParamsError, match="only `evallib run` writes there"):
        write_results(ev, tmp_path / "outputs" / "V45")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.unit
def test_path_scrubbing_removes_machine_paths_not_words(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    text = f"{root}/outputs/V04/report.ipynb; notes: files under /tmp and /root are wiped; /tmpfiles stay"
    assert (
        scrub_paths(text, root)
        == "outputs/V04/report.ipynb; notes: files under /tmp and /root are wiped; /tmpfiles stay"
    )


@pytest.mark.integration
def test_a_child_that_cannot_record_its_error_is_still_a_failure(tmp_path: Path) -> None:
    warm_up()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    nbformat.write(nb, tmp_path / "t.ipynb")
    (tmp_path / "out.ipynb.error.json").mkdir()  # where the error would go: not writable as a file
    reason = run_forked(tmp_path / "t.ipynb", tmp_path / "out.ipynb", {}, tmp_path)
    assert reason == "the notebook failed, and its error could not be recorded"


@pytest.mark.e2e
def test_runner_errors_and_failures_leave_generic_public_notes(
    published_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "project"
    shutil.copytree(published_project, root, symlinks=True)
    last_good = tree_digest(root / "outputs" / "V45")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"runner blew up in {root}/secret/place")

    monkeypatch.setattr(execute, "execute_site", broken)  # workers are forked: they see the patch
    result = run_batch(["V45"], root=root, progress=False, force=True)
    assert result.exit_code == 1 and result.runs[0].reason.startswith("runner error: RuntimeError")
    failure = json.loads((root / "outputs" / "V45" / "failure.json").read_text())
    assert "secret/place" in failure["reason"] and str(root) not in failure["reason"]  # kept beside the run
    index = (root / "outputs" / "site" / "index.html").read_text()
    assert "last run failed (previous report shown)" in index and "RuntimeError" not in index
    assert "secret/place" not in index
    kept = tree_digest(root / "outputs" / "V45")
    assert {k: v for k, v in kept.items() if k in last_good} == last_good  # the last good report is untouched


@pytest.mark.e2e
def test_provenance_names_files_relative_to_the_project(published_project: Path) -> None:
    results = json.loads((published_project / "outputs" / "S01" / "results.json").read_text())
    prov = results["provenance"]
    assert prov["data_source"] == "data/small.csv" and prov["data_files"][0]["file"] == "data/small.csv"
    text = json.dumps(results) + (published_project / "outputs" / "site" / "S01.html").read_text()
    assert str(published_project) not in text and str(Path.home()) + "/" not in text
