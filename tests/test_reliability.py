"""Reliability: determinism, incremental reruns, disclosure control, the bad-input matrix, Ctrl-C."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from evallib.evaluation.record.results_file import write_results
from evallib.evaluation.site.evaluate import evaluate_site
from evallib.pipeline.batch import run_batch
from evallib.pipeline.cli import main as cli_main
from evallib.protocol.params import load_params
from evallib.reporting import report
from evallib.reporting.disclosure import check_published

from .conftest import ROOT, tree_digest
from .test_runner import _project

V04 = ROOT / "params" / "vanguards" / "V04.yaml"


@pytest.mark.integration
def test_same_inputs_give_byte_identical_results(tmp_path: Path) -> None:
    for site in ("V04", "I12"):
        kind = "vanguards" if site.startswith("V") else "ics"
        p = load_params(ROOT / "params" / kind / f"{site}.yaml")
        a = write_results(evaluate_site(p), tmp_path / "a" / site).read_bytes()
        b = write_results(evaluate_site(p), tmp_path / "b" / site).read_bytes()
        assert a == b


@pytest.mark.integration
def test_published_count_cells_follow_the_rule(tmp_path: Path) -> None:
    ev = evaluate_site(load_params(V04))
    (tmp_path / "V04.html").write_text(report.full_report(ev))
    html = (tmp_path / "V04.html").read_text()
    assert html.count('class="count"') >= 2  # baseline total and the balance table's counts
    assert check_published(tmp_path) == []
    (tmp_path / "bad.html").write_text("<table><tr><td class='count'>3</td><td class='count'>1,234</td></tr></table>")
    assert check_published(tmp_path) == ["bad.html: unsuppressed count '3'", "bad.html: unsuppressed count '1,234'"]


@pytest.mark.e2e
def test_incremental_reruns(tmp_path: Path) -> None:
    root = _project(tmp_path, ["V45"])
    first = run_batch(None, root=root, progress=False)
    record = (root / "outputs" / "V45" / "run.json").read_text()
    results = (root / "outputs" / "V45" / "results.json").read_bytes()
    second = run_batch(None, root=root, progress=False)
    assert second.runs[0].attempts == 0 and "unchanged" in second.runs[0].reason  # skipped
    assert (root / "outputs" / "V45" / "run.json").read_text() == record
    params = root / "params" / "vanguards" / "V45.yaml"
    params.write_text(params.read_text().replace('notes: "', 'notes: "edited; '))
    third = run_batch(None, root=root, progress=False)
    assert third.runs[0].attempts == 1  # the protocol changed: rerun
    forced = run_batch(None, root=root, progress=False, force=True)
    assert forced.runs[0].attempts == 1
    assert first.exit_code == second.exit_code == third.exit_code == 0
    # Same inputs, byte-identical results (apart from the edited protocol's hash).
    assert (
        json.loads(results)["results"]
        == json.loads((root / "outputs" / "V45" / "results.json").read_bytes())["results"]
    )


def _bad_csv(tmp_path: Path, text: str) -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "mine.csv").write_text(text)
    return '{path: "data/mine.csv", unit: "trust", period: "month", outcomes: ["ae_attendances"]}'


GOOD_CSV = "trust,month,ae_attendances\n" + "".join(
    f"{u},2014-{m:02d},{100 + m}\n" for u in ("RTF", "RBL", "RX1") for m in range(1, 13)
)

# (name, how to break X99's params (text -> text) or a CLI argument, fragment of the error)
MATRIX = [
    ("unknown site on the command line", None, "no params file for site V99"),
    ("unknown trust codes", lambda t, p: t.replace('["RTF"]', '["ZZ999"]'), "ZZ999"),
    (
        "start date before the data",
        lambda t, p: (
            t.replace('"2015-04"', '"2008-01"').replace('"2013-04"', '"2006-01"').replace('"2015-03"', '"2007-12"')
        ),
        "no pre-period",
    ),
    ("too few pre-periods", lambda t, p: t.replace('"2013-04"', '"2015-01"'), "fewer than min_pre_periods"),
    (
        "empty comparison pool (include list not in data)",
        lambda t, p: t.replace("comparison_include: []", 'comparison_include: ["ZZ111"]'),
        "comparison_include",
    ),
    ("misspelt field", lambda t, p: t.replace("seed:", "sede:"), "'sede' is not a known field"),
    ("wrong type", lambda t, p: t.replace("n_placebo_draws: 999", 'n_placebo_draws: "many"'), "n_placebo_draws"),
    ("unquoted code read as octal", lambda t, p: t.replace('["RTF"]', "[0123]"), "octal"),
    ("unquoted date", lambda t, p: t.replace('"2015-04"', "2015-04-01"), "quotes"),
    ("unknown care model", lambda t, p: t.replace('"PACS"', '"XYZ"'), "Allowed values"),
    (
        "outcome not in the data",
        lambda t, p: t.replace('primary_outcome: "nonelective_admissions_per_head"', 'primary_outcome: "bed_days"'),
        "bed_days",
    ),
    ("unreadable YAML", lambda t, p: t + "\n  broken: [unclosed\n", "not valid YAML"),
    ("not a mapping", lambda t, p: "- a\n- list\n", "YAML mapping"),
    ("newline in the site name", lambda t, p: t.replace('site_name: "', 'site_name: "two\\nlines '), "one line"),
    ("site id with a path in it", lambda t, p: t.replace('site_id: "X99"', 'site_id: "../X99"'), "site_id"),
    ("file name and site id differ", lambda t, p: t.replace('site_id: "X99"', 'site_id: "X98"'), "rename it"),
    (
        "pre-period ends after the start",
        lambda t, p: t.replace('pre_period_end: "2015-03"', 'pre_period_end: "2015-09"'),
        "pre_period_end",
    ),
    ("unknown bundled dataset", lambda t, p: t.replace('"ae_monthly_2010_2021"', '"hes_apc"'), "not a bundled dataset"),
    (
        "missing data file",
        lambda t, p: t.replace(
            '"ae_monthly_2010_2021"',
            '{path: "data/absent.csv", unit: "trust", period: "month", outcomes: ["ae_attendances"]}',
        ),
        "does not exist",
    ),
    (
        "duplicate rows in the data",
        lambda t, p: t.replace('"ae_monthly_2010_2021"', _bad_csv(p, GOOD_CSV + "RTF,2014-01,5\n")),
        "duplicate unit-period rows",
    ),
    (
        "negative counts in the data",
        lambda t, p: t.replace(
            '"ae_monthly_2010_2021"', _bad_csv(p, GOOD_CSV.replace("RBL,2014-03,103", "RBL,2014-03,-4"))
        ),
        "negative counts",
    ),
    (
        "non-numeric counts",
        lambda t, p: t.replace(
            '"ae_monthly_2010_2021"', _bad_csv(p, GOOD_CSV.replace("RBL,2014-03,103", "RBL,2014-03,lots"))
        ),
        "non-numeric",
    ),
    (
        "periods off the frequency",
        lambda t, p: t.replace(
            '"ae_monthly_2010_2021"', _bad_csv(p, GOOD_CSV.replace("RBL,2014-03,103", "RBL,2014-03-15,103"))
        ),
        "not monthly periods",
    ),
    (
        "missing column in the data",
        lambda t, p: t.replace('"ae_monthly_2010_2021"', _bad_csv(p, GOOD_CSV.replace("trust,", "provider,"))),
        "missing column",
    ),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = _project(tmp_path_factory.mktemp("matrix"), ["V45"])
    assert run_batch(None, root=root, progress=False).exit_code == 0
    return root


@pytest.mark.e2e
@pytest.mark.parametrize(("name", "edit", "fragment"), MATRIX, ids=[m[0] for m in MATRIX])
def test_bad_input_matrix(
    published: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, name, edit, fragment
) -> None:
    """Each bad input: a clear message naming the problem, exit code 2, other sites' outputs untouched."""
    before = tree_digest(published / "outputs")
    target = published / "params" / "vanguards" / "X99.yaml"
    base = V04.read_text().replace('site_id: "V04"', 'site_id: "X99"')
    args = ["run", "V45", "X99", "--no-progress"]
    if edit is None:
        args = ["run", "V45", "V99", "--no-progress"]
    else:
        target.write_text(edit(base, published))
    monkeypatch.chdir(published)
    try:
        code = cli_main(args)
    finally:
        target.unlink(missing_ok=True)
    err = capsys.readouterr().err
    assert code == 2, err
    assert fragment in err, err
    assert tree_digest(published / "outputs") == before  # nothing published, nothing lost


