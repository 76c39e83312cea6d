"""The ICS designation waves around an ICS site: Callaway-Sant'Anna effects of every wave."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evallib.evaluation.site.coverage import unit_kind
from evallib.evaluation.site.units import area_data
from evallib.methods.base.results import Estimate
from evallib.methods.did.staggered import AggregateResult, CallawaySantAnna, CSResult
from evallib.protocol.params import AnalysisSpec, SiteProtocol
from evallib.sources.bundled import BUNDLED
from evallib.sources.panel import Panel
from evallib.sources.registry import load_registry, type1_trusts


@dataclass(frozen=True)
class ProgrammeWaves:
    """Callaway-Sant'Anna across ICS designation waves (the programme around an ICS site).

    Every unit (CCG area or trust) belongs to the cohort of its system's start month; units
    whose system starts after the data end are not yet treated throughout. Standard errors
    are clustered by system (ICSs are designated as systems, so their units' errors are not
    independent). ``site_cohort`` is the start month of the evaluated site's wave.
    """

    outcome: str
    result: CSResult = field(repr=False)
    cohort_labels: dict[int, str]
    site_cohort: int
    n_units: int
    unit_kind: str = "trust"

    @property
    def simple(self) -> AggregateResult:
        """The simple aggregation: one ATT over every treated group and post period."""
        return self.result.aggregate("simple")

    @property
    def dynamic(self) -> AggregateResult:
        """The dynamic aggregation: the effect by event time (periods since each wave's start)."""
        return self.result.aggregate("dynamic")

    @property
    def group(self) -> AggregateResult:
        """The group aggregation: one effect per wave."""
        return self.result.aggregate("group")

    @property
    def site_wave(self) -> Estimate | None:
        """The effect of the site's own wave (None when its wave has no estimate)."""
        for r in self.group.components:
            if r.term == f"group {self.site_cohort}":
                return Estimate(**{**r.__dict__, "term": f"wave starting {self.cohort_labels[self.site_cohort]}"})
        return None

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """The tidy rows for the report: all waves together, then the site's wave when it has one."""
        overall = Estimate(**{**self.simple.overall.__dict__, "term": "all ICS waves (simple ATT)"})
        wave = self.site_wave
        return (overall,) if wave is None else (overall, wave)


#: First month of commissioner (CCG) data; earlier months are PCTs'.
CCG_ERA_START = pd.Timestamp("2013-04-01")


def programme_waves(protocol: SiteProtocol, panel: Panel, spec: AnalysisSpec | str) -> ProgrammeWaves | None:
    """Callaway-Sant'Anna ATTs of every ICS wave on ``outcome`` (log scale), not-yet-treated controls.

    Units are the trusts with complete, positive monthly data over the whole data
    span and (for bundled data) a type-1 A&E. Returns None when fewer than one wave
    starts inside the data.
    """
    outcome = spec if isinstance(spec, str) else spec.outcome
    kind = unit_kind(protocol.data_source if isinstance(spec, str) else spec.data_source)
    periods = panel.periods(outcome)
    if kind == "CCG":  # commissioner data: the CCG era only, areas continuous over it
        periods = periods[periods >= CCG_ERA_START]
    areas = area_data(panel, outcome, (), periods.min(), periods.max())
    values = areas.panel.wide(outcome)
    values = values.loc[:, values.notna().all() & (values > 0).all()]
    if panel.source in BUNDLED and kind == "trust":
        t1 = type1_trusts()
        values = values.loc[:, [u for u in values.columns if any(c in t1 for c in areas.codes(u))]]
    months = {p: i for i, p in enumerate(values.index)}
    cohort: dict[str, pd.Timestamp] = {}
    system: dict[str, str] = {}  # ICSs are designated as systems: their units' errors are not independent
    for site in load_registry():
        if site.site_type != "ICS":
            continue
        start = site.start_month
        for area in areas.areas_for(site.ccg_codes if kind == "CCG" else site.acute_trust_codes):
            if start < cohort.get(area, pd.Timestamp.max):
                cohort[area], system[area] = start, site.site_id
    first, last = values.index.min(), values.index.max()
    code_of = {}
    for unit in values.columns:
        start = cohort.get(unit)
        code_of[unit] = months[start] if start is not None and first < start <= last else 0
    if not any(code_of.values()):
        return None
    long = np.log(values).stack().rename("y").reset_index()
    long.columns = ["period", "unit", "y"]
    long["t"] = long["period"].map(months)
    long["cohort"] = long["unit"].map(code_of)
    long["system"] = long["unit"].map(lambda u: system.get(u, u))
    res = CallawaySantAnna(
        outcome="y", unit="unit", time="t", cohort="cohort", control_group="not_yet_treated", cluster="system"
    ).fit(long)
    res = CSResult(**{**res.__dict__, "outcome": outcome, "scale": "log"})
    labels = {i: p.strftime("%b %Y") for p, i in months.items()}
    site_start = months.get(protocol.windows.post_start, -1)
    return ProgrammeWaves(
        outcome=outcome,
        result=res,
        cohort_labels=labels,
        site_cohort=site_start,
        n_units=values.shape[1],
        unit_kind=kind,
    )
