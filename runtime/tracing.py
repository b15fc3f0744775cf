"""Optional OpenTelemetry tracing of Temporal calls (client, workflows, activities) via OTLP."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from runtime.errors import StackError
from runtime.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from temporalio.client import Interceptor

_lock = threading.Lock()
_providers: dict[str, TracerProvider] = {}


def tracer_provider(endpoint: str) -> TracerProvider:
    """The process's tracer provider exporting to `endpoint`, created on first use (one per
    endpoint); spans leave in batches. It is also made the global provider if none was set."""
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise StackError(
            "INTERNFLOW_OTLP_ENDPOINT is set but OpenTelemetry is not installed: "
            "pip install 'internflow[otel]', or unset INTERNFLOW_OTLP_ENDPOINT"
        ) from None
    with _lock:
        provider = _providers.get(endpoint)
        if provider is None:
            provider = TracerProvider(resource=Resource.create({"service.name": "internflow"}))
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            _providers[endpoint] = provider
            if not _providers.keys() - {endpoint}:
                trace.set_tracer_provider(provider)
        return provider


def tracing_interceptors(settings: Settings) -> list[Interceptor]:
    """Temporal client interceptors that trace every call; workers built on the client inherit
    them. Empty unless INTERNFLOW_OTLP_ENDPOINT is set."""
    if not settings.otlp_endpoint:
        return []
    provider = tracer_provider(settings.otlp_endpoint)
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("internflow"))]


def flush_traces(timeout_millis: int = 5_000) -> None:
    """Send the spans still buffered (before a process exits)."""
    with _lock:
        providers = list(_providers.values())
    for provider in providers:
        provider.force_flush(timeout_millis)
