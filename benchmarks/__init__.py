"""Benchmarks: scripts that measure quality and speed and write their table to BENCHMARKS.md."""
