"""Master data that holds: migration 0021 records the institutions and host companies the
internships held before it, each with one name."""

from __future__ import annotations

import shutil
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from runtime.migrations import apply_migrations, discover_migrations


async def test_migration_0021_records_what_the_internships_held(
    database: str, tmp_path: Path
) -> None:
    """Each id keeps its latest-starting internship's name; other names it had are noted."""
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for migration in discover_migrations():
        if migration.version < 21:
            shutil.copy(str(migration.source), earlier / migration.name)
    await apply_migrations(database, directory=earlier)
    owner = await asyncpg.connect(database)
    try:
        starts = {"old": date(2025, 3, 1), "new": date(2026, 3, 1), "solo": date(2026, 4, 1)}
        names = {
            "old": ("northwind-freight", "Northwind Freight", "school-a", "Scuola A"),
            "new": ("northwind-freight", "Northwind Logistics", "school-a", "Scuola A"),
            "solo": ("fjord", "Fjord AS", "school-b", "Scuola B"),
        }
        for iid, (company, company_name, school, school_name) in names.items():
            start = datetime.combine(starts[iid], time(), ZoneInfo("UTC"))
            await owner.execute(
                "INSERT INTO internships (internship_id, workflow_id, institution_id, "
                "company_id, phase, plan_version, start_at, end_at, updated_at) "
                "VALUES ($1, $2, $3, $4, 'completed', 1, $5, $5, $5)",
                iid,
                f"internship-{iid}",
                school,
                company,
                start,
            )
            for role, party, name in (
                ("company", company, company_name),
                ("operator", school, school_name),
            ):
                await owner.execute(
                    "INSERT INTO parties (internship_id, role, party_id, name, email, language, "
                    "plan_version) VALUES ($1, $2, $3, $4, 'x@example.org', 'en', 1)",
                    iid,
                    role,
                    party,
                    name,
                )
        assert await apply_migrations(database) == ["0021_organisations.sql"]
        companies = await owner.fetch("SELECT company_id, name FROM companies ORDER BY 1")
        assert [tuple(r) for r in companies] == [
            ("fjord", "Fjord AS"),
            ("northwind-freight", "Northwind Logistics"),
        ]
        schools = await owner.fetch("SELECT institution_id, name FROM institutions ORDER BY 1")
        assert [tuple(r) for r in schools] == [("school-a", "Scuola A"), ("school-b", "Scuola B")]
        events = {
            (r["organisation"], r["organisation_id"]): r
            for r in await owner.fetch("SELECT * FROM organisation_events")
        }
        assert len(events) == 4
        drifted = events[("company", "northwind-freight")]
        assert (drifted["event"], drifted["actor"], drifted["internship_id"]) == (
            "recorded",
            "migration 0021",
            "new",
        )
        assert drifted["reason"] == (
            "kept from the latest internship; earlier ones also named it 'Northwind Freight'"
        )
        assert events[("company", "fjord")]["reason"] is None
        try:
            await owner.execute("DELETE FROM organisation_events")
        except asyncpg.RaiseError as error:
            assert "append-only" in str(error)
        else:
            raise AssertionError("the names' history could be deleted")
    finally:
        await owner.close()
