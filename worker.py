"""The worker process: connect, register the workflow and its activities, run until stopped."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.badge import BadgeActivities
from activities.notify import Mailer, NotifyActivities
from activities.records import RecordActivities
from badges.keys import load_or_create_signing_key
from runtime.clients import connect_temporal, create_pool
from runtime.logging import configure_logging
from runtime.settings import Settings
from workflows.internship import InternshipWorkflow


def build_worker(client: Client, settings: Settings, pool: asyncpg.Pool) -> Worker:
    records = RecordActivities(pool)
    mailer = Mailer(settings)
    notify = NotifyActivities(pool, mailer)
    badge = BadgeActivities(pool, mailer, load_or_create_signing_key(settings.keys_path), settings)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[InternshipWorkflow],
        activities=[records.save_plan, records.record_event, notify.send, badge.issue_badge],
        # After a crash, the dead worker's cached workflows are handed to another worker once this
        # passes (the SDK's default is 10 s); the cost is a cold replay when a worker is slow.
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=3),
    )


async def run_worker(settings: Settings) -> None:
    log = structlog.get_logger("worker")
    client = await connect_temporal(settings)
    pool = await create_pool(settings)
    try:
        worker = build_worker(client, settings, pool)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with worker:
            log.info("worker running", task_queue=settings.task_queue)
            await stop.wait()
            log.info("worker stopping")
    finally:
        await pool.close()


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(run_worker(settings))


if __name__ == "__main__":
    main()
