"""Before any notebook runs: every params file and the data it names are checked, and each site's
fingerprint (params, notebook, data, evallib code) decides whether it must run again.

Papermill only warns on a misspelt parameter and injects a wrongly typed one as it
is, so every protocol is validated here, and each data source is loaded once, so a
broken file fails once instead of in 95 notebooks.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evallib import __version__
from evallib.errors import DataError, ParamsError
from evallib.evaluation.coverage import load_source, unit_kind, unit_plural
from evallib.evaluation.provenance import data_files, sha256_file
from evallib.protocol.params import AnalysisSpec, SiteProtocol, load_params, read_yaml
from evallib.protocol.paths import ROOT_ENV
from evallib.sources.bundled import BUNDLED
from evallib.sources.registry import known_commissioners, known_trusts

TEMPLATE = Path("notebooks") / "site_evaluation.ipynb"
PROGRAMME_TEMPLATE = Path("notebooks") / "programme_summary.ipynb"


@dataclass(frozen=True)
class SiteJob:
    """One site to run: its validated protocol and the raw values for Papermill."""

    site_id: str
    params_file: str
    parameters: dict[str, Any]
    fingerprint: str = ""


def preflight(params_files: list[Path], root: Path) -> list[SiteJob]:
    """Validate every params file and the data each names, before any kernel starts.

    Raises
    ------
    ParamsError
        Listing every invalid file (not just the first), or duplicate site ids.
    DataError
        When a data source cannot be loaded or lacks a protocol's outcome.
    """
    problems: list[str] = []
    jobs: list[SiteJob] = []
    protocols: list[SiteProtocol] = []
    seen: dict[str, str] = {}
    for path in params_files:
        try:
            protocol = load_params(path)
        except ParamsError as exc:
            problems.append(str(exc))
            continue
        rel = relative(path, root)
        if protocol.site_id in seen:
            problems.append(
                f"{rel}: site_id {protocol.site_id!r} is also used by {seen[protocol.site_id]}; ids must be unique"
            )
            continue
        if path.stem != protocol.site_id:
            problems.append(
                f"{rel}: the file name should match site_id {protocol.site_id!r} (rename it {protocol.site_id}.yaml)"
            )
            continue
        seen[protocol.site_id] = rel
        protocols.append(protocol)
        jobs.append(SiteJob(protocol.site_id, rel, read_yaml(path), fingerprint(path, protocol, root)))
    if problems:
        raise ParamsError(f"{len(problems)} params file(s) are invalid; no site was run:\n- " + "\n- ".join(problems))
    # Load each data source once, so a broken file fails here, not in 95 kernels.
    checked: dict[str, list[str]] = {}
    extents: dict[str, tuple[pd.Timestamp, set[str]]] = {}
    for protocol in protocols:
        for i, spec in enumerate(protocol.analyses):
            key = repr(spec.data_source)
            if key not in checked:
                old = os.environ.get(ROOT_ENV)
                os.environ[ROOT_ENV] = str(root)
                try:
                    panel = load_source(spec.data_source)
                    checked[key] = panel.outcomes
                    extents[key] = (panel.periods().min(), set(panel.units))
                except DataError as exc:
                    raise DataError(
                        f"site {protocol.site_id} ({relative(Path(protocol.source_file), root)}): {exc}"
                    ) from exc
                finally:
                    if old is None:
                        os.environ.pop(ROOT_ENV, None)
                    else:
                        os.environ[ROOT_ENV] = old
            problem = _check_against_data(protocol, spec, *extents[key])
            if problem:
                raise ParamsError(f"{protocol.source_file}: {problem}")
            if spec.outcome not in checked[key]:
                n_own = len(protocol.outcomes)
                field_name = (
                    "primary_outcome"
                    if spec.primary
                    else "secondary_outcomes"
                    if i < n_own
                    else f"secondary_analyses[{i - n_own}].outcome"
                )
                raise ParamsError(
                    f"{protocol.source_file}: field '{field_name}' names {spec.outcome!r}, which the data source does "
                    f"not have. Allowed values: {', '.join(checked[key])}."
                )
    return jobs


_CODE_HASH: list[str] = []


def _code_hash() -> str:
    """SHA-256 of evallib's own source: a code change reruns every site, even without a version bump."""
    if not _CODE_HASH:
        h = hashlib.sha256()
        package = Path(__file__).resolve().parents[1]
        for f in sorted(package.rglob("*.py")):
            h.update(str(f.relative_to(package)).encode())
            h.update(f.read_bytes())
        _CODE_HASH.append(h.hexdigest())
    return _CODE_HASH[0]


def fingerprint(params_file: Path, protocol: SiteProtocol, root: Path) -> str:
    """What a site's outputs depend on: its params file, the notebook, the data and evallib itself."""
    old = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(root)
    try:
        files = data_files(protocol)
    finally:
        if old is None:
            os.environ.pop(ROOT_ENV, None)
        else:
            os.environ[ROOT_ENV] = old
    h = hashlib.sha256()
    h.update(params_file.read_bytes())
    template = root / TEMPLATE
    if template.is_file():
        h.update(template.read_bytes())
    for f in files:
        h.update(f.name.encode() + (sha256_file(f).encode() if f.is_file() else b"missing"))
    h.update(__version__.encode() + _code_hash().encode())
    return h.hexdigest()


def unchanged_since_last_run(job: SiteJob, outputs: Path) -> dict[str, Any] | None:
    """The previous results when the site's fingerprint matches its last successful run, else None."""
    folder = outputs / job.site_id
    record, results = folder / "run.json", folder / "results.json"
    if not (record.is_file() and results.is_file()) or (folder / "failure.json").exists():
        return None
    try:
        if json.loads(record.read_text(encoding="utf-8")).get("fingerprint") != job.fingerprint:
            return None
        return json.loads(results.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_against_data(protocol: SiteProtocol, spec: AnalysisSpec, data_start: pd.Timestamp, units: set[str]) -> str:
    """Protocol errors that only the data reveal (empty string when there are none).

    Codes that neither the data nor the NHS registers know are typing errors; a known
    trust or CCG missing from the data makes the site "not evaluable" instead.
    """
    kind = unit_kind(spec.data_source)
    bundled = isinstance(spec.data_source, str) and spec.data_source in BUNDLED
    known = units | (known_codes(kind) if bundled else set())
    unknown = [c for c in spec.treated_units if c not in known]
    if unknown:
        field_name = "treated_units" if spec.data_source == protocol.data_source else "secondary_analyses.treated_units"
        return (
            f"field '{field_name}' has code(s) {', '.join(unknown)} that are neither in the data nor NHS {kind} "
            f"codes. Check the ODS codes of the site's {unit_plural(kind)}."
        )
    if not spec.primary:
        return ""
    missing = [c for c in protocol.comparison_include if c not in units]
    if missing:
        return (
            f"field 'comparison_include' names {', '.join(missing)}, not in the data, so the comparison pool would "
            "lose them (or be empty). Use codes present in the data."
        )
    if protocol.start <= data_start:
        return (
            f"field 'intervention_start' is {protocol.intervention_start}, at or before the first period of the data "
            f"({data_start:%Y-%m}), so there can be no pre-period. Check the date or the data source."
        )
    return ""


def known_codes(kind: str) -> frozenset[str]:
    """Every code of this kind the NHS registers know (open or closed)."""
    return known_trusts() if kind == "trust" else known_commissioners() if kind == "CCG" else frozenset()


def relative(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return path.name
