"""Feedback latency: companies submitting feedback to running internships through the HTTP API,
against Temporal update round trips measured in the same run on the same server.

`--companies` concurrent senders through three interfaces: (1) the HTTP API
(`POST /api/internships/{id}/feedback` with the company's party token), (2) the same feedback as a
Temporal update straight from the client (no HTTP), (3) a no-op update on a bare workflow: the
raw round trip. Each interface gets a warm-up, then `--seconds` of paced load (every company once a
second: the latency a company sees on a busy but not overloaded machine), then `--seconds` back to
back (saturation: the latency is then the machine's capacity, and the CPU each call costs decides
it). Reported: p50/p95/p99 of accepted answers, CPU milliseconds per call in each process, and the
API's p99 over the raw p99.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from temporalio import workflow
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from bench.cpu import CpuWatch
from bench.scale import open_internship, waiting_plan
from models.status import Phase
from models.submissions import CompanyFeedback
from operations import internships as ops
from operations.internships import OperationRejected
from runtime.clients import connect_temporal
from runtime.links import make_token
from runtime.ports import throwaway_settings
from runtime.secret import load_or_create_secret
from runtime.settings import Settings
from runtime.stack import EmbeddedStack


@workflow.defn(sandboxed=False)
class PingWorkflow:
    """Answers a no-op update: the floor of an update round trip on this server."""

    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        await workflow.wait_condition(lambda: self.done)
        return self.count

    @workflow.update
    def ping(self, n: int) -> int:
        self.count += 1
        return n

    @workflow.signal
    def finish(self) -> None:
        self.done = True


def percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)

    return {"count": len(ordered), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


STARTS_IN = 20.0
"""Seconds from the first start call to the internships' start date (room for the approvals)."""
PACE = 1.0
"""Seconds between one company's submissions in the paced phase (50 companies: 50 a second)."""
WARM_UP = 5.0
"""Seconds of unmeasured load before each interface's figures (connections, caches)."""
CALLS = itertools.count()
"""Numbers every call of the run: each feedback is a new submission."""


async def load(
    senders: int,
    seconds: float,
    send: Callable[[int, int], Awaitable[bool]],
    interval: float | None = None,
) -> dict[str, Any]:
    """`senders` loops calling send(sender, n) for `seconds`, each one call every `interval`
    seconds (spread evenly) or, without one, back to back; the latency of every accepted call."""
    latencies: list[float] = []
    refused = 0
    errors = 0
    began = time.monotonic()
    stop = began + seconds

    async def loop(sender: int) -> None:
        nonlocal refused, errors
        due = began + (interval * sender / senders if interval else 0.0)
        while (now := time.monotonic()) < stop:
            if interval:
                await asyncio.sleep(max(0.0, due - now))
                due += interval
            started = time.perf_counter()
            try:
                accepted = await send(sender, next(CALLS))
            except (RPCError, OperationRejected, aiohttp.ClientError):
                errors += 1  # e.g. the server's deadline passed under load: counted, not timed
                continue
            if accepted:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                refused += 1

    await asyncio.gather(*(loop(s) for s in range(senders)))
    figures: dict[str, Any] = percentiles(latencies)
    figures["per_second"] = round(len(latencies) / seconds, 1)
    figures["refused"] = refused
    figures["errors"] = errors
    return figures


async def phases(
    senders: int, seconds: float, send: Callable[[int, int], Awaitable[bool]], cpu: CpuWatch
) -> dict[str, Any]:
    """A warm-up, then the paced load (every sender once per PACE seconds), then the saturating
    one (back to back)."""
    await load(senders, WARM_UP, send)
    figures = {}
    for mode, interval in (("paced", PACE), ("saturated", None)):
        cpu.start()
        figures[mode] = await load(senders, seconds, send, interval)
        figures[mode]["cpu_ms_per_call"] = cpu.figures(figures[mode]["count"])
    return figures


def feedback(sender: int, n: int) -> CompanyFeedback:
    return CompanyFeedback(
        submission_id=f"feedback-{sender}-{n}",
        attendance_hours=8,
        comments="Weekly feedback from the host company.",
    )


