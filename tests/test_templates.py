"""Every published page comes from the Jinja2 templates with autoescaping on: a hostile name in every
field a params file or a data file can set arrives escaped, on every page of the site."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from evallib.methods.simulate import simulate_panel
from evallib.pipeline.batch import run_batch
from evallib.reporting.publishing import scan_pages
from evallib.reporting.templating import GENERATOR, environment

from .conftest import make_project

HOSTILE = "<img src=x onerror=alert(1)>\"'&"
ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def test_the_template_environment_escapes_every_template() -> None:
    env = environment()
    assert env.autoescape is True
    names = env.list_templates()
    assert {"page.html.j2", "index.html.j2", "summary.html.j2", "report_page.html.j2"} <= set(names)
    assert str(env.from_string("{{ x }}").render(x=HOSTILE)).startswith(ESCAPED)


@pytest.fixture(scope="module")
def hostile_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_project(tmp_path_factory.mktemp("hostile-names"), [], programme=True)
    sim = simulate_panel(30, 60, start_period=36, effect=-0.1, first_month="2012-01", seed=3)
    outcome = f"adm {HOSTILE}"
    (root / "data").mkdir()
    frame = sim.assign(period=sim["period"].dt.strftime("%Y-%m"))[["unit", "period", "value"]]
    frame.rename(columns={"value": outcome}).to_csv(root / "data" / "h.csv", index=False)
    params = {
        "site_id": "H01",
        "site_name": f"Site {HOSTILE}",
        "site_type": "other",
        "care_model": "other",
        "membership_confidence": "low",
        "treated_units": ["U000"],
        "intervention_start": "2015-01",
        "primary_outcome": outcome,
        "expected_direction": "decrease",
        "pre_period_start": "2012-01",
        "pre_period_end": "2014-12",
        "post_period_end": "2016-12",
        "comparison_pool": "all_eligible",
        "type1_comparators_only": False,
        "announced": HOSTILE,
        "notes": f"notes {HOSTILE}",
        "data_source": {
            "path": "data/h.csv",
            "unit": "unit",
            "period": "period",
            "outcomes": [outcome],
            "unit_label": f"ward {HOSTILE}",
            "attribution": f"credit {HOSTILE}",
        },
    }
    (root / "params" / "other").mkdir(parents=True)
    (root / "params" / "other" / "H01.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    calibration = pd.DataFrame(
        {
            "design": [f"design {HOSTILE}"] * 2,
            "site_type": "other",
            "data_source": "own",
            "outcome": outcome,
            "estimator": ["did", f"est {HOSTILE}"],
            "fake_sites": 29,
            "bias": [0.001, -0.002],
            "rmse": [0.05, 0.04],
            "rejection_rate": [0.05, 0.04],
            "rejection_mc_se": 0.04,
            "median_width": [0.2, 0.18],
            "holds_size": True,
            "chosen": [False, True],
        }
    )
    calibration.to_csv(root / "params" / "calibration.csv", index=False)
    result = run_batch(None, root=root, progress=False)
    assert result.exit_code == 0, result.runs
    return root / "outputs" / "site"


@pytest.mark.e2e
def test_every_published_page_is_templated_and_escapes_a_hostile_name(hostile_site: Path) -> None:
    pages = sorted(hostile_site.glob("*.html"))
    assert {p.name for p in pages} == {
        "H01.html",
        "index.html",
        "programme.html",
        "how-to-read.html",
        "data-dictionary.html",
        "calibration.html",
    }
    for page in pages:
        html = page.read_text()
        assert f'<meta name="generator" content="{GENERATOR}">' in html, f"{page.name} is not from the templates"
        assert "<img src=x" not in html, f"{page.name} carries the hostile markup raw"
    report = (hostile_site / "H01.html").read_text()
    for field in ("Site ", "notes ", "credit ", "adm ", "ward "):  # name, notes, attribution, outcome, unit label
        assert re.search(re.escape(field) + r"&lt;img src=x onerror=alert\(1\)&gt;", report), field
    index = (hostile_site / "index.html").read_text()
    assert f"Site {ESCAPED}" in index and "adm " + ESCAPED in index
    calibration = (hostile_site / "calibration.html").read_text()
    assert f"design {ESCAPED}" in calibration
    assert re.search(re.escape(f"est {ESCAPED}") + r"[^<]* <strong>\(chosen\)</strong>", calibration)
    assert 'href="calibration.html"' in index
    assert scan_pages(hostile_site) == []


@pytest.mark.unit
def test_downloads_are_scanned_like_pages(tmp_path: Path) -> None:
    (tmp_path / "downloads").mkdir()
    (tmp_path / "downloads" / "results.csv").write_text(f"site_id,file\nV04,{tmp_path}/data/secret.csv\n")
    assert scan_pages(tmp_path, tmp_path) == ["results.csv: an absolute path of this machine"]
