"""The value of one sample of this process's Prometheus registry, for tests that count what code observed."""

from __future__ import annotations

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """``name``'s value with ``labels`` (0 when nothing was observed under them yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0
