"""The audit trail cannot be rewritten by the application: it connects as internflow_app, which
may read and append but not change, remove, alter or unprotect the record; the migrations run as
the tables' owner. On the embedded PostgreSQL, through real connections."""

from __future__ import annotations

import json
import stat
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from embedded.postgres import EmbeddedPostgres
from embedded.stack import EmbeddedStack
from runtime.database import APP_ROLE, application_dsn, password_path
from runtime.migrations import apply_migrations
from runtime.settings import Settings
from tests.conftest import FAST_POSTGRES, free_port, make_settings
from tests.test_postgres_tls import command_env, internflow, one_error_line
from tests.test_runtime_stack import wait_for

#: What the application role may do with each table (UPDATE: the columns it may change). A new
#: table must be added here: the test below fails for a table whose privileges nobody decided.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "audit_events": {"SELECT": set(), "INSERT": set()},
    "submissions": {"SELECT": set(), "INSERT": set()},
    "plan_versions": {"SELECT": set(), "INSERT": set()},
    "internships": {
        "SELECT": set(),
        "INSERT": set(),
        "UPDATE": {
            "phase",
            "plan_version",
            "start_at",
            "end_at",
            "updated_at",
            "record_seq",
            "status",
            "overdue",
        },
    },
    "parties": {
        "SELECT": set(),
        "INSERT": set(),
        "UPDATE": {"party_id", "name", "email", "language", "plan_version"},
    },
    "notifications": {
        "SELECT": set(),
        "INSERT": set(),
        "UPDATE": {"attempts", "status", "error", "sent_at"},
    },
    "credentials": {
        "SELECT": set(),
        "INSERT": set(),
        "UPDATE": {"emailed_at", "email_error", "revoked_at", "suspended_at", "reason"},
    },
    "status_lists": {"SELECT": set(), "INSERT": set(), "UPDATE": {"bits", "updated_at"}},
    "api_keys": {"SELECT": set(), "INSERT": set(), "UPDATE": {"revoked_at"}},
    "badge_page_choices": {"SELECT": set(), "INSERT": set()},
    "wallet_claims": {"SELECT": set(), "INSERT": set()},
    # Offers by reference: stored, served once (cleared), deleted once expired.
    "wallet_offers": {
        "SELECT": set(),
        "INSERT": set(),
        "DELETE": set(),
        "UPDATE": {"offer", "served_at"},
    },
    "institutions": {
        "SELECT": set(),
        "INSERT": set(),
        "UPDATE": {"name", "renamed_at", "legal_identifier", "linkedin_organization_id"},
    },
    "companies": {"SELECT": set(), "INSERT": set(), "UPDATE": {"name", "renamed_at"}},
    "organisation_events": {"SELECT": set(), "INSERT": set()},
    "status_notices": {"SELECT": set(), "INSERT": set(), "UPDATE": {"started_at"}},
    "badge_images": {"SELECT": set(), "INSERT": set()},
    "schema_migrations": {"SELECT": set()},
}


async def _one_record(conn: asyncpg.Connection) -> None:
    """An internship, an audit event and a submission, written as the worker writes them."""
    now = datetime.now(UTC)
    await conn.execute(
        """
        INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase,
                                 plan_version, start_at, end_at, updated_at)
        VALUES ('it-1', 'internship-it-1', 'school', 'acme', 'planning', 1, $1, $2, $1)
        """,
        now,
        now + timedelta(days=90),
    )
    await conn.execute(
        """
        INSERT INTO audit_events (event_id, internship_id, workflow_id, run_id, plan_version,
                                  actor, kind, phase, occurred_at)
        VALUES ('internship-it-1/approval/a-1', 'it-1', 'internship-it-1', 'run', 1, 'intern',
                'approval', 'planning', $1)
        """,
        now,
    )
    await conn.execute(
        """
        INSERT INTO submissions (internship_id, submission_id, kind, actor, plan_version,
                                 accepted_at, event_id)
        VALUES ('it-1', 'a-1', 'approval', 'intern', 1, $1, 'internship-it-1/approval/a-1')
        """,
        now,
    )


