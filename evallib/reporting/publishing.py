"""What may reach the public site, checked before any page replaces the old one.

Any page builder (today :func:`evallib.reporting.static_site.build_site`) calls these:

* :func:`collect_sites` decides, site by site, what is shown: only results whose
  fingerprint matches their run record, their report page and (when the params files
  are known) the current protocol; never drafts, never sites whose params file was
  removed; one unreadable file is reported and skipped, never blocks the rest;
* :func:`public_note` gives the generic words shown for a failed or stale site (the
  details stay in ``failure.json`` beside the run, never published);
* :func:`scan_pages` looks at every staged page for unsuppressed counts, raw
  tracebacks, this machine's paths and the values of secret-looking environment
  variables, and :func:`scan_results` at every published results file for a p-value,
  interval and words that disagree (:mod:`evallib.reporting.agreement`);
  :func:`swap_in` refuses to replace the old site when it finds any, and
  never replaces a folder evallib did not make (nor a link); the swap is atomic where the
  kernel can exchange two names, so a complete site always bears the name.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evallib.errors import EvalLibError
from evallib.protocol import writing
from evallib.reporting.agreement import disagreements
from evallib.reporting.disclosure import count_violations
from evallib.reporting.signing import (
    programme_record_fields,
    signature_ok,
    site_record_fields,
    tracked_outputs,
)

#: A file in every site folder evallib builds; a ``site/`` folder without it is not replaced.
SITE_MARKER = ".evallib-site"
#: Folders of ``outputs/`` that are not sites.
NOT_SITES = frozenset({"site", "programme"})
FINGERPRINT_META = "evallib-fingerprint"
_META = re.compile(r"<meta name=['\"]" + FINGERPRINT_META + r"['\"] content=['\"]([0-9a-f]{64})['\"]")
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|PRIVATE|CREDENTIAL|API_?KEY|ACCESS_?KEY|AUTH", re.IGNORECASE)
#: A URL carrying a password (``postgres://user:pass@host/db``, as in DATABASE_URL): group 1 is the password.
#: It starts at the literal "://" and its parts are bounded, so a page's long base64 figures scan in linear time.
_URL_CREDENTIALS = re.compile(r"://[^/\s:@<>\"']{0,256}:([^/\s@<>\"']{1,256})@")


class PublishError(EvalLibError):
    """Publishing was refused: the old site stays as it was."""


@dataclass(frozen=True)
class Expected:
    """What the current protocol says a site's published results must be: their fingerprint, and whether the
    params file is a draft (under a ``drafts/`` folder: run, never published).
    """

    fingerprint: str
    draft: bool = False


@dataclass
class SiteEntry:
    """One row of the public index: what is shown for a site."""

    site_id: str
    status: str  # evaluated, not evaluable, failed, stale, unverified
    results: dict[str, Any] = field(default_factory=dict)
    page: Path | None = None  # the verified report to publish, if any
    last_run_failed: bool = False


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when it is missing, unreadable, truncated or not an object, or not a regular
    file (a link is not followed, a FIFO not waited on: :func:`~evallib.protocol.writing.read_file`).
    """
    try:
        value = json.loads(writing.read_file(path).decode("utf-8"))
    except (OSError, ValueError, RecursionError, writing.UnsafePath):  # RecursionError: nested past the parser's depth
        return None
    return value if isinstance(value, dict) else None


def page_fingerprint(page: Path) -> str | None:
    """The fingerprint a report page was rendered with (its ``<meta>``), or None."""
    try:
        with open(page, encoding="utf-8", errors="replace") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    m = _META.search(head)
    return m.group(1) if m else None


def verified_fingerprint(folder: Path, tracked: frozenset[str] | None = None) -> str | None:
    """The fingerprint shared by a site's results.json, run.json and report.html, or None if they disagree.

    ``run.json`` records the fingerprint and the SHA-256 of the results and page the run wrote, signed with
    this machine's key (:mod:`evallib.reporting.signing`). Results written by anything but that run
    (exploration, a copy, a hand edit, departures from the protocol, files a pull request added, with hashes
    recomputed) do not match, so they are never shown. ``tracked`` is :func:`tracked_outputs` of the folder's
    parent when the caller has it (else it is asked here): a folder holding files git tracks never matches.
    """
    if folder.name in (tracked_outputs(folder.parent) if tracked is None else tracked):
        return None
    results, run = read_json(folder / "results.json"), read_json(folder / "run.json")
    if results is None or run is None:
        return None
    prov = results.get("provenance") or {}
    fp = prov.get("fingerprint") if isinstance(prov, dict) else None
    if not isinstance(fp, str) or (isinstance(prov, dict) and prov.get("departures")):
        return None
    if run.get("result_fingerprint") != fp or page_fingerprint(folder / "report.html") != fp:
        return None
    for name, key in (("results.json", "results_sha256"), ("report.html", "report_sha256")):
        if _sha256(folder / name) != run.get(key):
            return None  # changed since the run wrote it
    if not signature_ok(site_record_fields(folder.name, run), run.get("signature")):
        return None  # not written by a run on this machine (a copy from elsewhere, a forged record)
    return fp


