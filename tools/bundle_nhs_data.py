#!/usr/bin/env python3
"""Rebuild the compact NHS files bundled in ``evallib/data/nhs`` (and one test fixture) from the shared data.

    python tools/bundle_nhs_data.py [SHARED_NHS_DIR]

``SHARED_NHS_DIR`` defaults to ``../shared/data/nhs`` beside the repository (the project's read-only copy of the
published files; see its README for provenance). Keeps only the columns and rows the package uses and writes
gzip-compressed CSV with a fixed timestamp, so rebuilding from the same input gives the same bytes:

- ``mar_commissioner_2008_2019.csv.gz``: Monthly Activity Return, commissioner basis, Apr 2008 - Dec 2019:
  ``period`` (YYYY-MM), ``org_type`` (pct, ccg, england_total, other_commissioner), ``org_code``, ``org_name``,
  ``nonel_ga_total`` (total non-elective = emergency admissions), ``qa_nonel_outlier``.
- ``ods_successions_2008_2022.csv.gz``: ODS successions effective from 2008 whose both sides are a CCG, PCT,
  care trust or NHS trust.
- ``ccg_population_mid_2011_2020.csv``: mid-year CCG populations, copied unmodified.
- ``tests/fixtures/hes_ccg_emergency_2015_2021.csv``: HES emergency admissions by CCG of responsibility.
"""

from __future__ import annotations

import gzip
import io
import shutil
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "evallib" / "data" / "nhs"
KINDS = ("ccg", "pct", "care_trust", "nhs_trust")


def _write_gz(frame: pd.DataFrame, path: Path) -> None:
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(buf.getvalue().encode("utf-8"))


def main(shared: Path) -> None:
    mar = pd.read_csv(shared / "mar_commissioner_monthly_2008_2019.csv", dtype={"org_code": str})
    mar = mar[["period", "org_type", "org_code", "org_name", "nonel_ga_total", "qa_nonel_outlier"]].copy()
    mar["period"] = mar["period"].str[:7]
    mar["nonel_ga_total"] = mar["nonel_ga_total"].round().astype("int64")
    mar = mar.sort_values(["org_type", "org_code", "period"], kind="stable")
    _write_gz(mar, OUT / "mar_commissioner_2008_2019.csv.gz")

    succ = pd.read_csv(shared / "ods_successions_1992_2022.csv", dtype=str)
    keep = (succ["effective_date"] >= "2008-01-01") & succ["old_kind"].isin(KINDS) & succ["new_kind"].isin(KINDS)
    succ = succ[keep].sort_values(["effective_date", "old_code", "new_code"], kind="stable")
    _write_gz(succ, OUT / "ods_successions_2008_2022.csv.gz")

    shutil.copyfile(shared / "ccg_population_mid_2011_2020.csv", OUT / "ccg_population_mid_2011_2020.csv")

    hes = pd.read_csv(shared / "hes_ccg_responsibility_annual_2015_2021.csv", dtype={"ccg_code": str})
    hes[["fin_year", "ccg_code", "emergency"]].to_csv(
        ROOT / "tests" / "fixtures" / "hes_ccg_emergency_2015_2021.csv", index=False, lineterminator="\n"
    )
    print(f"MAR rows {len(mar)}, successions {len(succ)}, HES rows {len(hes)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data" / "nhs")
