"""Fault drill: internships run while the worker is killed, Temporal restarted and PostgreSQL and
SMTP stopped; at the end every internship must have completed with nothing lost or doubled.

All the while a poller reads every internship's status through the HTTP API (an operator key),
counting the reads that fail during the outages. At the end every run of every internship is
fetched from Temporal and replayed against the current workflow code (bench/replay_check.py):
a history that no longer replays, or a workflow task that failed, fails the drill.

`make drill` runs the full drill (50 internships); the test suite runs a short one. It passes or
fails (exit code 0 or 1) and prints the counts it checked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import asyncpg
import httpx
from rich.console import Console
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.service import RPCError

from bench.replay_check import ReplayCheck, check_replay, workflow_code_fingerprint
from cli.demo import EXAMPLE_PLAN, PartyPlayer, compress_plan
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack, check_workers
from models.ids import badge_mail_id, message_id_for
from models.plan import InternshipPlan
from models.status import Phase
from operations import internships as ops
from operations.access import create_api_key
from records.read import recorded_phase
from runtime.clients import connect_temporal
from runtime.database import owner_dsn
from runtime.errors import StackError
from runtime.settings import Settings
from workflows.internship import workflow_id_for

FaultKind = Literal[
    "kill_worker", "kill_worker_in_flight", "restart_temporal", "stop_postgres", "stop_smtp"
]

#: What the drill holds so that an activity of a kind stays in flight until the worker is killed:
#: the mail sink's deliveries (every e-mail, the badge's too), or a table the activity writes
#: (locked by its owner, as a long-running migration would).
HELD_FOR: dict[str, str] = {
    "send_notification": "mail",
    "store_badge": "credentials",
    "record_event": "audit_events",
    "save_plan": "plan_versions",
}


#: Seconds from an internship's start call to its agreement deadline. The deadline is not what the
#: drill checks, and the plan cannot start before it, so it sits well beyond what the approvals
#: need on a busy machine: the worker killed while the plans are saved (about 10 s lost), then
#: 150 approvals on two shared cores.
LEAD_SECONDS = 60.0


@dataclass(frozen=True)
class Fault:
    at: float
    """Seconds after the internships started."""
    kind: FaultKind
    duration: float = 0.0
    """How long an outage lasts; for kill_worker_in_flight, how long to wait for the activity to
    be in flight before killing anyway."""
    activity: str = ""
    """kill_worker_in_flight: the activity type to catch in flight (a key of HELD_FOR)."""

    def label(self) -> str:
        what = f"({self.activity})" if self.activity else ""
        return f"{self.kind}{what}@{self.at:.0f}s"


def full_schedule(seed: int, seconds: float, lead: float = LEAD_SECONDS) -> list[Fault]:
    """A worker kill while the plans are being saved, as the internships start; then, once they
    are approved (`lead` seconds, the agreement deadline), three worker kills at random moments,
    one Temporal restart, PostgreSQL and SMTP each down for 20 s — all while the internships are
    in progress, before their evaluation windows — and a worker kill with each other kind of
    activity in flight: a record and an e-mail while they run, the badge being stored at their
    end."""
    rng = random.Random(seed)
    span = seconds * 0.55
    kills = sorted(rng.uniform(0.05, 1.0) * span for _ in range(3))
    return sorted(
        [Fault(0.0, "kill_worker_in_flight", 30.0, "save_plan")]
        + [
            Fault(lead + fault.at, fault.kind, fault.duration, fault.activity)
            for fault in [
                *(Fault(at, "kill_worker") for at in kills),
                Fault(span * 0.3, "restart_temporal"),
                Fault(span * 0.1, "stop_postgres", 20.0),
                Fault(span * 0.6, "stop_smtp", 20.0),
                Fault(span * 0.45, "kill_worker_in_flight", 60.0, "record_event"),
                Fault(span * 0.85, "kill_worker_in_flight", 30.0, "send_notification"),
                Fault(seconds * 0.6, "kill_worker_in_flight", seconds * 0.4, "store_badge"),
            ]
        ],
        key=lambda fault: fault.at,
    )


def short_schedule(lead: float = 5.0) -> list[Fault]:
    """The test suite's drill: each kind of fault once, briefly, the first a second before the
    agreement deadline `lead` seconds after the start (the approvals have that long before it)."""
    shift = lead - 5.0
    return [
        Fault(shift + at, kind, duration, activity)
        for at, kind, duration, activity in (
            (4, "kill_worker", 0.0, ""),
            (8, "stop_postgres", 5.0, ""),
            (16, "restart_temporal", 0.0, ""),
            (22, "stop_smtp", 5.0, ""),
            (30, "kill_worker", 0.0, ""),
            (36, "kill_worker_in_flight", 30.0, "record_event"),
        )
    ]


@dataclass
class StatusReads:
    """What the status poller saw: reads answered 200, and the others by status code or error."""

    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.ok + self.failed

    def fail(self, why: str) -> None:
        self.failed += 1
        self.errors[why] += 1

    def summary(self) -> str:
        text = f"{self.ok} ok, {self.failed} failed"
        if self.errors:
            text += " (" + ", ".join(f"{why} x{n}" for why, n in self.errors.most_common()) + ")"
        return text


@dataclass
class DrillReport:
    internships: int = 0
    completed: int = 0
    credentials: int = 0
    badge_mails: int = 0
    badge_duplicates_same_message_id: int = 0
    internships_without_badge_mail: int = 0
    feedback_submitted: int = 0
    feedback_in_audit_trail: int = 0
    status_reads: StatusReads = field(default_factory=StatusReads)
    replay: ReplayCheck = field(default_factory=ReplayCheck)
    faults: list[str] = field(default_factory=list)
    caught_in_flight: dict[str, int] = field(default_factory=dict)
    """Per activity type, how many were running when a kill_worker_in_flight fault struck."""
    kills: list[float] = field(default_factory=list)
    """When the worker was killed (seconds since the epoch): a stall is counted from the kill."""
    seconds: float = 0.0
    ended: Counter[str] = field(default_factory=Counter)
    """How many internships ended in each final phase."""
    stage: str = "starting"
    """What the drill is doing (named if it cannot finish)."""
    failure: str = ""
    """Why the drill could not finish, if it could not."""

    @property
    def histories(self) -> int:
        return self.replay.histories

    @property
    def histories_replayed(self) -> int:
        return self.replay.replayed

    @property
    def failed_workflow_tasks(self) -> int:
        return self.replay.failed_workflow_tasks

    @property
    def passed(self) -> bool:
        return (
            not self.failure
            and self.completed == self.internships
            and self.credentials == self.internships
            and self.internships_without_badge_mail == 0
            and self.feedback_in_audit_trail == self.feedback_submitted
            and self.replay.passed
        )

    def lines(self) -> list[str]:
        return [
            f"internships started            {self.internships}",
            f"completed                      {self.completed}"
            + (
                f" (ended otherwise: {', '.join(f'{p} x{n}' for p, n in self.ended.items())})"
                if set(self.ended) - {Phase.COMPLETED.value}
                else ""
            ),
            f"credentials stored             {self.credentials}",
            f"badge e-mails received         {self.badge_mails}"
            f" ({self.badge_duplicates_same_message_id} duplicates, same Message-ID)",
            f"internships without badge mail {self.internships_without_badge_mail}",
            f"feedback submitted             {self.feedback_submitted}",
            f"feedback in the audit trail    {self.feedback_in_audit_trail}",
            f"status reads over HTTP         {self.status_reads.summary()}",
            f"histories                      {self.replay.summary()}",
            f"longest stall of lost work     {self.replay.stall_summary()}",
            *(f"  {problem}" for problem in self.replay.problems()),
            f"faults                         {', '.join(self.faults)}",
            f"duration                       {self.seconds:.0f} s",
            *([f"could not finish               {self.failure}"] if self.failure else []),
            f"result                         {'PASSED' if self.passed else 'FAILED'}",
        ]


async def _inject(
    stack: EmbeddedStack,
    client: Client,
    workflow_ids: Sequence[str],
    faults: list[Fault],
    started: float,
    report: DrillReport,
) -> None:
    for fault in faults:
        await asyncio.sleep(max(0.0, started + fault.at - time.monotonic()))
        label = fault.label()
        if fault.kind == "kill_worker":
            stack.kill_worker()
            report.kills.append(time.time())
            await stack.restart_worker()
        elif fault.kind == "kill_worker_in_flight":
            async with _holding(stack, HELD_FOR[fault.activity]):
                caught = await _in_flight(client, workflow_ids, fault.activity, fault.duration)
                stack.kill_worker()
                report.kills.append(time.time())
            await stack.restart_worker()
            report.caught_in_flight[fault.activity] = caught
            label += f" ({caught} in flight)"
        elif fault.kind == "restart_temporal":
            await stack.temporal.stop()
            await stack.temporal.start()
        elif fault.kind == "stop_postgres":
            await stack.postgres.stop()
            await asyncio.sleep(fault.duration)
            await stack.postgres.start()
        else:
            await stack.mail_sink.stop()
            await asyncio.sleep(fault.duration)
            await stack.mail_sink.start()
        report.faults.append(label)


@contextlib.asynccontextmanager
async def _holding(stack: EmbeddedStack, what: str) -> AsyncIterator[None]:
    """Hold the mail sink's deliveries, or lock a table as its owner, for the block's length."""
    if what == "mail":
        stack.mail_sink.hold()
        try:
            yield
        finally:
            stack.mail_sink.release()
        return
    conn = await asyncpg.connect(owner_dsn(stack.settings))
    try:
        async with conn.transaction():
            await conn.execute(f"LOCK TABLE {what} IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


async def _in_flight(
    client: Client, workflow_ids: Sequence[str], activity: str, max_seconds: float
) -> int:
    """Wait until an activity of type `activity` is running on a worker in any of the workflows
    (at most `max_seconds`); return how many are."""
    deadline = time.monotonic() + max_seconds

    async def running(workflow_id: str) -> int:
        try:
            description = await client.get_workflow_handle(workflow_id).describe()
        except RPCError:
            return 0  # not started yet, or Temporal restarting: look again
        return sum(
            pending.activity_type.name == activity
            and pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for pending in description.raw_description.pending_activities
        )

    while True:
        caught = sum(await asyncio.gather(*(running(wid) for wid in workflow_ids)))
        if caught or time.monotonic() > deadline:
            return caught
        await asyncio.sleep(0.25)


async def _poll_status(
    api_url: str,
    key: str,
    internship_ids: Sequence[str],
    reads: StatusReads,
    stop: asyncio.Event,
    *,
    max_seconds: float,
    max_reads: int,
    round_seconds: float = 2.0,
    concurrency: int = 4,
) -> None:
    """Read every internship's status with `GET /api/internships/{id}` (at most once per
    `round_seconds` each) until `stop` is set, `max_seconds` pass or `max_reads` were made.
    A refused or failed read is counted, never raised: outages are what the drill is for."""
    deadline = time.monotonic() + max_seconds
    slots = asyncio.Semaphore(concurrency)

    def more() -> bool:
        return not stop.is_set() and time.monotonic() < deadline and reads.total < max_reads

    async def read(http: httpx.AsyncClient, internship_id: str) -> None:
        async with slots:
            if not more():
                return
            try:
                response = await http.get(f"/api/internships/{internship_id}")
            except (httpx.HTTPError, OSError) as error:
                reads.fail(type(error).__name__)
                return
            if response.status_code == 200:
                reads.ok += 1
            else:
                reads.fail(f"HTTP {response.status_code}")

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=5.0) as http:
        while more():
            began = time.monotonic()
            await asyncio.gather(*(read(http, iid) for iid in internship_ids))
            rest = round_seconds - (time.monotonic() - began)
            if rest > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rest)


async def _operator_key(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.database_url)
    try:
        _, key = await create_api_key(conn, "fault-drill", "operator")
    finally:
        await conn.close()
    return key


async def _play(settings: Settings, plan: InternshipPlan, console: Console) -> Phase:
    """Play one internship's parties until it ends; survives every outage by trying again."""
    client = await connect_temporal(settings)
    player = PartyPlayer(client, plan, console)
    while True:
        try:
            conn = await asyncpg.connect(settings.database_url, timeout=5)
            try:
                phase = await recorded_phase(conn, plan.internship_id)
            finally:
                await conn.close()
            if phase is not None and phase.is_final:
                return phase
            if phase is not None:
                await asyncio.wait_for(player.play(phase, datetime.now().astimezone()), 60)
        except (
            OSError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            asyncpg.InternalClientError,
            TimeoutError,
            RuntimeError,
        ):
            pass  # an outage the drill caused: look again in a moment
        await asyncio.sleep(0.5)


