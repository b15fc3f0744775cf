"""Reads of the PostgreSQL records: what the CLI, the API and the demo show without asking the
workflow (a Temporal query needs a worker, and is best kept for what only the workflow knows):
lists and searches, an internship's status and timeline, cohort figures, its latest plan, issuer
profiles and badge counts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
from pydantic import AwareDatetime, BaseModel

from models.plan import InternshipPlan
from models.records import CohortStats, InternshipRow, TimelineRow
from models.status import InternshipStatus, Phase
from records.history_text import detail_fields

#: The most rows one search returns.
MAX_LIMIT = 1000

Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool


async def records_as_of(conn: Connection) -> datetime | None:
    """When the latest record was written (None before the first): while Temporal is down,
    nothing newer can be, so the records are as of then."""
    found: datetime | None = await conn.fetchval(
        "SELECT recorded_at FROM audit_events ORDER BY seq DESC LIMIT 1"
    )
    return found


async def recorded_phase(conn: Connection, internship_id: str) -> Phase | None:
    """The internship's phase as last recorded by its workflow, or None before its first record."""
    phase = await conn.fetchval(
        "SELECT phase FROM internships WHERE internship_id = $1", internship_id
    )
    return Phase(phase) if phase is not None else None


async def institution_of(conn: Connection, internship_id: str) -> str | None:
    """The institution the internship belongs to, from the read model (None before its first
    record, and for an unknown id)."""
    found: str | None = await conn.fetchval(
        "SELECT institution_id FROM internships WHERE internship_id = $1", internship_id
    )
    return found


async def internship_status(
    conn: Connection, internship_id: str, now: datetime | None = None
) -> InternshipStatus | None:
    """The internship's status from the read model: as its workflow saw it at its latest record,
    with which milestones are late or overdue and the next deadline brought to `now` (the wall
    clock by default). None for an unknown id. Right after the start, before the workflow's
    first record, (and for internships recorded before the read model kept statuses) only the
    phase, the plan version and the planned dates are known."""
    row = await conn.fetchrow(
        """
        SELECT internship_id, phase, plan_version, start_at, end_at, updated_at, status
        FROM internships WHERE internship_id = $1
        """,
        internship_id,
    )
    return status_of_row(row, now) if row is not None else None


def status_of_row(row: asyncpg.Record, now: datetime | None = None) -> InternshipStatus:
    """The status kept in a read model row (its internship_id, phase, plan_version, start_at,
    end_at and status columns), brought to `now` (see `internship_status`)."""
    if row["status"] is None:
        return InternshipStatus(
            internship_id=row["internship_id"],
            phase=Phase(row["phase"]),
            plan_version=row["plan_version"],
            approvals={},
            start=row["start_at"],
            end=row["end_at"],
            paused_for=0,
            milestones=(),
            next_deadline=None,
            achieved_levels={},
            credential_id=None,
            reason=None,
        )
    return InternshipStatus.model_validate_json(row["status"]).at(now or datetime.now(UTC))


def _require_aware(name: str, moment: datetime | None) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{name} needs a time zone (e.g. 2027-03-01T00:00:00+01:00)")


async def list_internships(
    conn: Connection,
    phase: Phase | None = None,
    company_id: str | None = None,
    institution_id: str | None = None,
    overdue: bool | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
    institution_ids: Sequence[str] | None = None,
) -> list[InternshipRow]:
    """Internships matching every filter given, latest start first. `text` finds a part of the
    internship, company or institution id, or of a party's name or e-mail address.
    `institution_ids` limits the search to those institutions (an operator key's); None
    searches every one."""
    sql, args = list_query(
        phase, company_id, institution_id, overdue, text, limit, offset, institution_ids
    )
    return [InternshipRow.model_validate(dict(row)) for row in await conn.fetch(sql, *args)]


