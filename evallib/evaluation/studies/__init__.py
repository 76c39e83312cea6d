"""Studies across sites: the programme view (every site's results, pooling), NHS England's growth comparison by
care model, and the calibration study (fake sites on the real data).
"""
