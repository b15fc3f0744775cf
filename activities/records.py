"""Records in PostgreSQL: the plan versions, the internships read model and the audit trail."""

from __future__ import annotations

import json

import asyncpg
import structlog
from temporalio import activity

from models.activities import AuditEvent
from models.plan import InternshipPlan

log = structlog.get_logger(__name__)


class RecordActivities:
    """Idempotent writes: each carries an id derived from the workflow, so a retry writes nothing
    twice; each runs in one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="save_plan")
    async def save_plan(self, plan: InternshipPlan) -> None:
        """Keep every plan version (an amendment or extension adds one) and the planned dates."""
        info = activity.info()
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                INSERT INTO internships (internship_id, workflow_id, institution_id, company_id,
                                         phase, plan_version, start_at, end_at, updated_at)
                VALUES ($1, $2, $3, $4, 'planning', $5, $6, $7, to_timestamp(0))
                ON CONFLICT (internship_id) DO UPDATE
                    SET start_at = EXCLUDED.start_at, end_at = EXCLUDED.end_at
                """,
                plan.internship_id,
                info.workflow_id,
                plan.institution.id,
                plan.company.id,
                plan.version,
                plan.period.start,
                plan.period.end,
            )
            await conn.execute(
                """
                INSERT INTO plan_versions (internship_id, version, plan) VALUES ($1, $2, $3)
                ON CONFLICT DO NOTHING
                """,
                plan.internship_id,
                plan.version,
                plan.model_dump_json(),
            )

    @activity.defn(name="record_event")
    async def record_event(self, event: AuditEvent) -> bool:
        """Append the event to the audit trail and bring the read model up to date. Returns False
        when the event was already recorded (a retry)."""
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                """
                INSERT INTO audit_events (event_id, internship_id, workflow_id, run_id,
                                          plan_version, actor, kind, phase, occurred_at, detail)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT (event_id) DO NOTHING
                RETURNING true
                """,
                event.event_id,
                event.internship_id,
                event.workflow_id,
                event.run_id,
                event.plan_version,
                event.actor,
                event.kind,
                event.phase,
                event.occurred_at,
                json.dumps(event.detail),
            )
            await conn.execute(
                """
                UPDATE internships SET phase = $2, plan_version = $3, updated_at = $4
                WHERE internship_id = $1 AND updated_at <= $4
                """,
                event.internship_id,
                event.phase,
                event.plan_version,
                event.occurred_at,
            )
        log.info(
            "recorded",
            internship_id=event.internship_id,
            kind=event.kind,
            duplicate=not inserted,
        )
        return bool(inserted)
