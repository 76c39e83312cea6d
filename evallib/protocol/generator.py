"""Write one params file per registry row: the pre-specified protocol of each site.

Run once (``evallib make-params``); the files are committed and then edited by
hand. Existing files are kept unless ``overwrite`` is set, so hand edits survive.

The rules written into every protocol:

* Vanguards (announced 2015): primary outcome A&E attendances from the 2010-2021
  series; pre-period April 2011 to the month before the start; follow-up to
  March 2018, the end of the New Care Models programme; comparators exclude every
  vanguard trust.
* ICSs: A&E attendances (primary), emergency admissions and four-hour
  performance from the 2016-2019 data; pre-period from April 2016; follow-up two
  years, cut at February 2020 so that COVID-19 disruption is never inside it;
  comparators exclude systems designated before the end of follow-up.
* The intervention starts in the first full month after the announcement.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from evallib.protocol.params import COVID_START, SiteProtocol
from evallib.sources.registry import Site, load_registry

_HEADER = """\
# Analysis protocol for {site_id}: {name}
# Generated from the site registry (evallib make-params), then open to hand edits.
# Written before results are seen: change the outcome, windows or comparison
# rule only with a recorded reason in `notes`. Quote every code and month.
"""


def _month(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m")


def protocol_for(site: Site) -> dict[str, object]:
    """The default protocol of one registry site, as plain values."""
    start = site.start_month
    notes = []
    if site.announced_precision != "day":
        notes.append(
            f"announcement dated to the {site.announced_precision} only ({site.announced}): start is approximate"
        )
    if site.site_type == "vanguard":
        p: dict[str, object] = {
            "primary_outcome": "ae_attendances",
            "secondary_outcomes": [],
            "pre_period_start": "2011-04",
            "post_period_end": "2018-03",
            "comparison_pool": "exclude_other_vanguards",
            "data_source": "ae_monthly_2010_2021",
        }
    else:
        end = min(start + pd.DateOffset(months=23), COVID_START - pd.DateOffset(months=1))
        if end < start:
            end = start + pd.DateOffset(months=23)
        pre_start = pd.Timestamp("2016-04-01")
        if start - pd.DateOffset(months=3) < pre_start:
            pre_start = start - pd.DateOffset(months=24)
        p = {
            "primary_outcome": "ae_attendances",
            "secondary_outcomes": ["emergency_admissions", "four_hour_performance"],
            "pre_period_start": _month(pre_start),
            "post_period_end": _month(end),
            "comparison_pool": "exclude_ics_designated_before_end",
            "data_source": "ae_attendances_2016_2019",
        }
    if site.notes:
        notes.append(f"registry: {site.notes}")
    return {
        "site_id": site.site_id,
        "site_name": site.name,
        "site_type": site.site_type,
        "care_model": site.care_model,
        "membership_confidence": site.confidence,
        "announced": site.announced,
        "treated_units": list(site.acute_trust_codes),
        "intervention_start": _month(start),
        "primary_outcome": p["primary_outcome"],
        "expected_direction": "decrease",
        "secondary_outcomes": p["secondary_outcomes"],
        "pre_period_start": p["pre_period_start"],
        "pre_period_end": _month(start - pd.DateOffset(months=1)),
        "post_period_end": p["post_period_end"],
        "comparison_pool": p["comparison_pool"],
        "comparison_include": [],
        "comparison_exclude": [],
        "type1_comparators_only": True,
        "data_source": p["data_source"],
        "min_pre_periods": 12,
        "min_post_periods": 6,
        "n_placebo_draws": 999,
        "seed": 2015,
        "notes": "; ".join(notes),
    }


def to_yaml(protocol: dict[str, object]) -> str:
    """YAML with every string double-quoted (JSON scalars are valid YAML)."""
    lines = [_HEADER.format(site_id=protocol["site_id"], name=str(protocol["site_name"]).replace("\n", " "))]
    for key, value in protocol.items():
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    return "\n".join(lines) + "\n"


def write_params(root: Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``root/vanguards/V01.yaml`` ... ``root/ics/I45.yaml``; return the files written."""
    written = []
    for site in load_registry():
        folder = root / ("vanguards" if site.site_type == "vanguard" else "ics")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{site.site_id}.yaml"
        if path.exists() and not overwrite:
            continue
        protocol = protocol_for(site)
        SiteProtocol.from_mapping(protocol, str(path))  # never write an invalid protocol
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(to_yaml(protocol), encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    return written
