"""Records in PostgreSQL: plan versions, parties, the read model, the audit trail, submissions."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog
from temporalio import activity

from models.activities import AuditEvent
from models.plan import InternshipPlan, Language
from models.status import Phase

log = structlog.get_logger(__name__)

#: Audit event kinds that record a party's or the operator's submission (see the workflow's
#: `_accept`): each also becomes a `submissions` row.
SUBMISSION_KINDS = frozenset(
    {
        "approval",
        "change_request",
        "milestone_report",
        "company_feedback",
        "assessment",
        "validation",
        "amendment",
        "pause",
        "resume",
        "extension",
        "withdrawal",
    }
)

#: Which party a milestone submission comes from.
MILESTONE_PARTY = {"milestone_report": "intern", "company_feedback": "mentor"}

#: Detail keys that become columns of `submissions`; the rest is kept as its payload.
_SUBMISSION_COLUMNS = frozenset({"late", "milestone_id", "plan_version"})

#: Phases in which a milestone can be overdue (a paused internship's clock stands still).
_MONITORED_PHASES = frozenset({Phase.IN_PROGRESS.value, Phase.EVALUATION.value})


def plan_parties(plan: InternshipPlan) -> list[tuple[str, str, str, str, Language]]:
    """(role, id, name, e-mail, language) of everyone the plan names: the three parties, the host
    company (in its mentor's language) and the operator (the institution, in its tutor's)."""
    return [
        ("intern", plan.intern.id, plan.intern.name, plan.intern.email, plan.intern.language),
        ("tutor", plan.tutor.id, plan.tutor.name, plan.tutor.email, plan.tutor.language),
        ("mentor", plan.mentor.id, plan.mentor.name, plan.mentor.email, plan.mentor.language),
        (
            "company",
            plan.company.id,
            plan.company.name,
            plan.company.contact_email,
            plan.mentor.language,
        ),
        (
            "operator",
            plan.institution.id,
            plan.institution.name,
            plan.institution.email,
            plan.tutor.language,
        ),
    ]


def submission_id_of(event: AuditEvent) -> str:
    """The submission id is the key of the event id `<workflow id>/<kind>/<key>` (a submission id
    never contains a slash)."""
    return event.event_id.rpartition("/")[2]


def paused_time(changes: Iterable[tuple[str, datetime]], at: datetime) -> timedelta:
    """The time spent paused before `at`, from the (kind, accepted_at) of pause and resume
    submissions in order: every deadline still ahead moved by this much."""
    shift = timedelta(0)
    paused_at: datetime | None = None
    for kind, moment in changes:
        if kind == "pause" and paused_at is None:
            paused_at = moment
        elif kind == "resume" and paused_at is not None:
            shift += moment - paused_at
            paused_at = None
    if paused_at is not None and at > paused_at:
        shift += at - paused_at
    return shift


def is_overdue(
    plan: InternshipPlan,
    phase: str,
    submitted: dict[str, set[str]],
    shift: timedelta,
    at: datetime,
) -> bool:
    """Whether, at workflow time `at`, a milestone is past its reminder (due + remind_after,
    moved by paused time) while a party it asks still owes its submission."""
    if phase not in _MONITORED_PHASES:
        return False
    remind_after = plan.reminder_policy.remind_after
    return any(
        at >= milestone.due + shift + remind_after
        and not set(milestone.submitted_by) <= submitted.get(milestone.id, set())
        for milestone in plan.milestones
    )


async def refresh_overdue(conn: asyncpg.Connection, internship_id: str, at: datetime) -> None:
    """Bring `internships.overdue` up to date from the records: the latest plan, the phase, the
    milestone submissions, paused time and how far the workflow's time has got (its latest
    record or planned e-mail, never going back). Run it inside a transaction; it locks the
    internship's row first, so concurrent records of one internship take turns."""
    row = await conn.fetchrow(
        "SELECT phase, updated_at FROM internships WHERE internship_id = $1 FOR NO KEY UPDATE",
        internship_id,
    )
    if row is None:
        return
    latest = await conn.fetchrow(
        """
        SELECT (SELECT plan FROM plan_versions WHERE internship_id = $1
                ORDER BY version DESC LIMIT 1) AS plan,
               (SELECT max(planned_at) FROM notifications WHERE internship_id = $1) AS mailed_at
        """,
        internship_id,
    )
    if latest is None or latest["plan"] is None:
        return
    plan = InternshipPlan.model_validate_json(latest["plan"])
    now = max(t for t in (at, row["updated_at"], latest["mailed_at"]) if t is not None)
    rows = await conn.fetch(
        """
        SELECT kind, milestone_id, accepted_at FROM submissions
        WHERE internship_id = $1
          AND (kind IN ('pause', 'resume') OR milestone_id IS NOT NULL)
        ORDER BY accepted_at, submission_id
        """,
        internship_id,
    )
    submitted: dict[str, set[str]] = {}
    for submission in rows:
        if submission["kind"] in MILESTONE_PARTY and submission["milestone_id"] is not None:
            party = MILESTONE_PARTY[submission["kind"]]
            submitted.setdefault(submission["milestone_id"], set()).add(party)
    shift = paused_time(
        ((r["kind"], r["accepted_at"]) for r in rows if r["kind"] in ("pause", "resume")), now
    )
    overdue = is_overdue(plan, row["phase"], submitted, shift, now)
    await conn.execute(
        "UPDATE internships SET overdue = $2 WHERE internship_id = $1 AND overdue <> $2",
        internship_id,
        overdue,
    )


