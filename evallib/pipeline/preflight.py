"""Before any notebook runs: every params file and the data it names are checked, and each site's
fingerprints decide whether it must run again and what its published results must match.

Papermill only warns on a misspelt parameter and injects a wrongly typed one as it
is, so every protocol is validated here, and each data source is loaded once, so a
broken file fails once instead of in 95 notebooks. The data are hashed as read
here; the notebook hashes them again as it reads them, and the runner refuses
results whose fingerprint differs (the data changed during the run).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evallib.errors import DataError, EvalLibError, ParamsError
from evallib.evaluation.record.fingerprint import combine, data_digests, result_fingerprint, source_state
from evallib.evaluation.site.coverage import load_source, unit_kind
from evallib.evaluation.site.staggered_site import staggered_data_problem
from evallib.protocol.params import AnalysisSpec, SiteProtocol, design_pool_problem, read_yaml
from evallib.protocol.paths import ROOT_ENV
from evallib.protocol.writing import UnsafePath, read_file
from evallib.reporting.publishing import Expected, read_json, verified_fingerprint
from evallib.sources.areas import pool_codes
from evallib.sources.bundled import BUNDLED
from evallib.sources.registry import known_commissioners, known_trusts
from evallib.vocabulary import agree, plural, unit_plural

TEMPLATE = Path("notebooks") / "site_evaluation.ipynb"
PROGRAMME_TEMPLATE = Path("notebooks") / "programme_summary.ipynb"
#: Params files under a folder of this name are drafts: run on request, never published.
DRAFTS = "drafts"


@dataclass(frozen=True)
class SiteJob:
    """One site to run: its validated protocol's raw values for Papermill and its fingerprints.

    ``result_fingerprint`` is what the results must carry (protocol, data as read, code);
    ``fingerprint`` adds the notebook template and decides whether the site must rerun.
    """

    site_id: str
    params_file: str
    parameters: dict[str, Any]
    fingerprint: str = ""
    result_fingerprint: str = ""
    draft: bool = False


@contextmanager
def project_env(root: Path) -> Iterator[None]:
    """``$EVALLIB_PROJECT_ROOT`` set to ``root`` for the duration (restored after)."""
    old = os.environ.get(ROOT_ENV)
    os.environ[ROOT_ENV] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ROOT_ENV, None)
        else:
            os.environ[ROOT_ENV] = old


def is_draft(params_file: Path, root: Path) -> bool:
    """Whether a params file is a draft: under a ``drafts`` folder, run on request and never published."""
    return DRAFTS in (p.lower() for p in Path(relative(params_file, root)).parts[:-1])


def check_params(params_files: list[Path], root: Path) -> tuple[list[tuple[Path, SiteProtocol]], list[str]]:
    """Each valid params file with its protocol, and a problem line for each invalid one."""
    valid, problems = _check_params(params_files, root)
    return [(path, protocol) for path, protocol, _ in valid], problems


def _check_params(
    params_files: list[Path], root: Path
) -> tuple[list[tuple[Path, SiteProtocol, dict[str, Any]]], list[str]]:
    """:func:`check_params` with each valid file's values as read (Papermill's parameters): each file is parsed
    once, and the values run are the values validated.
    """
    problems: list[str] = []
    valid: list[tuple[Path, SiteProtocol, dict[str, Any]]] = []
    seen: dict[str, str] = {}
    real_root = root.resolve()
    for path in params_files:
        rel = relative(path, root)
        if not path.resolve().is_relative_to(real_root):
            problems.append(f"{rel}: the params file resolves outside the project (a link?); copy it in instead")
            continue
        try:
            raw = read_yaml(path)
            protocol = SiteProtocol.from_mapping(copy.deepcopy(raw), str(path))  # as load_params; raw kept as read
        except ParamsError as exc:
            problems.append(str(exc))
            continue
        key = protocol.site_id.lower()  # "V04" and "v04" would share a folder on some systems
        if key in seen:
            problems.append(
                f"{rel}: site_id {protocol.site_id!r} is also used by {seen[key]}; ids must be unique (ignoring case)"
            )
            continue
        if path.stem != protocol.site_id:
            problems.append(
                f"{rel}: the file name should match site_id {protocol.site_id!r} (rename it {protocol.site_id}.yaml)"
            )
            continue
        seen[key] = rel
        valid.append((path, protocol, raw))
    return valid, problems


def _check_data(protocols: list[SiteProtocol], root: Path) -> dict[str, str]:
    """A problem for each site whose data cannot be loaded or do not fit its protocol (site id -> message).

    Every data source of every analysis (the primary's and the secondary analyses') is loaded once.
    """
    problems: dict[str, str] = {}
    loaded: dict[str, tuple[list[str], pd.Timestamp, set[str], pd.Index] | str] = {}
    with project_env(root):
        for protocol in protocols:
            n_own = len(protocol.outcomes)
            for i, spec in enumerate(protocol.analyses):
                key = repr(spec.data_source)
                if key not in loaded:
                    try:
                        panel = load_source(spec.data_source)
                        periods = panel.periods()
                        loaded[key] = (panel.outcomes, periods.min(), set(panel.units), periods)
                    except DataError as exc:
                        loaded[key] = f"site {protocol.site_id} ({_source(protocol, root)}): {exc}"
                got = loaded[key]
                if isinstance(got, str):
                    problems.setdefault(protocol.site_id, got)
                    break
                outcomes, start, units, periods = got
                problem = _check_against_data(protocol, spec, start, units)
                if not problem and spec.primary:  # each unit's own start, when they differ
                    problem = staggered_data_problem(protocol, periods, units)
                if not problem and spec.outcome not in outcomes:
                    name = (
                        "primary_outcome"
                        if spec.primary
                        else "secondary_outcomes"
                        if i < n_own
                        else f"secondary_analyses[{i - n_own}].outcome"
                    )
                    problem = (
                        f"field '{name}' names {spec.outcome!r}, which the data source does not have. "
                        f"Allowed values: {', '.join(outcomes)}."
                    )
                if problem:
                    problems[protocol.site_id] = f"{_source(protocol, root)}: {problem}"
                    break
    return problems


def _source(protocol: SiteProtocol, root: Path) -> str:
    return relative(Path(protocol.source_file.split(" (site ")[0]), root)


def _jobs(valid: list[tuple[Path, SiteProtocol, dict[str, Any]]], root: Path, skip: set[str]) -> list[SiteJob]:
    template = root / TEMPLATE
    notebook = hashlib.sha256(template.read_bytes()).hexdigest() if template.is_file() else "missing"
    jobs = []
    # Sites reading the same data sources read the same files: each set is hashed once, not once per site.
    digests: dict[tuple[str, ...], list[dict[str, str]]] = {}
    with project_env(root):
        state = source_state(root)  # once for every site: the commit and uncommitted changes
        for path, protocol, raw in valid:
            if protocol.site_id in skip:
                continue
            sources = tuple(repr(spec.data_source) for spec in protocol.analyses)
            if sources not in digests:
                digests[sources] = data_digests(protocol, root)
            result_fp = result_fingerprint(protocol, digests[sources], state)
            run_fp = combine({"result": result_fp, "notebook": notebook})
            jobs.append(
                SiteJob(
                    protocol.site_id,
                    relative(path, root),
                    raw,
                    run_fp,
                    result_fp,
                    is_draft(path, root),
                )
            )
    return jobs


def preflight(params_files: list[Path], root: Path) -> list[SiteJob]:
    """Validate every params file and the data each names, before any kernel starts.

    Raises
    ------
    ParamsError
        Listing every invalid file (not just the first), or duplicate site ids.
    DataError
        When a data source cannot be loaded, lacks a protocol's outcome or does not fit it.
    """
    valid, problems = _check_params(params_files, root)
    if problems:
        raise ParamsError(
            f"{plural(len(problems), 'params file')} {agree(len(problems), 'is', 'are')} invalid; no site was run:\n- "
            + "\n- ".join(problems)
        )
    data_problems = _check_data([p for _, p, _ in valid], root)
    if data_problems:
        first = next(iter(data_problems.values()))
        kind = DataError if first.startswith("site ") else ParamsError
        raise kind("\n".join(data_problems.values()))
    return _jobs(valid, root, set())


def expectations(params_files: list[Path], root: Path) -> tuple[dict[str, Expected], list[str]]:
    """What each site's published results must match, for publishing; invalid files are reported, not fatal
    (their sites are left off the public index until fixed).
    """
    valid, problems = _check_params(params_files, root)
    data_problems = _check_data([p for _, p, _ in valid], root)
    problems.extend(data_problems.values())
    jobs = _jobs(valid, root, set(data_problems))
    return {j.site_id: Expected(j.result_fingerprint, j.draft) for j in jobs}, problems


def unchanged_since_last_run(
    job: SiteJob, outputs: Path, tracked: frozenset[str] | None = None
) -> dict[str, Any] | None:
    """The previous results when the site's last successful run on this machine had this fingerprint and its
    published results, signed run record and page still agree; else None (the site runs again).

    ``tracked``: :func:`~evallib.reporting.signing.tracked_outputs` of ``outputs`` (asked when not given);
    a folder holding files git tracks always runs again.
    """
    folder = outputs / job.site_id
    if (folder / "failure.json").exists():
        return None
    record = read_json(folder / "run.json")
    if record is None or record.get("fingerprint") != job.fingerprint:
        return None
    if verified_fingerprint(folder, tracked) != job.result_fingerprint:
        return None  # results.json changed since the run (exploration, a copy, a hand edit): rerun
    return read_json(folder / "results.json")


def protocols_of(batch: list[SiteJob]) -> list[SiteProtocol]:
    """The protocols of the batch's sites (those preflight found valid)."""
    protocols = []
    for job in batch:
        try:
            protocols.append(SiteProtocol.from_mapping(job.parameters))
        except EvalLibError:
            continue  # preflight already reported it
    return protocols


