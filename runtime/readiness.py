"""What a deployment needs before a worker or the API may start, checked at their start and by
`/readyz` while the API runs: Temporal's namespace and the search attributes the code sets, the
database's migrations as far as the code's, and the signing key directory.

Each check returns None when all is well, or one sentence saying what is wrong and what to do.
The embedded stack passes them all by itself: its dev server is started with the namespace and
the search attributes, it applies the migrations before it starts a worker, and it creates the
key directory before its first worker does (embedded/stack.py)."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta

import asyncpg
import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from runtime import search_attributes
from runtime.clients import TemporalConnection, open_temporal_client, temporal_connection
from runtime.database import application_dsn
from runtime.errors import StackError
from runtime.migrations import discover_migrations
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: Every check, in the order they are named (`/readyz` reports each under this name).
CHECKS = ("temporal", "namespace", "search_attributes", "postgresql", "migrations", "signing_keys")

OK = "ok"
UNCHECKED = "not checked"
"""The prefix of an answer where Temporal would not tell (it counts as ready)."""

_TIMEOUT = timedelta(seconds=5)


class NotReady(StackError):
    """A worker or the API refuses to start: one line naming each thing that is wrong (the
    problems joined by "; ", which none of them contains)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("refusing to start: " + "; ".join(problems))
        self.problems = problems


def type_name(value_type: int) -> str:
    """`Keyword` for INDEXED_VALUE_TYPE_KEYWORD: the name the Temporal CLI and Cloud use."""
    try:
        name = IndexedValueType.Name(IndexedValueType.ValueType(value_type))
    except ValueError:
        return f"type {value_type}"
    name = name.removeprefix("INDEXED_VALUE_TYPE_")
    return {"KEYWORD_LIST": "KeywordList"}.get(name, name.capitalize())


async def namespace_problem(client: Client, target: TemporalConnection) -> str | None:
    """Whether the namespace exists (and these credentials may use it)."""
    namespace = target.namespace
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace), timeout=_TIMEOUT
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return (
                f"the Temporal namespace {namespace} (from {target.namespace_from}) does not "
                f"exist at {target.address}: create it (`temporal operator namespace create "
                f"--namespace {namespace}`, or in Temporal Cloud's UI) or name another"
            )
        if error.status == RPCStatusCode.PERMISSION_DENIED:
            return (
                f"these credentials may not use the Temporal namespace {namespace} (permission "
                "denied): give the API key or the client certificate access to it"
            )
        raise
    return None


