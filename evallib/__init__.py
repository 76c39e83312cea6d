"""evallib: difference-in-differences and interrupted time series for NHS new care model evaluations.

What an evaluator types is importable from here (``from evallib import DiD``); each
name lives in one layer of the package:

* ``evallib.sources``: loading and validating panels, the bundled NHS data, the site registry;
* ``evallib.methods``: the estimators and their frozen results (nothing NHS-specific);
* ``evallib.protocol``: site params files (the pre-specified protocols) and their generator;
* ``evallib.evaluation``: one site's analysis, its results file, the programme view;
* ``evallib.reporting``: report sections, plots, disclosure control, the static site;
* ``evallib.pipeline``: the batch runner, notebook execution and the command line.

Names are imported on first use, so ``import evallib`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from evallib.errors import DataError, EvalLibError, NotEvaluable, ParamsError

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_PUBLIC: dict[str, str] = {
    # methods
    "DiD": "evallib.methods.did.twfe",
    "DiDResult": "evallib.methods.did.twfe",
    "pretrend_test": "evallib.methods.did.twfe",
    "EventStudy": "evallib.methods.did.event_study",
    "EventStudyResult": "evallib.methods.did.event_study",
    "PoissonDiD": "evallib.methods.did.rate_ratio",
    "RateRatioResult": "evallib.methods.did.rate_ratio",
    "CallawaySantAnna": "evallib.methods.did.staggered",
    "CSResult": "evallib.methods.did.staggered",
    "StackedDiD": "evallib.methods.did.stacked",
    "StackedDiDResult": "evallib.methods.did.stacked",
    "SegmentedITS": "evallib.methods.its.segmented",
    "ControlledITS": "evallib.methods.its.controlled",
    "ControlledITSResult": "evallib.methods.its.controlled",
    "PoissonITS": "evallib.methods.its.poisson",
    "ITSResult": "evallib.methods.its.model",
    "SyntheticControl": "evallib.methods.synth.control",
    "SynthResult": "evallib.methods.synth.control",
    "SyntheticDiD": "evallib.methods.synth.synthetic_did",
    "SDIDResult": "evallib.methods.synth.synthetic_did",
    "match_comparators": "evallib.methods.synth.matching",
    "balance_table": "evallib.methods.synth.matching",
    "random_effects": "evallib.methods.pooling",
    "simulate_panel": "evallib.methods.simulate",
    "simulate_nhs_panel": "evallib.methods.simulate",
    "VolatilityRank": "evallib.methods.inference.volatility",
    "permutation_test": "evallib.methods.inference.permutation",
    "Estimate": "evallib.methods.base.results",
    "TIDY_COLUMNS": "evallib.methods.base.results",
    # sources
    "Panel": "evallib.sources.panel",
    "validate_panel": "evallib.sources.panel",
    "FileSource": "evallib.sources.files",
    "load_file": "evallib.sources.files",
    "BUNDLED": "evallib.sources.bundled",
    "load_bundled": "evallib.sources.bundled",
    "load_registry": "evallib.sources.registry",
    # protocol
    "SiteProtocol": "evallib.protocol.params",
    "load_params": "evallib.protocol.params",
    "find_params": "evallib.protocol.params",
    # evaluation
    "evaluate_site": "evallib.evaluation.site.evaluate",
    "SiteEvaluation": "evallib.evaluation.site.evaluate",
    "write_results": "evallib.evaluation.record.results_file",
    "load_programme": "evallib.evaluation.studies.programme",
    "design_site": "evallib.evaluation.studies.design",
    "SiteDesign": "evallib.evaluation.studies.design",
    # reporting
    "full_report": "evallib.reporting.report",
    "build_site": "evallib.reporting.static_site",
    "results_table": "evallib.reporting.results_table",
    "plot_power_curve": "evallib.reporting.design_page",
    "design_html": "evallib.reporting.design_page",
    # pipeline
    "run_batch": "evallib.pipeline.batch",
}

__all__ = ["DataError", "EvalLibError", "NotEvaluable", "ParamsError", "__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'evallib' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
