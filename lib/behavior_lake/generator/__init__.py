"""Realistic landing-data generator with planted truth (demo, tests, benchmarks)."""