def list_query(
    phase: Phase | None = None,
    company_id: str | None = None,
    institution_id: str | None = None,
    overdue: bool | None = None,
    text: str | None = None,
    limit: int = 100,
    offset: int = 0,
    institution_ids: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    """The list's statement and its arguments: a condition for each filter given, and none for
    the others. One statement with `$n IS NULL OR ...` for every filter would be prepared once
    and, after five runs, planned once for all values (PostgreSQL's generic plan), which can use
    no filter's index: a company's few internships among 50,000 were then found by reading the
    whole list in order (tests/test_list_plans.py)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    if offset < 0:
        raise ValueError("offset must not be negative")
    conditions: list[str] = []
    args: list[Any] = []

    def given(condition: str, value: Any) -> None:
        args.append(value)
        conditions.append(condition.replace("$?", f"${len(args)}"))

    if phase is not None:
        given("phase = $?", phase.value)
    if company_id is not None:
        given("company_id = $?", company_id)
    if institution_id is not None:
        given("institution_id = $?", institution_id)
    if overdue is not None:
        given("overdue = $?", overdue)
    if institution_ids is not None:
        if len(institution_ids) == 1:  # an equality: the index gives the list's order too
            given("institution_id = $?", institution_ids[0])
        else:
            given("institution_id = ANY($?::text[])", list(institution_ids))
    if text is not None and text.strip():
        escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        given(
            """(internship_id ILIKE $? OR company_id ILIKE $? OR institution_id ILIKE $?
               OR EXISTS (SELECT 1 FROM parties p
                          WHERE p.internship_id = i.internship_id
                            AND (p.name ILIKE $? OR p.email ILIKE $? OR p.party_id ILIKE $?)))""",
            f"%{escaped}%",
        )
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    args += [limit, offset]
    # Only the fixed conditions above are joined in; every value is a parameter.
    sql = f"""
        SELECT internship_id, workflow_id, institution_id, company_id, phase, plan_version,
               start_at, end_at, overdue, updated_at
        FROM internships i {where}
        ORDER BY start_at DESC, internship_id
        LIMIT ${len(args) - 1} OFFSET ${len(args)}
        """  # noqa: S608
    return sql, args


async def internship_timeline(conn: Connection, internship_id: str) -> list[TimelineRow]:
    """Every recorded step of the internship from its audit trail, in order. Unlike the
    workflow's timeline query it needs no worker and outlives Temporal's retention. Each row
    carries its detail both as recorded and as labelled fields for people to read."""
    rows = await conn.fetch(
        """
        SELECT seq, event_id, workflow_id, occurred_at, kind, actor, phase, plan_version, detail
        FROM audit_events WHERE internship_id = $1
        ORDER BY occurred_at, seq
        """,
        internship_id,
    )
    return [
        TimelineRow(
            seq=row["seq"],
            event_id=row["event_id"],
            occurred_at=row["occurred_at"],
            kind=row["kind"],
            key=row["event_id"].removeprefix(f"{row['workflow_id']}/{row['kind']}/"),
            actor=row["actor"],
            phase=row["phase"],
            plan_version=row["plan_version"],
            detail=(detail := _json(row["detail"])),
            fields=detail_fields(detail),
        )
        for row in rows
    ]


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded) if isinstance(loaded, dict) else {}


async def cohort_statistics(
    conn: Connection,
    institution_id: str | None = None,
    start_from: datetime | None = None,
    start_to: datetime | None = None,
) -> CohortStats:
    """Figures for the internships of an institution (or all) starting in [start_from, start_to):
    how many are in each phase, the share of milestone submissions that came on time, and the
    share of decided internships that passed (completed / completed + not certified)."""
    _require_aware("start_from", start_from)
    _require_aware("start_to", start_to)
    cohort = """
        SELECT internship_id, phase FROM internships
        WHERE ($1::text IS NULL OR institution_id = $1)
          AND ($2::timestamptz IS NULL OR start_at >= $2)
          AND ($3::timestamptz IS NULL OR start_at < $3)
    """
    phases = await conn.fetch(
        f"SELECT phase, count(*) AS n FROM ({cohort}) c GROUP BY phase",  # noqa: S608
        institution_id,
        start_from,
        start_to,
    )
    submissions = await conn.fetchrow(
        f"""
        SELECT count(*) AS total, count(*) FILTER (WHERE NOT s.late) AS on_time
        FROM submissions s JOIN ({cohort}) c USING (internship_id)
        WHERE s.kind IN ('milestone_report', 'company_feedback') AND s.milestone_id IS NOT NULL
        """,  # noqa: S608
        institution_id,
        start_from,
        start_to,
    )
    by_phase = {Phase(row["phase"]): int(row["n"]) for row in phases}
    total, on_time = (int(submissions["total"]), int(submissions["on_time"]))
    completed = by_phase.get(Phase.COMPLETED, 0)
    not_certified = by_phase.get(Phase.NOT_CERTIFIED, 0)
    decided = completed + not_certified
    return CohortStats(
        institution_id=institution_id,
        start_from=start_from,
        start_to=start_to,
        internships=sum(by_phase.values()),
        by_phase=by_phase,
        milestone_submissions=total,
        on_time_submissions=on_time,
        on_time_rate=on_time / total if total else None,
        completed=completed,
        not_certified=not_certified,
        pass_rate=completed / decided if decided else None,
    )


# ---- one internship, its recorded status, its latest plan, issuer profiles, badge counts ----


class BadgeCounts(BaseModel):
    issued: int
    revoked: int
    suspended: int
    overdue_internships: int


async def get_internship(conn: Connection, internship_id: str) -> InternshipRow | None:
    row = await conn.fetchrow(
        """
        SELECT internship_id, workflow_id, institution_id, company_id, phase, plan_version,
               start_at, end_at, overdue, updated_at
        FROM internships WHERE internship_id = $1
        """,
        internship_id,
    )
    return InternshipRow.model_validate(dict(row)) if row is not None else None


class RecordedStatus(InternshipStatus):
    """An internship's status as the read model has it, and when its workflow made the record
    it comes from."""

    recorded_at: AwareDatetime | None = None
    """The workflow time of the latest record this status comes from (None before the first).
    The workflow answers a submission before its record is written, so a receipt whose
    `accepted_at` is later than this is not in this status yet: read again."""


@dataclass(frozen=True)
class StatusRead:
    """A status and the institution it belongs to, for the reader's access check."""

    institution_id: str
    status: RecordedStatus


#: No record yet: the read model's row holds the planned dates only (`updated_at` is the epoch).
_NO_RECORD = datetime.fromtimestamp(0, UTC)


async def recorded_status(
    conn: Connection, internship_id: str, now: datetime | None = None
) -> StatusRead | None:
    """The internship's status from the read model in one read (see
    `records.internship_status`), with its institution and the time of its record. None for an
    id the records do not hold (unknown, or started a moment ago and not yet recorded)."""
    row = await conn.fetchrow(
        """
        SELECT internship_id, institution_id, phase, plan_version, start_at, end_at, updated_at,
               status
        FROM internships WHERE internship_id = $1
        """,
        internship_id,
    )
    if row is None:
        return None
    status = status_of_row(row, now)
    recorded_at = row["updated_at"] if row["updated_at"] > _NO_RECORD else None
    return StatusRead(
        institution_id=row["institution_id"],
        status=RecordedStatus.model_validate({**dict(status), "recorded_at": recorded_at}),
    )


async def latest_plan(conn: Connection, internship_id: str) -> InternshipPlan | None:
    """The internship's plan as last saved by its workflow (amendments and extensions add
    versions)."""
    plan = await conn.fetchval(
        "SELECT plan FROM plan_versions WHERE internship_id = $1 ORDER BY version DESC LIMIT 1",
        internship_id,
    )
    return InternshipPlan.model_validate_json(plan) if plan is not None else None


async def badge_counts(conn: Connection, institution_id: str | None = None) -> BadgeCounts:
    row = await conn.fetchrow(
        """
        SELECT count(c.*) AS issued, count(c.revoked_at) AS revoked,
               count(c.*) FILTER (WHERE c.suspended_at IS NOT NULL AND c.revoked_at IS NULL)
                   AS suspended
        FROM credentials c JOIN internships i USING (internship_id)
        WHERE $1::text IS NULL OR i.institution_id = $1
        """,
        institution_id,
    )
    overdue = await conn.fetchval(
        "SELECT count(*) FROM internships WHERE overdue AND ($1::text IS NULL "
        "OR institution_id = $1)",
        institution_id,
    )
    return BadgeCounts(
        issued=row["issued"],
        revoked=row["revoked"],
        suspended=row["suspended"],
        overdue_internships=overdue,
    )


async def institution_profile(conn: Connection, institution_id: str) -> dict[str, str] | None:
    """Name, url and e-mail of an institution as its latest plan names it (None if unknown)."""
    plan = await conn.fetchval(
        """
        SELECT v.plan->'institution' FROM plan_versions v
        JOIN internships i USING (internship_id)
        WHERE i.institution_id = $1 ORDER BY v.recorded_at DESC LIMIT 1
        """,
        institution_id,
    )
    if plan is None:
        return None
    data = json.loads(plan) if isinstance(plan, str) else plan
    return {k: str(data[k]) for k in ("name", "url", "email") if k in data}


async def institution_ids(conn: Connection) -> list[str]:
    """Every institution that has an internship here (the issuers this deployment speaks for)."""
    rows = await conn.fetch("SELECT DISTINCT institution_id FROM internships ORDER BY 1")
    return [row["institution_id"] for row in rows]
