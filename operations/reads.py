"""Reads the API needs beyond records.py: one internship, its latest plan, issuer
profiles and badge counts (all from PostgreSQL)."""

from __future__ import annotations

import json
from typing import TypeAlias

import asyncpg
from pydantic import BaseModel

from models.plan import InternshipPlan
from models.records import InternshipRow

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
