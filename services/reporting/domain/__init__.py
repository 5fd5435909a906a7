"""Reporting's pure logic: no I/O (enforced by import-linter)."""
