"""Benchmarks: documented commands, never timed assertions in tests."""
