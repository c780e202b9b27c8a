"""``make bench``: drain, latency, naive baseline, drift windows and dashboard pages on the real broker and
database, medians of 3, written to reports/bench.{json,md}.
"""
