"""Spans are recorded only while an exporter receives them; ids are made and propagated always."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.propagate import inject
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.span import TraceState

from shared.telemetry import RecordWhileExported


def provider_with(sampler: RecordWhileExported) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_without_an_exporter_spans_are_not_recorded_but_ids_flow() -> None:
    sampler = RecordWhileExported(ALWAYS_ON)
    provider, exporter = provider_with(sampler)
    tracer = provider.get_tracer(__name__)
    with tracer.start_as_current_span("request") as outer, tracer.start_as_current_span("statement") as inner:
        assert not outer.is_recording() and not inner.is_recording()
        assert outer.get_span_context().is_valid  # logs and messages still carry the trace id
        assert inner.get_span_context().trace_id == outer.get_span_context().trace_id
        headers: dict[str, str] = {}
        inject(headers)
        assert headers["traceparent"].split("-")[1] == format(outer.get_span_context().trace_id, "032x")
    assert exporter.get_finished_spans() == ()


def test_a_remote_parent_keeps_its_trace_and_state() -> None:
    provider, _ = provider_with(RecordWhileExported(ALWAYS_ON))
    state = TraceState([("sqi", "1")])
    parent = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=state)
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    with provider.get_tracer(__name__).start_as_current_span("consumer", context=ctx) as span:
        assert span.get_span_context().trace_id == 0xABC
        assert span.get_span_context().trace_state == parent.trace_state


def test_once_exported_the_configured_sampler_decides() -> None:
    sampler = RecordWhileExported(ALWAYS_ON)
    sampler.exporting = True
    provider, exporter = provider_with(sampler)
    with provider.get_tracer(__name__).start_as_current_span("request") as span:
        assert span.is_recording()
    assert [s.name for s in exporter.get_finished_spans()] == ["request"]
    assert "AlwaysOnSampler" in sampler.get_description()
