"""The calibration study as a page of the published site: how each estimator behaved when every comparison
area in turn was a fake site with no true effect, and which one each kind of protocol leads with."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from evallib.evaluation.coverage import outcome_label
from evallib.evaluation.estimators import ESTIMATOR_LABELS

#: The study's summary, committed with the protocols (written by ``evallib calibrate``).
SUMMARY = Path("params") / "calibration.csv"
#: Columns the page needs; a summary without them is not shown.
REQUIRED = ("design", "estimator", "fake_sites", "bias", "rmse", "rejection_rate", "median_width", "chosen")


def _pct(v: Any, digits: int = 1) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    return f"{100 * x:.{digits}f}" if math.isfinite(x) else ""


def _num(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return ""
    return f"{x:+.3f}" if math.isfinite(x) else ""


def _true(v: Any) -> bool:
    return str(v).strip().lower() in ("true", "1")


def calibration_context(root: Path | None) -> dict[str, Any] | None:
    """What the calibration page shows, from ``params/calibration.csv`` under ``root`` (None when absent)."""
    if root is None or not (root / SUMMARY).is_file():
        return None
    s = pd.read_csv(root / SUMMARY, dtype=str, keep_default_na=False)
    if not set(REQUIRED) <= set(s.columns) or s.empty:
        return None
    noisy = "rejection_rate_noisiest_fifth" in s.columns
    designs = []
    for name, g in s.groupby("design", sort=False):
        rows = []
        for r in g.to_dict("records"):
            rows.append(
                {
                    "estimator": ESTIMATOR_LABELS.get(r["estimator"], r["estimator"]),
                    "chosen": _true(r["chosen"]),
                    "holds": _true(r.get("holds_size", "")),
                    "cells": [
                        _num(r["bias"]),
                        _num(r["rmse"]).lstrip("+"),
                        _pct(r["rejection_rate"]),
                        _pct(r.get("rejection_mc_se", "")),
                        *([_pct(r["rejection_rate_noisiest_fifth"])] if noisy else []),
                        _num(r["median_width"]).lstrip("+"),
                    ],
                }
            )
        first = g.iloc[0]
        designs.append(
            {
                "name": name,
                "outcome": outcome_label(str(first.get("outcome", ""))),
                "fake_sites": str(first["fake_sites"]),
                "rows": rows,
            }
        )
    head = ["Bias (log)", "RMSE (log)", "Rejected at 5% (%)", "MC SE (points)"]
    if noisy:
        head.append("Rejected, noisiest fifth (%)")
    head.append("Median 95% interval width (log)")
    return {"designs": designs, "head": head}
