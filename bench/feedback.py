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

The internships' agreement deadline is not what is measured, but their start date cannot come
before it: each is approved as soon as it is started (a few at a time), its start STARTS_IN
seconds after its own start call; one a busy machine approves too late is started again with
twice the room. A call that passes its client timeout is counted as an error, not a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from temporalio import workflow
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError
from temporalio.worker import Worker

from bench.cpu import CpuWatch
from bench.lifecycle import resend
from bench.part import Progress, main_for
from bench.scale import waiting_plan
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack, check_workers
from models.status import Phase
from models.submissions import Approval, CompanyFeedback
from operations import internships as ops
from operations.internships import OperationRejected
from runtime.clients import connect_temporal
from runtime.errors import StackError
from runtime.links import make_token
from runtime.secret import load_or_create_secret
from runtime.settings import Settings


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


def percentiles(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:  # nothing accepted (a machine too busy): no latency to give
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)

    return {"count": len(ordered), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99)}


STARTS_IN = 20.0
"""Seconds from an internship's start call to its start date and agreement deadline (room for its
own approvals, sent right after)."""
OPENERS = 8
"""Internships being started and approved at once."""
ATTEMPTS = 3
"""Times an internship is started (each with twice the room) before the run gives up on it."""
CALL_TIMEOUT = 120.0
"""Seconds an HTTP call may take before it counts as an error: far beyond any latency measured."""
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
            except (
                RPCError,
                OperationRejected,
                WorkflowUpdateRPCTimeoutOrCancelledError,
                aiohttp.ClientError,
                TimeoutError,
            ):
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


async def open_approved(
    client: Client, settings: Settings, index: int, gate: asyncio.Semaphore, reopened: list[str]
) -> tuple[str, datetime]:
    """Start company `index`'s internship and approve it at once; if its plan cancelled it first
    (approvals after its deadline on a busy machine), start it again under a new id with twice
    the room. Its id and start date."""
    async with gate:
        for attempt in range(1, ATTEMPTS + 1):
            internship_id = f"fb-{index:03d}" + ("" if attempt == 1 else f"-again{attempt}")
            room = timedelta(seconds=STARTS_IN * 2 ** (attempt - 1))
            start = datetime.now().astimezone() + room
            plan = waiting_plan(internship_id, f"company-{index:03d}", start)
            try:
                await ops.start_internship(client, settings, plan)
                for party in ("intern", "tutor", "mentor"):
                    approval = Approval(submission_id=f"a-{party}", party=party, plan_version=1)
                    await resend(lambda a=approval, i=internship_id: ops.approve(client, i, a))
                return internship_id, start
            except OperationRejected:
                if datetime.now(UTC) < plan.agreement_deadline:
                    raise  # refused for another reason: that is a failure
                reopened.append(internship_id)
    raise RuntimeError(
        f"company {index}: its approvals came after the agreement deadline {ATTEMPTS} times"
    )


async def run(
    companies: int, seconds: float, progress: Progress, workers: int = 1
) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-feedback-"))
    # The API's per-address rate limit would throttle this one-address load test.
    settings = throwaway_settings(state, rate_limit_per_minute=10**9)
    result: dict[str, Any] = {
        "companies": companies,
        "seconds_per_phase": seconds,
        "workers": workers,
    }
    progress.figures = result  # what is measured so far, as it is measured
    try:
        progress.step(f"starting the embedded stack with {workers} worker(s)")
        async with EmbeddedStack(settings, start_api=True, workers=workers) as stack:
            client = await connect_temporal(settings)
            # Internships in progress and quiet for weeks: only the feedback loads the stack.
            progress.step(f"opening {companies} internships")
            gate = asyncio.Semaphore(OPENERS)
            reopened: list[str] = []
            async with asyncio.TaskGroup() as opening:  # one failing stops the others
                tasks = [
                    opening.create_task(open_approved(client, settings, i, gate, reopened))
                    for i in range(companies)
                ]
            opened = [task.result() for task in tasks]
            ids = [internship_id for internship_id, _ in opened]
            progress.record(reopened_after_agreement_deadline=len(reopened))
            progress.step("waiting for every internship to start")
            await _wait_in_progress(settings, ids, max(start for _, start in opened))
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
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT),
            ) as http:
                progress.step("waiting for the HTTP API")
                await _wait_for_api(http)

                async def over_http(sender: int, n: int) -> bool:
                    async with http.post(
                        f"/api/internships/{ids[sender]}/feedback",
                        json=feedback(sender, n).model_dump(mode="json"),
                        headers={"Authorization": f"Bearer {tokens[sender]}"},
                    ) as response:
                        await response.read()
                        return response.status == 200

                progress.step("feedback through the HTTP API")
                result["api"] = await phases(companies, seconds, over_http, cpu)
                progress.save()

            async def over_client(sender: int, n: int) -> bool:
                await ops.submit_feedback(client, ids[sender], feedback(sender, n))
                return True

            progress.step("feedback as Temporal updates")
            result["client_update"] = await phases(companies, seconds, over_client, cpu)
            progress.step("no-op updates (the raw round trip)")
            result["raw_update"] = await _raw(client, settings, companies, seconds, cpu)
            progress.step("stopping the embedded stack")
    finally:
        shutil.rmtree(state, ignore_errors=True)
    result["api_p99_over_raw_p99"] = {
        mode: round(api / raw, 2)
        if (api := result["api"][mode]["p99_ms"]) and (raw := result["raw_update"][mode]["p99_ms"])
        else None
        for mode in ("paced", "saturated")
    }
    return result


async def _wait_in_progress(settings: Settings, ids: list[str], start: datetime) -> None:
    await asyncio.sleep(max(0.0, (start - datetime.now().astimezone()).total_seconds()))
    conn = await asyncpg.connect(settings.database_url)
    deadline = time.monotonic() + 600  # a bound should the run hang, far beyond a busy start
    try:
        while True:
            started = await conn.fetchval(
                "SELECT count(*) FROM internships WHERE internship_id = ANY($1) AND phase = $2",
                ids,
                Phase.IN_PROGRESS.value,
            )
            if started == len(ids):
                return
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise RuntimeError(f"{started} of {len(ids)} internships started within 600 s of their start")


async def _wait_for_api(http: aiohttp.ClientSession, within: float = 300) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            async with http.get("/healthz") as response:
                if response.status == 200:
                    return
        except (aiohttp.ClientConnectionError, TimeoutError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"the API did not answer /healthz within {within:g} s")


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
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes polling the task queue (1-16)"
    )
    args = parser.parse_args()
    try:
        check_workers(args.workers)
    except StackError as error:
        parser.error(str(error))
    main_for(
        "feedback",
        lambda progress: run(args.companies, args.seconds, progress, args.workers),
        args.json,
    )


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
