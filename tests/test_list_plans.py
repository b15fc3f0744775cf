"""The list's query plans at 50,000 internships: for every filter the list offers (and the
combinations the API and the dashboard send), PostgreSQL answers a page from an index, reading
about what the page needs, never the whole table in order or out of it.

The read model is filled by SQL (50,000 rows spread over 50 companies, 2 institutions, every
phase, some overdue; one company with three internships only) and analysed; each page is then
read the way the product reads it (`records.read.list_query`, a prepared statement) more than
five times, so that PostgreSQL's choice between a plan for these values and a generic plan has
been made, and its plan is read with EXPLAIN (ANALYZE) under both plan cache modes."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from models.status import Phase
from records.read import MAX_LIMIT, list_internships, list_query
from runtime.migrations import apply_migrations
from runtime.settings import Settings

ROWS = 50_000
PAGE = 50

FILTERS: list[dict[str, Any]] = [
    {},
    {"phase": Phase.IN_PROGRESS},
    {"company_id": "company-007"},
    {"company_id": "company-007", "phase": Phase.IN_PROGRESS},
    {"company_id": "rare-company"},
    {"company_id": "rare-company", "phase": Phase.IN_PROGRESS},
    {"institution_id": "school-1"},
    {"institution_ids": ["school-1"]},
    {"institution_ids": ["school-1"], "phase": Phase.EVALUATION},
    {"institution_ids": ["school-0", "school-1"], "company_id": "rare-company"},
    {"overdue": True},
    {"overdue": True, "phase": Phase.IN_PROGRESS},
]


async def fill(conn: asyncpg.Connection) -> None:
    """ROWS internships: 50 companies, 2 institutions, phases in turn, one in 40 overdue; and
    three of a company that has no others."""
    phases = [p.value for p in (Phase.AWAITING_START, Phase.IN_PROGRESS, Phase.EVALUATION)]
    await conn.execute(
        """
        INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase,
                                 plan_version, start_at, end_at, updated_at, overdue)
        SELECT 'i-' || n, 'internship-i-' || n, 'school-' || (n % 2),
               'company-' || lpad((n % 50)::text, 3, '0'), ($2::text[])[1 + n % 3], 1,
               now() - n * interval '1 minute', now() + interval '90 days', now(), n % 40 = 0
        FROM generate_series(1, $1) AS n
        """,
        ROWS,
        phases,
    )
    await conn.execute(
        """
        UPDATE internships SET company_id = 'rare-company'
        WHERE internship_id IN ('i-10', 'i-20000', 'i-49990')
        """
    )
    await conn.execute("ANALYZE internships")


def _with_args(query: tuple[str, list[Any]]) -> list[Any]:
    sql, args = query
    return [sql, *args]


def scans(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of the plan that reads the internships table, with its children's."""
    found = [plan] if plan.get("Relation Name") == "internships" else []
    for child in plan.get("Plans", []):
        found += scans(child)
    return found


def rows_read(node: dict[str, Any]) -> float:
    """Rows the scan produced and rows it read only to throw away (per loop, times loops)."""
    removed = node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
    return float((node.get("Actual Rows", 0) + removed) * node.get("Actual Loops", 1))


@pytest.fixture
async def filled(settings: Settings) -> Any:
    owner = settings.database_owner_url
    assert owner is not None
    await apply_migrations(owner)
    conn = await asyncpg.connect(owner)
    try:
        await fill(conn)
        yield conn
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["auto", "force_generic_plan"])
async def test_every_filter_reads_a_page_from_an_index(
    filled: asyncpg.Connection, mode: str
) -> None:
    conn = filled
    await conn.execute(f"SET plan_cache_mode = {mode}")
    costly = []
    for filters in FILTERS:
        sql, args = list_query(**filters, limit=PAGE)
        statement = await conn.prepare(sql)
        for _ in range(6):  # past the five runs after which PostgreSQL may go generic
            answer = await statement.fetch(*args)
        # What the product returns is what this statement returns.
        listed = await list_internships(conn, **filters, limit=PAGE)
        assert [r["internship_id"] for r in answer] == [r.internship_id for r in listed]
        longer = await conn.fetch(*_with_args(list_query(**filters, limit=MAX_LIMIT)))
        assert len(answer) == min(PAGE, len(longer)), filters
        explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
        plan = json.loads(explained)[0]["Plan"]
        nodes = scans(plan)
        assert nodes, plan
        kinds = sorted({f"{node['Node Type']} {node.get('Index Name', '')}" for node in nodes})
        read = sum(rows_read(node) for node in nodes)
        # A page of 50 from an index: the rows it returns and a few around them; never a
        # walk through thousands of rows of other companies, phases or institutions.
        if any(kind.startswith("Seq Scan") for kind in kinds) or read > 4 * PAGE:
            costly.append((filters, read, kinds))
    assert costly == [], "\n".join(map(str, costly))


async def test_a_text_search_finds_a_party_among_50000(filled: asyncpg.Connection) -> None:
    """The list's text search (a substring of a party's name, e-mail address or an id) finds
    its internship. It reads the list and the parties whole: at this size PostgreSQL prefers
    that to the parties' trigram index (75 against 105 ms on a 2-core machine), which is why the
    scale benchmark times the filtered search, not this one."""
    conn = filled
    await conn.execute(
        """
        INSERT INTO parties (internship_id, party_id, role, name, email, language, plan_version)
        SELECT internship_id, 'p-' || internship_id, 'intern', 'Intern ' || internship_id,
               internship_id || '@example.org', 'en', 1
        FROM internships
        """
    )
    await conn.execute("UPDATE parties SET name = 'Giulia Rossi' WHERE internship_id = 'i-31337'")
    await conn.execute("ANALYZE parties")
    listed = await list_internships(conn, text="rossi", limit=PAGE)
    assert [r.internship_id for r in listed] == ["i-31337"]
    assert await list_internships(conn, text="RARE-comp", limit=PAGE, phase=Phase.EVALUATION)
