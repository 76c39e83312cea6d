"""Which CCGs continue exactly one PCT, so that their series can start in April 2008 rather than April 2013.

There is no PCT -> CCG lookup in the data (ODS successions hold no pct -> ccg rows, and PCTs were not simply
renamed: some were divided among several CCGs, some merged). The Monthly Activity Return has PCT rows from
April 2008 to March 2013 and CCG rows from April 2013. A CCG is joined to a PCT only when all three hold:

1. **Same name.** The normalised names are equal: upper case, ``&`` read as ``and``, punctuation dropped, and
   the words NHS, PCT, CCG, Primary Care Trust, Clinical Commissioning Group, Care Trust (Plus) and Teaching
   removed (``NORTHUMBERLAND CARE TRUST`` and ``NHS NORTHUMBERLAND CCG`` both give ``NORTHUMBERLAND``).
2. **One to one.** No other PCT reporting in the PCTs' last six months (October 2012 - March 2013) and no other
   CCG reporting in April 2013 has the same normalised name.
3. **Same volume.** The CCG's mean share of all local commissioners' emergency admissions over its first
   ``JOIN_MONTHS`` (6) months (April - September 2013) is within ``JOIN_TOLERANCE`` (10%) of the PCT's mean
   share over its last 6 months (October 2012 - March 2013). Shares of the summed PCT or CCG rows (national
   commissioning, which took over specialised services in April 2013, left out) make the two eras comparable;
   a 10% band admits the noise of six-month means and small differences in the responsible population, and
   rejects a PCT divided among CCGs (West Kent: the CCG had 63% of the PCT's share) or merged into one
   (Dorset: 183%).

A CCG that fails any test starts in April 2013. The accepted joins become links effective 1 April 2013 that
:func:`evallib.sources.areas.harmonise` uses like any ODS succession; :func:`pct_ccg_joins` lists every
candidate with its ratio and the reason, so a report can show each join it relied on.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from evallib.sources.bundled import mar_rows

#: Months either side of April 2013 whose mean shares are compared.
JOIN_MONTHS = 6
#: A join is accepted when CCG share / PCT share is within 1 +/- this.
JOIN_TOLERANCE = 0.10
#: The day CCGs took over from PCTs.
CCG_START = pd.Timestamp("2013-04-01")

_DROP_WORDS = (
    "CLINICAL COMMISSIONING GROUP",
    "PRIMARY CARE TRUST",
    "CARE TRUST PLUS",
    "CARE TRUST",
    "TEACHING",
    "NHS",
    "PCT",
    "CCG",
)
JOIN_COLUMNS = ["ccg_code", "ccg_name", "pct_code", "pct_name", "name_key", "share_ratio", "accepted", "reason"]


def name_key(name: str) -> str:
    """Normalised organisation name used to pair PCTs with CCGs (see the module's rule 1)."""
    text = re.sub(r"[^A-Z ]", " ", name.upper().replace("&", " AND "))
    for word in _DROP_WORDS:
        text = re.sub(rf"\b{word}\b", " ", text)
    return " ".join(text.split())


def _mean_shares(raw: pd.DataFrame, first: pd.Timestamp, months: int) -> pd.Series:
    window = pd.date_range(first, periods=months, freq="MS")
    local = raw[raw["org_type"].isin(["pct", "ccg"]) & raw["period"].isin(window)]
    share = local["nonel_ga_total"] / local.groupby("period")["nonel_ga_total"].transform("sum")
    counts = local.groupby("org_code")["period"].nunique()
    means = share.groupby(local["org_code"]).mean()
    return means[counts == months]  # only units reporting in every month of the window


def match_pcts_to_ccgs(
    rows: pd.DataFrame, *, tolerance: float = JOIN_TOLERANCE, months: int = JOIN_MONTHS
) -> pd.DataFrame:
    """Apply the module's rule to Monthly Activity Return rows (columns ``period`` as timestamps, ``org_type``,
    ``org_code``, ``org_name``, ``nonel_ga_total``); see :func:`pct_ccg_joins` for the result.
    """
    kind = rows.groupby("org_code")["org_type"].first()
    pct_share = _mean_shares(rows, CCG_START - pd.DateOffset(months=months), months)
    pct_share = pct_share[(kind[pct_share.index] == "pct").to_numpy()]
    ccg_share = _mean_shares(rows, CCG_START, months)
    ccg_share = ccg_share[(kind[ccg_share.index] == "ccg").to_numpy()]
    # Names as they were at the handover: a PCT's last name, a CCG's first (01H Cumbria became North Cumbria).
    ordered = rows.sort_values("period").groupby("org_code")["org_name"]
    pcts = pd.DataFrame({"pct_code": pct_share.index, "pct_name": ordered.last()[pct_share.index].to_numpy()})
    ccgs = pd.DataFrame({"ccg_code": ccg_share.index, "ccg_name": ordered.first()[ccg_share.index].to_numpy()})
    pcts["name_key"] = pcts["pct_name"].map(name_key)
    ccgs["name_key"] = ccgs["ccg_name"].map(name_key)
    n_pct = pcts["name_key"].value_counts()
    n_ccg = ccgs["name_key"].value_counts()
    out = ccgs.merge(pcts, on="name_key", how="left")
    result = []
    for r in out.itertuples(index=False):
        if pd.isna(r.pct_code):
            result.append((r.ccg_code, r.ccg_name, "", "", r.name_key, float("nan"), False, "no PCT of the same name"))
            continue
        ratio = float(ccg_share[r.ccg_code] / pct_share[r.pct_code])
        if n_pct[r.name_key] > 1 or n_ccg[r.name_key] > 1:
            ok, reason = False, "the name is shared by several PCTs or CCGs"
        elif abs(ratio - 1) > tolerance:
            ok, reason = (
                False,
                f"share of England moves by {100 * (ratio - 1):+.0f}% across April 2013 "
                f"(beyond {100 * tolerance:.0f}%): not the same population (a PCT divided among CCGs, or merged)",
            )
        else:
            ok, reason = True, f"same name, one to one, share of England moves by {100 * (ratio - 1):+.1f}%"
        result.append((r.ccg_code, r.ccg_name, r.pct_code, r.pct_name, r.name_key, ratio, ok, reason))
    return pd.DataFrame(result, columns=JOIN_COLUMNS).sort_values("ccg_code", ignore_index=True)


@lru_cache(maxsize=4)
def _joins(tolerance: float, months: int) -> pd.DataFrame:
    return match_pcts_to_ccgs(mar_rows(), tolerance=tolerance, months=months)


def pct_ccg_joins(*, tolerance: float = JOIN_TOLERANCE, months: int = JOIN_MONTHS) -> pd.DataFrame:
    """Every CCG reporting from April 2013 with its candidate PCT and the verdict of the module's rule.

    Returns
    -------
    DataFrame
        Columns ``ccg_code``, ``ccg_name``, ``pct_code`` and ``pct_name`` (empty when no PCT has the same
        name), ``name_key``, ``share_ratio`` (CCG's mean share over its first months / PCT's over its last),
        ``accepted`` (bool) and ``reason`` in words. A copy: callers may modify it.
    """
    return _joins(float(tolerance), int(months)).copy()


def join_links(*, tolerance: float = JOIN_TOLERANCE, months: int = JOIN_MONTHS) -> pd.DataFrame:
    """The accepted joins as links (``old_code`` PCT -> ``new_code`` CCG, effective 1 April 2013)."""
    joins = _joins(float(tolerance), int(months))
    ok = joins[joins["accepted"]]
    return pd.DataFrame(
        {
            "old_code": ok["pct_code"].to_numpy(),
            "new_code": ok["ccg_code"].to_numpy(),
            "effective_date": CCG_START,
            "source": "PCT -> CCG join (same name and volume)",
        }
    )
