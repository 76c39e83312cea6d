"""Shared fixtures. Reference data are copied from ../shared/reference (sources in fixtures/README.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

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


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
