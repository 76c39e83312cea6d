"""The site registry: every New Care Models vanguard and Integrated Care System.

Reads the bundled ``sites.csv`` (50 vanguards V01-V50, 45 ICS rows I01-I45) and
the ODS trust list. Codes in the registry are ``;``-separated strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from evallib.errors import DataError
from evallib.sources.bundled import bundled_data_dir, commissioner_names, load_successions


def _split(codes: object) -> tuple[str, ...]:
    if not isinstance(codes, str) or not codes.strip():
        return ()
    return tuple(c.strip() for c in codes.split(";") if c.strip())


@dataclass(frozen=True)
class Site:
    """One registry row."""

    site_id: str
    site_type: str
    care_model: str
    name: str
    announced: str
    wave: str
    region: str
    acute_trust_codes: tuple[str, ...]
    confidence: str
    notes: str
    #: The site's CCGs (codes as the registry gives them: vanguards' 2015 CCGs, ICSs' CCGs; some are
    #: merged CCGs formed after 2019, which :func:`evallib.sources.areas.resolve` maps to their predecessors).
    ccg_codes: tuple[str, ...] = ()

    @property
    def announced_precision(self) -> str:
        """``day``, ``month`` or ``year``: how exactly the registry dates the site."""
        return {10: "day", 7: "month", 4: "year"}.get(len(self.announced), "unknown")

    @property
    def start_month(self) -> pd.Timestamp:
        """First month of the intervention: the first full month after the announcement.

        When the registry gives only the year, the start of that financial year (April) is
        assumed; protocols note the date as approximate.
        """
        if self.announced_precision == "year":
            return pd.Timestamp(f"{self.announced}-04-01")
        return self.announced_month + pd.offsets.MonthBegin(1)

    @property
    def announced_month(self) -> pd.Timestamp:
        """First day of the announcement month (January for a year-only date)."""
        return pd.Timestamp(self.announced[:7] if len(self.announced) >= 7 else f"{self.announced}-01")


@lru_cache(maxsize=1)
def load_registry() -> tuple[Site, ...]:
    """All registry rows, in file order."""
    path = bundled_data_dir() / "sites.csv"
    with open(path, encoding="utf-8") as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False)
    sites = []
    for r in df.to_dict("records"):
        sites.append(
            Site(
                site_id=r["site_id"],
                site_type=r["site_type"],
                care_model=r["care_model"],
                name=r["name"],
                announced=r["announced"],
                wave=r["wave"],
                region=r["region_current"],
                acute_trust_codes=_split(r["acute_trust_codes"]),
                confidence=r["confidence"],
                notes=r["notes"],
                ccg_codes=_split(r["ccg_codes"]),
            )
        )
    return tuple(sites)


def get_site(site_id: str) -> Site:
    """The registry entry of ``site_id``; a DataError naming the site when it is not in sites.csv."""
    for s in load_registry():
        if s.site_id == site_id:
            return s
    raise DataError(f"site {site_id!r} is not in the registry (sites.csv); ids run V01-V50 and I01-I45")


@lru_cache(maxsize=1)
def type1_trusts() -> frozenset[str]:
    """Trusts with a type-1 (major) A&E department in 2016-2019, from ODS."""
    with open(bundled_data_dir() / "ods_trusts_etr.csv", encoding="utf-8") as fh:
        ods = pd.read_csv(fh, dtype=str, keep_default_na=False)
    return frozenset(ods.loc[ods["has_type1_ae_2016_19"] == "True", "org_code"])


@lru_cache(maxsize=1)
def known_trusts() -> frozenset[str]:
    """Every NHS trust code in the ODS register (open or closed)."""
    with open(bundled_data_dir() / "ods_trusts_etr.csv", encoding="utf-8") as fh:
        ods = pd.read_csv(fh, dtype=str, keep_default_na=False)
    return frozenset(ods["org_code"])


@lru_cache(maxsize=1)
def known_commissioners() -> frozenset[str]:
    """Every CCG and PCT code the bundled data know: in the Monthly Activity Return or in an ODS succession."""
    succ = load_successions()
    kinds = {"ccg", "pct", "care_trust"}
    codes = set(succ.loc[succ["old_kind"].isin(kinds), "old_code"]) | set(
        succ.loc[succ["new_kind"].isin(kinds), "new_code"]
    )
    return frozenset(codes | set(commissioner_names()))


@dataclass(frozen=True)
class AreaCoverage:
    """How much of its CCGs' population a vanguard serves, from published population figures (``site_coverage.csv``).

    ``share`` is None where it is unknown: no published population, or one that cannot be set against the
    registry's CCGs (never guessed). ``note`` says which, in words.
    """

    site_id: str
    share: float | None
    vanguard_population: float | None
    vanguard_population_source: str
    ccg_population: float | None
    ccg_population_source: str
    note: str


@dataclass(frozen=True)
class PublishedEvaluation:
    """One published evaluation of a site (``site_evaluations.csv``): who measured what, on whom, when, and found."""

    site_id: str
    source: str
    url: str
    population: str
    outcome: str
    window: str
    effect_pct: float | None
    effect: str
    design: str


def _number(text: str, column: str, site_id: str, low: float, high: float) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"site {site_id}: {column} must be a number or empty") from None
    if not low <= value <= high:
        raise DataError(f"site {site_id}: {column} must lie between {low:g} and {high:g}")
    return value


def _bundled_rows(name: str) -> list[dict[str, str]]:
    with open(bundled_data_dir() / name, encoding="utf-8") as fh:
        return list(pd.read_csv(fh, dtype=str, keep_default_na=False).to_dict("records"))


@lru_cache(maxsize=1)
def _coverage() -> dict[str, AreaCoverage]:
    out = {}
    for r in _bundled_rows("site_coverage.csv"):
        sid = r["site_id"]
        out[sid] = AreaCoverage(
            site_id=sid,
            share=_number(r["coverage_share"], "coverage_share", sid, 0.0, 1.0),
            vanguard_population=_number(r["vanguard_population"], "vanguard_population", sid, 1.0, 1e8),
            vanguard_population_source=r["vanguard_population_source"],
            ccg_population=_number(r["ccg_population"], "ccg_population", sid, 1.0, 1e8),
            ccg_population_source=r["ccg_population_source"],
            note=r["note"],
        )
    return out


def area_coverage(site_id: str) -> AreaCoverage:
    """The share of its CCGs' population the site serves; ``share`` None (unknown) for a site with no record."""
    return _coverage().get(
        site_id,
        AreaCoverage(site_id, None, None, "", None, "", "the registry records no published population for this site"),
    )


@lru_cache(maxsize=1)
def _evaluations() -> tuple[PublishedEvaluation, ...]:
    return tuple(
        PublishedEvaluation(
            site_id=r["site_id"],
            source=r["source"],
            url=r["url"],
            population=r["population"],
            outcome=r["outcome"],
            window=r["window"],
            effect_pct=_number(r["effect_pct"], "effect_pct", r["site_id"], -100.0, 1000.0),
            effect=r["effect"],
            design=r["design"],
        )
        for r in _bundled_rows("site_evaluations.csv")
    )


def published_evaluations(site_id: str | None = None) -> tuple[PublishedEvaluation, ...]:
    """Published evaluations of one site (or of every site), in file order."""
    return tuple(e for e in _evaluations() if site_id is None or e.site_id == site_id)
