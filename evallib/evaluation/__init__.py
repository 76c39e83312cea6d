"""Evaluation, in three parts that import one way (import-linter: ``evaluation-parts``).

* ``site``: one site's analysis (coverage and comparison pools, the headline estimators, the analysis of an
  outcome, robustness and its verdict, the volatile-site rule, the answer, ICS waves, :func:`evaluate_site`);
* ``record``: the record of a run (the fingerprint, provenance and the ``results.json`` file);
* ``studies``: studies across sites (the programme view, NHS England's growth comparison, the calibration study).

``record`` and ``studies`` stand on ``site`` and never on each other; ``site`` imports neither.
"""
