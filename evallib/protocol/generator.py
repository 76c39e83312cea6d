"""Write one params file per registry row: the pre-specified protocol of each site.

Run once (``evallib make-params``); the files are committed and then edited by
hand. Existing files are kept unless ``overwrite`` is set; ``update`` rewrites
only files still exactly as the generator wrote them (each carries the hash of
its generated content), so hand edits survive a regeneration.

The rules written into every protocol:

* Vanguards with CCGs in the registry (PACS, MCP, EHCH, UEC): primary outcome
  emergency (non-elective) admissions per head of their CCGs (NHS England's Monthly
  Activity Return by commissioner per 1,000 ONS residents), the measure NHS England
  judged vanguards on, with the same admissions in counts as a secondary outcome;
  pre-period April 2013 (the first CCG month) to the month before the start;
  follow-up to March 2018, the end of the New Care Models programme; comparison
  CCGs exclude every vanguard's CCGs. A&E attendances of their acute trusts
  (2010-2021 series, stitched across mergers) are a secondary analysis over the
  same windows, against trusts outside every vanguard.
* Acute care collaborations (chains of trusts, no CCGs) and vanguards without
  CCGs stay on their trusts' A&E attendances (stitched across mergers; where no
  trust of the site has a continuous series from April 2013, the pre-period starts
  at the first month one has, if that leaves 12 pre-period months). Specialist vanguards whose work
  does not act on a population's emergency admissions or A&E attendances (eye,
  orthopaedic, neurology, mental health, women's and children's, cancer and
  radiology networks) are "not evaluable" with that reason, rather than scored
  on an unrelated measure.
* ICSs with CCGs: emergency admissions per head of their CCGs (primary, counts
  secondary, as for vanguards; data to December
  2019, so the June 2019 wave has six months of follow-up), pre-period the 36
  months before the start (from April 2013 at the earliest), follow-up two years
  cut at the data's end and before COVID-19; A&E attendances, emergency
  admissions via A&E and four-hour performance of their trusts (2016-2019) as
  secondary analyses. ICS rows without CCGs use their trusts' 2016-2019 data.
  Comparators exclude systems designated before the end of follow-up.
* The intervention starts in the first full month after the announcement.
* The primary estimator (what the findings lead with) is the calibration study's
  choice for the protocol's kind (``params/calibration.csv``, from ``evallib
  calibrate``): the most precise headline estimator that held its size when every
  comparison area was a fake site; the difference-in-differences without the study.
* The comparison pool is the design step's choice (``params/design_pools.csv``, from ``evallib design --all
  --write-choices``, which reads data before each site's start only): the rule's whole pool unless another
  candidate pool holding its size has a clearly smaller detectable effect, then that pool as ``design_pool``,
  with a comment saying it was fixed at design time.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evallib.protocol.params import COVID_START, PRIMARY_ESTIMATORS, SiteProtocol
from evallib.protocol.schema import MODELINE, write_schema
from evallib.sources.areas import harmonise, resolve
from evallib.sources.bundled import BUNDLED, load_bundled
from evallib.sources.registry import Site, load_registry

_HEADER = (
    MODELINE
    + """
