"""Publishing: the programme page and the static site, rebuilt from verified results only.

``evallib publish`` and the end of ``evallib run`` both come here: the current params
files say what each site's results must match (:func:`evallib.pipeline.preflight.expectations`),
the programme notebook is rerun when the set of verified results changed, and the
site is rebuilt and scanned before it replaces the old one
(:func:`evallib.reporting.static_site.build_site`).

An interrupt (Ctrl-C, SIGTERM) during the programme step takes the sites' path: the notebook
stops, its staging folder goes, and the site is still rebuilt from the verified results (without
a programme page made from other results) before the interrupt is passed on; while the site is
being rebuilt an interrupt waits, so the published site is either wholly rebuilt or as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evallib.pipeline.execute import SITE_TIMEOUT, SiteRun, run_programme
from evallib.pipeline.folders import check_outputs
from evallib.pipeline.pool import interrupts_deferred
from evallib.pipeline.preflight import expectations
from evallib.protocol.params import find_params
from evallib.reporting.publishing import Expected, SiteEntry, collect_sites, programme_verified
from evallib.reporting.signing import publish_key
from evallib.reporting.static_site import build_site


@dataclass(frozen=True)
class Published:
    """What a publish did: the index page, the programme step and the problems to report (never published)."""

    index: Path
    programme: SiteRun
    problems: tuple[str, ...]


def current_expectations(root: Path, params_dir: Path) -> tuple[dict[str, Expected], list[str]]:
    """What every site's published results must match, from the params files now on disk."""
    files = find_params(params_dir) if params_dir.is_dir() else []
    return expectations(files, root)


def publish(
    root: Path,
    outputs: Path,
    *,
    expected: dict[str, Expected] | None = None,
    params_dir: Path | None = None,
    executor: str = "kernel",
    problems: list[str] | None = None,
    programme: bool = True,
    timeout: float = SITE_TIMEOUT,
    runner: Callable[[Path, Path, str, list[SiteEntry], float], SiteRun] = run_programme,
) -> Published:
    """Rebuild ``outputs/programme/`` (when its inputs changed) and ``outputs/site/`` from verified results.

    The caller holds the outputs lock. ``expected`` defaults to the params files under ``params_dir``.
    ``programme=False`` (after an interrupt) only rebuilds the site; a programme page made from
    other results is then left off it. The programme notebook is stopped after ``timeout`` seconds; ``runner``
    runs it (:func:`run_programme` here, or on a Dask worker: :mod:`evallib.pipeline.cluster`).

    Raises
    ------
    PublishError
        When a page breaks a publication rule (the previous site stays).
    PublishKeyError
        When this machine's publishing key cannot be read or made (nothing is changed).
    """
    publish_key(root)  # without this machine's key nothing verifies: say why (exit 2) rather than hide every site
    notes = list(problems or [])
    if expected is None:
        expected, found = current_expectations(root, params_dir or root / "params")
        notes.extend(found)
    check_outputs(outputs, sorted(expected))  # a planted link is refused before anything is written
    collected = collect_sites(outputs, expected)
    chosen = [e for e in collected[0] if e.page is not None]
    if programme_verified(outputs, chosen):
        step = SiteRun("programme", "unchanged", "made from the results now published")
    elif not programme:
        step = SiteRun("programme", "skipped", "interrupted")
    else:
        try:
            step = runner(root, outputs, executor, chosen, timeout)
        except KeyboardInterrupt:
            with interrupts_deferred():  # the sites' path: the site rebuilt from what is verified, then stop
                build_site(outputs, expected=expected, root=root, problems=notes)
            raise
        if step.status == "failed":
            notes.append("programme: the programme notebook failed (see outputs/programme/failure.json)")
    # With no programme notebook run since, the sites just read and verified are built as they are
    again = collected if step.status in ("unchanged", "skipped") else None
    with interrupts_deferred():
        index = build_site(outputs, expected=expected, root=root, problems=notes, collected=again)
    return Published(index, step, tuple(dict.fromkeys(notes)))
