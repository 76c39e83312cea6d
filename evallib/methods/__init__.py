"""Methods: the estimators (DiD, event studies, rate ratios, staggered adoption, ITS, synthetic control,
matching, pooling), their design-based inference, the tidy-row contract and the panel simulator.

Nothing here knows about NHS sites, params files or HTML: estimators take DataFrames
with named column roles and return frozen results with ``tidy()``.
"""