def programme_verified(outputs: Path, entries: list[SiteEntry]) -> bool:
    """Whether ``outputs/programme/`` holds a page made on this machine from exactly these verified results."""
    record = read_json(outputs / "programme" / "run.json")
    if record is None or record.get("inputs") != inputs_fingerprint(entries):
        return False
    if "programme" in tracked_outputs(outputs):
        return False
    if _sha256(outputs / "programme" / "report.html") != record.get("report_sha256"):
        return False
    return signature_ok(programme_record_fields(record), record.get("signature"))


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def collect_sites(outputs: Path, expected: dict[str, Expected] | None = None) -> tuple[list[SiteEntry], list[str]]:
    """The sites to list on the public index, and problems to report (never shown publicly).

    ``expected`` (site id -> :class:`Expected`) comes from the current params files; when given, sites
    without a params file and drafts are left out, and results that no longer match the protocol, data
    or code are shown as stale, without numbers.
    """
    entries, problems = [], []
    folders = sorted(
        p for p in outputs.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
    )  # a link is never a site: nothing is read or published through it
    tracked = tracked_outputs(outputs)
    for folder in folders:
        sid = folder.name
        if sid in NOT_SITES:
            continue
        if expected is not None and (sid not in expected or expected[sid].draft):
            continue  # a removed params file removes its page; drafts never reach the public index
        has_results, failed = (folder / "results.json").exists(), (folder / "failure.json").exists()
        if not (has_results or failed):
            continue
        results = read_json(folder / "results.json") if has_results else None
        if has_results and results is None:
            problems.append(f"{sid}: results.json cannot be read (truncated or not JSON); its page is left out")
        fp = verified_fingerprint(folder, tracked) if results is not None else None
        if sid in tracked:
            problems.append(
                f"{sid}: outputs/{sid}/ holds files that git tracks (results come from runs, never from commits); "
                f"left out: untrack them with `git rm -r --cached outputs/{sid}`"
            )
        elif results is not None and fp is None:
            problems.append(
                f"{sid}: results.json does not match the run record and page that made it (signed by a run on "
                "this machine); left out: run the site again"
            )
        entry = SiteEntry(sid, "failed" if failed else "unverified", last_run_failed=failed)
        if fp is not None and results is not None:
            if expected is not None and expected[sid].fingerprint != fp:
                entry.status = "failed" if failed else "stale"
                if not failed:
                    problems.append(f"{sid}: params, data or code changed since its last run; shown as stale")
            else:
                entry.results, entry.page = results, folder / "report.html"
                entry.status = "failed" if failed else str(results.get("status", "unverified"))
        entries.append(entry)
    return entries, problems


def public_note(entry: SiteEntry) -> str:
    """The words shown publicly for a site's state (generic: details stay beside the run, unpublished)."""
    if entry.status == "failed":
        return "last run failed" + (" (previous report shown)" if entry.page else "")
    if entry.status == "stale":
        return "the protocol, data or code changed since this site was last run: no result shown until it reruns"
    if entry.status == "unverified":
        return "no verified result: the site has not been run by the batch since its results changed"
    if entry.status == "not evaluable":
        return str(entry.results.get("reason", ""))
    return ""


def _machine_paths(root: Path | None) -> tuple[list[str], list[str]]:
    """(paths that name this machine: the project and home folders; shared system folders: the temporary
    folder and Python's prefixes), longest first.
    """
    specific = {str(Path.home())} | ({str(root), str(root.resolve())} if root is not None else set())
    shared = {sys.prefix, sys.base_prefix, tempfile.gettempdir()} - specific

    def usable(found: set[str]) -> list[str]:
        return sorted((p.rstrip(os.sep) for p in found if p and p != os.sep and len(p) > 1), key=len, reverse=True)

    return usable(specific), usable(shared)


