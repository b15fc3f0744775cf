"""Lifecycle throughput: whole internships per minute on one worker (or `--workers N`), against a
bare workflow with the same timers, updates and no-op activities on the same server.

Each internship: three milestones with a report and company feedback each, two assessments, a
validation and a signed, baked, e-mailed badge; dates compressed so that the worker, not the plan,
sets the pace. The parties act through the same calls the CLI and the API make.

The agreement deadline is not what is measured, but a plan's start cannot come before it: each
internship is approved as soon as it is started (a few at a time), with its deadline on its start
date, AGREEMENT_IN seconds after its own start call. One that a busy machine still approves too
late is cancelled by its plan: it is started again under a new id with twice the room, and
counted (`reopened_after_agreement_deadline`), so the figures get worse, and the run goes on.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import psutil
from pydantic import SecretStr
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.worker import Worker

from bench.cpu import CpuWatch
from bench.part import Progress, main_for
from cli.demo import EXAMPLE_PLAN
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack, check_workers, settings_environment, worker_name
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
from operations.internships import OperationRejected
from records.read import recorded_phase
from runtime.clients import connect_temporal, create_pool, for_embedded_stack
from runtime.errors import StackError
from runtime.settings import Settings
from tests.grpc_proxy import GrpcTlsProxy, make_pki, nginx_binary

T = TypeVar("T")

AGREEMENT_IN = 30.0
"""Seconds from an internship's start call to (a little before) its start date, which is also its
agreement deadline: room for its own three approvals, sent right after the start call."""
LENGTH = 15.0
"""Seconds from an internship's start date to its end date."""
LADDER_AFTER = timedelta(hours=1)
"""How long after a milestone's due date its first reminder would go: beyond any run."""
OPENERS = 8
"""Internships being started and approved at once."""
PROFILED = 60
"""Internships of the pass sampled by py-spy (`--profile`), after the measured ones."""
ATTEMPTS = 3
"""Times an internship is started (each with twice the room of the one before) before the run
gives up on it."""


def bench_plan(
    internship_id: str, now: datetime, agreement_in: float = AGREEMENT_IN
) -> InternshipPlan:
    """The example plan with every milestone asking for a report and feedback, its period LENGTH
    seconds long starting a little over `agreement_in` seconds from now (the example's days
    between deadline and start, compressed), its agreement deadline on its start date, and
    assessment and validation windows wide enough never to expire.

    Each milestone's request goes out (compressed, before its due date), but its reminder,
    escalation and "missed" steps sit LADDER_AFTER past the due date, beyond the run: compressed,
    they came fractions of a second after it, so a party that a busy machine made a little late
    set off e-mails the benchmark never meant to measure (37 activities per internship on a slow
    day against 28 on a fast one), and a slower machine did more work per internship."""
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    factor = LENGTH / (example.period.end - example.period.start).total_seconds()
    plan = example.retimed(internship_id, now + timedelta(seconds=agreement_in), factor)
    data = plan.model_dump()
    data["agreement_deadline"] = plan.period.start  # the latest a plan allows
    for milestone in data["milestones"]:
        milestone["submitted_by"] = ("intern", "mentor")
    data["assessment_window"] = timedelta(hours=1)
    data["validation_window"] = timedelta(hours=1)
    data["reminder_policy"]["agreement_reminders"] = ()
    data["reminder_policy"]["remind_after"] = LADDER_AFTER
    data["reminder_policy"]["escalate_after"] = 2 * LADDER_AFTER
    data["reminder_policy"]["missed_after"] = 3 * LADDER_AFTER
    return InternshipPlan.model_validate(data)


TRANSIENT = (
    "aborted",
    "deadline exceeded",
    "timed out",
    "timeout",
    "unavailable",
    "workflow task in failed state",
)
"""Words of a refusal that a busy server gives and takes back (an update it dropped when a
workflow task timed out, or refused while a workflow task was being retried): the call is sent
again, and counted."""
RESENT: Counter[str] = Counter()
"""Calls sent again, by the refusal that made them (the figures report them)."""


