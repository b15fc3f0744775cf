"""The worker's metrics runtime: the Temporal SDK's own Prometheus endpoint, when a port is set."""

from __future__ import annotations

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from runtime.errors import StackError
from runtime.logging import temporal_core_logging
from runtime.settings import Settings


def metrics_address(settings: Settings) -> str | None:
    """host:port of the worker's Prometheus endpoint, or None when metrics are off."""
    if not settings.metrics_port:
        return None
    host = settings.metrics_host
    return f"[{host}]:{settings.metrics_port}" if ":" in host else f"{host}:{settings.metrics_port}"


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics (workflow, activity, task-slot and poller
    counters and histograms, prefixed `temporal_`) at http://<metrics_host>:<metrics_port>/metrics,
    or None (the SDK's default runtime, no metrics) when INTERNFLOW_METRICS_PORT is unset or 0.

    Durations are in seconds and counters end in `_total`, as Prometheus names them."""
    address = metrics_address(settings)
    if address is None:
        return None
    try:
        return Runtime(
            telemetry=TelemetryConfig(
                logging=temporal_core_logging(),
                metrics=PrometheusConfig(
                    bind_address=address,
                    counters_total_suffix=True,
                    durations_as_seconds=True,
                ),
            )
        )
    except Exception as error:  # the core raises a bare exception when it cannot bind
        raise StackError(
            f"cannot serve worker metrics on {address} ({error}): set INTERNFLOW_METRICS_PORT to "
            "a free port, or 0 to turn metrics off"
        ) from None
