"""The shared base every estimator family stands on: the design (what is compared with what, from when), the
tidy-row contract and the result base class, the panel as arrays, and the plots behind each result's ``plot``.

Imports nothing of the families.
"""
