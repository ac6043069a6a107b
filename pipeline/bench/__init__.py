"""Benchmarks: feature extraction against the machine (make bench), the HTTP service under load."""
