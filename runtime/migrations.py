"""Schema migrations: apply db/migrations/NNNN_name.sql in order, each once, under a lock."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

import asyncpg
import structlog

from runtime.database import named_refusals
from runtime.errors import StackError

log = structlog.get_logger(__name__)

#: A migration file: four digits, an underscore, a name, `.sql` (e.g. `0001_internships.sql`).
MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<slug>[A-Za-z0-9_-]+)\.sql$")

# One advisory lock key for every process that migrates this database.
_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"internflow.schema_migrations").digest()[:8], "big", signed=True
)

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer     PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(StackError):
    """A migration file is misnamed or failed; the database is left as it was before it."""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    source: Traversable

    def sql(self) -> str:
        return self.source.read_text(encoding="utf-8")


def migrations_directory() -> Traversable:
    """The migrations shipped with the `db` package."""
    return files("db") / "migrations"


def discover_migrations(directory: Path | Traversable | None = None) -> list[Migration]:
    """The migration files in `directory` (default: the `db` package's), in version order."""
    root = directory if directory is not None else migrations_directory()
    found: dict[int, Migration] = {}
    for entry in root.iterdir():
        if not entry.name.endswith(".sql") or not entry.is_file():
            continue
        match = MIGRATION_FILE.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name} is misnamed: rename it to NNNN_name.sql "
                "(four digits, an underscore, letters, digits, - or _)"
            )
        version = int(match["version"])
        if version in found:
            raise MigrationError(
                f"migrations {found[version].name} and {entry.name} share version "
                f"{match['version']}: renumber one of them"
            )
        found[version] = Migration(version, entry.name, entry)
    return [found[version] for version in sorted(found)]


async def apply_migrations(
    conn_or_dsn: asyncpg.Connection | str,
    *,
    directory: Path | Traversable | None = None,
    variable: str = "INTERNFLOW_DATABASE_OWNER_URL",
) -> list[str]:
    """Apply every migration not yet recorded in `schema_migrations`, each in its own
    transaction, while holding an advisory lock (concurrent starters wait, then find nothing
    left to do). Returns the file names applied; MigrationError names a file that failed. A
    connection to a DSN refused for a setting's sake (TLS, credentials) is a StackError naming
    `variable`, the one the DSN comes from; so is a role that may not create or change the
    tables (NotTheOwner: it names the role to connect as instead)."""
    migrations = discover_migrations(directory)
    if isinstance(conn_or_dsn, str):
        with named_refusals(conn_or_dsn, variable):
            conn = await asyncpg.connect(conn_or_dsn)
        try:
            return await _apply_as_owner(conn, migrations, variable)
        finally:
            await conn.close()
    return await _apply_as_owner(conn_or_dsn, migrations, variable)


class NotTheOwner(StackError):
    """The migrations connected as a role that may not create or change the tables."""


async def _apply_as_owner(
    conn: asyncpg.Connection, migrations: list[Migration], variable: str
) -> list[str]:
    try:
        return await _apply(conn, migrations)
    except asyncpg.InsufficientPrivilegeError as error:
        raise await _not_the_owner(conn, variable, error) from None
    except MigrationError as error:
        # Where every role may create in the schema (PostgreSQL 14 and older), the refusal comes
        # later, from a migration that changes a table the role does not own.
        if isinstance(error.__cause__, asyncpg.InsufficientPrivilegeError):
            raise await _not_the_owner(conn, variable, error.__cause__) from None
        raise


async def _not_the_owner(
    conn: asyncpg.Connection, variable: str, error: asyncpg.InsufficientPrivilegeError
) -> NotTheOwner:
    """One sentence: the setting, the role it connects as, the owner it should be (that of the
    tables once there are any, else the database's), PostgreSQL's own words."""
    role, owner = await conn.fetchrow(
        """
        SELECT current_user,
               coalesce(
                   (SELECT tableowner FROM pg_tables
                     WHERE tablename = 'schema_migrations' AND schemaname = current_schema()),
                   (SELECT pg_get_userbyid(datdba) FROM pg_database
                     WHERE datname = current_database()))
        """
    )
    if role == owner:  # the owner, refused all the same (a privilege revoked by hand)
        return NotTheOwner(
            f"{variable} connects as role {role!r}, the database's owner, and PostgreSQL "
            f"refused it ({error}): give that role back the ownership of the schema and its "
            "tables"
        )
    return NotTheOwner(
        f"{variable} connects as role {role!r}, which does not own the database's tables "
        f"({error}): set {variable} to the URL of the tables' owner, role {owner!r} here "
        "(not the application's role of INTERNFLOW_DATABASE_URL)"
    )


async def _apply(conn: asyncpg.Connection, migrations: list[Migration]) -> list[str]:
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(_CREATE_TABLE)
        rows = await conn.fetch("SELECT version, name FROM schema_migrations")
        done = {row["version"]: row["name"] for row in rows}
        unknown = sorted(set(done) - {m.version for m in migrations})
        if unknown:
            log.warning("migrations.unknown_versions_in_database", versions=unknown)
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.name:
                    log.warning(
                        "migrations.renamed",
                        version=migration.version,
                        recorded=done[migration.version],
                        file=migration.name,
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(migration.sql())
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise MigrationError(
                    f"migration {migration.name} failed and was rolled back "
                    f"({type(exc).__name__}: {exc}): fix the file and start again"
                ) from exc
            log.info("migrations.applied", file=migration.name)
            applied.append(migration.name)
    finally:
        if not conn.is_closed():  # a closed connection has released the lock already
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
