"""Shared fixtures. Reference data are copied into fixtures/ (sources in fixtures/README.md); reference values and
the scripts that produced them are in reference/ (reference/README.md)."""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import math
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import pytest

from evallib.evaluation.studies.simulated import simulated_panel as simulated_panel
from evallib.evaluation.studies.simulated import simulated_site as simulated_site
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import Panel

if TYPE_CHECKING:
    from evallib.evaluation.site.evaluate import SiteEvaluation
    from evallib.evaluation.site.robustness import Robustness
    from evallib.methods.base.design import Design
    from evallib.methods.base.results import Estimate

ROOT = Path(__file__).resolve().parents[1]
#: DiD column roles of evallib.methods.simulate.simulate_panel, on the log scale.
SIM_ROLES = {
    "outcome": "value",
    "unit": "unit",
    "time": "period",
    "treated": "treated",
    "post": "post",
    "transform": "log",
}
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# simulated_site and simulated_panel (the simulated own-data site the design, answer and wording tests share with
# benchmarks/scale_site.py) are imported from here by the tests.


def pytest_configure(config: pytest.Config) -> None:
    """Runs sign their records with a key of their own (never the evaluator's ~/.config/evallib key)."""
    if not os.environ.get("EVALLIB_KEY_FILE"):
        folder = tempfile.mkdtemp(prefix="evallib-key-")
        # Removed when the session ends, so test runs leave no key folders in the temporary directory.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["EVALLIB_KEY_FILE"] = str(Path(folder) / "publish.key")


@pytest.fixture(scope="session")
def organ_donations() -> pd.DataFrame:
    d = pd.read_csv(FIXTURES / "organ_donations.csv")
    d["treated"] = (d["State"] == "California").astype(int)
    d["post"] = (d["Quarter_Num"] >= 4).astype(int)
    return d


@pytest.fixture(scope="session")
def sicily() -> pd.DataFrame:
    d = pd.read_csv(FIXTURES / "sicily.csv")
    d.index = pd.to_datetime({"year": d["year"], "month": d["month"], "day": 1})
    return d


@pytest.fixture(scope="session")
def staggered_example():  # type: ignore[no-untyped-def]
    """The staggered worked example (examples/staggered/rollout.yaml, the evaluator's own data) evaluated once per
    session: the site whose units started at different dates that the staggered, stacked and robustness tests read."""
    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.protocol.params import load_params

    with project_root():  # the params file names its data relative to the repository
        return evaluate_site(load_params(ROOT / "examples" / "staggered" / "rollout.yaml"))


@contextlib.contextmanager
def project_root(root: Path = ROOT) -> Iterator[None]:
    """Params files name their data relative to ``root`` while this holds; undone after it (a session fixture must
    not hold it: a later test's ``evallib`` subprocess would inherit the root)."""
    from evallib.protocol.paths import ROOT_ENV

    mp = pytest.MonkeyPatch()
    mp.setenv(ROOT_ENV, str(root))
    try:
        yield
    finally:
        mp.undo()


def page_text(html: str) -> str:
    """A page's words: figures (images, inline SVG) and tags taken out, white space folded."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>|<svg.*?</svg>", "", html, flags=re.S)))


def report_text(evaluation: SiteEvaluation) -> str:
    """The words of a site's whole report (:func:`page_text` of its page)."""
    from evallib.reporting.report import full_report

    return page_text(full_report(evaluation))


def panel_changed_from(protocol: SiteProtocol, start: str) -> Panel:
    """The protocol's data with every value from ``start`` on tripled, the design step's cached histories forgotten:
    a design step that reads nothing from ``start`` on gives the same table on it."""
    from evallib.evaluation.site.coverage import load_source
    from evallib.evaluation.studies.pre_start import forget_histories

    panel = load_source(protocol.data_source)
    d = panel.data.copy()
    d.loc[d["period"] >= pd.Timestamp(start), "value"] *= 3.0
    forget_histories()
    return Panel(d, panel.frequency, panel.source, panel.files)


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


SMALL_SITE = """site_id: "S01"
site_name: "Small counts test site"
site_type: "other"
care_model: "other"
membership_confidence: "high"
treated_units: ["SM1"]
intervention_start: "2015-04"
primary_outcome: "admissions"
expected_direction: "decrease"
pre_period_start: "2012-01"
pre_period_end: "2015-03"
post_period_end: "2017-12"
comparison_pool: "all_eligible"
type1_comparators_only: false
data_source: {path: "data/small.csv", unit: "trust", period: "month", outcomes: ["admissions"]}
"""


def small_counts_csv(seed: int = 3) -> str:
    """A treated trust with 1-7 admissions every month against 30 larger comparators."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = ["trust,month,admissions"]
    for u in ["SM1"] + [f"C{i:02d}" for i in range(30)]:
        base = rng.uniform(20, 300)
        for y in range(2012, 2018):
            for m in range(1, 13):
                v = int(rng.integers(1, 8)) if u == "SM1" else int(rng.poisson(base))
                lines.append(f"{u},{y}-{m:02d},{v}")
    return "\n".join(lines) + "\n"


def make_project(tmp: Path, sites: list[str], *, programme: bool = True, small: bool = False) -> Path:
    """A project tree: the notebook templates, the named sites' params and (``small``) site S01 on its own data."""
    import shutil

    (tmp / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "notebooks" / "site_evaluation.ipynb", tmp / "notebooks")
    if programme:
        shutil.copy(ROOT / "notebooks" / "programme_summary.ipynb", tmp / "notebooks")
    for sid in sites:
        kind = "vanguards" if sid.startswith("V") else "ics"
        (tmp / "params" / kind).mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "params" / kind / f"{sid}.yaml", tmp / "params" / kind)
    if small:
        (tmp / "data").mkdir()
        (tmp / "data" / "small.csv").write_text(small_counts_csv())
        (tmp / "params" / "other").mkdir(parents=True)
        (tmp / "params" / "other" / "S01.yaml").write_text(SMALL_SITE)
    return tmp