REFUSED = [
    "UPDATE audit_events SET actor = 'someone else'",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
    "UPDATE submissions SET late = true",
    "DELETE FROM submissions",
    "TRUNCATE submissions",
    "ALTER TABLE audit_events ADD COLUMN note text",
    "ALTER TABLE submissions DROP CONSTRAINT submissions_pkey",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE submissions DISABLE TRIGGER submissions_no_update_delete",
    "DROP TRIGGER audit_events_no_update_delete ON audit_events",
    "DROP TRIGGER submissions_no_truncate ON submissions",
    "DROP TABLE audit_events",
    "CREATE TRIGGER sneak BEFORE INSERT ON audit_events FOR EACH ROW "
    "EXECUTE FUNCTION audit_events_append_only()",
    "SET session_replication_role = replica",
    "CREATE TABLE audit_events_copy (LIKE audit_events)",
    "UPDATE internships SET institution_id = 'elsewhere'",
    "DELETE FROM internships",
    "UPDATE api_keys SET role = 'admin'",
    "UPDATE organisation_events SET name = 'another name'",
    "DELETE FROM organisation_events",
    "TRUNCATE organisation_events",
    "UPDATE companies SET company_id = 'elsewhere'",
    "UPDATE badge_images SET content = '\\x00'",
    "DELETE FROM badge_images",
    "UPDATE wallet_offers SET expires_at = now() + interval '1 year'",
    "UPDATE wallet_offers SET credential_uuid = gen_random_uuid()",
    "TRUNCATE wallet_offers",
    "DELETE FROM companies",
    "DELETE FROM institutions",
]


