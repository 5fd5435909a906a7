"""W3C trace context as text: the traceparent of the current span, and links back to stored ones.

A consumer that applies many messages at once runs in a span of its own, linked to each
message's; scoring stores a traceparent per flagged dossier and its refresh span links to them.
"""

from __future__ import annotations

from collections.abc import Iterable

from opentelemetry import propagate, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_W3C = TraceContextTextMapPropagator()


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (None outside any trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


def links_of(traceparents: Iterable[str | None]) -> list[trace.Link]:
    """Span links to the (valid) W3C traceparents given; the others are skipped."""
    out: list[trace.Link] = []
    for tp in traceparents:
        if not tp:
            continue
        ctx = trace.get_current_span(_W3C.extract({"traceparent": tp})).get_span_context()
        if ctx.is_valid:
            out.append(trace.Link(ctx))
    return out