async def run_drill(
    settings: Settings,
    count: int,
    seconds: float,
    faults: list[Fault],
    console: Console,
    lead_seconds: float = LEAD_SECONDS,
    workers: int = 1,
    report: DrillReport | None = None,
) -> DrillReport:
    """Run `count` internships compressed into `seconds` each on a fresh embedded stack under
    `settings` with `workers` worker processes (a fault that kills the worker kills them all),
    inject the faults while polling every status over HTTP, check the records and the outbox,
    and replay every run's history. `report` (if given) is filled as the drill goes, so that
    what it saw is there should it not finish."""
    report = report if report is not None else DrillReport()
    report.internships = count
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    quiet = Console(quiet=True)
    started = time.monotonic()
    code = workflow_code_fingerprint()
    report.stage = f"starting the embedded stack with {workers} worker(s)"
    async with EmbeddedStack(settings, start_api=True, workers=workers) as stack:
        client = await connect_temporal(settings)
        key = await _operator_key(settings)
        ids = [f"drill-{i:03d}" for i in range(count)]
        workflow_ids = [workflow_id_for(internship_id) for internship_id in ids]
        # The faults start with the internships: the first may catch their plans being saved.
        report.stage = "starting the internships"
        injector = asyncio.create_task(
            _inject(stack, client, workflow_ids, faults, time.monotonic(), report)
        )
        plans = []
        for internship_id in ids:
            # Each plan's dates count from its own start call: a slow start leaves the later
            # ones their whole lead.
            plan = compress_plan(
                example,
                datetime.now().astimezone(),
                seconds,
                internship_id=internship_id,
                lead_seconds=lead_seconds,
            )
            await ops.start_internship(client, settings, plan)
            plans.append(plan)
        console.print(f"started {count} internships; injecting {len(faults)} faults")
        report.stage = "playing the internships through the faults"
        stop_polling = asyncio.Event()
        poller = asyncio.create_task(
            _poll_status(
                stack.api_url,
                key,
                [plan.internship_id for plan in plans],
                report.status_reads,
                stop_polling,
                # Bounds, should the drill hang: far beyond its length and its pace.
                max_seconds=max(600.0, seconds * 4),
                max_reads=300 * count,
            )
        )
        try:
            phases = await asyncio.gather(*(_play(settings, plan, quiet) for plan in plans))
            await injector
        finally:
            stop_polling.set()
            try:
                await poller
            except Exception as error:  # a broken poller is reported, not the drill's end
                report.status_reads.fail(f"poller stopped: {type(error).__name__}")
        report.completed = sum(phase == Phase.COMPLETED for phase in phases)
        report.ended.update(phase.value for phase in phases)
        report.stage = "checking the records"
        conn = await asyncpg.connect(settings.database_url)
        try:
            report.credentials = await conn.fetchval("SELECT count(*) FROM credentials")
            expected = [
                f"{workflow_id_for(plan.internship_id)}/company_feedback/feedback-{m.id}"
                for plan in plans
                for m in plan.milestones
                if "mentor" in m.submitted_by
            ]
            report.feedback_submitted = len(expected)
            report.feedback_in_audit_trail = await conn.fetchval(
                "SELECT count(*) FROM audit_events WHERE event_id = ANY($1::text[])", expected
            )
        finally:
            await conn.close()
        console.print(f"replaying the histories of {count} internships")
        report.stage = "replaying the histories"
        report.replay = await check_replay(
            client, workflow_ids, code_at_start=code, kills=report.kills
        )
    badge_ids = {message_id_for(badge_mail_id(workflow_id_for(p.internship_id))) for p in plans}
    received = [_message_id(path) for path in sorted(settings.outbox_path.glob("*.eml"))]
    badges = [mid for mid in received if mid in badge_ids]
    report.badge_mails = len(badges)
    report.badge_duplicates_same_message_id = len(badges) - len(set(badges))
    report.internships_without_badge_mail = len(badge_ids - set(badges))
    report.seconds = time.monotonic() - started
    return report


