"""Hodei's end-to-end diagnostic harness: launchers, probes, driver, evidence and reports."""
