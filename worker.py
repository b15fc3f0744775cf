"""The worker process: connect, register the workflow and its activities, run until stopped."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.worker import Worker

from activities.badge import BadgeActivities
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from badges.keyring import KeyRing
from mail.sending import Mailer
from operations.notices import sweeping_pending_notices
from runtime.availability import unreachable
from runtime.clients import connect_temporal, create_pool, temporal_connection
from runtime.deployment import SERVER_NEEDS, require_secrets
from runtime.errors import StackError
from runtime.logging import configure_logging
from runtime.metrics import metrics_address, metrics_runtime
from runtime.process_exit import exit_now
from runtime.readiness import require_deployment
from runtime.settings import Settings
from runtime.tracing import flush_traces
from workflows.internship import InternshipWorkflow
from workflows.notice import StatusNoticeWorkflow

STICKY_TIMEOUT = timedelta(seconds=3)
"""After a crash, the dead worker's cached workflows are handed to another worker once a task
has waited this long on its sticky queue (the SDK's default is 10 s; decision 0025); the cost is
a cold replay when a worker is slow. A task the dead worker had already taken waits for the
workflow task timeout instead (operations.internships.WORKFLOW_TASK_TIMEOUT)."""


def build_worker(
    client: Client, settings: Settings, pool: asyncpg.Pool, mailer: Mailer | None = None
) -> Worker:
    records = RecordActivities(pool)
    mailer = mailer or Mailer(settings)
    notify = NotifyActivities(pool, mailer)
    # The key ring, loaded once: its active keys sign; after a rotation (and a worker restart)
    # new badges use the new key, and old ones still verify.
    badge = BadgeActivities(pool, mailer, KeyRing.load_or_create(settings.keys_path), settings)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[InternshipWorkflow, StatusNoticeWorkflow],
        activities=[
            records.save_plan,
            records.record_event,
            records.missing_records,
            records.record_events,
            records.append_event,
            notify.send,
            badge.store_badge,
            badge.issue_badge,  # for runs recorded before the badge was issued in two steps
        ],
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        max_cached_workflows=settings.workflow_cache,
    )


async def pool_when_reachable(settings: Settings) -> asyncpg.Pool:
    """The connection pool, once PostgreSQL answers: a worker (re)started while the database is
    down waits for it instead of exiting. Wrong credentials, a certificate that does not verify
    or a missing database still fail at once (a StackError naming the setting, for the first
    two)."""
    log = structlog.get_logger("worker")
    delay = 0.5
    while True:
        try:
            return await create_pool(settings)
        except (OSError, asyncpg.CannotConnectNowError) as down:
            log.warning("database unreachable", error=type(down).__name__, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def client_when_reachable(settings: Settings, runtime: Runtime | None) -> Client:
    """The Temporal client, once Temporal answers: a worker started while it is down (being
    restarted) waits for it, as for the database, instead of exiting."""
    log = structlog.get_logger("worker")
    delay = 0.5
    while True:
        try:
            return await connect_temporal(settings, runtime=runtime)
        except RuntimeError as error:
            if not unreachable(error):
                raise
            # The SDK's words, which name no credential; the first line is enough.
            reason = str(error).splitlines()[0][:300]
            log.warning("temporal unreachable", retry_in=delay, error=reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


async def run_worker(settings: Settings) -> None:
    """The worker process until SIGINT/SIGTERM. Refuses to start (InsecureConfiguration, naming
    each variable) with a missing or public secret key, codec keys or database password, unless
    INTERNFLOW_DEMO=true; (TemporalRefused) when Temporal refuses its credentials; and
    (NotReady, one line naming each problem) without the namespace, a search attribute of the
    right type, the database's migrations or the signing key directory."""
    require_secrets(settings, SERVER_NEEDS)
    log = structlog.get_logger("worker")
    target = temporal_connection(settings)
    log.info("temporal.connecting", temporal=target.describe(), address_from=target.address_from)
    # The SDK's Prometheus endpoint (INTERNFLOW_METRICS_PORT); payload encryption and tracing
    # come with the client (runtime/clients.py) and reach the worker through it.
    client = await client_when_reachable(settings, metrics_runtime(settings))
    pool = await pool_when_reachable(settings)
    try:
        await require_deployment(settings, client, target, pool)
    except BaseException:
        await pool.close()
        raise
    mailer = Mailer(settings)
    try:
        worker = build_worker(client, settings, pool, mailer)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        # Beside it, every worker starts the badges' status notices that wait for Temporal.
        async with worker, sweeping_pending_notices(client, settings, pool):
            log.info(
                "worker running",
                temporal=target.describe(),
                task_queue=settings.task_queue,
                metrics=metrics_address(settings),
                payload_encryption=client.data_converter.payload_codec is not None,
                tracing=bool(settings.otlp_endpoint),
            )
            await stop.wait()
            log.info("worker stopping")
    finally:
        await mailer.close()
        await pool.close()
        flush_traces()


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    try:
        asyncio.run(run_worker(settings))
    except StackError as error:
        structlog.get_logger("worker").error("worker.refused", error=str(error))
        exit_now(2)
    # Not the interpreter's teardown: see exit_now.
    exit_now(0)


if __name__ == "__main__":
    main()
