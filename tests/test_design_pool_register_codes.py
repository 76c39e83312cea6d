"""A ``design_pool`` code that the NHS registers know but that neither is in a bundled source's data nor is linked to
any of its codes by a succession is refused before any notebook runs: the analysis maps the pool's codes to the data's
areas (codes of any era), so such a code holds no area and would be dropped without a word, which the refusal of
unknown codes exists to prevent. Register codes still pass as treated units (a known trust missing from the data makes
the site not evaluable, with a reason), and a code of another era linked to the data's codes still passes
(review of issue 22's design_pool refusal).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from evallib.pipeline import preflight as pf
from evallib.protocol.params import SiteProtocol, load_params
from evallib.sources.areas import default_links
from evallib.sources.bundled import load_bundled

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundled() -> tuple[SiteProtocol, set[str]]:
    """A bundled-data site (V49, A&E by trust) and the codes of its data."""
    protocol = load_params(ROOT / "params" / "vanguards" / "V49.yaml")
    data = load_bundled(str(protocol.data_source))
    return protocol, set(data.data["unit"].astype(str).str.upper().unique())


def _unlinked_register_code(units: set[str]) -> str:
    links = default_links()
    linked = set(links["old_code"].astype(str).str.upper()) | set(links["new_code"].astype(str).str.upper())
    return sorted(pf.known_codes("trust") - units - linked)[0]


def _problem(protocol: SiteProtocol, units: set[str], pool: tuple[str, ...]) -> str:
    with_pool = replace(protocol, design_pool=pool)
    return pf._check_against_data(with_pool, with_pool.analyses[0], pd.Timestamp("2010-11-01"), units)


def test_a_register_code_with_no_area_in_the_data_is_refused(bundled: tuple[SiteProtocol, set[str]]) -> None:
    protocol, units = bundled
    code = _unlinked_register_code(units)
    pool = (*sorted(units - set(protocol.treated_units))[:10], code)
    msg = _problem(protocol, units, pool)
    assert msg.startswith(f"field 'design_pool' (site {protocol.site_id}) has 1 code of 11 that is not a unit")
    assert f"({code})" in msg


def test_data_codes_and_codes_linked_to_them_pass(bundled: tuple[SiteProtocol, set[str]]) -> None:
    protocol, units = bundled
    pool = tuple(sorted(units - set(protocol.treated_units))[:10])
    assert _problem(protocol, units, pool) == ""
    links = default_links()
    old, new = links["old_code"].astype(str).str.upper(), links["new_code"].astype(str).str.upper()
    other_era = sorted(set(old[new.isin(units)]) - units) + sorted(set(new[old.isin(units)]) - units)
    assert other_era, "the bundled trusts have successions to codes outside the data"
    assert _problem(protocol, units, (*pool, other_era[0])) == ""


def test_a_register_code_still_passes_as_a_treated_unit(bundled: tuple[SiteProtocol, set[str]]) -> None:
    protocol, units = bundled
    code = _unlinked_register_code(units)
    site = replace(protocol, treated_units=(code,))
    assert pf._check_against_data(site, site.analyses[0], pd.Timestamp("2010-11-01"), units) == ""
