"""The NHS England region of each bundled trust and CCG code (ODS: the organisation's current region code)."""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from evallib.sources.bundled import bundled_data_dir

_FILES = ("ods_ccgs_eccg.csv", "ods_trusts_etr.csv")


@lru_cache(maxsize=1)
def code_regions() -> dict[str, str]:
    """ODS code -> NHS England region code (e.g. ``Y63``) of every CCG and trust in the bundled ODS extracts."""
    out: dict[str, str] = {}
    for name in _FILES:
        with open(bundled_data_dir() / name, encoding="utf-8") as fh:
            df = pd.read_csv(fh, dtype=str, keep_default_na=False, usecols=["org_code", "nhse_region_code"])
        out.update({c: r for c, r in zip(df["org_code"], df["nhse_region_code"], strict=True) if r})
    return out


def unit_region(unit: str) -> str:
    """The region of a unit: its own code's, or for an area named by several codes the first one known ("")."""
    regions = code_regions()
    for code in re.split(r"[^A-Za-z0-9]+", unit):
        if code in regions:
            return regions[code]
    return ""
