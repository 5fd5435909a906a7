"""Benchmarks (``./sqi bench [NAME]``): scripts that print figures, never timed tests."""