async def test_the_application_role_reads_and_appends_but_cannot_rewrite_the_record(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT current_user") == APP_ROLE
        assert not await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", APP_ROLE)
        await _one_record(conn)
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 1
        assert await conn.fetchval("SELECT actor FROM audit_events") == "intern"
        assert await conn.fetchval("SELECT count(*) FROM submissions") == 1
        # What the read model needs it may still do.
        await conn.execute("UPDATE internships SET phase = 'in_progress', overdue = true")

        refused: list[str] = []
        for statement in REFUSED:
            try:
                async with conn.transaction():
                    await conn.execute(statement)
            except (asyncpg.InsufficientPrivilegeError, asyncpg.InvalidSchemaNameError):
                refused.append(statement)
        assert refused == REFUSED, f"allowed: {sorted(set(REFUSED) - set(refused))}"
        # Nor can it become the owner.
        owner = await conn.fetchval(
            "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'audit_events'"
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f'SET ROLE "{owner}"')
        assert await conn.fetchval("SELECT count(*) FROM audit_events") == 1
        assert await conn.fetchval("SELECT actor FROM audit_events") == "intern"
        assert await conn.fetchval("SELECT late FROM submissions") is False


async def test_every_table_has_the_privileges_decided_for_it(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """No more, no less than EXPECTED: a new table (made by a later migration, which gets SELECT
    and INSERT by default privileges) fails here until someone decides what the application
    may do with it."""
    owner = await asyncpg.connect(settings.database_owner_dsn)
    try:
        tables = {
            row["tablename"]
            for row in await owner.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            )
        }
        granted: dict[str, dict[str, set[str]]] = defaultdict(dict)
        for row in await owner.fetch(
            """
            SELECT table_name, privilege_type FROM information_schema.role_table_grants
            WHERE grantee = $1 AND table_schema = 'public'
            """,
            APP_ROLE,
        ):  # an UPDATE here would be on every column, now and later
            everything = {"*"} if row["privilege_type"] == "UPDATE" else set()
            granted[row["table_name"]][row["privilege_type"]] = everything
        for row in await owner.fetch(
            """
            SELECT table_name, column_name FROM information_schema.column_privileges
            WHERE grantee = $1 AND table_schema = 'public' AND privilege_type = 'UPDATE'
            """,
            APP_ROLE,
        ):
            columns = granted[row["table_name"]].setdefault("UPDATE", set())
            if "*" not in columns:
                columns.add(row["column_name"])
        owners = {
            row["tablename"]: row["tableowner"]
            for row in await owner.fetch(
                "SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'"
            )
        }
    finally:
        await owner.close()
    assert tables == set(EXPECTED), "decide the application role's privileges on every table"
    for table in sorted(tables):
        assert granted.get(table, {}) == EXPECTED[table], table
        assert owners[table] != APP_ROLE


async def test_the_embedded_stack_runs_the_application_as_its_own_role(tmp_path: Path) -> None:
    """The stack generates the application role's password (kept like the secret key), migrates
    as the owner (the superuser initdb made) and gives its worker the application's DSN only."""
    saw = tmp_path / "worker-saw"
    fake_worker = [
        sys.executable,
        "-c",
        "import json, os, sys, time\n"
        "names = ('INTERNFLOW_DATABASE_URL', 'INTERNFLOW_DATABASE_OWNER_URL', 'INTERNFLOW_DEMO')\n"
        "open(sys.argv[1], 'w').write(json.dumps([os.environ.get(n) for n in names]))\n"
        "time.sleep(300)",
        str(saw),
    ]
    settings = make_settings(  # as by default: no password in the DSN
        tmp_path, database_url=f"postgresql://internflow_app@127.0.0.1:{free_port()}/internflow"
    )
    stack = EmbeddedStack(settings, worker=fake_worker, postgres_options=FAST_POSTGRES)
    await stack.start()
    try:
        generated = password_path(settings)
        assert stat.S_IMODE(generated.stat().st_mode) == 0o600
        password = generated.read_text().strip()
        assert len(password) >= 32
        assert password not in (tmp_path / "stack.json").read_text()
        assert password not in "\n".join(stack.describe())

        await wait_for(saw.exists, 10)
        assert json.loads(saw.read_text()) == [settings.database_url, None, "true"]

        # Without the password the application role is refused; with it, it is the app role.
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(settings.database_url)
        conn = await asyncpg.connect(application_dsn(settings))
        try:
            assert await conn.fetchval("SELECT current_user") == APP_ROLE
            assert await conn.fetchval("SELECT count(*) FROM audit_events") == 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("TRUNCATE audit_events")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(
                    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_update_delete"
                )
        finally:
            await conn.close()
        owner = await asyncpg.connect(settings.database_owner_dsn)
        try:
            assert (
                await owner.fetchval(
                    "SELECT tableowner FROM pg_tables WHERE tablename = 'audit_events'"
                )
                == "postgres"
            )
            assert await owner.fetchval("SELECT count(*) FROM schema_migrations") > 0
        finally:
            await owner.close()
    finally:
        await stack.stop()

    # A restart keeps the password (and the role's password follows the file).
    again = EmbeddedStack(settings, worker=fake_worker, postgres_options=FAST_POSTGRES)
    await again.start()
    try:
        assert password_path(settings).read_text().strip() == password
        conn = await asyncpg.connect(application_dsn(settings))
        await conn.close()
    finally:
        await again.stop()


@pytest.mark.parametrize("migrated", [False, True], ids=["new-database", "migrated-database"])
async def test_migrate_as_a_role_that_is_not_the_owner_says_which_setting_in_one_line(
    settings: Settings, database: str, postgres: EmbeddedPostgres, tmp_path: Path, migrated: bool
) -> None:
    """`internflow migrate` with INTERNFLOW_DATABASE_OWNER_URL naming the application role (the
    easy mistake: the two URLs side by side), on a new database and on one already migrated:
    one line naming the setting, the role it connects as and the owner it should be, exit 2."""
    if migrated:
        await apply_migrations(database)
    env = command_env(settings, INTERNFLOW_DATABASE_OWNER_URL=settings.database_url)
    code, output = await internflow(env, "migrate")
    line = one_error_line(output)
    assert code == 2, output
    owner = urlsplit(database).username
    assert "INTERNFLOW_DATABASE_OWNER_URL" in line and f"'{APP_ROLE}'" in line, line
    assert f"'{owner}'" in line, line  # the role it should connect as
    assert "permission denied" in line, line  # PostgreSQL's own words, for a search
    # Nothing was changed, and the owner's migrate still works.
    conn = await asyncpg.connect(database)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = $1",
            APP_ROLE,
        )
        assert tables == 0
    finally:
        await conn.close()
    code, output = await internflow(command_env(settings), "migrate")
    assert code == 0, output
