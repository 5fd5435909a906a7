"""Feedback's use cases as plain async functions of (command, unit of work, …)."""