def _leaked_path(html: str, root: Path | None) -> bool:
    """Whether ``html`` holds an absolute path of this machine: any path under the project or home folder, or a
    path under a shared folder (``/tmp``, ``/usr``) naming something that exists there. Words such as "/tmp/"
    in a site's name, or ``/tmp/nothing-here``, are not paths of this machine and do not block publishing.
    """
    specific, shared = _machine_paths(root)
    for prefix in specific + shared:
        if prefix + os.sep not in html:  # a plain search first: the regex over a whole page costs ~10x more
            continue
        pattern = r"(?<![\w./-])" + re.escape(prefix + os.sep) + r"([^/\s<>\"'&;,)]+)"
        for m in re.finditer(pattern, html):
            if prefix in specific or os.path.lexists(os.path.join(prefix, m.group(1))):
                return True
    return False


def secret_values() -> dict[str, str]:
    """Values of environment variables that look secret, 8+ characters: those whose names do (tokens, keys,
    passwords), and the password in any variable holding a URL with credentials (``DATABASE_URL``).
    """
    found = {k: v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8}
    for k, v in os.environ.items():
        m = _URL_CREDENTIALS.search(v)
        if m and k not in found:
            found[k] = m.group(1) if len(m.group(1)) >= 8 else v
    return found


def scan_page(name: str, html: str, root: Path | None = None) -> list[str]:
    """What in one page must not be published (the message never repeats the offending text)."""
    problems = [f"{name}: unsuppressed count {v!r}" for v in count_violations(html)]
    if "Traceback (most recent call last)" in html:
        problems.append(f"{name}: a raw traceback")
    if _leaked_path(html, root):
        problems.append(f"{name}: an absolute path of this machine")
    if _URL_CREDENTIALS.search(html):
        problems.append(f"{name}: a URL with a password in it (user:password@host)")
    folded = html.casefold()  # a secret shown in another case is still the secret
    for key, value in secret_values().items():
        if value.casefold() in folded:
            problems.append(f"{name}: the value of the environment variable {key}")
    return problems


#: Published files that are scanned: pages and the downloads (tables and results files).
SCANNED = ("*.html", "*.csv", "*.json")


def scan_pages(folder: Path, root: Path | None = None) -> list[str]:
    """:func:`scan_page` over every HTML page and download (CSV, JSON) under ``folder``."""
    problems = []
    for page in sorted(p for pattern in SCANNED for p in folder.rglob(pattern)):
        problems.extend(scan_page(page.name, page.read_text(encoding="utf-8", errors="replace"), root))
    return problems


def scan_results(folder: Path) -> list[str]:
    """:func:`~evallib.reporting.agreement.disagreements` over every published results file (``downloads/*.json``)."""
    problems = []
    for path in sorted((folder / "downloads").glob("*.json")):
        results = read_json(path)
        if results is not None and "answer" in results:
            problems.extend(disagreements(results))
    return problems


def swap_in(staging: Path, site: Path, root: Path | None = None) -> Path:
    """Replace ``site`` with ``staging`` after scanning every page and results file; readers see the old site or
    the new one.

    Raises
    ------
    PublishError
        When a page breaks a rule (the old site stays), or ``site`` exists but was not made by evallib.
    """
    try:
        problems = scan_pages(staging, root) + scan_results(staging)
        if problems:
            shown = "\n- ".join(problems[:20]) + (
                f"\n- ... and {len(problems) - 20} more" if len(problems) > 20 else ""
            )
            raise PublishError(f"publishing refused; the previous site is unchanged:\n- {shown}")
        if writing.check_dir(site) and not writing.check_file(site / SITE_MARKER):
            raise PublishError(
                f"{site.name}/ exists in {site.parent.name}/ but was not made by evallib, so it is left alone; "
                "move it, or publish to another --outputs folder"
            )
        writing.write_atomic(staging / SITE_MARKER, "made by evallib publish; replaced whole on each publish\n")
        writing.swap_in_dir(staging, site, f".{site.name}-old-{uuid.uuid4().hex[:8]}")
    finally:
        writing.remove_tree(staging)  # gone already when it was swapped in
    return site


def inputs_fingerprint(entries: list[SiteEntry]) -> str:
    """One value for the set of verified results a programme page is made from (it is stale when they change)."""
    parts = sorted(
        (e.site_id, str((e.results.get("provenance") or {}).get("fingerprint"))) for e in entries if e.page is not None
    )
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()
