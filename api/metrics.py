"""Prometheus metrics of the API: requests per route and status, and internflow's domain figures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import asyncpg
import structlog
from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client
from temporalio.service import RPCError

from models.status import Phase
from runtime.clients import connect_temporal
from runtime.database import application_dsn
from runtime.errors import StackError
from runtime.search_attributes import OVERDUE
from runtime.settings import Settings

log = structlog.get_logger(__name__)

METRICS_PATH = "/metrics"
#: Domain figures are read again at most this often, however often Prometheus scrapes.
REFRESH_INTERVAL = 10.0
#: A source that does not answer within this is reported down for this scrape.
SOURCE_TIMEOUT = 5.0


def overdue_query(settings: Settings) -> str:
    """Visibility query of this deployment's open internships that are overdue."""
    return (
        f'{OVERDUE.name} = true AND ExecutionStatus = "Running" '
        f'AND TaskQueue = "{settings.task_queue}"'
    )


@dataclass
class DomainSnapshot:
    """What the last refresh read; None where its source did not answer."""

    phases: dict[str, int] | None = None
    badges_issued: int | None = None
    email_failures: dict[str, int] | None = None
    overdue: int | None = None
    sources_up: dict[str, bool] = field(default_factory=dict)


class DomainMetrics(Collector):
    """Internships per phase, badges issued and e-mail failures from the application's database
    (the read model every worker writes), and open internships with an overdue milestone from
    Temporal's visibility (the `Overdue` search attribute). Read on scrape, so the figures are
    the same whichever API instance answers and survive restarts; with several API instances,
    aggregate with max(), not sum()."""

    def __init__(self, settings: Settings, temporal: Client | None = None) -> None:
        self._settings = settings
        self._temporal = temporal
        self._snapshot = DomainSnapshot()
        self._read_at = -REFRESH_INTERVAL
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < REFRESH_INTERVAL:
                return
            snapshot = DomainSnapshot()
            await asyncio.gather(self._read_database(snapshot), self._read_temporal(snapshot))
            self._snapshot = snapshot
            self._read_at = time.monotonic()

    async def _read_database(self, snapshot: DomainSnapshot) -> None:
        try:
            async with asyncio.timeout(SOURCE_TIMEOUT):
                conn = await asyncpg.connect(application_dsn(self._settings))
                try:
                    rows = await conn.fetch(
                        "SELECT phase, count(*) AS n FROM internships GROUP BY phase"
                    )
                    badges = await conn.fetchval("SELECT count(*) FROM credentials")
                    mail = await conn.fetchrow(
                        "SELECT count(*) FILTER (WHERE status = 'failed') AS permanent, "
                        "coalesce(sum(greatest(attempts - 1, 0)), 0) AS retried "
                        "FROM notifications"
                    )
                finally:
                    await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("metrics.source_down", source="database", error=type(error).__name__)
            snapshot.sources_up["database"] = False
            return
        snapshot.phases = {phase.value: 0 for phase in Phase}
        snapshot.phases.update({row["phase"]: int(row["n"]) for row in rows})
        snapshot.badges_issued = int(badges)
        snapshot.email_failures = {
            "permanent": int(mail["permanent"]),
            "retried": int(mail["retried"]),
        }
        snapshot.sources_up["database"] = True

    async def _read_temporal(self, snapshot: DomainSnapshot) -> None:
        try:
            async with asyncio.timeout(SOURCE_TIMEOUT):
                if self._temporal is None:
                    self._temporal = await connect_temporal(self._settings)
                counted = await self._temporal.count_workflows(overdue_query(self._settings))
        # connect fails with RuntimeError (down) or StackError (refused, misconfigured)
        except (RPCError, RuntimeError, TimeoutError, StackError) as error:
            log.warning("metrics.source_down", source="temporal", error=type(error).__name__)
            snapshot.sources_up["temporal"] = False
            return
        snapshot.overdue = counted.count
        snapshot.sources_up["temporal"] = True

    def collect(self) -> Iterable[Metric]:
        s = self._snapshot
        up = GaugeMetricFamily(
            "internflow_metrics_source_up",
            "Whether the last read of a source of domain metrics succeeded.",
            labels=["source"],
        )
        for source in ("database", "temporal"):
            up.add_metric([source], 1.0 if s.sources_up.get(source) else 0.0)
        yield up
        if s.phases is not None:
            phases = GaugeMetricFamily(
                "internflow_internships", "Internships by current phase.", labels=["phase"]
            )
            for phase, count in sorted(s.phases.items()):
                phases.add_metric([phase], count)
            yield phases
        if s.overdue is not None:
            yield GaugeMetricFamily(
                "internflow_internships_overdue",
                "Open internships with a milestone past due and still owed.",
                value=s.overdue,
            )
        if s.badges_issued is not None:
            yield CounterMetricFamily(
                "internflow_badges_issued", "Badges (credentials) issued.", value=s.badges_issued
            )
        if s.email_failures is not None:
            failures = CounterMetricFamily(
                "internflow_email_failures",
                "E-mail failures: permanent (refused for good) and retried (attempts that failed "
                "and were tried again).",
                labels=["kind"],
            )
            for kind, count in sorted(s.email_failures.items()):
                failures.add_metric([kind], count)
            yield failures


class RequestMetrics:
    """ASGI middleware: a counter and a latency histogram per method, route template and status.
    Paths are never labels (party links carry tokens); a request no route matched is
    `<unmatched>`."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "internflow_http_requests",
            "HTTP requests answered.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "internflow_http_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["method", "route", "status"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None)
            labels = (scope["method"], template or "<unmatched>", str(status))
            self.requests.labels(*labels).inc()
            self.latency.labels(*labels).observe(time.perf_counter() - started)


def install_metrics(
    app: FastAPI, settings: Settings, *, temporal: Client | None = None
) -> CollectorRegistry:
    """Count and time every request, and serve GET /metrics (Prometheus text format) with the
    request metrics, the domain metrics and the process's own. Call once, before the app starts.
    `temporal` is the app's client if it has one; else one is connected on the first scrape.
    Returns the registry (its own, not prometheus_client's global one)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    domain = DomainMetrics(settings, temporal)
    registry.register(domain)
    app.add_middleware(RequestMetrics, registry=registry)

    @app.get(METRICS_PATH, include_in_schema=False)
    async def metrics() -> Response:
        await domain.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
