"""The activities that write the records: a plan version with its parties, an audit event (with
its submission row and the read model), the rows a receiver may have missed. The SQL is
records/write.py's."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.activities import AuditEvent
from models.plan import InternshipPlan
from records.write import append_event, plan_parties, write_event

log = structlog.get_logger(__name__)

#: What PostgreSQL refuses for the data itself: the same on every retry. Connection loss and
#: outages are not among them; those are retried until the database answers.
_REFUSED_DATA = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


def refused(what: str, error: Exception) -> ApplicationError:
    """A non-retryable failure for a write PostgreSQL refused for its data (named by its SQLSTATE
    class, never by the values, which can be personal)."""
    return ApplicationError(
        f"{what} refused by PostgreSQL ({type(error).__name__})",
        type="RecordRejected",
        non_retryable=True,
    )


class RecordActivities:
    """Idempotent writes: each carries an id derived from the workflow, so a retry writes nothing
    twice; each is one statement or runs in one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="save_plan")
    async def save_plan(self, plan: InternshipPlan) -> None:
        """Keep every plan version (an amendment or extension adds one), the planned dates and
        the parties as the latest version names them."""
        try:
            await self._save_plan(plan)
        except _REFUSED_DATA as error:
            raise refused("the plan", error) from None
        log.info("plan saved", internship_id=plan.internship_id, plan_version=plan.version)

    async def _save_plan(self, plan: InternshipPlan) -> None:
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
            await conn.executemany(
                """
                INSERT INTO parties (internship_id, role, party_id, name, email, language,
                                     plan_version)
                VALUES ($1, $2, $3, $4, $5, $6, $7)
                ON CONFLICT (internship_id, role) DO UPDATE
                    SET party_id = EXCLUDED.party_id, name = EXCLUDED.name,
                        email = EXCLUDED.email, language = EXCLUDED.language,
                        plan_version = EXCLUDED.plan_version
                    WHERE parties.plan_version < EXCLUDED.plan_version
                """,
                [
                    (plan.internship_id, role, party_id, name, email, language, plan.version)
                    for role, party_id, name, email, language in plan_parties(plan)
                ],
            )

    @activity.defn(name="record_event")
    async def record_event(self, event: AuditEvent) -> bool:
        """Append the event to the audit trail, a submission to `submissions`, and bring the read
        model up to date, all in one transaction. Returns False when the event was already
        recorded (a retry)."""
        try:
            inserted = await self._record_event(event)
        except _REFUSED_DATA as error:
            raise refused(f"the {event.kind} record", error) from None
        log.info(
            "recorded",
            internship_id=event.internship_id,
            kind=event.kind,
            duplicate=not inserted,
        )
        return inserted

    async def _record_event(self, event: AuditEvent) -> bool:
        async with self._pool.acquire() as conn:
            return await write_event(conn, event)

    @activity.defn(name="append_event")
    async def append_event(self, event: AuditEvent) -> bool:
        """Append the event to the audit trail and nothing else: a workflow beside the
        internship's (a status notice) records there without writing the read model, which is
        the internship workflow's. A `notification_failed` marks its e-mail failed. Returns
        False when the event was already recorded (a retry)."""
        try:
            async with self._pool.acquire() as conn:
                inserted = await append_event(conn, event)
        except _REFUSED_DATA as error:
            raise refused(f"the {event.kind} record", error) from None
        log.info(
            "recorded",
            internship_id=event.internship_id,
            kind=event.kind,
            duplicate=not inserted,
        )
        return inserted

    @activity.defn(name="missing_records")
    async def missing_records(self, event_ids: list[str]) -> list[str]:
        """Which of these audit events are not in the trail (their receiver did not write them):
        the workflow's confirmation reads, and writes only what is missing."""
        rows = await self._pool.fetch(
            "SELECT event_id FROM audit_events WHERE event_id = ANY($1::text[])", event_ids
        )
        found = {row["event_id"] for row in rows}
        return [event_id for event_id in event_ids if event_id not in found]

    @activity.defn(name="record_events")
    async def record_events(self, events: list[AuditEvent]) -> int:
        """Write submissions' rows that their receiver should have written and did not (the
        workflow's confirmation, workflows/trail.py): one transaction, each row once. Returns how
        many were written."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                written = [await write_event(conn, event) for event in events].count(True)
        except _REFUSED_DATA as error:
            raise refused(f"the records of {len(events)} submissions", error) from None
        if events:
            log.info(
                "missing records written",
                internship_id=events[0].internship_id,
                events=len(events),
                written=written,
            )
        return written
