"""Memory per cached internship: what a worker holds for each workflow it keeps in its cache.

The real workflow code on the Temporal dev server with the stand-in activities registered under
the real names (operations/rehearsal.py), in this process, so the worker's resident memory is
this process's. Two shapes of internship, N of each:

- `waiting_for_start`: started and approved (each saves its plan, sends three approval requests
  and writes its records), then continued as new to wait for its start date, weeks away;
- `in_progress`: a plan whose start comes as soon as it is agreed and whose first milestone's
  request and reminder go out seconds later (the example plan's later dates and its reminder
  policy unchanged): the internship enters its period, runs that ladder's two steps, then waits
  for the escalation, days away, between milestones.

The growth of the resident set is divided by N. Beside it, the same for a bare workflow that runs
K activities with inputs of B bytes and then waits: K = 0, and K = 12 with B = 3,000 (about one of
our records) and B = 10. What Temporal's worker keeps per workflow and per activity run, whatever
the workflow is, and how much of that grows with the activity's input (kept for the whole run).

Before each reading of the resident set, in every part alike, the heap's free memory is given
back to the system (glibc's `malloc_trim(0)`): what the first runs freed would otherwise count.

What each KiB is: the internship parts and `bare0` run again in a child of their own with
`tracemalloc` (fewer workflows: it is slow), which sorts the Python objects allocated per
workflow by where they were made (the decoded start input, the SDK's workflow instance, the
workflow object, other); the decoded input is split into plan and state by the size of the
objects each reaches. The rest of the resident set is Temporal's core (Rust) and the allocator.
The stand-in activities' own notes (what they would have done) are the benchmark's, not the
worker's: they are left out.

    python -m bench.memory [--internships 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import gc
import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import psutil
from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from embedded.temporal_server import temporal_binary
from models.plan import InternshipPlan, ReminderPolicy
from models.submissions import Approval
from operations import internships as ops
from operations.rehearsal import StandIns
from runtime import search_attributes
from runtime.clients import PYDANTIC
from runtime.settings import Settings
from workflows.internship import InternshipWorkflow

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
RECORD_BYTES = 3000
"""About the size of one record_event input (the event with the status after it)."""
BARE_PARTS = {"bare0": (0, 10), "bare12": (12, RECORD_BYTES), "bare12-tiny": (12, 10)}
"""The bare workflow's parts: (activities, characters of each activity's input)."""
INTERNSHIP_PARTS = ("waiting_for_start", "in_progress")
PARTS = (*INTERNSHIP_PARTS, *BARE_PARTS)
TARGET_RATIO = 1.5
"""A cached internship at most this many times a bare waiting workflow (`bare0`)."""
BREAKDOWN_COUNT = 50
"""Workflows per part in the tracemalloc child (it slows every allocation down)."""
APPROVAL_TIME = timedelta(seconds=30)
"""In progress: from an internship's start request to its agreement deadline, which is also its
start date (its start and three approvals take a few seconds each under load)."""
TO_REQUEST = timedelta(seconds=4)
TO_DUE = timedelta(seconds=8)
"""In progress: from the start date to the first milestone's request, and to its due date (its
reminder: the example's policy reminds on the due date)."""

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


_AT_READING: list[Callable[[str], None]] = []
"""Called with "before" or "after" at a part's two readings (the tracemalloc child's hook)."""


def _rss_mib(mark: str = "") -> float:
    """The resident set after a collection and after the heap gave its free memory back (every
    part alike: what the first runs freed is no workflow's)."""
    gc.collect()
    _LIBC.malloc_trim(0)
    rss = float(psutil.Process().memory_info().rss) / 2**20
    if mark:
        for hook in _AT_READING:
            hook(mark)
    return rss


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


def _in_progress_plan(example: InternshipPlan, internship_id: str, now: datetime) -> InternshipPlan:
    """The example plan, agreed within `APPROVAL_TIME` and starting then, its first milestone's
    request and reminder seconds after the start; its other dates and its policy's other steps as
    the example has them (the escalation days after, the next milestone weeks after)."""
    deadline = now + APPROVAL_TIME
    plan = example.retimed(internship_id, deadline)
    first, *rest = plan.milestones
    due = deadline + TO_DUE
    policy = plan.reminder_policy.model_copy(update={"request_before": TO_DUE - TO_REQUEST})
    return InternshipPlan.model_validate(
        {
            **plan.model_dump(),
            "period": {**plan.period.model_dump(), "start": deadline},
            "milestones": [first.model_copy(update={"due": due}).model_dump()]
            + [m.model_dump() for m in rest],
            "reminder_policy": ReminderPolicy.model_validate(policy.model_dump()).model_dump(),
        }
    )