async def resend(call: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """A party's call, sent again when a busy server drops it or does not answer in time (its
    submission id makes a second send answer with the first receipt), up to `attempts` times."""
    for attempt in range(1, attempts + 1):
        try:
            return await call()
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            if attempt == attempts:
                raise
            RESENT["no answer in time"] += 1
        except OperationRejected as error:
            words = [word for word in TRANSIENT if word in str(error).lower()]
            if attempt == attempts or not words:
                raise
            RESENT[words[0]] += 1
        await asyncio.sleep(attempt)
    raise AssertionError("unreachable")


@dataclass
class Opening:
    """How opening the internships went: how many had to be started again."""

    reopened: int = 0


async def open_approved(
    client: Client, settings: Settings, index: int, gate: asyncio.Semaphore, opening: Opening
) -> InternshipPlan:
    """Start internship `index` and send its three approvals at once (OPENERS at a time). If its
    plan cancelled it first (the approvals came after its deadline on a busy machine), start it
    again under a new id with twice the room; give up after ATTEMPTS."""
    async with gate:
        for attempt in range(1, ATTEMPTS + 1):
            suffix = "" if attempt == 1 else f"-again{attempt}"
            plan = bench_plan(
                f"bench-{index:04d}{suffix}",
                datetime.now().astimezone(),
                AGREEMENT_IN * 2 ** (attempt - 1),
            )
            try:
                await ops.start_internship(client, settings, plan)
                for party in ("intern", "tutor", "mentor"):
                    approval = Approval(submission_id=f"a-{party}", party=party, plan_version=1)
                    iid = plan.internship_id
                    await resend(lambda a=approval, i=iid: ops.approve(client, i, a))
                return plan
            except OperationRejected:
                if datetime.now(UTC) < plan.agreement_deadline:
                    raise  # refused for another reason: that is a failure
                opening.reopened += 1
    raise RuntimeError(
        f"bench-{index:04d}: its approvals came after its agreement deadline {ATTEMPTS} times "
        f"(the last with {AGREEMENT_IN * 2 ** (ATTEMPTS - 1):g} s of room)"
    )


async def play(client: Client, pool: asyncpg.Pool, plan: InternshipPlan) -> Phase:
    """Once approved, every party acts as soon as the phase allows: reports and feedback (before
    their due dates, or late on a busy machine), then assessments and the validation. Phases are
    followed in the read model, as the demo does: status queries are for people, not polling
    loops. Returns the phase the internship ended in."""
    iid = plan.internship_id
    reached = await _until(pool, iid, {Phase.IN_PROGRESS, Phase.EVALUATION})
    if reached.is_final:
        return reached
    ratings = {o.id: "good" for o in plan.learning_outcomes}
    for m in plan.milestones:
        report = MilestoneReport(submission_id=f"r-{m.id}", milestone_id=m.id, summary="Done.")
        await resend(lambda r=report: ops.submit_report(client, iid, r))
        feedback = CompanyFeedback(
            submission_id=f"f-{m.id}", milestone_id=m.id, ratings=ratings, attendance_hours=36
        )
        await resend(lambda f=feedback: ops.submit_feedback(client, iid, f))
    reached = await _until(pool, iid, {Phase.EVALUATION})
    if reached.is_final:
        return reached
    for assessor in ("mentor", "tutor"):
        assessment = Assessment(submission_id=f"s-{assessor}", assessor=assessor, levels=ratings)
        await resend(lambda a=assessment: ops.submit_assessment(client, iid, a))
    validation = Validation(submission_id="v", decision="pass")
    await resend(lambda: ops.validate(client, iid, validation))
    outcome = await ops.handle_for(client, iid).result()
    return outcome.phase


async def _until(
    pool: asyncpg.Pool, internship_id: str, phases: set[Phase], within: float = 1800
) -> Phase:
    """The recorded phase once it is one of `phases` or a final one (at most `within` seconds:
    a bound should the run hang, far beyond an internship's length)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with pool.acquire() as conn:
            recorded = await recorded_phase(conn, internship_id)
        if recorded is not None and (recorded in phases or recorded.is_final):
            return recorded
        await asyncio.sleep(0.5)
    wanted = " or ".join(sorted(phase.value for phase in phases))
    raise TimeoutError(f"{internship_id} did not reach {wanted} within {within:g} s")


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


async def play_bare(
    client: Client, workflow_id: str, spec: BareSpec, queue: str, gate: asyncio.Semaphore
) -> None:
    """Started and given its first three updates (the approvals) OPENERS at a time, as the
    internships are; then the other nine."""
    async with gate:
        await client.start_workflow(BareWorkflow.run, spec, id=workflow_id, task_queue=queue)
        handle = client.get_workflow_handle_for(BareWorkflow.run, workflow_id)
        for n in range(3):
            await handle.execute_update(BareWorkflow.bump, n)
    for n in range(3, 12):
        await handle.execute_update(BareWorkflow.bump, n)
    await handle.result()


# ---------------------------------------------------------------- measuring


@dataclass
class Run:
    label: str
    count: int
    """Internships (or bare workflows) that completed."""
    seconds: float
    cpu_seconds: float
    """CPU seconds of the worker processes together."""
    peak_rss_mib: float
    """The largest peak resident memory of a worker process."""
    workflow_tasks: int
    activities: int
    timers: int
    updates: int
    extra: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        count = max(self.count, 1)
        return {
            "internships_per_minute": round(self.count / self.seconds * 60, 1),
            "workflow_tasks_per_second": round(self.workflow_tasks / self.seconds, 1),
            "activities_per_second": round(self.activities / self.seconds, 1),
            "worker_cpu_seconds_per_internship": round(self.cpu_seconds / count, 3),
            "worker_peak_rss_mib": round(self.peak_rss_mib, 1),
            "seconds": round(self.seconds, 1),
            "per_internship": {
                "workflow_tasks": self.workflow_tasks / count,
                "activities": self.activities / count,
                "timers": self.timers / count,
                "updates": self.updates / count,
            },
            **self.extra,
        }


class PeakMemory:
    """Peak resident memory of each of some processes (the workers), sampled every 0.2 s; a
    process that exits keeps its peak."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peaks = dict.fromkeys(pids, 0)
        self._task = asyncio.create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            for name, process in self.processes.items():
                try:
                    self.peaks[name] = max(self.peaks[name], process.memory_info().rss)
                except psutil.Error:
                    pass
            await asyncio.sleep(0.2)

    def stop(self) -> dict[str, float]:
        """Peak MiB by process."""
        self._task.cancel()
        return {name: round(peak / 2**20, 1) for name, peak in self.peaks.items()}


async def count_events(client: Client, workflow_ids: list[str]) -> dict[str, int]:
    """Events of every run of each workflow (a run that continued as new included)."""
    counts = {"workflow_tasks": 0, "activities": 0, "timers": 0, "updates": 0}
    kinds = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: "workflow_tasks",
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activities",
        EventType.EVENT_TYPE_TIMER_STARTED: "timers",
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "updates",
    }
    for workflow_id in workflow_ids:
        run_id: str | None = None  # the latest run, then each run it continued, back to the first
        while True:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            run_id = None
            async for event in handle.fetch_history_events():
                started = event.workflow_execution_started_event_attributes
                run_id = run_id or started.continued_execution_run_id or None
                if event.event_type in kinds:
                    counts[kinds[event.event_type]] += 1
            if run_id is None:
                break
    return counts


