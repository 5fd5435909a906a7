"""Tracing and logging for every SQI process: call :func:`configure_telemetry` once at start.

Spans go to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and to any extra exporter
given, e.g. an in-memory one in tests). httpx, asyncpg and aio-pika are instrumented so one
trace runs from the integrator's request through the gateway, the service, the outbox relay
and every consumer.
"""

from __future__ import annotations

import logging
import os
import sys

from opentelemetry import trace
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from pythonjsonlogger.json import JsonFormatter

_configured = False


class _TraceContextFilter(logging.Filter):
    """Adds the current trace and span ids to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = trace.get_current_span().get_span_context()
        record.trace_id = format(ctx.trace_id, "032x") if ctx.is_valid else None
        record.span_id = format(ctx.span_id, "016x") if ctx.is_valid else None
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiormq logs connection chatter at INFO; keep logs for what matters.
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    # httpx logs every request at INFO: the gateway would log each proxied call twice.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def configure_telemetry(
    service: str, *, exporter: SpanExporter | None = None, log_level: str = "INFO", logs: bool = True
) -> TracerProvider:
    """Set up tracing (once per process) and JSON logs carrying trace ids."""
    global _configured
    if logs:
        configure_logging(service, log_level)
    current = trace.get_tracer_provider()
    if _configured and isinstance(current, TracerProvider):
        if exporter is not None:
            current.add_span_processor(SimpleSpanProcessor(exporter))
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()
    AioPikaInstrumentor().instrument()
    _configured = True
    return provider
