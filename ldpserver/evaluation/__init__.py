"""Evaluation-only code (demo and benchmarks): real data sets and heavy-hitter utility metrics.

Not part of the SDK (devices never need it) nor of any protocol: these modules read true
data and must only run in an evaluation harness.
"""