def profile_worker(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the worker's Python threads until interrupted (time in the SDK's Rust core
    shows as the Python frame that called into it)."""
    py_spy = Path(sys.executable).parent / "py-spy"
    return subprocess.Popen(
        [
            str(py_spy) if py_spy.exists() else "py-spy",
            "record",
            "--pid",
            str(pid),
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


def stop_profile(profiler: subprocess.Popen[bytes]) -> None:
    """py-spy writes its samples when interrupted, as after Ctrl-C."""
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()


# Where a sample's time goes, by the first matching frame from the leaf up.
PROFILE_BUCKETS = (
    ("wallet offer QR code (segno)", ("segno/",)),
    ("JSON-LD canonicalization and signing", ("badges/", "pyld/", "cryptography")),
    (
        "e-mail (templates, MIME, SMTP)",
        ("jinja2", "email/", "aiosmtplib", "activities/notify", "mail/"),
    ),
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


@dataclass
class ProductionPath:
    """What production adds between the worker and Temporal, beside the embedded stack: a
    TLS-terminating gRPC proxy (Debian's nginx, as the secured-Temporal tests run it) that
    requires a client certificate, and payload encryption (a codec key). Its own worker process
    (`python -m worker`, configured as production configures it: Temporal's TEMPORAL_TLS_*
    variables) polls a task queue of its own; this driver's client goes through the proxy too."""

    proxy_pid: int
    worker: asyncio.subprocess.Process
    client: Client
    settings: Settings


@contextlib.asynccontextmanager
async def production_path(settings: Settings, within: float = 120) -> AsyncIterator[ProductionPath]:
    directory = settings.state_dir / "production-path"
    pki = make_pki(directory / "pki")
    keys = json.dumps({"bench": base64.b64encode(secrets.token_bytes(32)).decode()})
    no_config = directory / "temporal.toml"  # no profile: a developer's own file is not read
    no_config.write_text("")
    temporal = {
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_cert),
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        "TEMPORAL_CONFIG_FILE": str(no_config),
    }
    with GrpcTlsProxy(directory / "nginx", pki, settings.temporal_address) as proxy:
        assert proxy.pid is not None
        secured = for_embedded_stack(settings).model_copy(
            update={
                "temporal_address": proxy.mtls_address,
                "temporal_client_config": True,
                "task_queue": f"{settings.task_queue}-tls",
                "codec_keys": SecretStr(keys),
                "demo": True,
            }
        )
        env = {**settings_environment(secured), **temporal}
        env.pop("INTERNFLOW_DATABASE_OWNER_URL", None)
        log = (settings.state_dir / "logs" / "worker-production-path.log").open("ab")
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "worker", env=env, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        saved = {key: os.environ.get(key) for key in temporal}
        os.environ.update(temporal)  # this driver's client reads Temporal's configuration
        try:
            client = await connect_temporal(secured)
            await _until_polled(client, secured.task_queue, worker, within)
            yield ProductionPath(proxy.pid, worker, client, secured)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if worker.returncode is None:
                worker.terminate()
                try:
                    async with asyncio.timeout(30):
                        await worker.wait()
                except TimeoutError:
                    worker.kill()
                    await worker.wait()