async def _internships(
    env: WorkflowEnvironment, count: int, shape: str, worker_out: list[Worker] | None = None
) -> dict[str, Any]:
    stand_ins = StandIns()
    queue = f"memory-{uuid.uuid4().hex[:8]}"
    settings = Settings(task_queue=queue)
    example = InternshipPlan.model_validate_json(EXAMPLE.read_text())
    far = datetime.now().astimezone() + timedelta(days=2)

    def job(warm: bool = False) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            # Made here and let go: the driver shares this process and must not hold the plans.
            internship_id = f"m-{uuid.uuid4().hex[:12]}"
            if shape == "waiting_for_start":
                plan = example.retimed(internship_id, far)
            else:
                now = datetime.now().astimezone()
                # The warm-up alone is agreed within a second: its deadline comes sooner.
                soon = APPROVAL_TIME - timedelta(seconds=5)
                plan = _in_progress_plan(example, internship_id, now - soon * warm)
            await ops.start_internship(env.client, settings, plan)
            for party in plan.signatories():
                approval = Approval(submission_id=f"a-{party}", party=party, plan_version=1)
                await ops.approve(env.client, plan.internship_id, approval)

        return run

    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=[InternshipWorkflow],
        activities=stand_ins.activities(),
        max_cached_workflows=count + 100,
        # Named: the SDK would otherwise hash the code of every loaded module (slow traced).
        build_id="bench-memory",
    )
    if worker_out is not None:
        worker_out.append(worker)
    # Each internship continues as new once: the agreed one to wait for its start date (see
    # InternshipWorkflow._fresh_run_pays), the one in progress after its first milestone's
    # reminder (_fresh_run_between_milestones). The fresh runs are what stays cached.
    async with worker:
        await job(warm=True)()  # warm: imports, first-use caches
        await _fresh_runs(env, 1, within=120)
        await _quiet(lambda: len(stand_ins.steps), "the first internship")
        before, steps_before = _rss_mib("before"), len(stand_ins.steps)
        await _gather([job() for _ in range(count)])
        fresh = await _fresh_runs(env, count + 1, within=240)
        steps = await _quiet(lambda: len(stand_ins.steps), "the internships")
        if not tracemalloc.is_tracing():  # traced, the resident set grows with every trace
            await _quiet(lambda: int(_rss_mib()), "the worker's memory", within=60)
        stand_ins.steps.clear()  # the stand-ins' notes are the benchmark's, not the worker's
        after = _rss_mib("after")
    per = (after - before) / count
    return {
        "internships": count,
        "activities_each": round((steps - steps_before) / count, 1),
        "continued_as_new": fresh,
        "rss_before_mib": round(before, 1),
        "rss_after_mib": round(after, 1),
        "mib_per_cached_internship": round(per, 3),
        "kib_per_cached_internship": round(per * 1024, 1),
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


async def _bare(
    env: WorkflowEnvironment,
    count: int,
    activities: int,
    size: int,
    worker_out: list[Worker] | None = None,
) -> dict[str, Any]:
    queue = f"memory-bare-{uuid.uuid4().hex[:8]}"
    done: list[int] = []

    @activity.defn(name="bench_memory_step")
    async def step(payload: str) -> None:
        done.append(len(payload))

    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=[_Bare],
        activities=[step],
        max_cached_workflows=count + 100,
        # Named: the SDK would otherwise hash the code of every loaded module (slow traced).
        build_id="bench-memory",
    )
    if worker_out is not None:
        worker_out.append(worker)
    async with worker:

        def job(i: int) -> Callable[[], Awaitable[Any]]:
            return lambda: env.client.start_workflow(
                _Bare.run, args=[activities, size], id=f"bare-{queue}-{i}", task_queue=queue
            )

        await job(0)()
        await _quiet(lambda: len(done), "the first bare workflow", within=60)
        before = _rss_mib("before")
        await _gather([job(i) for i in range(1, count + 1)])
        await _quiet(lambda: len(done), "the bare workflows")
        if not tracemalloc.is_tracing():  # traced, the resident set grows with every trace
            await _quiet(lambda: int(_rss_mib()), "the worker's memory", within=60)
        after = _rss_mib("after")
    return {
        "workflows": count,
        "activities_each": activities,
        "activity_input_bytes": size,
        "kib_per_cached_workflow": round((after - before) / count * 1024, 1),
    }