#: The largest run record read for the order of sites (a normal one is under 1 kB).
RECORD_LIMIT = 2**16


def last_seconds(outputs: Path, site_id: str) -> float | None:
    """How many seconds the site's last successful run took (its ``run.json``), or None when not known.

    The record is read by :func:`~evallib.protocol.writing.read_file` (never through a link, never waiting on a
    FIFO) and at most :data:`RECORD_LIMIT` bytes of it: a planted or hostile one only loses the site its place in
    the order.
    """
    try:
        record = json.loads(read_file(outputs / site_id / "run.json", limit=RECORD_LIMIT))
    except (OSError, ValueError, RecursionError, UnsafePath):  # missing; too big, not JSON, nested too deep; a link
        return None
    took = record.get("seconds") if isinstance(record, dict) else None
    if isinstance(took, int | float) and not isinstance(took, bool) and took > 0:
        return float(took)
    return None


def longest_first(batch: list[SiteJob], outputs: Path) -> list[SiteJob]:
    """The sites in the order that ends the batch soonest: longest first, by the seconds each site's last
    successful run took (``outputs/<site>/run.json``), so that the last to finish are short and no core waits
    long for another at the end; a site with no such record goes first (it may be long), in the batch's order.
    Only the order changes: each site runs alone in its own process.
    """
    took = {job.site_id: last_seconds(outputs, job.site_id) for job in batch}
    return sorted(batch, key=lambda j: -(took[j.site_id] or float("inf")))


