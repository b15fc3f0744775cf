"""Scale: many internships open at once, waiting between milestones, on one worker.

Measures the start rate (start + three approvals each), the worker's resident memory with all of
them open, and the p50/p99 of a `status` query and of a search by phase and company, both in
Temporal visibility and in PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import random
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from temporalio.client import Client

from bench.cpu import CpuWatch
from cli.demo import EXAMPLE_PLAN
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import Approval
from operations import internships as ops
from runtime.clients import connect_temporal
from runtime.ports import throwaway_settings
from runtime.settings import Settings
from runtime.stack import EmbeddedStack

COMPANIES = 50
OPENING_RATE_GUESS = 15.0
"""Internships opened per second, roughly, on a 2-core machine: sets the common start date."""
MARGIN = timedelta(minutes=1)


@functools.cache
def _example() -> InternshipPlan:
    """The example plan, read once (10,000 plans are made from it)."""
    return InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())


def waiting_plan(internship_id: str, company_id: str, start: datetime) -> InternshipPlan:
    """The example plan under a new id and host company, with its agreement deadline and start
    date both at `start`, so that once approved it waits weeks for its first milestone."""
    example = _example()
    data = example.model_dump()
    data["company"]["id"] = company_id
    data["agreement_deadline"] = example.period.start
    return InternshipPlan.model_validate(data).retimed(internship_id, start)


def scale_plan(index: int, start: datetime) -> InternshipPlan:
    """One of COMPANIES host companies' internships, starting at `start`."""
    return waiting_plan(f"scale-{index:05d}", f"company-{index % COMPANIES:03d}", start)


async def open_internship(client: Client, settings: Settings, plan: InternshipPlan) -> None:
    await ops.start_internship(client, settings, plan)
    for party in ("intern", "tutor", "mentor"):
        await ops.approve(
            client,
            plan.internship_id,
            Approval(submission_id=f"a-{party}", party=party, plan_version=1),
        )


async def timed(calls: list[Any]) -> list[float]:
    """Milliseconds of each awaited call, one after the other."""
    times = []
    for call in calls:
        started = time.perf_counter()
        await call
        times.append((time.perf_counter() - started) * 1000)
    return times


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
    }


async def run(count: int, concurrency: int, samples: int, cache: int | None) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-scale-"))
    settings = throwaway_settings(state, **({"workflow_cache": cache} if cache else {}))
    result: dict[str, Any] = {"internships": count, "workflow_cache": settings.workflow_cache}
    try:
        async with EmbeddedStack(settings) as stack:
            client = await connect_temporal(settings)
            assert stack.worker_pid is not None
            worker = psutil.Process(stack.worker_pid)
            gate = asyncio.Semaphore(concurrency)
            # One start date for all, after the last is opened (if the guess holds): the start rate
            # is measured on its own, then every internship starts and waits for its milestones.
            start = (
                datetime.now().astimezone() + timedelta(seconds=count / OPENING_RATE_GUESS) + MARGIN
            )

            async def one(index: int) -> None:
                async with gate:
                    await open_internship(client, settings, scale_plan(index, start))

            cpu = CpuWatch(stack)
            started = time.monotonic()
            done = 0
            for batch in range(0, count, 500):
                await asyncio.gather(*(one(i) for i in range(batch, min(count, batch + 500))))
                done = min(count, batch + 500)
                print(f"  {done}/{count} started and approved", flush=True)
            seconds = time.monotonic() - started
            result["start_rate_per_second"] = round(count / seconds, 1)
            result["start_seconds"] = round(seconds, 1)
            result["start_cpu_seconds"] = cpu.seconds()

            # Wait until every internship has reached its start date and is in progress.
            await asyncio.sleep(max(0, (start - datetime.now().astimezone()).total_seconds()))
            cpu.start()
            woke = time.monotonic()
            conn = await asyncpg.connect(settings.database_url)
            try:
                for _ in range(600):
                    open_now = await conn.fetchval(
                        "SELECT count(*) FROM internships WHERE phase = $1",
                        Phase.IN_PROGRESS.value,
                    )
                    if open_now >= count:
                        break
                    await asyncio.sleep(1)
                result["in_progress"] = open_now
                result["all_started_seconds"] = round(time.monotonic() - woke, 1)
                result["all_started_cpu_seconds"] = cpu.seconds()
                result["worker_rss_mib"] = round(worker.memory_info().rss / 2**20, 1)

                rng = random.Random(7)
                ids = [f"scale-{rng.randrange(count):05d}" for _ in range(samples)]
                result["status_query"] = percentiles(
                    await timed([ops.status(client, internship_id) for internship_id in ids])
                )
                companies = [f"company-{rng.randrange(COMPANIES):03d}" for _ in range(samples)]

                async def visibility(company: str) -> int:
                    query = f"InternshipPhase = 'in_progress' AND CompanyId = '{company}'"
                    return len([w async for w in client.list_workflows(query, page_size=1000)])

                result["search_temporal_visibility"] = percentiles(
                    await timed([visibility(company) for company in companies])
                )
                result["search_postgresql"] = percentiles(
                    await timed(
                        [
                            conn.fetch(
                                "SELECT internship_id FROM internships "
                                "WHERE phase = 'in_progress' AND company_id = $1",
                                company,
                            )
                            for company in companies
                        ]
                    )
                )
            finally:
                await conn.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--internships", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument(
        "--workflow-cache",
        type=int,
        help="workflows the worker keeps in memory (default: INTERNFLOW_WORKFLOW_CACHE's); a "
        "status query on one outside the cache replays its history",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(
        run(args.internships, args.concurrency, args.samples, args.workflow_cache)
    )
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