def _message_id(path: Path) -> str:
    for line in path.read_text(errors="replace").splitlines():
        if line.lower().startswith("message-id:"):
            return line.split(":", 1)[1].strip()
        if not line:
            break
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--internships", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=240, help="plan time, compressed")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes polling the task queue (1-16)"
    )
    parser.add_argument(
        "--time-limit",
        type=float,
        help="seconds before the drill gives up and reports what it saw (default: 1800 s or ten "
        "times --seconds, whichever is more)",
    )
    parser.add_argument(
        "--keep-histories",
        type=Path,
        metavar="DIR",
        help="write the histories that do not replay or hold a failed workflow task here (JSON)",
    )
    args = parser.parse_args()
    try:
        check_workers(args.workers)
    except StackError as error:
        parser.error(str(error))
    time_limit = args.time_limit or max(1800.0, args.seconds * 10)
    console = Console()
    state = Path(tempfile.mkdtemp(prefix="internflow-drill-"))
    settings = throwaway_settings(state)
    faults = full_schedule(args.seed, args.seconds)
    console.print(f"fault drill: seed {args.seed}, state {state}")
    report = DrillReport()
    began = time.monotonic()

    async def bounded() -> None:
        try:
            async with asyncio.timeout(time_limit) as limit:
                await run_drill(
                    settings,
                    args.internships,
                    args.seconds,
                    faults,
                    console,
                    workers=args.workers,
                    report=report,
                )
        except TimeoutError:
            if not limit.expired():
                raise
            report.failure = f"did not finish within {time_limit:g} s (during: {report.stage})"

    try:
        asyncio.run(bounded())
    except Exception as error:
        traceback.print_exc()
        report.failure = f"{type(error).__name__}: {error} (during: {report.stage})"
    finally:
        shutil.rmtree(state, ignore_errors=True)
    report.seconds = report.seconds or time.monotonic() - began
    for line in report.lines():
        console.print(line, markup=False)  # replay errors quote "[TMPRL1100]"
    if args.keep_histories is not None and report.replay.suspect:
        args.keep_histories.mkdir(parents=True, exist_ok=True)
        for history in report.replay.suspect:
            path = args.keep_histories / f"{history.workflow_id}-{history.run_id}.json"
            path.write_text(history.to_json())
        console.print(f"kept {len(report.replay.suspect)} histories in {args.keep_histories}")
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