async def run(companies: int, seconds: float) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-feedback-"))
    # The API's per-address rate limit would throttle this one-address load test.
    settings = throwaway_settings(state, rate_limit_per_minute=10**9)
    result: dict[str, Any] = {"companies": companies, "seconds_per_phase": seconds}
    try:
        async with EmbeddedStack(settings, start_api=True) as stack:
            client = await connect_temporal(settings)
            # Internships in progress and quiet for weeks: only the feedback loads the stack.
            start = datetime.now().astimezone() + timedelta(seconds=STARTS_IN)
            ids = [f"fb-{i:03d}" for i in range(companies)]
            for i, internship_id in enumerate(ids):
                await open_internship(
                    client, settings, waiting_plan(internship_id, f"company-{i:03d}", start)
                )
            await _wait_in_progress(settings, ids, start)
            cpu = CpuWatch(stack)
            secret = load_or_create_secret(settings)
            tokens = [
                make_token(secret, iid, "mentor", "feedback", valid_for=timedelta(hours=2))
                for iid in ids
            ]
            base = f"http://{settings.api_host}:{settings.api_port}"
            # aiohttp, not httpx: the load generator shares the machine, and httpx cost three
            # times the CPU per request (bench/results.json keeps the driver's CPU per call).
            async with aiohttp.ClientSession(
                base_url=base,
                connector=aiohttp.TCPConnector(limit=companies),
                timeout=aiohttp.ClientTimeout(total=30),
            ) as http:
                await _wait_for_api(http)

                async def over_http(sender: int, n: int) -> bool:
                    async with http.post(
                        f"/api/internships/{ids[sender]}/feedback",
                        json=feedback(sender, n).model_dump(mode="json"),
                        headers={"Authorization": f"Bearer {tokens[sender]}"},
                    ) as response:
                        await response.read()
                        return response.status == 200

                result["api"] = await phases(companies, seconds, over_http, cpu)

            async def over_client(sender: int, n: int) -> bool:
                await ops.submit_feedback(client, ids[sender], feedback(sender, n))
                return True

            result["client_update"] = await phases(companies, seconds, over_client, cpu)
            result["raw_update"] = await _raw(client, settings, companies, seconds, cpu)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    result["api_p99_over_raw_p99"] = {
        mode: round(result["api"][mode]["p99_ms"] / result["raw_update"][mode]["p99_ms"], 2)
        for mode in ("paced", "saturated")
    }
    return result


async def _wait_in_progress(settings: Settings, ids: list[str], start: datetime) -> None:
    await asyncio.sleep(max(0.0, (start - datetime.now().astimezone()).total_seconds()))
    conn = await asyncpg.connect(settings.database_url)
    try:
        for _ in range(600):
            started = await conn.fetchval(
                "SELECT count(*) FROM internships WHERE internship_id = ANY($1) AND phase = $2",
                ids,
                Phase.IN_PROGRESS.value,
            )
            if started == len(ids):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    raise RuntimeError("the internships did not all start")


async def _wait_for_api(http: aiohttp.ClientSession) -> None:
    for _ in range(100):
        try:
            async with http.get("/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not come up")


async def _raw(
    client: Client, settings: Settings, senders: int, seconds: float, cpu: CpuWatch
) -> dict[str, Any]:
    queue = f"{settings.task_queue}-ping"
    async with Worker(client, task_queue=queue, workflows=[PingWorkflow]):
        handles = [
            await client.start_workflow(PingWorkflow.run, id=f"ping-{i}", task_queue=queue)
            for i in range(senders)
        ]

        async def ping(sender: int, n: int) -> bool:
            return await handles[sender].execute_update(PingWorkflow.ping, n) == n

        # The ping worker runs in the driver: its CPU shows as the driver's.
        figures = await phases(senders, seconds, ping, cpu)
        for handle in handles:
            await handle.signal(PingWorkflow.finish)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--companies", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    figures = asyncio.run(run(args.companies, args.seconds))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