async def _until_polled(
    client: Client, queue: str, worker: asyncio.subprocess.Process, within: float
) -> None:
    """Until the worker polls its task queue (Temporal lists its poller)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if worker.returncode is not None:
            raise RuntimeError(f"the production path's worker exited ({worker.returncode})")
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        if described.pollers:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the production path's worker did not poll within {within:g} s")


async def measure_ours(
    settings: Settings,
    stack: EmbeddedStack,
    count: int,
    progress: Progress,
    profile: Path | None = None,
    first: int = 0,
    path: ProductionPath | None = None,
) -> Run:
    """`count` internships numbered from `first`; with `profile`, the first worker sampled by
    py-spy meanwhile (with several, each does the same work); with `path`, through its proxy,
    by its worker (the stack's own then idle), and with its client."""
    if path is None:
        client = await connect_temporal(settings)
        workers = {worker_name(i): pid for i, pid in enumerate(stack.worker_pids)}
        cpu = CpuWatch(stack)
    else:
        settings, client = path.settings, path.client
        workers = {"worker": path.worker.pid}
        cpu = CpuWatch(stack, {"worker": path.worker.pid, "nginx (TLS proxy)": path.proxy_pid})
    memory = PeakMemory(workers)
    profiler = profile_worker(stack.worker_pids[0], profile) if profile else None
    gate = asyncio.Semaphore(OPENERS)
    opening = Opening()
    pool = await create_pool(settings)
    started = time.monotonic()
    finished: dict[str, int] = {}
    plans: list[InternshipPlan] = []  # those that completed

    async def one(index: int) -> None:
        plan = await open_approved(client, settings, first + index, gate, opening)
        phase = await play(client, pool, plan)
        if phase == Phase.COMPLETED:
            plans.append(plan)
        finished[phase.value] = finished.get(phase.value, 0) + 1
        if sum(finished.values()) % 25 == 0:
            progress.record(ours_so_far={"ended": finished, "seconds": time.monotonic() - started})

    try:
        what = "profiled with py-spy" if profile else f"on {len(workers)} worker(s)"
        if path is not None:
            what += " through a TLS proxy (mTLS), payloads encrypted"
        progress.step(f"ours: {count} internships {what}")
        async with asyncio.TaskGroup() as internships:  # one failing stops the others
            for i in range(count):
                internships.create_task(one(i))
    finally:
        await pool.close()
        if profiler is not None:
            stop_profile(profiler)
    seconds = time.monotonic() - started
    by_process = cpu.seconds()
    peaks = memory.stop()
    progress.step("ours: counting history events")
    completed = finished.get(Phase.COMPLETED.value, 0)
    counts = await count_events(client, [ops.handle_for(client, p.internship_id).id for p in plans])
    return Run(
        "internflow" if path is None else "internflow, production path",
        completed,
        seconds,
        sum(by_process[name] for name in workers),
        max(peaks.values()),
        **counts,
        extra={
            "workers": len(workers),
            "cpu_seconds_by_process": by_process,
            "cpu_seconds_per_internship_by_process": {
                name: round(used / max(completed, 1), 3) for name, used in by_process.items()
            },
            "worker_peak_rss_mib_by_process": peaks,
            "not_completed": {k: v for k, v in finished.items() if k != Phase.COMPLETED.value},
            "reopened_after_agreement_deadline": opening.reopened,
            "calls_sent_again": dict(RESENT),
        },
    )


async def measure_bare(
    settings: Settings,
    count: int,
    activities: int,
    timers: int,
    progress: Progress,
    stack: EmbeddedStack | None = None,
) -> Run:
    client = await connect_temporal(settings)
    queue = f"{settings.task_queue}-bare"
    process = psutil.Process()
    cpu0 = sum(process.cpu_times()[:2])
    # The server's share too, to set beside ours (the stack's idle worker and PostgreSQL's).
    watch = CpuWatch(stack) if stack is not None else None
    gate = asyncio.Semaphore(OPENERS)
    async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[bare_noop]):
        progress.step(f"bare: {count} workflows")
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
        async with asyncio.TaskGroup() as workflows:
            for workflow_id in ids:
                workflows.create_task(play_bare(client, workflow_id, spec, queue, gate))
        seconds = time.monotonic() - started
        watch_peak = max(watch_peak, process.memory_info().rss)
    # The bare worker shares this process with the driver, so its CPU includes the driver's.
    cpu = sum(process.cpu_times()[:2]) - cpu0
    by_process = watch.seconds() if watch is not None else {}
    progress.step("bare: counting history events")
    counts = await count_events(client, ids)
    extra = (
        {
            "cpu_seconds_per_workflow_by_process": {
                name: round(used / max(count, 1), 3) for name, used in by_process.items()
            }
        }
        if by_process
        else {}
    )
    return Run("bare", count, seconds, cpu, watch_peak / 2**20, **counts, extra=extra)


