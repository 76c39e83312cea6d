"""Protocol: each site's pre-specified analysis (a params file), its validation and its generator
from the site registry, and where the evaluation project lives on disk.
"""
