"""Reporting's message handlers: fold other services' events into the read model, in batches."""
