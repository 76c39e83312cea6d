"""Synthetic comparison family: the synthetic control, synthetic difference-in-differences, the simplex solvers
they share, and nearest-neighbour matching of comparison units.

Imports the base and inference only, never another family.
"""