class RecordActivities:
    """Idempotent writes: each carries an id derived from the workflow, so a retry writes nothing
    twice; each runs in one transaction."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="save_plan")
    async def save_plan(self, plan: InternshipPlan) -> None:
        """Keep every plan version (an amendment or extension adds one), the planned dates and
        the parties as the latest version names them."""
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
        log.info("plan saved", internship_id=plan.internship_id, plan_version=plan.version)

    @activity.defn(name="record_event")
    async def record_event(self, event: AuditEvent) -> bool:
        """Append the event to the audit trail, a submission to `submissions`, and bring the read
        model up to date, all in one transaction. Returns False when the event was already
        recorded (a retry)."""
        async with self._pool.acquire() as conn, conn.transaction():
            # Lock the internship first: every later lock of this transaction is then uncontended.
            await conn.execute(
                "SELECT 1 FROM internships WHERE internship_id = $1 FOR NO KEY UPDATE",
                event.internship_id,
            )
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
            if event.kind in SUBMISSION_KINDS:
                await self._record_submission(conn, event)
            await conn.execute(
                """
                UPDATE internships
                SET phase = $2, plan_version = $3, updated_at = $4, record_seq = $5
                WHERE internship_id = $1 AND (updated_at, record_seq) <= ($4, $5)
                """,
                event.internship_id,
                event.phase,
                event.plan_version,
                event.occurred_at,
                event.seq,
            )
            await refresh_overdue(conn, event.internship_id, event.occurred_at)
        log.info(
            "recorded",
            internship_id=event.internship_id,
            kind=event.kind,
            duplicate=not inserted,
        )
        return bool(inserted)

    @staticmethod
    async def _record_submission(conn: asyncpg.Connection, event: AuditEvent) -> None:
        detail: dict[str, Any] = event.detail
        plan_version = detail.get("plan_version", event.plan_version)
        milestone_id = detail.get("milestone_id")
        payload = {k: v for k, v in detail.items() if k not in _SUBMISSION_COLUMNS}
        await conn.execute(
            """
            INSERT INTO submissions (internship_id, submission_id, kind, actor, plan_version,
                                     milestone_id, late, payload, accepted_at, event_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT DO NOTHING
            """,
            event.internship_id,
            submission_id_of(event),
            event.kind,
            event.actor,
            int(plan_version),
            str(milestone_id) if milestone_id is not None else None,
            bool(detail.get("late", False)),
            json.dumps(payload),
            event.occurred_at,
            event.event_id,
        )
