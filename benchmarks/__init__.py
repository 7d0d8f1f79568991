"""Benchmarks of berthcache against raw redis-py (not tests; see docs/benchmarks.md)."""