@pytest.fixture(scope="session")
def published_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real batch run shared by the hostile-input and fault matrix: V04 (evaluated), V45 (not
    evaluable), S01 (small counts on the evaluator's own data) and the programme page."""
    from evallib.pipeline.batch import run_batch

    root = make_project(tmp_path_factory.mktemp("hostile"), ["V04", "V45"], small=True)
    result = run_batch(None, root=root, progress=False)
    assert result.exit_code == 0, result.runs
    return root


# The robustness verdict's tests (test_robustness*.py, test_checks_that_cannot_test.py) judge hand-made rows.
def estimate_row(estimate: float, lo: float, hi: float, p: float, method: str = "did_synthetic") -> Estimate:
    """An effect estimate of outcome ``y`` (log scale, placebo in space, one treated unit among 50 comparators)."""
    from evallib.methods.base.results import Estimate

    return Estimate("y", "treated_x_post", estimate, math.nan, lo, hi, p, method, "placebo_in_space", "log", 1, 50)


def robustness_of(main: Estimate, checks: tuple) -> Robustness:  # type: ignore[type-arg]
    """The verdict of judged ``checks`` on ``main``, with nothing else of a robustness analysis."""
    from evallib.evaluation.site.robustness import Robustness

    return Robustness(
        outcome="y",
        main=main,
        placebo_in_time=None,
        leave_one_out=(math.nan, math.nan),
        matched=None,
        matched_did=None,
        synthetic=None,
        balance=None,
        checks=checks,
    )


def check_status(checks: tuple, name: str) -> str:  # type: ignore[type-arg]
    """The status of the check called ``name``."""
    return next(c.status for c in checks if c.name == name)


#: The staggered re-fit tests' simulated roll-out (test_staggered_*.py): four units' starts, months into 96.
ROLLOUT_STARTS = {"U01": 48, "U02": 48, "U03": 54, "U04": 60}


def rollout_design(seed: int, effect: float, *, early_drop: float = 0.0) -> Design:
    """96 months of 30 units; four start at months 48, 48, 54 and 60 (:data:`ROLLOUT_STARTS`) with ``effect`` from
    their own start, and ``early_drop`` from 24 months before it (a change before the start that a fake start should
    find)."""
    import numpy as np

    from evallib.methods.base.design import Design

    rng = np.random.default_rng(seed)
    periods = pd.date_range("2011-01-01", periods=96, freq="MS")
    logs = 7 + rng.normal(0, 0.3, 30) + np.cumsum(rng.normal(0, 0.01, (96, 30)), axis=0) + rng.normal(0, 0.02, (96, 30))
    wide = pd.DataFrame(logs, index=periods, columns=[f"U{i:02d}" for i in range(30)])
    for u, s in ROLLOUT_STARTS.items():
        wide.loc[periods[s] :, u] += effect
        wide.loc[periods[s - 24] :, u] += early_drop
    return Design.staggered(np.exp(wide), {u: periods[s] for u, s in ROLLOUT_STARTS.items()}, measure="count")


@pytest.fixture
def forked_notebook(tmp_path: Path) -> Callable[..., Path]:
    """``forked_notebook(*sources)``: ``tmp_path/t.ipynb``, a Python notebook of one code cell per source, for
    ``executor.run_forked``; the forked executor is warmed up first, and the test skipped where there is no fork."""
    import nbformat

    from evallib.pipeline import executor

    if not executor.available():
        pytest.skip("no fork")
    executor.warm_up()

    def write(*sources: str) -> Path:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
        nbformat.write(nb, tmp_path / "t.ipynb")
        return tmp_path / "t.ipynb"

    return write


def run_v04_forked(root: Path, folder: Path) -> tuple[bytes, bytes]:
    """Site V04 of the project ``root`` run on the forked executor into the new folder ``folder`` (its params file
    and project root in the environment, as the batch sets them), its notebook cleaned and rendered as the batch
    does: the bytes of its ``results.json`` and ``report.html``. The caller warms the executor up."""
    from evallib.pipeline import execute, executor
    from evallib.pipeline.notebook import PARAMS_FILE_ENV
    from evallib.pipeline.preflight import project_env
    from evallib.reporting.static_site import render_report

    folder.mkdir()
    template = root / "notebooks" / "site_evaluation.ipynb"
    with pytest.MonkeyPatch.context() as mp, project_env(root):
        mp.setenv(PARAMS_FILE_ENV, str(root / "params" / "vanguards" / "V04.yaml"))
        params = {"site_id": "V04", "output_dir": "."}
        assert executor.run_forked(template, folder / "report.ipynb", params, folder) is None
    nb = execute._clean_notebook(folder / "report.ipynb", "V04", root)
    render_report(nb, folder / "report.html", title="V04", root=root)
    return (folder / "results.json").read_bytes(), (folder / "report.html").read_bytes()


def read_fifo_unblocked(fifo: Path, read: Callable[[], object]) -> object:
    """What ``read()`` returned or raised, called in a thread while the FIFO ``fifo`` has no writer. A read still
    blocked (waiting for a writer at the opening) after 10 s fails the test, once a writer has let it go so that
    the test run does not hang."""
    got: list[object] = []

    def call() -> None:
        try:
            got.append(read())
        except BaseException as exc:  # noqa: BLE001 - returned for the test to examine
            got.append(exc)

    reader = threading.Thread(target=call, daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
        pytest.fail(f"the read waited for a writer on the FIFO {fifo.name}")
    (result,) = got
    return result
