"""Reads the API needs beyond records.py: one internship, its status as recorded, its latest
plan, issuer profiles and badge counts (all from PostgreSQL)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeAlias

import asyncpg
from pydantic import AwareDatetime, BaseModel

from models.plan import InternshipPlan
from models.records import InternshipRow
from models.status import InternshipStatus
from operations.records import status_of_row

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


class BadgeCounts(BaseModel):
    issued: int
    revoked: int
    suspended: int
    overdue_internships: int


async def get_internship(conn: Conn, internship_id: str) -> InternshipRow | None:
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
    conn: Conn, internship_id: str, now: datetime | None = None
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


async def latest_plan(conn: Conn, internship_id: str) -> InternshipPlan | None:
    """The internship's plan as last saved by its workflow (amendments and extensions add
    versions)."""
    plan = await conn.fetchval(
        "SELECT plan FROM plan_versions WHERE internship_id = $1 ORDER BY version DESC LIMIT 1",
        internship_id,
    )
    return InternshipPlan.model_validate_json(plan) if plan is not None else None


async def badge_counts(conn: Conn, institution_id: str | None = None) -> BadgeCounts:
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


async def institution_profile(conn: Conn, institution_id: str) -> dict[str, str] | None:
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


async def institution_ids(conn: Conn) -> list[str]:
    """Every institution that has an internship here (the issuers this deployment speaks for)."""
    rows = await conn.fetch("SELECT DISTINCT institution_id FROM internships ORDER BY 1")
    return [row["institution_id"] for row in rows]