# Analysis protocol for {site_id}: {name}
# Generated from the site registry (evallib make-params), then open to hand edits.
# Written before results are seen: change the outcome, windows or comparison
# rule only with a recorded reason in `notes`. Quote every code and month.
# generated-content: {digest}
"""
)
_DIGEST = re.compile(r"^# generated-content: ([0-9a-f]{64})$", re.MULTILINE)

CCG_DATA = "mar_commissioner_2008_2019"
#: The calibration study's summary, in the params folder (``evallib calibrate`` writes it).
CALIBRATION_FILE = "calibration.csv"
#: The design step's choice of comparison pool per site, in the params folder (``evallib design --all
#: --write-choices`` writes it).
DESIGN_POOLS_FILE = "design_pools.csv"
#: The primary outcome of vanguards and ICSs with CCGs: NHS England's measure, emergency admissions per head (per
#: 1,000 residents); the counts are a secondary outcome on the same CCGs.
CCG_OUTCOME = "nonelective_admissions_per_head"
CCG_COUNTS = "nonelective_admissions"
CCG_FIRST_MONTH = pd.Timestamp("2013-04-01")
CCG_LAST_MONTH = pd.Timestamp("2019-12-01")
VANGUARD_END = "2018-03"

#: Vanguards whose work does not act on a population's emergency admissions or A&E attendances.
SPECIALIST_VANGUARDS = {
    "V42": "a specialist eye hospital (Moorfields) network",
    "V43": "an alliance of specialist orthopaedic hospitals (mostly planned surgery)",
    "V44": "a specialist neurology and neurosurgery network",
    "V45": "a mental health alliance",
    "V46": "a collaboration of specialist women's and children's hospitals",
    "V47": "a specialist cancer network",
    "V48": "a radiology (imaging) consortium",
}


def _month(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m")


def _specialist_reason(site: Site) -> str:
    what = SPECIALIST_VANGUARDS[site.site_id]
    return (
        f"this vanguard is {what}: its work does not act on a local population's emergency admissions or A&E "
        "attendances, so scoring it on them would measure something it never set out to change (pre-specified)"
    )


def _vanguard(site: Site, start: pd.Timestamp) -> dict[str, Any]:
    p: dict[str, Any] = {
        "pre_period_start": _month(CCG_FIRST_MONTH),
        "post_period_end": VANGUARD_END,
        "comparison_pool": "exclude_other_vanguards",
    }
    trusts_ae = {"outcome": "ae_attendances", "data_source": "ae_monthly_2010_2021"}
    if site.site_id in SPECIALIST_VANGUARDS:
        p.update(data_source="ae_monthly_2010_2021", primary_outcome="ae_attendances")
        p.update(treated_units=list(site.acute_trust_codes), not_evaluable_reason=_specialist_reason(site))
    elif site.ccg_codes and site.care_model != "ACC":
        p.update(_ccg_outcomes(site.ccg_codes, CCG_FIRST_MONTH, pd.Timestamp(f"{VANGUARD_END}-01")))
        if site.acute_trust_codes:
            p["secondary_analyses"] = [{**trusts_ae, "treated_units": list(site.acute_trust_codes)}]
    else:
        p.update(data_source="ae_monthly_2010_2021", primary_outcome="ae_attendances")
        p["treated_units"] = list(site.acute_trust_codes)
        later = _continuous_start(p["data_source"], site.acute_trust_codes, CCG_FIRST_MONTH, start)
        if later is not None:
            p["pre_period_start"] = _month(later)
            p["note"] = (
                f"pre-period from {later:%b %Y}: the site's trusts have no continuous series before then (a merger "
                "whose predecessor's rows are not in the data)"
            )
    return p


@lru_cache(maxsize=64)
def _complete(outcome: str, codes: tuple[str, ...], first: pd.Timestamp, last: pd.Timestamp) -> bool:
    """Whether every area of ``codes`` has ``outcome`` in every month of ``[first, last]``."""
    panel, area_map = harmonise(load_bundled(CCG_DATA), first, last)
    wide = panel.wide(outcome).reindex(pd.date_range(first, last, freq="MS"))
    areas = resolve(codes, area_map)[0]
    return bool(areas) and all(a in wide.columns and bool(wide[a].notna().all()) for a in areas)


def _ccg_outcomes(codes: tuple[str, ...], first: pd.Timestamp, last: pd.Timestamp) -> dict[str, Any]:
    """Admissions per head as primary and counts as secondary; counts as primary, with a note, where the counts
    cover the window but the site's CCGs lack a population for part of it (Newcastle's two CCGs, before their
    April 2015 merger).
    """
    out: dict[str, Any] = {"data_source": CCG_DATA, "treated_units": list(codes)}
    key = (tuple(codes), first, last)
    if _complete(CCG_OUTCOME, *key) or not _complete(CCG_COUNTS, *key):
        return out | {"primary_outcome": CCG_OUTCOME, "secondary_outcomes": [CCG_COUNTS]}
    return out | {
        "primary_outcome": CCG_COUNTS,
        "note": "primary outcome in counts, not per head: the site's CCGs have no resident population for part of "
        "the window (no source splits Newcastle before its CCGs merged in April 2015)",
    }


def _continuous_start(
    dataset: str, codes: tuple[str, ...], earliest: pd.Timestamp, start: pd.Timestamp
) -> pd.Timestamp | None:
    """A later pre-period start when no trust of the site has a continuous series from ``earliest``.

    The first month from which one of the site's trusts (stitched across mergers) is complete up to the
    end of the vanguard follow-up, if that leaves at least 12 pre-period months; None when the default
    start works, or when no later start would.
    """
    end = pd.Timestamp(f"{VANGUARD_END}-01")
    panel, area_map = harmonise(load_bundled(dataset), earliest, end)
    wide = panel.wide(BUNDLED[dataset].outcomes[0])
    firsts = []
    for area in resolve(codes, area_map)[0]:
        s = wide[area].loc[earliest:end] if area in wide.columns else pd.Series(dtype=float)
        if s.empty or s.isna().iloc[-1]:
            continue
        missing = s.isna().to_numpy()
        first = s.index[len(s) - int(np.argmax(missing[::-1])) if missing.any() else 0]
        firsts.append(first)
    if not firsts or min(firsts) == earliest:
        return None
    later = min(firsts)
    return later if later <= start - pd.DateOffset(months=12) else None


def _ics(site: Site, start: pd.Timestamp) -> dict[str, Any]:
    end = min(start + pd.DateOffset(months=23), COVID_START - pd.DateOffset(months=1))
    if end < start:  # designated after COVID-19 began: the protocol stays valid, the site "not evaluable"
        end = start + pd.DateOffset(months=23)
    p: dict[str, Any] = {"comparison_pool": "exclude_ics_designated_before_end"}
    trust_outcomes = ["ae_attendances", "emergency_admissions", "four_hour_performance"]
    if site.ccg_codes:
        if start <= CCG_LAST_MONTH:
            end = min(end, CCG_LAST_MONTH)
        pre_start = max(start - pd.DateOffset(months=36), CCG_FIRST_MONTH)
        p.update(_ccg_outcomes(site.ccg_codes, pre_start, end))
        if site.acute_trust_codes:
            p["secondary_analyses"] = [
                {"outcome": o, "data_source": "ae_attendances_2016_2019", "treated_units": list(site.acute_trust_codes)}
                for o in trust_outcomes
            ]
    else:
        pre_start = pd.Timestamp("2016-04-01")
        if start - pd.DateOffset(months=3) < pre_start:
            pre_start = start - pd.DateOffset(months=24)
        p.update(
            data_source="ae_attendances_2016_2019",
            primary_outcome="ae_attendances",
            secondary_outcomes=trust_outcomes[1:],
            treated_units=list(site.acute_trust_codes),
        )
    p.update(pre_period_start=_month(pre_start), post_period_end=_month(end))
    return p


def chosen_estimators(params_dir: Path | None) -> dict[tuple[str, str, str], str]:
    """The calibration study's choice of primary estimator by (site type, data source, outcome).

    Read from ``<params_dir>/calibration.csv`` (written by ``evallib calibrate``): for each kind of
    protocol, the headline estimator that held its size in every design of that kind with the
    narrowest intervals. Empty without the file (protocols then lead with the DiD).
    """
    path = None if params_dir is None else params_dir / CALIBRATION_FILE
    if path is None or not path.is_file():
        return {}
    table = pd.read_csv(path, dtype={"holds_size": bool, "chosen": bool})
    out: dict[tuple[str, str, str], str] = {}
    for key, g in table.groupby(["site_type", "data_source", "outcome"]):
        ok = (
            g[g["estimator"].isin(PRIMARY_ESTIMATORS)]
            .groupby("estimator")
            .agg(holds=("holds_size", "all"), width=("median_width", "mean"))
        )
        ok = ok[ok["holds"]]
        if len(ok):
            out[(str(key[0]), str(key[1]), str(key[2]))] = str(ok["width"].idxmin())
    return out


def chosen_pools(params_dir: Path | None) -> dict[str, dict[str, str]]:
    """The design step's choice of comparison pool by site id, from ``<params_dir>/design_pools.csv``.

    Each row as text (``pool``, ``units`` space-separated, ``data_end``, ``mde_protocol``, ``mde_chosen`` ...);
    empty without the file (protocols then keep their rule's whole pool).
    """
    path = None if params_dir is None else params_dir / DESIGN_POOLS_FILE
    if path is None or not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {str(r["site_id"]): {str(k): str(v) for k, v in r.items()} for r in table.to_dict("records")}


def _mde(text: str) -> str:
    value = float(text)
    return f"{value:.2f}%" if np.isfinite(value) else "infinite (80% power is out of reach)"


#: A pool replaces the protocol's own only when its MDE is at least this much smaller (a fraction): the design step's
#: own accuracy (it predicts the MDE the report will show within 20% at 80% of vanguards). Written into every
#: protocol's ``design_pool`` comment; :mod:`evallib.evaluation.studies.design` applies it.
POOL_MARGIN = 0.20


def design_pool_comment(choice: dict[str, str]) -> str:
    """The comment above ``design_pool`` saying the pool was fixed at design time, on data before the start."""
    how = f"fixed at design time by `evallib design` on data to {choice['data_end']} (before the start and any results)"
    if choice.get("pool", "protocol") == "protocol":
        alt = choice.get("alternatives", "")
        others = f"; {alt.replace('_', ' ')}" if alt else ""
        return (
            f"{how}: the protocol's own pool kept (MDE {_mde(choice['mde_protocol'])}{others}; another pool replaces "
            f"it only when it holds its size and its MDE is at least {POOL_MARGIN:.0%} smaller)"
        )
    return (
        f"{how}: the {choice['pool'].replace('_', ' ')} pool, MDE {_mde(choice['mde_chosen'])} against "
        f"{_mde(choice['mde_protocol'])} for the protocol's own pool"
    )


def protocol_for(
    site: Site,
    estimators: dict[tuple[str, str, str], str] | None = None,
    pools: dict[str, dict[str, str]] | None = None,
) -> dict[str, object]:
    """The default protocol of one registry site, as plain values (``estimators``: :func:`chosen_estimators`;
    ``pools``: :func:`chosen_pools`).
    """
    start = site.start_month
    notes = []
    if site.announced_precision != "day":
        notes.append(
            f"announcement dated to the {site.announced_precision} only ({site.announced}): start is approximate"
        )
    p = _vanguard(site, start) if site.site_type == "vanguard" else _ics(site, start)
    if p.get("note"):
        notes.append(p["note"])
    if site.notes:
        notes.append(f"registry: {site.notes}")
    return {
        "site_id": site.site_id,
        "site_name": site.name,
        "site_type": site.site_type,
        "care_model": site.care_model,
        "membership_confidence": site.confidence,
        "announced": site.announced,
        "treated_units": p["treated_units"],
        "intervention_start": _month(start),
        "primary_outcome": p["primary_outcome"],
        "expected_direction": "decrease",
        "secondary_outcomes": p.get("secondary_outcomes", []),
        "pre_period_start": p["pre_period_start"],
        "pre_period_end": _month(start - pd.DateOffset(months=1)),
        "post_period_end": p["post_period_end"],
        "comparison_pool": p["comparison_pool"],
        "comparison_include": [],
        "comparison_exclude": [],
        "design_pool": []
        if p.get("not_evaluable_reason")
        else (pools or {}).get(site.site_id, {}).get("units", "").split(),
        "type1_comparators_only": True,
        "data_source": p["data_source"],
        "secondary_analyses": p.get("secondary_analyses", []),
        "min_pre_periods": 12,
        "min_post_periods": 6,
        "n_placebo_draws": 999,
        "seed": 2015,
        "not_evaluable_reason": p.get("not_evaluable_reason", ""),
        "primary_estimator": (estimators or {}).get((site.site_type, p["data_source"], p["primary_outcome"]), "did"),
        "notes": "; ".join(notes),
    }


def _content(protocol: dict[str, object], comments: dict[str, str] | None = None) -> str:
    notes = comments or {}
    return "".join(
        ("" if key not in notes else f"# {key}: {notes[key]}\n") + f"{key}: {json.dumps(value, ensure_ascii=False)}\n"
        for key, value in protocol.items()
    )


def to_yaml(protocol: dict[str, object], comments: dict[str, str] | None = None) -> str:
    """YAML with every string double-quoted (JSON scalars are valid YAML), headed by the hash of its content.

    ``comments`` (field: text) are written above their fields; they are not part of the hashed content.
    """
    body = _content(protocol)
    digest = hashlib.sha256(body.encode()).hexdigest()
    name = str(protocol["site_name"]).replace("\n", " ")
    return _HEADER.format(site_id=protocol["site_id"], name=name, digest=digest) + "\n" + _content(protocol, comments)


def edited_by_hand(text: str) -> bool:
    """True when a params file's content no longer matches the hash the generator wrote into it."""
    found = _DIGEST.search(text)
    if found is None:
        return True  # written by hand, or by a generator that recorded no hash
    body = "".join(line + "\n" for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))
    return hashlib.sha256(body.encode()).hexdigest() != found.group(1)


def write_params(root: Path, *, overwrite: bool = False, update: bool = False) -> list[Path]:
    """Write ``root/vanguards/V01.yaml`` ... ``root/ics/I45.yaml``; return the files written.

    Existing files are kept, unless ``overwrite`` (replace every file) or ``update``
    (replace the files nobody has edited since they were generated).
    """
    written = []
    write_schema(root)  # the schema the files' first line points editors at
    estimators = chosen_estimators(root)
    pools = chosen_pools(root)
    for site in load_registry():
        folder = root / ("vanguards" if site.site_type == "vanguard" else "ics")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{site.site_id}.yaml"
        if path.exists() and not overwrite:
            if not update or edited_by_hand(path.read_text(encoding="utf-8")):
                continue
        protocol = protocol_for(site, estimators, pools)
        SiteProtocol.from_mapping(protocol, str(path))  # never write an invalid protocol
        choice = pools.get(site.site_id)
        text = to_yaml(
            protocol,
            {"design_pool": design_pool_comment(choice)} if choice and not protocol["not_evaluable_reason"] else None,
        )
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
