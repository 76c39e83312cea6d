"""The package's architecture: layers import one way, no cycles, small modules that say what they are for,
and a public face an evaluator can type.

The import contracts live in pyproject.toml (``[tool.importlinter]``) and are checked with
import-linter, the tool a developer runs as ``lint-imports``.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.unit

PACKAGE = ROOT / "evallib"
LAYERS = ("sources", "methods", "protocol", "evaluation", "reporting", "pipeline")
MAX_MODULE_LINES = 400


def _lint_imports(package_parent: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts on evallib (or on a copy under ``package_parent``)."""
    # Python puts the working directory first on sys.path: run from the copy's parent so that its
    # evallib, not the checkout's, is the one analysed.
    cwd = package_parent or ROOT
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, no_cache=True, no_logo=True))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _copy_package(tmp_path: Path) -> Path:
    """The evallib source tree (Python files only) copied under ``tmp_path``."""
    dest = tmp_path / "evallib"
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("data", "__pycache__", "*.pyc"))
    return dest


def test_imports_keep_every_contract() -> None:
    done = _lint_imports()
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "8 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        # A method reaching up into the pipeline breaks the layers and the methods contract.
        ("methods/did/twfe.py", "import evallib.pipeline.batch", "Layers import one way"),
        ("methods/did/twfe.py", "import evallib.sources.registry", "Methods depend on nothing of the project"),
        # Evaluation reaching up into reporting.
        ("evaluation/site/evaluate.py", "import evallib.reporting.plots", "Layers import one way"),
        # One estimator family reaching into another (the ITS family borrowing the DiD's placebo code).
        ("methods/its/controlled.py", "import evallib.methods.did.twfe", "Estimator families"),
        # The shared base reaching up into a family.
        ("methods/base/results.py", "import evallib.methods.synth.control", "Estimator families"),
        # A cycle inside one layer: coverage -> evaluate -> outcome -> coverage.
        ("evaluation/site/coverage.py", "import evallib.evaluation.site.evaluate", "No import cycles"),
        # One site's analysis reaching up into the record of a run, or into a study across sites.
        ("evaluation/site/evaluate.py", "import evallib.evaluation.record.provenance", "Evaluation: the record"),
        ("evaluation/site/outcome.py", "import evallib.evaluation.studies.calibration", "Evaluation: the record"),
        # A study across sites leaning on the record of a run (they are independent).
        ("evaluation/studies/programme.py", "import evallib.evaluation.record.results_file", "Evaluation: the record"),
        # The fingerprint depending on the analysis, which runs after it is computed.
        ("evaluation/record/fingerprint.py", "import evallib.evaluation.site.coverage", "fingerprinted by"),
        # The domain's words reaching into a layer (every layer may import them, so they import none).
        ("vocabulary.py", "import evallib.sources.bundled", "The domain's words import nothing"),
    ],
)
def test_an_import_the_wrong_way_breaks_a_contract(tmp_path: Path, module: str, bad_import: str, broken: str) -> None:
    copy = _copy_package(tmp_path)
    target = copy / module
    text = target.read_text()
    anchor = "from __future__ import annotations\n"
    target.write_text(text.replace(anchor, anchor + f"\n{bad_import}  # the wrong way\n", 1))
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout[-3000:]
    assert f"{broken}" in done.stdout and "BROKEN" in done.stdout


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_tree_has_one_folder_per_layer_and_no_flat_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "errors.py", "vocabulary.py"], top
    for layer in LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), f"missing layer {layer}"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_is_for_and_stays_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(text))
    assert path.name == "__main__.py" or (doc and len(doc.strip()) > 20), f"{path.name}: no module docstring"
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.name}: {text.count(chr(10))} lines (at most about 400)"


def test_public_face_exports_what_an_evaluator_types() -> None:
    import evallib
    from evallib import (  # noqa: F401
        CallawaySantAnna,
        DiD,
        EventStudy,
        PoissonDiD,
        SegmentedITS,
        SyntheticControl,
        evaluate_site,
        load_params,
    )
    from evallib.methods.did.twfe import DiD as did_class

    assert DiD is did_class
    for name in evallib.__all__:
        assert getattr(evallib, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        evallib.NoSuchThing  # noqa: B018


def test_importing_evallib_is_cheap() -> None:
    """The command line imports evallib first; pandas, matplotlib and papermill load only when used."""
    code = "import sys, evallib; print(sorted(m for m in ('pandas', 'matplotlib', 'papermill') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_notebooks_use_the_public_face() -> None:
    for name in ("site_evaluation.ipynb", "programme_summary.ipynb"):
        text = (ROOT / "notebooks" / name).read_text(encoding="utf-8")
        assert "from evallib import " in text, name


def test_no_module_imports_a_private_name_from_another() -> None:
    """A name with a leading underscore is its module's own: other modules use public names only."""
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("evallib"):
                offenders += [
                    f"{path.relative_to(PACKAGE)}: {a.name}"
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert offenders == []


def test_methods_are_grouped_in_families_not_rows_of_prefixed_siblings() -> None:
    """A concept that outgrows one module becomes a folder: no two modules of a folder share a prefix like its_."""
    families = sorted(p.name for p in (PACKAGE / "methods").iterdir() if (p / "__init__.py").is_file())
    assert families == ["base", "did", "inference", "its", "synth"]
    for folder in {p.parent for p in _modules()}:
        stems = [p.stem for p in folder.glob("*.py") if not p.stem.startswith("__")]
        prefixes = [s.split("_")[0] for s in stems if "_" in s]
        shared = sorted({x for x in prefixes if sum(s.startswith(x + "_") or s == x for s in stems) > 1})
        assert shared == [], f"{folder.relative_to(PACKAGE)}: modules sharing a prefix {shared}"


def test_evaluation_is_one_site_the_record_of_a_run_and_studies_across_sites() -> None:
    """evaluation/ holds three parts and no modules of its own beside them."""
    folder = PACKAGE / "evaluation"
    parts = sorted(p.name for p in folder.iterdir() if (p / "__init__.py").is_file())
    assert parts == ["record", "site", "studies"]
    assert sorted(p.name for p in folder.glob("*.py")) == ["__init__.py"]


def test_architecture_document_names_every_module() -> None:
    """ARCHITECTURE.md's table names every module of the package by its path inside its layer."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    missing = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        if rel.name == "__init__.py" or len(rel.parts) < 2:
            continue
        inner = "/".join(rel.parts[1:])  # e.g. did/twfe.py within methods/
        if f"`{inner}`" not in text:
            missing.append(str(rel))
    assert missing == [], f"ARCHITECTURE.md does not name: {missing}"
