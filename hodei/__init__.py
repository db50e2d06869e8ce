"""Hodei: a job execution platform with its own end-to-end diagnostic harness."""

__version__ = "0.1.0"
