"""The intern's notice of a change to their badge's status, as a workflow of its own
(workflows/notice.py): recorded with the change (`status_notices`, in its transaction), started
once the change is committed, idempotent by the change.

Why recorded first: the change needs PostgreSQL alone, and a revocation must take effect for
verifiers whatever Temporal does. When Temporal cannot be reached at that moment (or the process
stops between the commit and the start), the notice stays recorded as not started, and the
workers' sweep (`sweeping_pending_notices`, every PENDING_SWEEP) starts it once Temporal answers
(decision 0037, docs/decisions/0037-one-durable-path-for-every-e-mail.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Final

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from models.activities import Notification, NotificationKind, StatusNotice
from models.ids import audit_event_key, notification_id, status_notice_id
from models.plan import InternshipPlan
from runtime.availability import RECORDS_UNREACHABLE, TemporalUnreachable, unreachable
from runtime.settings import Settings
from workflows.notice import StatusNoticeWorkflow

log = structlog.get_logger(__name__)

PENDING_SWEEP: Final = timedelta(seconds=30)
"""How often a worker starts the notices recorded and not started; a notice younger than this is
left to the request that recorded it (starting it twice would be harmless, only wasted)."""

ConnectTemporal = Callable[[], Awaitable[Client]]
"""The process's Temporal client; TemporalUnreachable (or the SDK's connection error) when it
does not answer."""


async def start_status_notice(client: Client, task_queue: str, notice: StatusNotice) -> None:
    """Start the notice's workflow unless it was started before. Its id is the change's
    (`notice-<credential uuid>-<n>`), so starting it again for the same change (the request
    retried, the worker's sweep of pending notices) starts nothing new: while it runs, the
    running one is kept (`USE_EXISTING`); once it has closed, the id is refused
    (`REJECT_DUPLICATE`), which means it was told already (or given up and the operator told)."""
    try:
        await client.start_workflow(
            StatusNoticeWorkflow.run,
            notice,
            id=status_notice_id(notice.credential_id, notice.change),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except WorkflowAlreadyStartedError:
        return


async def record_status_notice(
    conn: asyncpg.Connection,
    *,
    event_id: str,
    internship_id: str,
    credential_id: str,
    change: int,
    kind: NotificationKind,
) -> str | None:
    """Record, in the change's transaction, that the intern is to be told of it; its notice id,
    or None when no plan is recorded for the internship (nobody to tell: logged)."""
    recorded = await conn.fetchval(
        "SELECT EXISTS (SELECT FROM plan_versions WHERE internship_id = $1)", internship_id
    )
    if not recorded:
        log.warning("intern not told: no plan recorded", internship_id=internship_id, kind=kind)
        return None
    notice_id = status_notice_id(credential_id, change)
    await conn.execute(
        """
        INSERT INTO status_notices (notice_id, event_id, internship_id, credential_id, change,
                                    kind)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (notice_id) DO NOTHING
        """,
        notice_id,
        event_id,
        internship_id,
        credential_id,
        change,
        kind,
    )
    return notice_id


async def recorded_notice(conn: asyncpg.Connection, notice_id: str) -> StatusNotice:
    """The notice as the records give it: the intern and the institution of the plan in force,
    the badge's name, and the change's own audit event (its reason, time, phase and plan
    version). The values the e-mail needs travel with it: its activity reads nothing else."""
    row = await conn.fetchrow(
        """
        SELECT n.credential_id, n.change, n.kind, n.internship_id, a.event_id, a.workflow_id,
               a.plan_version, a.phase, a.occurred_at, a.detail,
               (SELECT v.plan FROM plan_versions v WHERE v.internship_id = n.internship_id
                ORDER BY v.version DESC LIMIT 1) AS plan
        FROM status_notices n JOIN audit_events a USING (event_id)
        WHERE n.notice_id = $1
        """,
        notice_id,
    )
    if row is None:
        raise LookupError(f"no status notice {notice_id!r} is recorded")
    plan = InternshipPlan.model_validate_json(row["plan"])
    detail = json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
    kind: NotificationKind = row["kind"]
    workflow_id: str = row["workflow_id"]
    return StatusNotice(
        credential_id=row["credential_id"],
        change=row["change"],
        notification=Notification(
            notification_id=notification_id(
                workflow_id, kind, audit_event_key(row["event_id"]), "intern"
            ),
            internship_id=row["internship_id"],
            kind=kind,
            recipient_role="intern",
            recipient_email=plan.intern.email,
            recipient_name=plan.intern.name,
            language=plan.intern.language,
            planned_at=row["occurred_at"],
            values={
                "internship": row["internship_id"],
                "badge": plan.badge.name,
                "reason": str(detail.get("reason") or ""),
            },
        ),
        internship_workflow_id=workflow_id,
        plan_version=row["plan_version"],
        phase=row["phase"],
        operator_name=plan.institution.name,
        operator_email=plan.institution.email,
        operator_language=plan.tutor.language,
    )


async def start_recorded_notice(
    pool: asyncpg.Pool, settings: Settings, notice_id: str, temporal: ConnectTemporal
) -> bool:
    """Start a recorded notice's workflow and note that it was started; False, leaving it
    pending for the sweep, when Temporal cannot be reached."""
    async with pool.acquire() as conn:
        notice = await recorded_notice(conn, notice_id)
    try:
        await start_status_notice(await temporal(), settings.task_queue, notice)
    except TemporalUnreachable:
        return False
    except (RPCError, RuntimeError) as error:
        if not unreachable(error):
            raise
        return False
    await pool.execute(
        "UPDATE status_notices SET started_at = now() WHERE notice_id = $1 AND started_at IS NULL",
        notice_id,
    )
    log.info("status notice started", notice_id=notice_id)
    return True


async def start_pending_notices(
    pool: asyncpg.Pool,
    settings: Settings,
    temporal: ConnectTemporal,
    older_than: timedelta = timedelta(0),
) -> int:
    """Start every notice recorded at least `older_than` ago and not started (oldest first);
    how many were started. Stops at the first that meets Temporal unreachable; one that cannot
    be built or started for another reason is logged and left for the next sweep, and does not
    hold up the others."""
    pending = await pool.fetch(
        "SELECT notice_id FROM status_notices WHERE started_at IS NULL "
        "AND created_at <= now() - $1::interval ORDER BY created_at",
        older_than,
    )
    started = 0
    for row in pending:
        notice_id = row["notice_id"]
        try:
            if not await start_recorded_notice(pool, settings, notice_id, temporal):
                log.warning("status notices wait for Temporal", pending=len(pending) - started)
                break
        except RECORDS_UNREACHABLE:
            raise
        except Exception as error:
            log.error("status notice not started", notice_id=notice_id, error=type(error).__name__)
            continue
        started += 1
    return started


async def _sweep(client: Client, settings: Settings, pool: asyncpg.Pool) -> None:
    async def connect() -> Client:
        return client

    while True:
        try:
            await start_pending_notices(pool, settings, connect, older_than=PENDING_SWEEP)
        except RECORDS_UNREACHABLE as down:
            log.warning("status notices not swept: database unreachable", error=type(down).__name__)
        except Exception as error:  # the next round tries again; the worker goes on
            log.error("status notices not swept", error=type(error).__name__)
        await asyncio.sleep(PENDING_SWEEP.total_seconds())


@contextlib.asynccontextmanager
async def sweeping_pending_notices(
    client: Client, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[None]:
    """While open (a worker runs), start every PENDING_SWEEP the notices recorded and not
    started: a change committed while Temporal was unreachable is told once it answers. Every
    worker sweeps; a notice started twice starts nothing new."""
    task = asyncio.create_task(_sweep(client, settings, pool))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
