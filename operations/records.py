"""Reads of the PostgreSQL records: what the CLI, the API and the demo show without asking the
workflow (a Temporal query needs a worker, and is best kept for what only the workflow knows)."""

from __future__ import annotations

import asyncpg

from models.status import Phase


async def recorded_phase(
    conn: asyncpg.Connection | asyncpg.Pool, internship_id: str
) -> Phase | None:
    """The internship's phase as last recorded by its workflow, or None before its first record."""
    phase = await conn.fetchval(
        "SELECT phase FROM internships WHERE internship_id = $1", internship_id
    )
    return Phase(phase) if phase is not None else None
