"""The calibration study as a page of the published site: how each estimator behaved when every comparison
area in turn was a fake site with no true effect, and which one each kind of protocol leads with.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pandas as pd

from evallib.evaluation.studies.calibration import SUMMARY_COLUMNS
from evallib.protocol.generator import chosen_estimators
from evallib.vocabulary import estimator_label, outcome_label

#: The study's summary, committed with the protocols (written by ``evallib calibrate``).
SUMMARY = Path("params") / "calibration.csv"
#: Columns the page needs: the study's summary columns less the optional Monte Carlo ones.
REQUIRED = tuple(
    c
    for c in SUMMARY_COLUMNS
    if c
    not in (
        "rejection_mc_se",
        "rejection_rate_noisiest_fifth",
        "noisiest_fifth_mc_se",
        "rejection_rate_quietest_tenth",
        "rejection_rate_noisiest_tenth",
    )
)
#: The size by tenth of pre-period noise (written by ``evallib calibrate``; optional).
BY_NOISE = Path("params") / "calibration_by_noise.csv"
BY_NOISE_COLUMNS = ("estimator", "tenth", "fake_sites", "rejection_rate", "mc_se")
#: Rates lie in [0, 1]; biases, errors and widths (logs or points) beyond this are not a study's output.
_LARGEST = 1000.0


class CalibrationFileError(ValueError):
    """``params/calibration.csv`` cannot be shown as it is (the page is left out, the reason reported)."""


def _number(v: Any, what: str, *, rate: bool = False) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise CalibrationFileError(f"a {what} that is not a number") from None
    if not math.isfinite(x) or abs(x) > _LARGEST or (rate and not 0 <= x <= 1):
        raise CalibrationFileError(f"a {what} out of range")
    return x


def _flag(v: Any, what: str) -> bool:
    text = str(v).strip().lower()
    if text not in ("true", "false"):
        raise CalibrationFileError(f"a {what} that is not True or False")
    return text == "true"


def _read(path: Path, required: tuple[str, ...] = REQUIRED) -> pd.DataFrame:
    try:
        text = path.read_text(encoding="utf-8")
        rows = list(csv.reader(text.splitlines()))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CalibrationFileError(f"unreadable ({type(exc).__name__})") from None
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise CalibrationFileError("no rows")
    head, body = rows[0], rows[1:]
    if any(len(r) != len(head) for r in body):
        raise CalibrationFileError("rows with more or fewer fields than the header")
    missing = [c for c in required if c not in head]
    if missing:
        raise CalibrationFileError(f"missing columns {', '.join(missing)}")
    return pd.DataFrame(body, columns=head)


def by_noise_context(root: Path) -> dict[str, Any] | None:
    """The size by tenth of pre-period noise of every estimator a report can lead with, as a table (None when
    ``params/calibration_by_noise.csv`` is absent).

    Each cell is the percentage of fake sites in that tenth (1 the quietest) whose null was rejected, with the
    number of fake sites; a test that assumes the site is like its comparators shows up where it is not.
    """
    if not (root / BY_NOISE).is_file():
        return None
    try:
        return _by_noise_table(_read(root / BY_NOISE, BY_NOISE_COLUMNS))
    except CalibrationFileError as exc:
        raise CalibrationFileError(f"(size by noise, {BY_NOISE.name}) {exc}") from None


def _by_noise_table(t: pd.DataFrame) -> dict[str, Any]:
    rows = []
    for est, g in t.groupby("estimator", sort=False):
        cells = [""] * 10
        for r in g.to_dict("records"):
            tenth = _number(r["tenth"], "tenth")
            if tenth not in range(1, 11):
                raise CalibrationFileError("a tenth outside 1-10")
            n = int(_number(r["fake_sites"], "number of fake sites"))
            rate = _number(r["rejection_rate"], "rejection rate", rate=True)
            cells[int(tenth) - 1] = f"{100 * rate:.1f} ({n})"
        rows.append({"estimator": estimator_label(str(est)), "cells": cells})
    return {"rows": rows, "head": [f"{k}" for k in range(1, 11)]}


def calibration_context(root: Path | None) -> dict[str, Any] | None:
    """What the calibration page shows, from ``params/calibration.csv`` under ``root`` (None when absent).

    Raises
    ------
    CalibrationFileError
        When the file cannot be shown as it is: unreadable, columns missing, values that are not the
        study's (not numbers, rates outside 0-1, infinite), or a design without exactly one chosen method
        that holds its size (the page's text would then be untrue).
    """
    if root is None or not (root / SUMMARY).is_file():
        return None
    s = _read(root / SUMMARY)
    noisy = "rejection_rate_noisiest_fifth" in s.columns
    designs = []
    for name, g in s.groupby("design", sort=False):
        rows = []
        for r in g.to_dict("records"):
            cells = [
                f"{_number(r['bias'], 'bias'):+.3f}",
                f"{_number(r['rmse'], 'RMSE'):.3f}",
                f"{100 * _number(r['rejection_rate'], 'rejection rate', rate=True):.1f}",
            ]
            if "rejection_mc_se" in s.columns:
                cells.append(f"{100 * _number(r['rejection_mc_se'], 'Monte Carlo error', rate=True):.1f}")
            if noisy:
                v = str(r["rejection_rate_noisiest_fifth"]).strip()
                cells.append("" if v in ("", "nan") else f"{100 * _number(v, 'rejection rate', rate=True):.1f}")
            cells.append(f"{_number(r['median_width'], 'interval width'):.3f}")
            rows.append(
                {
                    "estimator": estimator_label(r["estimator"]),
                    "chosen": _flag(r["chosen"], "chosen flag"),
                    "holds": _flag(r["holds_size"], "holds_size flag"),
                    "cells": cells,
                }
            )
        chosen = [r for r in rows if r["chosen"]]
        if len(chosen) != 1 or not chosen[0]["holds"]:
            raise CalibrationFileError("a design without exactly one chosen method that holds its size")
        first = g.iloc[0]
        designs.append(
            {
                "name": name,
                "kind": (str(first["site_type"]), str(first["data_source"]), str(first["outcome"])),
                "outcome": outcome_label(str(first["outcome"])),
                "fake_sites": str(first["fake_sites"]),
                "rows": rows,
                "chosen": chosen[0]["estimator"],
            }
        )
    leads = chosen_estimators(root / SUMMARY.parent)  # the file is valid by now
    for d in designs:
        lead = leads.get(d.pop("kind"), "did")
        d["lead"] = estimator_label(lead)
    head = ["Bias (log)", "RMSE (log)", "Rejected at 5% (%)"]
    if "rejection_mc_se" in s.columns:
        head.append("MC SE (points)")
    if noisy:
        head.append("Rejected, noisiest fifth (%)")
    head.append("Median 95% interval width (log)")
    return {"designs": designs, "head": head, "by_noise": by_noise_context(root)}
