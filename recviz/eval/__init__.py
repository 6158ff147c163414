"""Metrics and the two evaluation protocols."""
