"""Replay check: fetch every run of some workflows from Temporal, replay each history against the
current workflow code, and count the workflow tasks that failed while they ran.

A history that no longer replays (TMPRL1100, a nondeterminism error) would break the internship
the next time a worker recovers it; a failed workflow task is the live sign of the same trouble.
The fault drill (bench/drill.py) and the crash test run this at their end.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Interceptor, Replayer

from workflows.internship import InternshipWorkflow
from workflows.notice import StatusNoticeWorkflow

#: What the worker registers (worker.py).
WORKFLOWS: tuple[type, ...] = (InternshipWorkflow, StatusNoticeWorkflow)

#: The packages the workflow code is made of (the workflow and the models it carries).
_WORKFLOW_CODE = ("workflows", "models")


def workflow_code_fingerprint() -> str:
    """A hash of the workflow code on disk. Workers started during a run import what is on disk
    then; the replay uses what this process imported: if the files changed in between (an edit
    in the working tree mid-run), a replay failure may only show that."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in _WORKFLOW_CODE:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class ReplayCheck:
    workflows: int = 0
    histories: int = 0
    """Runs fetched: one per run, continued-as-new runs included."""
    replayed: int = 0
    failed_workflow_tasks: int = 0
    missing: list[str] = field(default_factory=list)
    """Workflow ids Temporal has no run of."""
    replay_failures: list[str] = field(default_factory=list)
    task_failures: list[str] = field(default_factory=list)
    suspect: list[WorkflowHistory] = field(default_factory=list, repr=False)
    """The histories that do not replay or hold a failed workflow task, to keep and study."""
    code_changed: bool = False
    """The workflow code on disk changed during the run (see workflow_code_fingerprint)."""
    stalls: dict[str, tuple[float, int]] = field(default_factory=dict)
    """The longest wait, in seconds, of work whose attempt was lost (timed out: its worker was
    killed), by kind (an activity type, or `workflow task`), with the attempt that then took it
    up (its retry backoff is part of the wait). See lost_work_stalls."""

    @property
    def passed(self) -> bool:
        return (
            not self.missing
            and self.histories > 0
            and self.replayed == self.histories
            and self.failed_workflow_tasks == 0
        )

    def summary(self) -> str:
        return (
            f"replayed {self.replayed}/{self.histories} histories; "
            f"{self.failed_workflow_tasks} failed workflow tasks"
        )

    def stall_summary(self) -> str:
        """The longest wait of lost work, per kind."""
        if not self.stalls:
            return "no work was lost with a worker"
        return ", ".join(
            f"{kind} {seconds:.1f} s" + (f" (attempt {attempt})" if attempt > 2 else "")
            for kind, (seconds, attempt) in sorted(self.stalls.items())
        )

    def problems(self, limit: int = 10) -> list[str]:
        """What went wrong, one line each (at most `limit`)."""
        found = [f"no run of {wid}" for wid in self.missing]
        if self.code_changed:
            found.append(
                "the workflow code on disk changed during the run: workers may have run other "
                "code than this replay"
            )
        found += [f"does not replay: {failure}" for failure in self.replay_failures]
        found += [f"workflow task failed: {failure}" for failure in self.task_failures]
        if len(found) > limit:
            found = [*found[:limit], f"... and {len(found) - limit} more"]
        return found


async def workflow_runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """The history of every run of `workflow_id`, oldest first: the runs visibility lists, and
    the continue-as-new chain walked back from the latest run (in case visibility lags)."""
    query = f"WorkflowId = '{workflow_id}'"
    pending: list[str | None] = [None]  # None: the latest run
    pending += [execution.run_id async for execution in client.list_workflows(query)]
    found: dict[str, WorkflowHistory] = {}
    while pending:
        run_id = pending.pop()
        if run_id is not None and run_id in found:
            continue
        try:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                continue
            raise
        found[history.run_id] = history
        started = history.events[0].workflow_execution_started_event_attributes
        if started.continued_execution_run_id:
            pending.append(started.continued_execution_run_id)
    return sorted(found.values(), key=lambda h: h.events[0].event_time.ToDatetime())


