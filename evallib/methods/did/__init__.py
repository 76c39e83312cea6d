"""Difference-in-differences family: two-way fixed effects with placebo inference and the pre-trend test, the
event study, the Poisson rate ratio, Callaway-Sant'Anna for staggered adoption, and the parallel-trends
sensitivity (Rambachan-Roth relative magnitudes) of an event study.

Imports the base and inference only, never another family.
"""
