"""Schemas of landing events and of every table."""