def lost_work_stalls(
    history: WorkflowHistory, kills: Sequence[float] = ()
) -> list[tuple[str, float, int]]:
    """(kind, seconds, attempt) for each piece of work in the history whose attempt timed out
    (the worker running it was killed, or stalled) and that another attempt then took up: an
    activity, until the start of the attempt that succeeded (`attempt`: its number, whose retry
    backoff is part of the wait); a workflow task, until the start of the next one. The wait is
    counted from the last worker kill before the work was taken up again (`kills`, seconds since
    the epoch) when the work was already waiting then, otherwise from when it was scheduled: what
    a lost worker cost, not how long the work had been running before."""
    scheduled: dict[int, tuple[str, float]] = {}
    stalls: list[tuple[str, float, int]] = []
    task_scheduled: float | None = None
    lost_task_since: float | None = None

    def stall(kind: str, since: float, resumed: float, attempt: int = 2) -> None:
        killed = [at for at in kills if since <= at <= resumed]
        stalls.append((kind, resumed - max([since, *killed]), attempt))

    for event in history.events:
        at = event.event_time.ToDatetime(tzinfo=UTC).timestamp()
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            scheduled[event.event_id] = (name, at)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            failure = started.last_failure
            if started.attempt > 1 and failure.HasField("timeout_failure_info"):
                name, since = scheduled.get(started.scheduled_event_id, ("activity", at))
                stall(name, since, at, started.attempt)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task_scheduled = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            if lost_task_since is None:
                lost_task_since = task_scheduled
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and lost_task_since is not None:
            stall("workflow task", lost_task_since, at)
            lost_task_since = None
    return stalls


def failed_workflow_tasks(history: WorkflowHistory) -> list[str]:
    """One line per WorkflowTaskFailed event: where and why."""
    failures = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            attributes = event.workflow_task_failed_event_attributes
            cause = WorkflowTaskFailedCause.Name(attributes.cause)
            message = attributes.failure.message.partition("\n")[0]
            failures.append(
                f"{history.workflow_id}/{history.run_id} event {event.event_id}: {cause} {message}"
            )
    return failures


async def check_replay(
    client: Client,
    workflow_ids: Iterable[str],
    workflows: Sequence[type] = WORKFLOWS,
    *,
    code_at_start: str | None = None,
    kills: Sequence[float] = (),
) -> ReplayCheck:
    """Fetch every run of `workflow_ids` and replay it with the worker's workflows, data converter
    (payload codec included when keys are configured) and interceptors, all taken from `client`
    as the worker takes them; count the failed workflow tasks in the histories.
    `code_at_start`, workflow_code_fingerprint() when the run began, tells whether the workflow
    code on disk changed meanwhile. `kills`: when workers were killed (see lost_work_stalls)."""
    check = ReplayCheck()
    if code_at_start is not None:
        check.code_changed = code_at_start != workflow_code_fingerprint()
    histories: list[WorkflowHistory] = []
    for workflow_id in workflow_ids:
        check.workflows += 1
        runs = await workflow_runs(client, workflow_id)
        if not runs:
            check.missing.append(workflow_id)
        histories += runs
    check.histories = len(histories)
    for history in histories:
        for kind, seconds, attempt in lost_work_stalls(history, kills):
            if seconds > check.stalls.get(kind, (0.0, 0))[0]:
                check.stalls[kind] = (seconds, attempt)
        failures = failed_workflow_tasks(history)
        check.failed_workflow_tasks += len(failures)
        check.task_failures += failures
        if failures:
            check.suspect.append(history)
    if not histories:
        return check
    interceptors = [i for i in client.config()["interceptors"] if isinstance(i, Interceptor)]
    with concurrent.futures.ThreadPoolExecutor() as executor:
        replayer = Replayer(
            workflows=list(workflows),
            workflow_task_executor=executor,
            namespace=client.namespace,
            data_converter=client.data_converter,
            interceptors=interceptors,
        )

        async def each() -> AsyncIterator[WorkflowHistory]:
            for history in histories:
                yield history

        async with replayer.workflow_replay_iterator(each()) as results:
            async for result in results:
                if result.replay_failure is None:
                    check.replayed += 1
                else:
                    where = f"{result.history.workflow_id}/{result.history.run_id}"
                    check.replay_failures.append(f"{where}: {result.replay_failure}")
                    if all(h.run_id != result.history.run_id for h in check.suspect):
                        check.suspect.append(result.history)
    return check
