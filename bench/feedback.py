"""Feedback latency: companies submitting feedback to running internships through the HTTP API,
against Temporal update round trips measured in the same run on the same server.

Three phases of `--seconds` each, with `--companies` concurrent senders: (1) the HTTP API
(`POST /api/internships/{id}/feedback` with the company's party token), (2) the same feedback as a
Temporal update straight from the client (no HTTP), (3) a no-op update on a bare workflow: the
raw round trip. Reported: p50/p95/p99 of accepted answers, and the API's p99 over the raw p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import workflow
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from bench.lifecycle import bench_plan
from models.submissions import Approval, CompanyFeedback
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


async def load(
    senders: int, seconds: float, send: Callable[[int, int], Awaitable[bool]]
) -> dict[str, float]:
    """`senders` loops, each calling send(sender, n) back to back for `seconds`; the latency of
    every accepted call."""
    latencies: list[float] = []
    refused = 0
    errors = 0
    stop = time.monotonic() + seconds

    async def loop(sender: int) -> None:
        nonlocal refused, errors
        n = 0
        while time.monotonic() < stop:
            n += 1
            started = time.perf_counter()
            try:
                accepted = await send(sender, n)
            except (RPCError, OperationRejected, httpx.HTTPError):
                errors += 1  # e.g. the server's deadline passed under load: counted, not timed
                continue
            if accepted:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                refused += 1

    await asyncio.gather(*(loop(s) for s in range(senders)))
    figures = percentiles(latencies)
    figures["per_second"] = round(len(latencies) / seconds, 1)
    figures["refused"] = refused
    figures["errors"] = errors
    return figures


def feedback(sender: int, n: int, tag: str) -> CompanyFeedback:
    return CompanyFeedback(
        submission_id=f"{tag}-{sender}-{n}",
        attendance_hours=8,
        comments="Weekly feedback from the host company.",
    )


async def run(companies: int, seconds: float) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-feedback-"))
    # The API's per-address rate limit would throttle this one-address load test.
    settings = throwaway_settings(state, rate_limit_per_minute=10**9)
    result: dict[str, Any] = {"companies": companies, "seconds_per_phase": seconds}
    try:
        async with EmbeddedStack(settings, start_api=True) as _stack:
            client = await connect_temporal(settings)
            now = datetime.now().astimezone()
            ids = []
            for i in range(companies):
                plan = bench_plan(f"fb-{i:03d}", now + timedelta(seconds=i * 0.01))
                await ops.start_internship(client, settings, plan)
                for party in ("intern", "tutor", "mentor"):
                    await ops.approve(
                        client,
                        plan.internship_id,
                        Approval(submission_id=f"a-{party}", party=party, plan_version=1),
                    )
                ids.append(plan.internship_id)
            secret = load_or_create_secret(settings)
            tokens = [
                make_token(secret, iid, "mentor", "feedback", valid_for=timedelta(hours=2))
                for iid in ids
            ]
            base = f"http://{settings.api_host}:{settings.api_port}"
            limits = httpx.Limits(max_connections=companies, max_keepalive_connections=companies)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
                await _wait_for_api(http)

                async def over_http(sender: int, n: int) -> bool:
                    response = await http.post(
                        f"/api/internships/{ids[sender]}/feedback",
                        json=feedback(sender, n, "h").model_dump(mode="json"),
                        headers={"Authorization": f"Bearer {tokens[sender]}"},
                    )
                    return response.status_code == 200

                result["api"] = await load(companies, seconds, over_http)

            async def over_client(sender: int, n: int) -> bool:
                await ops.submit_feedback(client, ids[sender], feedback(sender, n, "c"))
                return True

            result["client_update"] = await load(companies, seconds, over_client)
            result["raw_update"] = await _raw(client, settings, companies, seconds)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    result["api_p99_over_raw_p99"] = round(
        result["api"]["p99_ms"] / result["raw_update"]["p99_ms"], 2
    )
    return result


async def _wait_for_api(http: httpx.AsyncClient) -> None:
    for _ in range(100):
        try:
            if (await http.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the API did not come up")


async def _raw(client: Client, settings: Settings, senders: int, seconds: float) -> dict[str, Any]:
    queue = f"{settings.task_queue}-ping"
    async with Worker(client, task_queue=queue, workflows=[PingWorkflow]):
        handles = [
            await client.start_workflow(PingWorkflow.run, id=f"ping-{i}", task_queue=queue)
            for i in range(senders)
        ]

        async def ping(sender: int, n: int) -> bool:
            return await handles[sender].execute_update(PingWorkflow.ping, n) == n

        figures = await load(senders, seconds, ping)
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
