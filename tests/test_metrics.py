"""Metrics and tracing: the worker's Temporal SDK Prometheus endpoint, the API's request and
domain metrics, and OpenTelemetry spans exported over OTLP/HTTP."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.metrics import install_metrics
from models.status import Phase
from models.submissions import Withdrawal
from operations import internships as ops
from runtime.clients import connect_temporal
from runtime.errors import StackError
from runtime.metrics import metrics_runtime
from runtime.settings import Settings
from runtime.tracing import flush_traces
from tests.conftest import free_port
from tests.helpers import (
    advance_to,
    approve_all,
    clock_held,
    running_worker,
    sample_plan,
    wait_for_phase,
)


def on_env(settings: Settings, env: WorkflowEnvironment, **overrides: Any) -> Settings:
    """The test's settings, pointed at the time-skipping server."""
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "temporal_address": env.client.service_client.config.target_host,
            "temporal_namespace": env.client.namespace,
            **overrides,
        }
    )


def samples(text: str, name: str) -> dict[str, float]:
    """{'<labels>': value} of one metric's samples in Prometheus text format."""
    found = {}
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{.*\}})? (\S+)$", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


def total(text: str, name: str, **labels: str) -> float:
    """The sum of one metric's samples whose labels include `labels`."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(v for k, v in samples(text, name).items() if all(w in k for w in wanted))


async def test_worker_serves_temporal_sdk_metrics_after_an_internship(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    port = free_port()
    configured = on_env(settings, env, metrics_port=port)
    runtime = metrics_runtime(configured)
    assert runtime is not None
    # The worker's own path: connect_temporal with the metrics runtime (worker.run_worker).
    client = await connect_temporal(configured, runtime=runtime)
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    async with running_worker(client, configured, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, configured, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, plan.internship_id, Phase.AWAITING_START)
        await ops.withdraw(
            client,
            plan.internship_id,
            Withdrawal(submission_id="w-1", reason="The company closed the office."),
        )
        assert (await handle.result()).phase == Phase.WITHDRAWN
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text

    queue = configured.task_queue
    assert total(text, "temporal_workflow_completed_total", task_queue=queue) >= 1, text
    assert total(text, "temporal_workflow_task_execution_latency_count", task_queue=queue) >= 1
    # Activities: records and e-mails, each timed.
    for activity in ("save_plan", "record_event", "send_notification"):
        executed = total(
            text,
            "temporal_activity_execution_latency_count",
            task_queue=queue,
            activity_type=activity,
        )
        assert executed >= 1, f"no {activity} in\n{text}"
    assert samples(text, "temporal_worker_task_slots_available")


def test_metrics_runtime_is_off_by_default_and_a_busy_port_is_a_clear_error() -> None:
    assert metrics_runtime(Settings()) is None
    assert metrics_runtime(Settings(metrics_port=0)) is None
    port = free_port()
    first = metrics_runtime(Settings(metrics_port=port))
    assert first is not None
    with pytest.raises(StackError, match=f"127.0.0.1:{port}.*INTERNFLOW_METRICS_PORT"):
        metrics_runtime(Settings(metrics_port=port))


async def test_api_metrics_count_requests_by_route_and_read_domain_figures(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env = time_skipping_env
    configured = on_env(settings, env)
    client = env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    check_in = plan.milestone("check-in")
    assert check_in is not None
    async with running_worker(client, configured, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, configured, plan)
        await approve_all(client, plan)
        # Past the check-in's due date with nothing submitted: overdue.
        await advance_to(
            env, handle, check_in.due + plan.reminder_policy.remind_after + timedelta(hours=1)
        )
        await wait_for_phase(client, plan.internship_id, Phase.IN_PROGRESS)
    await pool.execute(
        "INSERT INTO notifications (notification_id, internship_id, kind, recipient_role, "
        "message_id, status, attempts) VALUES ('n-failed', $1, 'reminder', 'intern', '<m>', "
        "'failed', 3)",
        plan.internship_id,
    )

    app = FastAPI()

    @app.get("/internships/{internship_id}")
    async def read(internship_id: str) -> dict[str, str]:
        return {"internship_id": internship_id}

    install_metrics(app, configured)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        for secret_looking in ("it-1", "tok_abc123"):
            assert (await http.get(f"/internships/{secret_looking}")).status_code == 200
        assert (await http.get("/no/such/page")).status_code == 404
        scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text

    requests = "internflow_http_requests_total"
    assert total(text, requests, route="/internships/{internship_id}", status="200") == 2
    assert total(text, requests, route="<unmatched>", status="404") == 1
    assert total(text, "internflow_http_request_duration_seconds_count", status="200") == 2
    assert "tok_abc123" not in text and "/no/such/page" not in text

    assert samples(text, "internflow_metrics_source_up") == {
        '{source="database"}': 1.0,
        '{source="temporal"}': 1.0,
    }
    assert total(text, "internflow_internships", phase="in_progress") == 1
    assert total(text, "internflow_internships", phase="completed") == 0
    assert total(text, "internflow_internships_overdue") == 1
    assert total(text, "internflow_badges_issued_total") == 0
    assert total(text, "internflow_email_failures_total", kind="permanent") == 1
    assert total(text, "internflow_email_failures_total", kind="retried") >= 2
    assert samples(text, "process_cpu_seconds_total")


async def test_api_metrics_report_a_source_that_is_down(settings: Settings) -> None:
    unreachable = Settings.model_validate(
        {
            **settings.model_dump(),
            "database_url": f"postgresql://nobody@127.0.0.1:{free_port()}/none",
            "temporal_address": f"127.0.0.1:{free_port()}",
        }
    )
    app = FastAPI()
    install_metrics(app, unreachable)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api"
    ) as http:
        scraped = await http.get("/metrics")
    assert scraped.status_code == 200
    assert samples(scraped.text, "internflow_metrics_source_up") == {
        '{source="database"}': 0.0,
        '{source="temporal"}': 0.0,
    }
    assert not samples(scraped.text, "internflow_internships")


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP receiver: keeps every request body it is sent."""

    bodies: list[bytes]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Collector", (_Collector,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", bodies
    finally:
        server.shutdown()
        server.server_close()


async def test_tracing_exports_client_workflow_and_activity_spans_over_otlp(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    otlp_receiver: tuple[str, list[bytes]],
) -> None:
    env = time_skipping_env
    endpoint, bodies = otlp_receiver
    configured = on_env(settings, env, otlp_endpoint=endpoint)
    client = await connect_temporal(configured)
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    async with running_worker(client, configured, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, configured, plan)
        await ops.withdraw(
            client, plan.internship_id, Withdrawal(submission_id="w-1", reason="Moved away.")
        )
        assert (await handle.result()).phase == Phase.WITHDRAWN
    flush_traces()
    exported = b"".join(bodies)
    for span in (b"StartWorkflow:InternshipWorkflow", b"RunWorkflow:InternshipWorkflow"):
        assert span in exported, span
    assert b"RunActivity:save_plan" in exported
    # Span attributes carry ids, never the parties' names or addresses.
    assert plan.intern.email.encode() not in exported
