"""Benchmarks of closeloop against its in-process sandboxes; each module prints figures and writes JSON results."""
