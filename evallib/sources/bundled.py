"""The bundled NHS England datasets, loaded read-only into validated panels.

The files live in ``evallib/data/nhs`` (Open Government Licence v3.0, see its
README); they are opened read-only and never written. Besides the panels this
module reads the England totals, organisation names and ODS successions that
:mod:`evallib.sources.areas` and :mod:`evallib.sources.quality` need; every
parsed file is cached for the life of the process.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.sources.mid_year import interpolate_months
from evallib.sources.panel import Frequency, Panel, validate_panel

ATTRIBUTION = (
    "Contains public sector information licensed under the Open Government Licence v3.0. "
    "Source: NHS England, A&E Attendances and Emergency Admissions statistics; "
    "NHS England, Monthly Activity Return (commissioner basis); "
    "NHS Organisation Data Service; "
    "Office for National Statistics, mid-year population estimates."
)

#: The Monthly Activity Return file and the org types it holds.
MAR_FILE = "mar_commissioner_2008_2019.csv.gz"
SUCCESSIONS_FILE = "ods_successions_2008_2022.csv.gz"
#: Mid-year resident populations of every CCG code in the Monthly Activity Return, mid-2011 to mid-2020.
POPULATION_FILE = "ccg_population_mid_2011_2020.csv"


def bundled_data_dir() -> Path:
    """Directory of the bundled NHS England files (read-only)."""
    return Path(str(resources.files("evallib") / "data" / "nhs"))


def _read_bundled_csv(name: str, **kwargs: object) -> pd.DataFrame:
    path = bundled_data_dir() / name
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:  # read-only by construction
        return pd.read_csv(fh, **({"dtype": {"org_code": "string"}, "keep_default_na": True} | kwargs))


@lru_cache(maxsize=1)
def _mar_raw() -> pd.DataFrame:
    raw = _read_bundled_csv(MAR_FILE, dtype={"org_code": str, "org_type": str, "org_name": str})
    raw["period"] = pd.to_datetime(raw["period"], format="%Y-%m")
    return raw


def mar_rows() -> pd.DataFrame:
    """Every row of the bundled Monthly Activity Return, as bundled (a copy).

    Columns ``period`` (timestamp), ``org_type`` (``pct``, ``ccg``, ``england_total``, ``other_commissioner``:
    national commissioning), ``org_code``, ``org_name``, ``nonel_ga_total`` (total non-elective = emergency
    admissions) and ``qa_nonel_outlier`` (1 where the compiler's 13-month rule flagged the month).
    """
    return _mar_raw().copy()


#: Bundled outcomes that are rates per head: the outcome -> per how many people (NHS England's measure for the
#: vanguards: emergency admissions per 1,000 population). Their denominator is the resident population.
RATE_OUTCOMES: dict[str, int] = {"nonelective_admissions_per_head": 1000}


def _load_mar() -> pd.DataFrame:
    raw = _mar_raw()
    # Units are the raw commissioner codes: PCTs Apr 2008 - Mar 2013, CCGs Apr 2013 - Dec 2019.
    raw = raw[raw["org_type"].isin(["pct", "ccg"])]
    counts = pd.DataFrame(
        {
            "unit": raw["org_code"],
            "period": raw["period"].dt.strftime("%Y-%m-%d"),
            "outcome": "nonelective_admissions",
            "value": raw["nonel_ga_total"],
        }
    )
    # The same counts over the month's resident population (CCG months, from April 2013).
    per_head = _with_populations(counts).assign(outcome="nonelective_admissions_per_head")
    return pd.concat([counts, per_head], ignore_index=True)


def _with_populations(counts: pd.DataFrame) -> pd.DataFrame:
    """CCG rows of ``counts`` with their month's resident population as ``denominator`` (rows without one dropped).

    PCT rows (to March 2013) have none: they predate every window the protocols use. A code without a population
    makes its merger partners' months before the merger unusable too (their sum would cover part of the merged
    area): Newcastle North and East 00G and Newcastle West 00H have none, so Gateshead 00F goes with them before
    the April 2015 merger into Newcastle Gateshead 13T.
    """
    periods = pd.to_datetime(counts["period"])
    annual = _populations().pivot(index="mid_year", columns="ccg_code", values="population")
    pops = interpolate_months(annual, sorted(periods.unique()))
    key = pd.MultiIndex.from_arrays([periods, counts["unit"]])
    denominator = pops.stack(future_stack=True).reindex(key).to_numpy()
    keep = ~np.isnan(denominator)
    ccgs = set(_mar_raw().loc[lambda d: d["org_type"] == "ccg", "org_code"])
    succ = _successions()
    for code in sorted(ccgs - set(annual.columns)):
        for r in succ[succ["old_code"] == code].itertuples(index=False):
            partners = set(succ.loc[succ["new_code"] == r.new_code, "old_code"]) - {code}
            keep &= ~(counts["unit"].isin(partners) & (periods < r.effective_date)).to_numpy()
    return counts.assign(denominator=denominator)[keep]


def _load_ae_monthly() -> pd.DataFrame:
    raw = _read_bundled_csv("ae_monthly_2010_2021.csv")
    # Rows without an org_code are non-trust sites or the England total.
    raw = raw[raw["org_code"].notna()]
    return pd.DataFrame(
        {
            "unit": raw["org_code"],
            "period": raw["period"],
            "outcome": "ae_attendances",
            "value": raw["attendances_all_types"],
        }
    )


def _load_ae_attendances() -> pd.DataFrame:
    raw = _read_bundled_csv("ae_attendances.csv")
    by_trust = raw.groupby(["org_code", "period"], as_index=False)[["attendances", "breaches", "admissions"]].sum()
    type1 = raw[raw["type"] == "1"].groupby(["org_code", "period"], as_index=False)["attendances"].sum()
    parts = [
        by_trust.assign(outcome="ae_attendances", value=by_trust["attendances"], denominator=np.nan),
        type1.assign(outcome="ae_type1_attendances", value=type1["attendances"], denominator=np.nan),
        by_trust.assign(outcome="emergency_admissions", value=by_trust["admissions"], denominator=np.nan),
        # Four-hour performance: attendances seen within four hours, out of all attendances.
        by_trust[by_trust["attendances"] > 0].assign(
            outcome="four_hour_performance",
            value=lambda d: d["attendances"] - d["breaches"],
            denominator=lambda d: d["attendances"],
        ),
    ]
    long = pd.concat(parts, ignore_index=True)
    return long.rename(columns={"org_code": "unit"})[["unit", "period", "outcome", "value", "denominator"]]


@dataclass(frozen=True)
class BundledDataset:
    """One bundled dataset: its files, outcomes, spacing and what its units are (``trust`` or ``CCG``)."""

    name: str
    description: str
    files: tuple[str, ...]
    outcomes: tuple[str, ...]
    frequency: Frequency
    #: What a unit of the data is, for reports: "trust" or "CCG".
    unit_kind: str


BUNDLED: dict[str, BundledDataset] = {
    "ae_monthly_2010_2021": BundledDataset(
        "ae_monthly_2010_2021",
        "NHS England monthly A&E attendances (all types) by trust, Nov 2010 - Dec 2021",
        ("ae_monthly_2010_2021.csv",),
        ("ae_attendances",),
        "monthly",
        "trust",
    ),
    "ae_attendances_2016_2019": BundledDataset(
        "ae_attendances_2016_2019",
        "NHS England monthly A&E attendances, 4-hour performance and emergency admissions by trust, Apr 2016 - Mar 2019",
        ("ae_attendances.csv",),
        ("ae_attendances", "ae_type1_attendances", "emergency_admissions", "four_hour_performance"),
        "monthly",
        "trust",
    ),
    "mar_commissioner_2008_2019": BundledDataset(
        "mar_commissioner_2008_2019",
        "NHS England Monthly Activity Return (commissioner basis): emergency (non-elective) admissions by "
        "commissioner, PCTs Apr 2008 - Mar 2013, CCGs Apr 2013 - Dec 2019, as counts and per 1,000 residents "
        "(ONS mid-year populations; CCGs, from April 2013)",
        (MAR_FILE, POPULATION_FILE),
        ("nonelective_admissions", "nonelective_admissions_per_head"),
        "monthly",
        "CCG",
    ),
}
_LOADERS = {
    "ae_monthly_2010_2021": _load_ae_monthly,
    "ae_attendances_2016_2019": _load_ae_attendances,
    "mar_commissioner_2008_2019": _load_mar,
}
_CACHE: dict[str, Panel] = {}


def load_bundled(name: str) -> Panel:
    """Load a bundled NHS England dataset as a validated :class:`Panel`.

    Parameters
    ----------
    name : str
        One of ``evallib.sources.bundled.BUNDLED`` (``ae_monthly_2010_2021``, ``ae_attendances_2016_2019``,
        ``mar_commissioner_2008_2019``). Units are the codes as published: trust codes, or commissioner codes
        (PCTs to March 2013, CCGs from April 2013); :func:`evallib.sources.areas.harmonise` turns them into
        areas that stay the same over an analysis window.
    """
    _check_name(name)
    if name not in _CACHE:
        spec = BUNDLED[name]
        _CACHE[name] = validate_panel(_LOADERS[name](), spec.frequency, source=name, files=spec.files)
    return _CACHE[name]


def _check_name(name: str) -> None:
    if name not in BUNDLED:
        raise DataError(f"unknown bundled dataset {name!r}; choose one of {', '.join(BUNDLED)}")


def england_total(name: str, outcome: str | None = None) -> pd.Series:
    """England's monthly total of a bundled count outcome (index: period start, name ``england``).

    ``mar_commissioner_2008_2019``: the published England row of the Monthly Activity Return (every commissioner,
    national commissioning included). ``ae_monthly_2010_2021``: the published England row. ``ae_attendances_2016_2019``:
    the sum over every provider in the file (the file holds every provider of the publication).
    """
    _check_name(name)
    return _england(name, outcome or BUNDLED[name].outcomes[0]).copy()


@lru_cache(maxsize=8)
def _england(name: str, outcome: str) -> pd.Series:
    if outcome not in BUNDLED[name].outcomes:
        raise DataError(
            f"outcome {outcome!r} is not in bundled dataset {name!r}; choose one of {', '.join(BUNDLED[name].outcomes)}"
        )
    if name == "mar_commissioner_2008_2019":
        raw = _mar_raw()
        s = raw.loc[raw["org_type"] == "england_total"].set_index("period")["nonel_ga_total"].astype(float)
    elif name == "ae_monthly_2010_2021":
        raw = _read_bundled_csv("ae_monthly_2010_2021.csv")
        eng = raw[raw["org_code"].isna() & (raw["org_name"] == "England")]
        s = eng.set_index(pd.to_datetime(eng["period"]))["attendances_all_types"].astype(float)
    else:
        panel = load_bundled(name)
        if panel.has_denominator(outcome):
            raise DataError(f"{outcome!r} is a rate; England's total is defined for counts only")
        s = panel.data[panel.data["outcome"] == outcome].groupby("period")["value"].sum()
    s = s.sort_index()
    s.index = pd.DatetimeIndex(s.index, name="period")
    return s.rename("england")


@lru_cache(maxsize=1)
def commissioner_names() -> dict[str, str]:
    """Latest published name of every PCT and CCG code in the Monthly Activity Return."""
    raw = _mar_raw()
    raw = raw[raw["org_type"].isin(["pct", "ccg"])].sort_values("period")
    return dict(zip(raw["org_code"], raw["org_name"], strict=True))


@lru_cache(maxsize=1)
def organisation_names() -> dict[str, str]:
    """Names of every trust (ODS ``etr``), CCG (ODS ``eccg``) and MAR commissioner code, for notes in reports."""
    names: dict[str, str] = {}
    for f in ("ods_trusts_etr.csv", "ods_ccgs_eccg.csv"):
        ods = _read_bundled_csv(f, dtype=str, keep_default_na=False)
        names |= dict(zip(ods["org_code"], ods["name"], strict=True))
    return names | commissioner_names()


@lru_cache(maxsize=1)
def _successions() -> pd.DataFrame:
    succ = _read_bundled_csv(SUCCESSIONS_FILE, dtype=str, keep_default_na=False)
    succ["effective_date"] = pd.to_datetime(succ["effective_date"])
    return succ


def load_successions() -> pd.DataFrame:
    """ODS successions from 2008 between CCGs, PCTs, care trusts and NHS trusts.

    Columns ``old_code``, ``new_code``, ``effective_date`` (timestamp), ``old_kind``, ``new_kind``; one row per
    predecessor-successor pair (a merger has several rows with one ``new_code``, a split several with one
    ``old_code``). A copy: callers may modify it.
    """
    return _successions().copy()


@lru_cache(maxsize=1)
def _populations() -> pd.DataFrame:
    pop = _read_bundled_csv(
        POPULATION_FILE,
        dtype={"ccg_code": str, "ccg_name": str, "method": str, "note": str},
        usecols=["ccg_code", "mid_year", "population", "method", "ons_sape_mid2015"],
    )
    pop = pop.dropna(subset=["population"])  # 00G and 00H (Newcastle to March 2015): no source splits Newcastle
    if (pop["population"] <= 0).any() or pop.duplicated(["ccg_code", "mid_year"]).any():
        raise DataError(f"{POPULATION_FILE}: populations must be positive with one row per CCG code and year")
    return pop.reset_index(drop=True)


def load_ccg_populations() -> pd.DataFrame:
    """Mid-year resident population (ONS basis) of every CCG code in the Monthly Activity Return, 2011-2020.

    Columns ``ccg_code``, ``mid_year`` (int; the estimate is for 30 June), ``population``, ``method`` (``A``: the
    code's own 2021 area; ``B``: ONS's mid-2015 CCG estimate times the growth of its 2021 successor area) and
    ``ons_sape_mid2015`` (ONS's published mid-2015 figure, to see level gaps such as Fylde and Wyre 02M). Codes
    without a population (00G and 00H, Newcastle North and East / West to March 2015) have no rows. A copy.
    """
    return _populations().copy()