def test_params_are_injected_as_literals_never_as_code() -> None:
    nb = load_notebook_node(str(ROOT / "notebooks" / "site_evaluation.ipynb"))  # as papermill reads it
    hostile = "'); __import__('os').system('touch PWNED') #\" <script>alert(1)</script>"
    injected = parameterize_notebook(nb, {"site_name": hostile, "notes": "a\\nb", "treated_units": ["RTF"]})
    cell = next(c for c in injected.cells if "injected-parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse(cell.source)
    values = {n.targets[0].id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)}
    assert values["site_name"] == hostile  # a string literal, exactly as given
    assert all(isinstance(n, ast.Assign) for n in tree.body)  # nothing but literal assignments


@pytest.mark.e2e
def test_ctrl_c_keeps_finished_sites_and_leaves_no_partial_files(tmp_path: Path) -> None:
    # Eight sites on one worker: after the first finishes there is always a site under way to interrupt (four
    # sites finished within a second of the first once a site took under a second).
    sites = ["V45", "V04", "V08", "V10", "V12", "V14", "V16", "V18"]
    root = _project(tmp_path, sites)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "evallib", "run", "--jobs", "1", "--no-progress"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        # A shell without job control starts background jobs with Ctrl-C ignored, and the run would inherit that
        # (and rightly keep ignoring it): the run is started as a terminal would start it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((root / "outputs").glob("*/results.json")):
        time.sleep(0.2)
    time.sleep(0.3)  # let the next site get going
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, (out.decode()[-1500:], err.decode()[-1500:])
    finished = list((root / "outputs").glob("*/results.json"))
    assert 1 <= len(finished) < len(sites)
    for f in finished:
        assert json.loads(f.read_text())["status"] in ("evaluated", "not evaluable")  # whole, parseable
        assert (f.parent / "report.html").exists()
    leftovers = [p for p in (root / "outputs").rglob("*") if p.name.endswith(".tmp") or ".staging" in p.parts]
    assert leftovers == []