async def search_attribute_problem(client: Client, namespace: str) -> str | None:
    """Whether every search attribute the code sets (runtime/search_attributes.py) exists in the
    namespace with its type. Where Temporal will not list them (permission, an older server),
    the answer starts with UNCHECKED: a deployment is not refused for what it cannot see."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace), timeout=_TIMEOUT
        )
    except RPCError as error:
        if error.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            return f"{UNCHECKED} (Temporal did not list them: {error.status.name})"
        raise
    found = {**listed.system_attributes, **listed.custom_attributes}
    missing, wrong = [], []
    for key in search_attributes.ALL:
        wanted = type_name(key.indexed_value_type)
        if key.name not in found:
            missing.append(f"{key.name} ({wanted})")
        elif found[key.name] != key.indexed_value_type:
            wrong.append(f"{key.name} is {type_name(found[key.name])}, not {wanted}")
    if not missing and not wrong:
        return None
    parts = []
    if missing:
        parts.append(f"lacks the search attributes {', '.join(missing)}")
    if wrong:
        parts.append(f"has {', '.join(wrong)}")
    first = missing[0].split(" ")[0] if missing else wrong[0].split(" ")[0]
    return (
        f"the Temporal namespace {namespace} {' and '.join(parts)}: create each with its type "
        f"(`temporal operator search-attribute create --namespace {namespace} --name {first} "
        "--type ...`, or in Temporal Cloud's UI) before the first start, after removing one "
        "of the wrong type"
    )


async def migrations_problem(conn: asyncpg.Connection | asyncpg.Pool) -> str | None:
    """Whether every migration the code ships has run on this database (`schema_migrations`)."""
    fix = "run `internflow migrate` (as the tables' owner, INTERNFLOW_DATABASE_OWNER_URL) first"
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations")
    except asyncpg.UndefinedTableError:
        return f"the database has no migrations applied: {fix}"
    except asyncpg.InsufficientPrivilegeError:
        # Reading it is granted by a migration (0022): one the database has not had.
        return f"the database's migrations are behind the code: {fix}"
    done = {row["version"] for row in rows}
    pending = [m.name for m in discover_migrations() if m.version not in done]
    if not pending:
        return None
    named = ", ".join(pending) if len(pending) <= 3 else f"{pending[0]} to {pending[-1]}"
    return (
        f"the database's migrations are behind the code ({len(pending)} not applied: {named}): "
        f"{fix}"
    )


def signing_keys_problem(settings: Settings) -> str | None:
    """Whether the signing key directory is there: a worker without it would sign badges with a
    new key that nobody keeps (and the API serves the keys from it)."""
    path = settings.keys_path
    if not path.exists():
        return (
            f"the signing key directory {path} does not exist: mount the deployment's signing "
            "keys there, or set INTERNFLOW_KEY_DIR to where they are (an empty directory is "
            "filled with new keys on the worker's first start)"
        )
    if not path.is_dir():
        return f"the signing key directory {path} is not a directory: fix INTERNFLOW_KEY_DIR"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"the signing key directory {path} cannot be read by this user"
    return None


async def temporal_problems(client: Client, target: TemporalConnection) -> dict[str, str]:
    """The namespace and search attribute checks, on a client that reached Temporal."""
    results = {"namespace": await namespace_problem(client, target) or OK}
    if results["namespace"] != OK:
        results["search_attributes"] = f"{UNCHECKED} (no namespace)"
        return results
    results["search_attributes"] = await search_attribute_problem(client, target.namespace) or OK
    return results


def failures(results: dict[str, str]) -> list[str]:
    """The answers that make a deployment not ready (neither OK nor UNCHECKED)."""
    return [value for value in results.values() if value != OK and not value.startswith(UNCHECKED)]


async def deployment_problems(
    settings: Settings,
    client: Client | None,
    target: TemporalConnection | None,
    records: asyncpg.Connection | asyncpg.Pool | None,
) -> dict[str, str]:
    """Every check that can be made with what is given (None: that part was not reached, and
    its checks are left out), by name."""
    results: dict[str, str] = {}
    if client is not None and target is not None:
        results.update(await temporal_problems(client, target))
        for name in ("namespace", "search_attributes"):
            if results[name].startswith(UNCHECKED):
                log.warning("readiness.unchecked", check=name, detail=results[name])
    if records is not None:
        results["migrations"] = await migrations_problem(records) or OK
    results["signing_keys"] = signing_keys_problem(settings) or OK
    return results


async def require_deployment(
    settings: Settings,
    client: Client | None,
    target: TemporalConnection | None,
    records: asyncpg.Connection | asyncpg.Pool | None,
) -> None:
    """NotReady (one line naming each problem) unless every check that can be made passes."""
    found = failures(await deployment_problems(settings, client, target, records))
    if found:
        raise NotReady(found)


async def check_at_start(settings: Settings, *, within: float = 10.0) -> None:
    """The API's start: NotReady (or TemporalRefused, TemporalConfigError) for what is wrong in
    the parts it reaches within `within` seconds each. A part that does not answer yet is left
    to `/readyz`: the API starts, and says it is not ready, while Temporal or PostgreSQL is
    still coming up."""
    target = temporal_connection(settings)
    client: Client | None = None
    try:
        async with asyncio.timeout(within):
            client = await open_temporal_client(settings, target=target)
    except (RuntimeError, RPCError, OSError, TimeoutError) as error:
        log.warning("readiness.temporal_not_reached", error=type(error).__name__)
    conn: asyncpg.Connection | None = None
    try:
        async with asyncio.timeout(within):
            conn = await asyncpg.connect(application_dsn(settings))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        log.warning("readiness.database_not_reached", error=type(error).__name__)
    try:
        await require_deployment(settings, client, target if client else None, conn)
    finally:
        if conn is not None:
            await conn.close()
