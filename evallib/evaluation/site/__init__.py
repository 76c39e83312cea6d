"""One site's analysis: what the data support (coverage, pools), every estimate of each outcome, the robustness
checks and verdict, the answer, ICS waves, and :func:`~evallib.evaluation.site.evaluate.evaluate_site`.
"""
