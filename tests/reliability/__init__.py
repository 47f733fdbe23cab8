"""Reliability and security suite (issue 12): kills, concurrency, faults, bad input, secrets,
injection. The figures it produces are published in docs/RELIABILITY.md (see report.py)."""
