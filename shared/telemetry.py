"""Tracing and logging for every SQI process: call :func:`configure_telemetry` once at start.

Spans go to OTLP/HTTP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and to any extra exporter
given, e.g. an in-memory one in tests). httpx, asyncpg and aio-pika are instrumented so one
trace runs from the integrator's request through the gateway, the service, the outbox relay
and every consumer.

With no exporter (a development run) spans are not recorded at all: recording them for nobody
cost 17–22 % of the ingest API's, the relay's and the gateway's CPU (``./sqi bench ingest``).
Trace and span ids are still made and propagated, so logs and messages still carry them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes
from pythonjsonlogger.json import JsonFormatter

_configured = False


class RecordWhileExported(Sampler):
    """The configured sampler (``OTEL_TRACES_SAMPLER``) once an exporter receives the spans; until
    then every span is dropped — not recorded, its ids still made and propagated (the parent's
    trace state kept). The SDK's own samplers record whatever the exporters, and with none a
    recorded span is built, timed and thrown away."""

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured
        self.exporting = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if self.exporting:
            return self.configured.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)
        parent = trace.get_current_span(parent_context).get_span_context()
        return SamplingResult(Decision.DROP, None, parent.trace_state if parent.is_valid else None)

    def get_description(self) -> str:
        return f"RecordWhileExported{{{self.configured.get_description()}}}"


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
            _export(current, SimpleSpanProcessor(exporter))
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", service)}))
    provider.sampler = RecordWhileExported(provider.sampler)  # before any tracer takes it
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _export(provider, BatchSpanProcessor(OTLPSpanExporter()))
    if exporter is not None:
        _export(provider, SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    HTTPXClientInstrumentor().instrument()
    AsyncPGInstrumentor().instrument()
    AioPikaInstrumentor().instrument()
    _configured = True
    return provider


def _export(provider: TracerProvider, processor: SpanProcessor) -> None:
    provider.add_span_processor(processor)
    if isinstance(provider.sampler, RecordWhileExported):
        provider.sampler.exporting = True