def _check_against_data(protocol: SiteProtocol, spec: AnalysisSpec, data_start: pd.Timestamp, units: set[str]) -> str:
    """Protocol errors that only the data reveal (empty string when there are none).

    Codes that neither the data nor the NHS registers know are typing errors; a known trust or
    CCG missing from the data makes the site "not evaluable" instead. Codes are compared
    ignoring case.
    """
    kind = unit_kind(spec.data_source)
    bundled = isinstance(spec.data_source, str) and spec.data_source in BUNDLED
    units = {u.upper() for u in units}
    known = units | (known_codes(kind) if bundled else set())
    unknown = [c for c in spec.treated_units if c.upper() not in known]
    if unknown:
        field_name = "treated_units" if spec.data_source == protocol.data_source else "secondary_analyses.treated_units"
        return (
            f"field '{field_name}' has {agree(len(unknown), 'code', 'codes')} {', '.join(unknown)} that {agree(len(unknown), 'is', 'are')} neither in the data nor NHS {kind} "
            f"codes. Check the ODS codes of the site's {unit_plural(kind)}."
        )
    if not spec.primary:
        return ""
    # The pool's codes are mapped to the data's areas (codes of any era), so a register code counts only when a
    # succession links it to the data's codes: one that holds no area would be dropped without a word.
    if protocol.design_pool and (problem := design_pool_problem(protocol, pool_codes(units, spec.data_source))):
        return problem
    missing = [c for c in protocol.comparison_include if c.upper() not in units]
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
    """``path`` relative to ``root`` as POSIX text (resolved, else absolute, else the bare file name), for messages."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        try:
            return path.absolute().relative_to(root.absolute()).as_posix()
        except ValueError:
            return path.name
