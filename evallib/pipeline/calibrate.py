"""`evallib calibrate`: run the calibration study over every design the protocols use, in parallel.

Writes ``outputs/calibration/fake_sites.csv`` (every estimate on every fake site),
``outputs/calibration/summary.csv`` and ``outputs/calibration/size_by_noise.csv``, and the summary the
protocols are chosen from, ``params/calibration.csv`` (committed with the protocols; ``evallib make-params
--update`` writes each protocol's ``primary_estimator`` from it), with the size by tenth of pre-period noise
the calibration page shows, ``params/calibration_by_noise.csv``.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from evallib.evaluation.studies.calibration import Design, designs, fake_site_results, size_by_noise_tenth, summarise
from evallib.protocol import writing
from evallib.protocol.params import find_params, load_params
from evallib.protocol.paths import ROOT_ENV

#: Where the protocol generator reads the study's summary (relative to the params folder).
SUMMARY_FILE = "calibration.csv"
#: Where the calibration page reads the size by tenth of pre-period noise (relative to the params folder).
BY_NOISE_FILE = "calibration_by_noise.csv"


def _run(design: Design, max_fake_sites: int | None, root: str) -> pd.DataFrame:
    os.environ[ROOT_ENV] = root
    return fake_site_results(design, max_fake_sites=max_fake_sites)


def run_calibration(
    root: Path,
    *,
    params_dir: Path | None = None,
    outputs: Path | None = None,
    jobs: int | None = None,
    max_fake_sites: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run the study; return the summary (one row per design and estimator) and write the files above."""
    from tqdm import tqdm

    params_dir = params_dir or root / "params"
    outputs = outputs or root / "outputs"
    found = designs(load_params(f) for f in find_params(params_dir))
    n_workers = max(1, min(jobs or os.cpu_count() or 1, len(found) or 1))
    parts = []
    with ProcessPoolExecutor(max_workers=n_workers) as pool:
        futures = [pool.submit(_run, d, max_fake_sites, str(root)) for d in found]
        for fut in tqdm(futures, desc="designs", unit="design", disable=not progress):
            parts.append(fut.result())
    results = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    summary = summarise(results, found)
    by_noise = size_by_noise_tenth(results)
    with writing.faults(outputs):
        outputs.mkdir(parents=True, exist_ok=True)
    folder = writing.make_dir(outputs / "calibration", outputs)  # never through a link
    for frame, path in (
        (results, folder / "fake_sites.csv"),
        (summary, folder / "summary.csv"),
        (by_noise, folder / "size_by_noise.csv"),
    ):
        _write_csv(frame, path)
    _write_csv(summary, params_dir / SUMMARY_FILE)
    _write_csv(by_noise, params_dir / BY_NOISE_FILE)
    return summary


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """The table written whole or not at all, never through a link (a fresh temporary name, then renamed)."""
    writing.write_atomic(path, frame.to_csv(index=False, float_format="%.6g"))
