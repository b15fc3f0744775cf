"""What a deployment needs before a worker or the API may start (runtime/readiness.py): the
namespace, the search attributes the code sets with their types, the database's migrations as
far as the code's, the signing key directory. Each check on real parts; the worker and the API
processes refused at start in one line naming each problem; `/readyz` saying which fails while
the API runs. (The embedded stack passing them all: tests/test_runtime_stack.py.)"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import shutil
import sys
import uuid
from pathlib import Path

import asyncpg
import httpx
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from runtime import readiness
from runtime.clients import TemporalConnection
from runtime.database import application_dsn
from runtime.migrations import apply_migrations, discover_migrations
from runtime.settings import Settings
from tests.conftest import make_settings
from tests.helpers import eventually

LATEST = discover_migrations()[-1]
KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD


def target(client: Client, namespace: str) -> TemporalConnection:
    address = client.service_client.config.target_host
    return TemporalConnection(
        address=address,
        namespace=namespace,
        address_from="INTERNFLOW_TEMPORAL_ADDRESS",
        namespace_from="INTERNFLOW_TEMPORAL_NAMESPACE",
    )


async def half_configured_namespace(client: Client) -> str:
    """A new namespace where InternshipEndDate is Text (the code sets a Datetime) and Overdue
    was never created; the other attributes are right."""
    namespace = f"half-{uuid.uuid4().hex[:8]}"
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )
    attributes = {
        "InternshipPhase": KEYWORD,
        "InstitutionId": KEYWORD,
        "CompanyId": KEYWORD,
        "InternshipEndDate": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    }

    async def added() -> bool:
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=attributes)
            )
        except Exception:  # a namespace just registered takes a moment to be known
            return False
        return True

    await eventually(added, f"search attributes added to {namespace}")
    return namespace


async def migrated_up_to(database: str, tmp_path: Path, last: int) -> None:
    """Apply the shipped migrations up to version `last` (as the owner)."""
    earlier = tmp_path / "earlier-migrations"
    earlier.mkdir()
    for migration in discover_migrations():
        if migration.version <= last:
            shutil.copy(str(migration.source), earlier / migration.name)
    await apply_migrations(database, directory=earlier)


async def test_each_check_names_what_is_wrong(
    time_skipping_env: WorkflowEnvironment, settings: Settings, database: str, tmp_path: Path
) -> None:
    client = time_skipping_env.client
    # Temporal: the session's namespace has everything; a missing one and a half-made one.
    assert await readiness.namespace_problem(client, target(client, "internflow")) is None
    assert await readiness.search_attribute_problem(client, "internflow") is None
    missing = await readiness.namespace_problem(client, target(client, "no-such-namespace"))
    assert missing == (
        "the Temporal namespace no-such-namespace (from INTERNFLOW_TEMPORAL_NAMESPACE) does not "
        f"exist at {client.service_client.config.target_host}: create it (`temporal operator "
        "namespace create --namespace no-such-namespace`, or in Temporal Cloud's UI) or name "
        "another"
    )
    half = await half_configured_namespace(client)
    assert await readiness.search_attribute_problem(client, half) == (
        f"the Temporal namespace {half} lacks the search attributes Overdue (Bool) and has "
        "InternshipEndDate is Text, not Datetime: create each with its type (`temporal operator "
        f"search-attribute create --namespace {half} --name Overdue --type ...`, or in Temporal "
        "Cloud's UI) before the first start, after removing one of the wrong type"
    )

    # The database, as the application role: nothing applied, one migration behind, all.
    app = await asyncpg.connect(application_dsn(settings))
    try:
        assert await readiness.migrations_problem(app) == (
            "the database has no migrations applied: run `internflow migrate` (as the tables' "
            "owner, INTERNFLOW_DATABASE_OWNER_URL) first"
        )
        await migrated_up_to(database, tmp_path, LATEST.version - 1)
        behind = await readiness.migrations_problem(app)
        assert behind is not None and behind.startswith("the database's migrations are behind")
        await apply_migrations(database)
        assert await readiness.migrations_problem(app) is None
        # A later migration the code ships and the database has not had is named.
        owner = await asyncpg.connect(database)
        try:
            await owner.execute("DELETE FROM schema_migrations WHERE version = 1")
        finally:
            await owner.close()
        assert await readiness.migrations_problem(app) == (
            "the database's migrations are behind the code (1 not applied: 0001_records.sql): "
            "run `internflow migrate` (as the tables' owner, INTERNFLOW_DATABASE_OWNER_URL) first"
        )
    finally:
        await app.close()

    # The signing key directory.
    keys = tmp_path / "mounted-keys"
    configured = make_settings(tmp_path, key_dir=keys)
    assert readiness.signing_keys_problem(configured) == (
        f"the signing key directory {keys} does not exist: mount the deployment's signing keys "
        "there, or set INTERNFLOW_KEY_DIR to where they are (an empty directory is filled with "
        "new keys on the worker's first start)"
    )
    keys.write_text("not a directory")
    assert "is not a directory" in str(readiness.signing_keys_problem(configured))
    keys.unlink()
    keys.mkdir()
    assert readiness.signing_keys_problem(configured) is None


def production_environment(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A server process's environment: its own secrets (no trial), JSON logs, the test's parts."""
    codec_keys = tmp_path / "codec-keys.json"
    codec_keys.write_text(json.dumps({"k1": base64.b64encode(secrets.token_bytes(32)).decode()}))
    outside = {
        k: v for k, v in os.environ.items() if not k.startswith(("INTERNFLOW_", "TEMPORAL_"))
    }
    return {
        **outside,
        "INTERNFLOW_STATE_DIR": str(tmp_path / "state"),
        "INTERNFLOW_LOG_FORMAT": "json",
        "INTERNFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "INTERNFLOW_CODEC_KEYS_FILE": str(codec_keys),
        "INTERNFLOW_DATABASE_URL": settings.database_url,
        "INTERNFLOW_TASK_QUEUE": settings.task_queue,
        "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
        "INTERNFLOW_API_PORT": str(settings.api_port),
        **extra,
    }