async def run(
    count: int,
    progress: Progress,
    profile: Path | None = None,
    workers: int = 1,
    keep_logs: Path | None = None,
    production: bool = True,
) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-bench-"))
    settings = throwaway_settings(state)
    progress.record(internships=count, workers=workers)
    try:
        progress.step(f"starting the embedded stack with {workers} worker(s)")
        async with EmbeddedStack(settings, workers=workers) as stack:
            ours = await measure_ours(settings, stack, count, progress)
            o = ours.figures()
            progress.record(ours=o)
            per = o["per_internship"]
            bare = await measure_bare(
                settings,
                count,
                activities=round(per["activities"]),
                timers=round(per["timers"]),
                progress=progress,
                stack=stack,
            )
            b = bare.figures()
            progress.record(bare=b)
            p = None
            if production:
                async with production_path(settings) as path:
                    secured = await measure_ours(
                        settings, stack, count, progress, first=count, path=path
                    )
                p = secured.figures()
                progress.record(production_path=p)
            if profile is not None:
                # Where the worker's time goes, in a pass of its own after the measured ones: the
                # sampler takes CPU from the same cores, and only while our internships run.
                profiled = await measure_ours(
                    settings, stack, PROFILED, progress, profile, first=2 * count
                )
                progress.record(profiled=profiled.figures())
            progress.step("stopping the embedded stack")
    finally:
        if keep_logs is not None:  # the workers' logs, to read a failed workflow task's error
            shutil.copytree(state / "logs", keep_logs, dirs_exist_ok=True)
        shutil.rmtree(state, ignore_errors=True)
    return {
        "internships": count,
        "workers": workers,
        "ours": o,
        "bare": b,
        "ratio_ours_to_bare": round(o["internships_per_minute"] / b["internships_per_minute"], 2),
        **(
            {
                "production_path": p,
                "ratio_production_path_to_ours": round(
                    p["internships_per_minute"] / o["internships_per_minute"], 2
                ),
            }
            if p is not None
            else {}
        ),
        **(
            {
                "worker_profile_percent": summarize_profile(profile),
                "worker_profile_internships": PROFILED,
            }
            if profile
            else {}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--internships", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile", type=Path, help="sample the worker with py-spy (installed separately) here"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes polling the task queue (1-16)"
    )
    parser.add_argument(
        "--keep-logs", type=Path, metavar="DIR", help="copy the stack's logs (workers') here"
    )
    parser.add_argument(
        "--no-production-path",
        action="store_true",
        help="leave out the pass through a TLS proxy with payload encryption (needs nginx)",
    )
    args = parser.parse_args()
    try:
        check_workers(args.workers)
        if not args.no_production_path:
            nginx_binary()
    except StackError as error:
        parser.error(str(error))
    except AssertionError as missing:  # no nginx
        parser.error(f"{missing}, or pass --no-production-path")
    main_for(
        "lifecycle",
        lambda progress: run(
            args.internships,
            progress,
            args.profile,
            args.workers,
            args.keep_logs,
            production=not args.no_production_path,
        ),
        args.json,
    )


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