async def _one(part: str, count: int, worker_out: list[Worker] | None = None) -> dict[str, Any]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary(),
        namespace="internflow",
        search_attributes=search_attributes.ALL,
        data_converter=PYDANTIC,
    )
    try:
        if part in INTERNSHIP_PARTS:
            return await _internships(env, count, part, worker_out)
        activities, size = BARE_PARTS[part]
        return await _bare(env, count, activities, size, worker_out)
    finally:
        await env.shutdown()


# ----------------------------------------------------------------------- what each KiB is

_DECODING = ("pydantic/", "pydantic_core/", "temporalio/converter.py", "temporalio/contrib/")
_SDK = ("temporalio/",)
_OURS = ("workflows/", "models/")


def _category(frames: list[str]) -> str:
    """Where a Python allocation belongs, by the frames that made it (innermost first)."""
    if any("operations/rehearsal.py" in f for f in frames):
        return "bench"  # the stand-ins' notes: not the worker's
    if any(f.endswith("temporalio/worker/_workflow_instance.py") for f in frames):
        for frame in reversed(frames):  # the innermost first
            if any(part in frame for part in _DECODING):
                return "decoded_input"
            if "/workflows/" in frame or frame.endswith("bench/memory.py"):  # ours, or bare
                return "workflow_object"
        return "sdk_instance"
    if any(f.endswith("bench/memory.py") for f in frames):
        return "bench"  # the driver's
    if any(any(part in f for part in _DECODING) for f in frames):
        return "decoded_input"
    if any(any(part in f for part in _SDK) for f in frames):
        return "sdk_instance"
    return "other"


def _reach(root: object, seen: set[int]) -> int:
    """Bytes of the objects `root` reaches and `seen` does not hold yet (it is shared between
    calls: what several inputs share is counted once). A model's field names are its class's,
    and classes, modules, functions, enum members and singletons are everybody's: not counted."""
    total = 0
    stack = [root]
    everybody = (type, ModuleType, FunctionType, Enum, bool, type(None))
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, everybody):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, BaseModel):
            for part in (obj.__dict__, obj.__pydantic_fields_set__):
                if id(part) not in seen:
                    seen.add(id(part))
                    total += sys.getsizeof(part)
            stack.extend(obj.__dict__.values())
        else:
            stack.extend(gc.get_referents(obj))
    return total


def _split_input(workers: list[Worker]) -> dict[str, float]:
    """The decoded start input of each cached internship: KiB in its plan and in its state."""
    running = workers[0]._workflow_worker._running_workflows  # type: ignore[union-attr]
    seen: set[int] = set()
    plans, states = [], []
    for entry in running.values():
        start = getattr(entry.instance, "_workflow_input", None)
        if start is None or not start.args or not isinstance(start.args[0], BaseModel):
            continue
        plan, state = getattr(start.args[0], "plan", None), getattr(start.args[0], "state", None)
        if plan is None or state is None:
            continue
        plans.append(_reach(plan, seen))
        states.append(_reach(state, seen))
    if not plans:
        return {}
    return {
        "plan": round(sum(plans) / len(plans) / 1024, 1),
        "state": round(sum(states) / len(states) / 1024, 1),
    }


async def _breakdown_one(part: str, count: int) -> dict[str, Any]:
    """The part again with tracemalloc: KiB of Python objects per cached workflow, by category.
    Taken while the worker still runs (`tracemalloc` from the warm-up on: the difference between
    the snapshot before the N workflows and the one after)."""
    tracemalloc.start(12)
    workers: list[Worker] = []
    snapshots: dict[str, tracemalloc.Snapshot] = {}
    split: dict[str, float] = {}

    def reading(mark: str) -> None:
        snapshots[mark] = tracemalloc.take_snapshot()
        if mark == "after" and workers and part in INTERNSHIP_PARTS:
            split.update(_split_input(workers))

    _AT_READING.append(reading)
    try:
        await _one(part, count, workers)
    finally:
        _AT_READING.remove(reading)
        tracemalloc.stop()
    categories: dict[str, float] = {}
    diff = snapshots["after"].compare_to(snapshots["before"], "traceback")
    for stat in diff:
        frames = [frame.filename for frame in stat.traceback]
        name = _category(frames)
        categories[name] = categories.get(name, 0.0) + stat.size_diff
    kib = {name: round(size / count / 1024, 1) for name, size in sorted(categories.items())}
    kib.pop("bench", None)
    return {
        "workflows": count,
        "python_kib": kib,
        "python_kib_total": round(sum(kib.values()), 1),
        "decoded_input_kib": split,
    }