async def refused(argv: list[str], env: dict[str, str]) -> str:
    """Run a server process that must refuse to start: its one error line's message."""
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 2, text
    lines = [json.loads(line) for line in text.splitlines()]  # every line JSON: no traceback
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1, lines
    assert "Traceback" not in text
    message = errors[0]["error"]
    assert isinstance(message, str) and "\n" not in message
    return message


async def test_the_worker_refuses_to_start_naming_each_problem(
    time_skipping_env: WorkflowEnvironment, settings: Settings, database: str, tmp_path: Path
) -> None:
    """A namespace lacking a search attribute and with one of the wrong type, a database one
    migration behind, and no signing key directory: one line names all three."""
    client = time_skipping_env.client
    namespace = await half_configured_namespace(client)
    await migrated_up_to(database, tmp_path, LATEST.version - 1)
    env = production_environment(
        settings,
        tmp_path,
        INTERNFLOW_TEMPORAL_ADDRESS=client.service_client.config.target_host,
        INTERNFLOW_TEMPORAL_NAMESPACE=namespace,
    )
    message = await refused([sys.executable, "-m", "worker"], env)
    assert message.startswith("refusing to start: ")
    problems = message.removeprefix("refusing to start: ").split("; ")
    assert len(problems) == 3, problems
    assert problems[0].startswith(f"the Temporal namespace {namespace} lacks the search")
    assert "Overdue (Bool)" in problems[0] and "InternshipEndDate is Text" in problems[0]
    assert problems[1].startswith("the database's migrations are behind the code")
    assert problems[2].startswith(f"the signing key directory {tmp_path / 'state' / 'keys'}")
    # Nothing was made: the worker did not create keys it would then have signed with.
    assert not (tmp_path / "state" / "keys").exists()


async def test_the_api_refuses_to_start_without_its_namespace(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    (tmp_path / "state" / "keys").mkdir(parents=True)
    address = time_skipping_env.client.service_client.config.target_host
    env = production_environment(
        settings,
        tmp_path,
        INTERNFLOW_TEMPORAL_ADDRESS=address,
        INTERNFLOW_TEMPORAL_NAMESPACE="internflow-typo",
    )
    message = await refused([sys.executable, "-m", "api"], env)
    assert message == (
        "refusing to start: the Temporal namespace internflow-typo (from "
        f"INTERNFLOW_TEMPORAL_NAMESPACE) does not exist at {address}: create it (`temporal "
        "operator namespace create --namespace internflow-typo`, or in Temporal Cloud's UI) or "
        "name another"
    )


async def test_readyz_says_which_check_fails_while_the_api_runs(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool, database: str
) -> None:
    address = time_skipping_env.client.service_client.config.target_host
    configured = settings.model_copy(update={"temporal_address": address})
    configured.keys_path.mkdir(parents=True)

    async def checks(using: Settings) -> tuple[int, dict[str, str]]:
        app = create_app(using)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            answer = await http.get("/readyz")
        body = answer.json()
        assert body["status"] == ("ready" if answer.status_code == 200 else "not ready")
        return answer.status_code, body["checks"]

    assert await checks(configured) == (200, dict.fromkeys(readiness.CHECKS, "ok"))

    # The key directory goes, a migration is undone: each is named, the rest stays ok.
    configured.keys_path.rmdir()
    owner = await asyncpg.connect(database)
    try:
        await owner.execute("DELETE FROM schema_migrations WHERE version = $1", LATEST.version)
    finally:
        await owner.close()
    status, found = await checks(configured)
    assert status == 503
    assert found["signing_keys"].startswith("the signing key directory")
    assert found["migrations"].startswith("the database's migrations are behind the code")
    assert LATEST.name in found["migrations"]
    assert {name for name, value in found.items() if value == "ok"} == {
        "temporal",
        "namespace",
        "search_attributes",
        "postgresql",
    }

    # Another namespace: named, and its search attributes not checked.
    elsewhere = configured.model_copy(update={"temporal_namespace": "no-such-namespace"})
    status, found = await checks(elsewhere)
    assert status == 503
    assert found["namespace"].startswith("the Temporal namespace no-such-namespace")
    assert found["search_attributes"] == "not checked (no namespace)"
