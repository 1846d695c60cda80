"""Reelbot benchmarks: `python -m bench [scenario ...]` prints a table per scenario and appends it to
docs/benchmarks.md. Not part of the test run (they measure; tests assert behaviour)."""