def _child(part: str, count: int, breakdown: bool = False) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.memory", "--part", part, "--internships", str(count)]
    if breakdown:
        command.append("--breakdown")
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"bench.memory part {part} failed: {child.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def run(count: int, breakdown_count: int = BREAKDOWN_COUNT) -> dict[str, Any]:
    """Each part in a process of its own: memory a finished part's worker gives back would
    otherwise be counted against the next."""
    parts = {part: _child(part, count) for part in PARTS}
    bare = [parts[name] for name in BARE_PARTS]
    kib = {name: parts[name]["kib_per_cached_workflow"] for name in BARE_PARTS}
    per_activity = (kib["bare12"] - kib["bare0"]) / 12
    tiny = (kib["bare12-tiny"] - kib["bare0"]) / 12
    per_byte = (per_activity - tiny) * 1024 / (RECORD_BYTES - BARE_PARTS["bare12-tiny"][1])
    what: dict[str, Any] = {}
    for part in (*INTERNSHIP_PARTS, "bare0"):
        found = _child(part, min(count, breakdown_count), breakdown=True)
        measured = parts[part].get(
            "kib_per_cached_internship", parts[part].get("kib_per_cached_workflow")
        )
        found["rss_kib"] = measured
        found["core_and_allocator_kib"] = round(measured - found["python_kib_total"], 1)
        what[part] = found
    internships = {}
    for part in INTERNSHIP_PARTS:
        ours = parts[part]
        ratio = ours["kib_per_cached_internship"] / kib["bare0"]
        internships[part] = {
            **ours,
            "ratio_to_bare0": round(ratio, 2),
            "target_ratio": TARGET_RATIO,
            "met": ratio <= TARGET_RATIO,
        }
    return {
        "internship": internships["waiting_for_start"],
        "in_progress": internships["in_progress"],
        "what_each_kib_is": what,
        "bare": bare,
        "kib_per_activity_run": round(per_activity, 1),
        "kib_per_activity_run_tiny_input": round(tiny, 1),
        "bytes_kept_per_activity_input_byte": round(per_byte, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--internships", type=int, default=500)
    parser.add_argument(
        "--breakdown-internships",
        type=int,
        default=BREAKDOWN_COUNT,
        help="workflows per part in the tracemalloc child (at most --internships)",
    )
    parser.add_argument("--json", type=Path, help="also write the result to this file")
    parser.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)
    parser.add_argument("--breakdown", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.part:  # one part, in a child process: its result as one JSON line
        one = _breakdown_one if args.breakdown else _one
        print(json.dumps(asyncio.run(one(args.part, args.internships))), flush=True)
        # Its figures are out: leave without the interpreter's finalization, during which the
        # SDK's runtime thread can still take the GIL and abort the process (seen once in five
        # runs: "PyGILState_Release ... finalizing"), which would count the part as failed.
        os._exit(0)
    result = run(args.internships, args.breakdown_internships)
    bare0 = result["bare"][0]["kib_per_cached_workflow"]
    for label, ours in (
        ("waiting for its start", result["internship"]),
        ("in progress", result["in_progress"]),
    ):
        print(
            f"cached internship {label}: {ours['kib_per_cached_internship']:.1f} KiB, "
            f"{ours['ratio_to_bare0']:.2f}x a bare waiting workflow ({bare0:.1f} KiB; target "
            f"{TARGET_RATIO}x; {ours['activities_each']} activities run each, "
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
    for part, found in result["what_each_kib_is"].items():
        python = ", ".join(f"{name} {kib}" for name, kib in found["python_kib"].items())
        split = ", ".join(f"{name} {kib}" for name, kib in found["decoded_input_kib"].items())
        split = f"; decoded input: {split}" if split else ""
        print(
            f"what each KiB is, {part} ({found['workflows']} under tracemalloc): Python "
            f"{found['python_kib_total']} KiB ({python}{split}), core and allocator "
            f"{found['core_and_allocator_kib']} KiB of {found['rss_kib']} KiB"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    sys.exit(main())
