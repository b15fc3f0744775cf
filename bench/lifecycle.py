"""Lifecycle throughput: whole internships per minute on one worker, against a bare workflow with
the same timers, updates and no-op activities on the same server.

Each internship: three milestones with a report and company feedback each, two assessments, a
validation and a signed, baked, e-mailed badge; dates compressed so that the worker, not the plan,
sets the pace. The parties act through the same calls the CLI and the API make.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from cli.demo import EXAMPLE_PLAN
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    MilestoneReport,
    Validation,
)
from operations import internships as ops
from operations.records import recorded_phase
from runtime.clients import connect_temporal, create_pool
from runtime.ports import throwaway_settings
from runtime.settings import Settings
from runtime.stack import EmbeddedStack

AGREEMENT_IN = 30.0
"""Seconds from an internship's start call to its agreement deadline (room for the approvals
of every internship started in the same run)."""
LENGTH = 15.0
"""Seconds from an internship's start date to its end date."""


def bench_plan(internship_id: str, now: datetime) -> InternshipPlan:
    """The example plan with every milestone asking for a report and feedback, its agreement
    deadline AGREEMENT_IN seconds from now and its period LENGTH seconds long, with assessment
    and validation windows wide enough never to expire."""
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    factor = LENGTH / (example.period.end - example.period.start).total_seconds()
    plan = example.retimed(internship_id, now + timedelta(seconds=AGREEMENT_IN), factor)
    data = plan.model_dump()
    for milestone in data["milestones"]:
        milestone["submitted_by"] = ("intern", "mentor")
    data["assessment_window"] = timedelta(hours=1)
    data["validation_window"] = timedelta(hours=1)
    data["reminder_policy"]["agreement_reminders"] = ()
    return InternshipPlan.model_validate(data)


async def play(client: Client, pool: asyncpg.Pool, plan: InternshipPlan) -> None:
    """Every party acts as soon as the phase allows: approvals, then reports and feedback (before
    their due dates), then assessments and the validation. Phases are followed in the read model,
    as the demo does: status queries are for people, not polling loops."""
    iid = plan.internship_id
    for party in ("intern", "tutor", "mentor"):
        await ops.approve(
            client, iid, Approval(submission_id=f"a-{party}", party=party, plan_version=1)
        )
    await _until(pool, iid, Phase.IN_PROGRESS)
    for m in plan.milestones:
        await ops.submit_report(
            client,
            iid,
            MilestoneReport(submission_id=f"r-{m.id}", milestone_id=m.id, summary="Done."),
        )
        await ops.submit_feedback(
            client,
            iid,
            CompanyFeedback(
                submission_id=f"f-{m.id}",
                milestone_id=m.id,
                ratings={o.id: "good" for o in plan.learning_outcomes},
                attendance_hours=36,
            ),
        )
    await _until(pool, iid, Phase.EVALUATION)
    for assessor in ("mentor", "tutor"):
        await ops.submit_assessment(
            client,
            iid,
            Assessment(
                submission_id=f"s-{assessor}",
                assessor=assessor,
                levels={o.id: "good" for o in plan.learning_outcomes},
            ),
        )
    await ops.validate(client, iid, Validation(submission_id="v", decision="pass"))
    outcome = await ops.handle_for(client, iid).result()
    assert outcome.phase == Phase.COMPLETED, outcome.reason


async def _until(pool: asyncpg.Pool, internship_id: str, phase: Phase, within: float = 600) -> None:
    for _ in range(int(within / 0.5)):
        async with pool.acquire() as conn:
            recorded = await recorded_phase(conn, internship_id)
        if recorded == phase:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"{internship_id} did not reach {phase.value}")


# ---------------------------------------------------------------- the bare baseline


@activity.defn(name="bare_noop")
async def bare_noop(step: int) -> int:
    return step


@dataclass
class BareSpec:
    activities: int
    updates: int
    timers: int
    start_in: float
    end_in: float


