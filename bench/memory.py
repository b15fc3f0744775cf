"""Memory per cached internship: what a worker holds for each workflow it keeps in its cache.

The real workflow code on the Temporal dev server with the stand-in activities registered under
the real names (operations/rehearsal.py), in this process, so the worker's resident memory is
this process's. N internships are started and approved: each saves its plan, sends three approval
requests and writes its records, then continues as new to wait for its start date. The growth of
the resident set is divided by N. Beside it, the same for a bare workflow that runs K activities
with inputs of B bytes and then waits: K = 0, and K = 12 with B = 3,000 (about one of our records)
and B = 10. What Temporal's worker keeps per workflow and per activity run, whatever the workflow
is, and how much of that grows with the activity's input (kept for the whole run).

    python -m bench.memory [--internships 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from embedded.temporal_server import temporal_binary
from models.plan import InternshipPlan
from models.submissions import Approval
from operations import internships as ops
from operations.rehearsal import StandIns
from runtime import search_attributes
from runtime.clients import PYDANTIC
from runtime.settings import Settings
from workflows.internship import InternshipWorkflow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
TARGET_MIB = 0.1
RECORD_BYTES = 3000
"""About the size of one record_event input (the event with the status after it)."""
BARE_PARTS = {"bare0": (0, 10), "bare12": (12, RECORD_BYTES), "bare12-tiny": (12, 10)}
"""The bare workflow's parts: (activities, characters of each activity's input)."""


def _rss_mib() -> float:
    gc.collect()
    return float(psutil.Process().memory_info().rss) / 2**20


async def _quiet(count: Callable[[], int], what: str, within: float = 300) -> int:
    """Wait until `count()` has not changed for two seconds (the workflows have gone quiet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    last, since = -1, loop.time()
    while loop.time() < deadline:
        now = count()
        if now != last:
            last, since = now, loop.time()
        elif loop.time() - since >= 2:
            return now
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{what} did not go quiet within {within:.0f} s (at {last})")


async def _fresh_runs(env: WorkflowEnvironment, expected: int, within: float = 120) -> int:
    """Wait until `expected` runs have continued as new (visibility lags a little); how many."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        done = (await env.client.count_workflows("ExecutionStatus='ContinuedAsNew'")).count
        if done >= expected or loop.time() >= deadline:
            return done
        await asyncio.sleep(0.5)


async def _gather(jobs: list[Callable[[], Awaitable[Any]]], concurrency: int = 20) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def one(job: Callable[[], Awaitable[Any]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


async def _internships(env: WorkflowEnvironment, count: int) -> dict[str, Any]:
    stand_ins = StandIns()
    queue = f"memory-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=queue)
    example = InternshipPlan.model_validate_json(EXAMPLE.read_text())
    deadline = datetime.now().astimezone() + timedelta(days=2)

    def job() -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            # Made here and let go: the driver shares this process and must not hold the plans.
            plan = example.retimed(f"m-{uuid.uuid4().hex[:12]}", deadline)
            await ops.start_internship(env.client, settings, plan)
            for party in plan.signatories():
                approval = Approval(submission_id=f"a-{party}", party=party, plan_version=1)
                await ops.approve(env.client, plan.internship_id, approval)

        return run

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[InternshipWorkflow],
        activities=stand_ins.activities(),
        max_cached_workflows=count + 100,
    ):
        await job()()  # warm: imports, first-use caches
        await _quiet(lambda: len(stand_ins.steps), "the first internship")
        before, steps_before = _rss_mib(), len(stand_ins.steps)
        await _gather([job() for _ in range(count)])
        steps = await _quiet(lambda: len(stand_ins.steps), "the internships")
        # Each agreed internship then continues as new to wait for its start date (see
        # InternshipWorkflow._fresh_run_pays): the fresh runs are what stays cached.
        fresh = await _fresh_runs(env, count + 1)
        await _quiet(lambda: int(_rss_mib()), "the worker's memory", within=60)
        after = _rss_mib()
    per = (after - before) / count
    return {
        "internships": count,
        "activities_each": round((steps - steps_before) / count, 1),
        "continued_as_new": fresh,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "mib_per_cached_internship": round(per, 3),
        "target_mib": TARGET_MIB,
        "met": per <= TARGET_MIB,
    }


@activity.defn(name="bench_memory_step")
async def _step(payload: str) -> None:
    return None


@workflow.defn(name="BenchMemoryBare", sandboxed=False)
class _Bare:
    """Runs `activities` activities with inputs of `size` characters one after the other, then
    waits (as a cached workflow)."""

    @workflow.run
    async def run(self, activities: int, size: int = RECORD_BYTES) -> None:
        for _ in range(activities):
            await workflow.execute_activity(
                _step, "r" * size, start_to_close_timeout=timedelta(seconds=30)
            )
        await workflow.wait_condition(lambda: False, timeout=timedelta(days=30))


async def _bare(env: WorkflowEnvironment, count: int, activities: int, size: int) -> dict[str, Any]:
    queue = f"memory-bare-{uuid.uuid4().hex[:8]}"
    done: list[int] = []

    @activity.defn(name="bench_memory_step")
    async def step(payload: str) -> None:
        done.append(len(payload))

    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[_Bare],
        activities=[step],
        max_cached_workflows=count + 100,
    ):

        def job(i: int) -> Callable[[], Awaitable[Any]]:
            return lambda: env.client.start_workflow(
                _Bare.run, args=[activities, size], id=f"bare-{queue}-{i}", task_queue=queue
            )

        await job(0)()
        await _quiet(lambda: len(done), "the first bare workflow", within=60)
        before = _rss_mib()
        await _gather([job(i) for i in range(1, count + 1)])
        await _quiet(lambda: len(done), "the bare workflows")
        await _quiet(lambda: int(_rss_mib()), "the worker's memory", within=60)
        after = _rss_mib()
    return {
        "workflows": count,
        "activities_each": activities,
        "activity_input_bytes": size,
        "kib_per_cached_workflow": round((after - before) / count * 1024, 1),
    }


async def _one(part: str, count: int) -> dict[str, Any]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        namespace="internflow",
        search_attributes=search_attributes.ALL,
        data_converter=PYDANTIC,
    )
    try:
        if part == "internships":
            return await _internships(env, count)
        activities, size = BARE_PARTS[part]
        return await _bare(env, count, activities, size)
    finally:
        await env.shutdown()


def run(count: int) -> dict[str, Any]:
    """Each part in a process of its own: memory a finished part's worker gives back would
    otherwise be counted against the next."""
    parts = {}
    for part in ("internships", *BARE_PARTS):
        child = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--part", part, "--internships", str(count)],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode != 0:
            raise RuntimeError(f"bench.memory part {part} failed: {child.stderr.strip()[-2000:]}")
        parts[part] = json.loads(child.stdout.strip().splitlines()[-1])
    bare = [parts[name] for name in BARE_PARTS]
    kib = {name: parts[name]["kib_per_cached_workflow"] for name in BARE_PARTS}
    per_activity = (kib["bare12"] - kib["bare0"]) / 12
    tiny = (kib["bare12-tiny"] - kib["bare0"]) / 12
    per_byte = (per_activity - tiny) * 1024 / (RECORD_BYTES - BARE_PARTS["bare12-tiny"][1])
    return {
        "internship": parts["internships"],
        "bare": bare,
        "kib_per_activity_run": round(per_activity, 1),
        "kib_per_activity_run_tiny_input": round(tiny, 1),
        "bytes_kept_per_activity_input_byte": round(per_byte, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--internships", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    parser.add_argument("--part", choices=["internships", *BARE_PARTS], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:  # one part, in a child process: its result as one JSON line
        print(json.dumps(asyncio.run(_one(args.part, args.internships))))
        return 0
    result = run(args.internships)
    ours = result["internship"]
    print(
        f"cached internship: {ours['mib_per_cached_internship']:.3f} MiB "
        f"(target {TARGET_MIB} MiB; {ours['activities_each']} activities run each, "
        f"{ours['continued_as_new']} runs continued as new)"
    )
    for bare in result["bare"]:
        print(
            f"bare workflow, {bare['activities_each']} activities: "
            f"{bare['kib_per_cached_workflow']:.1f} KiB"
        )
    print(
        f"kept per activity run: {result['kib_per_activity_run']:.1f} KiB with "
        f"{RECORD_BYTES}-byte inputs; {result['kib_per_activity_run_tiny_input']:.1f} KiB plus "
        f"{result['bytes_kept_per_activity_input_byte']:.2f} bytes per input byte"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    sys.exit(main())
