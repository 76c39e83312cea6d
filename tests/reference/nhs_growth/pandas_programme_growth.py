"""NHS England's growth comparison on the bundled Monthly Activity Return, computed with pandas alone.

Emergency (non-elective G&A) admissions summed over the CCGs of the PACS and MCP vanguards (``sites.csv``) and over
the CCGs in no vanguard, FY2013-14 against FY2017-18, keeping only CCGs with all 12 months in both years. This is
the data compilers' published check of the bundled file (PACS+MCP +8.1%, 28 CCGs; no vanguard +12.9%, 155 CCGs),
written without evallib so that ``tests/test_sources_nhs.py`` compares evallib's ``programme_growth`` with an
independent computation. Run from the repository root (pandas is a core dependency)::

    python tests/reference/nhs_growth/pandas_programme_growth.py > tests/reference/nhs_growth/pandas_programme_growth.out
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import pandas as pd

DATA = Path(__file__).resolve().parents[3] / "evallib" / "data" / "nhs"


def _annual_totals(mar: pd.DataFrame, first: str, last: str) -> pd.Series:
    """Each CCG's total over the months ``first``..``last``, for CCGs with a count in every one of them."""
    window = mar[(mar["period"] >= first) & (mar["period"] <= last)].dropna(subset=["nonel_ga_total"])
    months = len(pd.period_range(first, last, freq="M"))
    counts = window.groupby("org_code")["nonel_ga_total"].agg(["sum", "count"])
    return counts.loc[counts["count"] == months, "sum"]


def main() -> None:
    mar = pd.read_csv(DATA / "mar_commissioner_2008_2019.csv.gz", dtype={"org_code": str})
    mar = mar[mar["org_type"] == "ccg"]
    sites = pd.read_csv(DATA / "sites.csv", dtype=str)
    vanguards = sites[(sites["site_type"] == "vanguard") & sites["ccg_codes"].notna()]

    def ccgs(models: pd.Series) -> set[str]:
        return {c.strip() for codes in vanguards.loc[models, "ccg_codes"] for c in codes.split(";") if c.strip()}

    pacs_mcp = ccgs(vanguards["care_model"].isin(["PACS", "MCP"]))
    any_vanguard = ccgs(vanguards["care_model"].notna())
    base, follow = _annual_totals(mar, "2013-04", "2014-03"), _annual_totals(mar, "2017-04", "2018-03")
    both = base.index.intersection(follow.index)
    print(f"# pandas {version('pandas')}; data evallib/data/nhs (mar_commissioner_2008_2019.csv.gz, sites.csv)")
    for name, members in (("pacs_mcp", both[both.isin(pacs_mcp)]), ("no_vanguard", both[~both.isin(any_vanguard)])):
        print(f"{name}.n_ccgs = {len(members)}")
        print(f"{name}.growth_pct = {100 * (follow[members].sum() / base[members].sum() - 1):.10f}")


if __name__ == "__main__":
    main()
