"""Operational records: job runs, metrics, drift."""