@workflow.defn(sandboxed=False)
class BareWorkflow:
    """As many no-op activities, updates (each recording one no-op activity) and plan waits as an
    internship, with none of its logic."""

    def __init__(self) -> None:
        self.updates = 0

    @workflow.run
    async def run(self, spec: BareSpec) -> int:
        main_activities = spec.activities - spec.updates
        # Timers beyond the two plan waits are started and cancelled, like the milestone ladders'.
        extra = [asyncio.create_task(workflow.sleep(3600)) for _ in range(spec.timers - 2)]
        start = workflow.now() + timedelta(seconds=spec.start_in)
        end = workflow.now() + timedelta(seconds=spec.end_in)
        step = 0
        # Like an internship: approvals, then the start; reports and feedback, then the end;
        # assessments and the validation, then the badge.
        for phase, (updates_so_far, until) in enumerate(((3, start), (9, end), (12, None))):
            for _ in range(main_activities // 3 + (phase < main_activities % 3)):
                step = await workflow.execute_activity(
                    bare_noop, step + 1, start_to_close_timeout=timedelta(seconds=30)
                )
            await workflow.wait_condition(
                lambda target=updates_so_far: self.updates >= target  # type: ignore[misc]
            )
            if until is not None and until > workflow.now():
                await workflow.sleep(until - workflow.now())
        for timer in extra:
            timer.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return step

    @workflow.update
    async def bump(self, n: int) -> int:
        await workflow.execute_activity(bare_noop, n, start_to_close_timeout=timedelta(seconds=30))
        self.updates += 1
        return self.updates


async def play_bare(client: Client, workflow_id: str) -> None:
    handle = client.get_workflow_handle_for(BareWorkflow.run, workflow_id)
    for n in range(12):
        await handle.execute_update(BareWorkflow.bump, n)
    await handle.result()


# ---------------------------------------------------------------- measuring


@dataclass
class Run:
    label: str
    count: int
    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    workflow_tasks: int
    activities: int
    timers: int
    updates: int

    def figures(self) -> dict[str, Any]:
        return {
            "internships_per_minute": round(self.count / self.seconds * 60, 1),
            "workflow_tasks_per_second": round(self.workflow_tasks / self.seconds, 1),
            "activities_per_second": round(self.activities / self.seconds, 1),
            "worker_cpu_seconds_per_internship": round(self.cpu_seconds / self.count, 3),
            "worker_peak_rss_mib": round(self.peak_rss_mib, 1),
            "seconds": round(self.seconds, 1),
            "per_internship": {
                "workflow_tasks": self.workflow_tasks / self.count,
                "activities": self.activities / self.count,
                "timers": self.timers / self.count,
                "updates": self.updates / self.count,
            },
        }


class ProcessWatch:
    """CPU seconds and peak resident memory of one process (the worker)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._cpu0 = sum(self.process.cpu_times()[:2])
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.2)

    def stop(self) -> tuple[float, float]:
        self._task.cancel()
        return sum(self.process.cpu_times()[:2]) - self._cpu0, self.peak / 2**20


async def count_events(client: Client, workflow_ids: list[str]) -> dict[str, int]:
    counts = {"workflow_tasks": 0, "activities": 0, "timers": 0, "updates": 0}
    kinds = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_tasks",
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
        EventType.EVENT_TYPE_TIMER_STARTED: "timers",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
    }
    for workflow_id in workflow_ids:
        async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
            if event.event_type in kinds:
                counts[kinds[event.event_type]] += 1
    return counts


def profile_worker(pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the worker's Python threads for `seconds` (time in the SDK's Rust core
    shows as the Python frame that called into it)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(py_spy) if py_spy.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "50",
            "--format",
            "raw",
            "--output",
            str(output),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# Where a sample's time goes, by the first matching frame from the leaf up.
PROFILE_BUCKETS = (
    ("JSON-LD canonicalization and signing", ("badges/", "pyld/", "cryptography")),
    ("e-mail (templates, MIME, SMTP)", ("jinja2", "email/", "aiosmtplib", "activities/notify")),
    ("PostgreSQL (asyncpg)", ("asyncpg",)),
    ("pydantic (de)serialization", ("pydantic",)),
    ("workflow code and sandbox", ("workflows/", "workflow_sandbox", "importlib")),
    ("Temporal SDK (Python side)", ("temporalio/",)),
    ("Temporal SDK core (Rust) and protobuf", ("temporal_sdk_bridge", "core::", "protobuf")),
    ("asyncio event loop and sockets", ("asyncio/", "selectors")),
)


IDLE_FRAMES = (
    "epoll_wait",
    "select",
    "poll (",
    "_run_once",
    "park",
    "_worker (concurrent/futures/thread.py",
)
"""Leaf frames of a thread waiting for work (the event loop, the SDK's thread pool)."""


def summarize_profile(raw: Path) -> dict[str, float]:
    """Share of the worker's busy samples per bucket (samples of waiting threads left out)."""
    if not raw.exists():
        return {"profile not recorded (is py-spy allowed to attach?)": 0.0}
    totals: dict[str, float] = {}
    busy = 0.0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE_FRAMES):
            continue
        busy += int(count)
        bucket = next(filter(None, map(_bucket_of, reversed(frames))), "other")
        totals[bucket] = totals.get(bucket, 0) + int(count)
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return {name: round(100 * n / busy, 1) for name, n in ranked}


def _bucket_of(frame: str) -> str | None:
    for name, marks in PROFILE_BUCKETS:
        if any(mark in frame for mark in marks):
            return name
    return None


async def measure_ours(
    settings: Settings, stack: EmbeddedStack, count: int, profile: Path | None = None
) -> Run:
    client = await connect_temporal(settings)
    assert stack.worker_pid is not None
    watch = ProcessWatch(stack.worker_pid)
    profiler = profile_worker(stack.worker_pid, 40, profile) if profile else None
    started = time.monotonic()
    plans = []
    for i in range(count):
        plans.append(bench_plan(f"bench-{i:04d}", datetime.now().astimezone()))
        await ops.start_internship(client, settings, plans[-1])
    pool = await create_pool(settings)
    try:
        await asyncio.gather(*(play(client, pool, plan) for plan in plans))
    finally:
        await pool.close()
    seconds = time.monotonic() - started
    cpu, peak = watch.stop()
    if profiler is not None:
        profiler.wait()
    counts = await count_events(client, [ops.handle_for(client, p.internship_id).id for p in plans])
    return Run("internflow", count, seconds, cpu, peak, **counts)


async def measure_bare(settings: Settings, count: int, activities: int, timers: int) -> Run:
    client = await connect_temporal(settings)
    queue = f"{settings.task_queue}-bare"
    process = psutil.Process()
    cpu0 = sum(process.cpu_times()[:2])
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_noop]):
        watch_peak = process.memory_info().rss
        started = time.monotonic()
        ids = [f"bare-{i:04d}" for i in range(count)]
        spec = BareSpec(
            activities=activities,
            updates=12,
            timers=timers,
            start_in=AGREEMENT_IN + 1,
            end_in=AGREEMENT_IN + 1 + LENGTH,
        )
        for workflow_id in ids:
            await client.start_workflow(BareWorkflow.run, spec, id=workflow_id, task_queue=queue)
        await asyncio.gather(*(play_bare(client, w) for w in ids))
        seconds = time.monotonic() - started
        watch_peak = max(watch_peak, process.memory_info().rss)
    # The bare worker shares this process with the driver, so its CPU includes the driver's.
    cpu = sum(process.cpu_times()[:2]) - cpu0
    counts = await count_events(client, ids)
    return Run("bare", count, seconds, cpu, watch_peak / 2**20, **counts)


async def run(count: int, profile: Path | None = None) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-bench-"))
    settings = throwaway_settings(state)
    try:
        async with EmbeddedStack(settings) as stack:
            ours = await measure_ours(settings, stack, count, profile)
            per = ours.figures()["per_internship"]
            bare = await measure_bare(
                settings, count, activities=round(per["activities"]), timers=round(per["timers"])
            )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    o, b = ours.figures(), bare.figures()
    return {
        "internships": count,
        "ours": o,
        "bare": b,
        "ratio_ours_to_bare": round(o["internships_per_minute"] / b["internships_per_minute"], 2),
        **({"worker_profile_percent": summarize_profile(profile)} if profile else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--internships", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", type=Path, help="sample the worker with py-spy (installed separately) here"
    )
    args = parser.parse_args()
    figures = asyncio.run(run(args.internships, args.profile))
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
