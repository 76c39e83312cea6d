"""Pipeline: running the evaluation in batch. Preflight checks, notebook execution (kernels or forked
processes, locally or on Dask), staging and publishing, the command line and the helpers notebooks call.
"""
