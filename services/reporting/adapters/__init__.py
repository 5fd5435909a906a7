"""Reporting's storage: its own read model in the ``reporting`` schema."""
