"""The embedded stack's parts, started for real: PostgreSQL, migrations, mail sink, Temporal."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib
import asyncpg
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from embedded.child_process import process_alive
from embedded.mail_sink import MailSink
from embedded.postgres import EmbeddedPostgres
from embedded.stack import EmbeddedStack, ProcessRecord, StackInfo
from embedded.temporal_server import TemporalServer, temporal_binary
from runtime import search_attributes
from runtime.errors import StackError
from runtime.migrations import MigrationError, apply_migrations, discover_migrations
from tests.conftest import FAST_POSTGRES, free_port, make_settings
from tests.helpers import eventually
from worker import pool_when_reachable

# ---- helpers ------------------------------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket listening on a free loopback port: 'another program' holding that port."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def sleeper() -> subprocess.Popen[bytes]:
    """A live process that is not PostgreSQL."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])


def write_migrations(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


async def wait_for(predicate: object, seconds: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


# ---- PostgreSQL ---------------------------------------------------------------------------------


async def test_postgres_answers_on_its_dsn(postgres: EmbeddedPostgres) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        assert version.startswith("18.")
        assert await conn.fetchval("SELECT current_database()") == "internflow"
        assert await conn.fetchval("SHOW server_encoding") == "UTF8"
    finally:
        await conn.close()


async def test_postgres_restart_keeps_data_and_survives_a_stale_pid_file(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, database_url=f"postgresql://postgres:pw@127.0.0.1:{free_port()}/appdata"
    )
    async with EmbeddedPostgres(settings, server_options=FAST_POSTGRES) as server:
        conn = await asyncpg.connect(server.dsn)
        await conn.execute("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
        await conn.close()
    assert server.pid is None

    # A killed run leaves postmaster.pid behind; its pid may meanwhile name another process,
    # which PostgreSQL alone would take for a running server.
    unrelated = sleeper()
    try:
        pid_file = server.data_dir / "postmaster.pid"
        pid_file.write_text(f"{unrelated.pid}\n{server.data_dir}\n")
        async with EmbeddedPostgres(settings, server_options=FAST_POSTGRES) as again:
            conn = await asyncpg.connect(again.dsn)
            assert await conn.fetchval("SELECT value FROM kept") == "still here"
            await conn.close()
    finally:
        unrelated.kill()
        unrelated.wait()


async def test_postgres_refuses_a_running_owner_and_replaces_a_dead_ones(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    first = EmbeddedPostgres(settings, server_options=FAST_POSTGRES)
    await first.start()
    second = EmbeddedPostgres(settings, server_options=FAST_POSTGRES)
    try:
        with pytest.raises(StackError, match="already running"):
            await second.start()
        assert first.pid is not None

        # The process that started `first` "died" (a killed `internflow up`): its server is a
        # leftover, which the next start stops and replaces.
        owner = json.loads(first.owner_file.read_text())
        first.owner_file.write_text(json.dumps({**owner, "pid": dead_pid()}))
        await second.start()
        assert first.pid is None
        conn = await asyncpg.connect(second.dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await second.stop()
        await first.stop()


async def test_postgres_port_in_use_names_the_setting(
    tmp_path: Path, listener: socket.socket
) -> None:
    port = listener.getsockname()[1]
    settings = make_settings(tmp_path, database_url=f"postgresql://postgres@127.0.0.1:{port}/x")
    with pytest.raises(StackError, match="INTERNFLOW_DATABASE_URL"):
        await EmbeddedPostgres(settings).start()


# ---- migrations ---------------------------------------------------------------------------------


async def test_migrations_apply_in_order_once(database: str, tmp_path: Path) -> None:
    directory = write_migrations(
        tmp_path / "migrations",
        {
            "0010_third.sql": "INSERT INTO steps (name) VALUES ('third');",
            "0001_first.sql": "CREATE TABLE steps (n serial PRIMARY KEY, name text NOT NULL);",
            "0002_second.sql": "INSERT INTO steps (name) VALUES ('second');",
            "README.md": "not a migration",
        },
    )
    applied = await apply_migrations(database, directory=directory)
    assert applied == ["0001_first.sql", "0002_second.sql", "0010_third.sql"]
    assert await apply_migrations(database, directory=directory) == []

    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetch("SELECT name FROM steps ORDER BY n") == [
            ("second",),
            ("third",),
        ]
        recorded = await conn.fetch("SELECT version, name, applied_at FROM schema_migrations")
        assert sorted((r["version"], r["name"]) for r in recorded) == [
            (1, "0001_first.sql"),
            (2, "0002_second.sql"),
            (10, "0010_third.sql"),
        ]
        assert all(r["applied_at"] is not None for r in recorded)
    finally:
        await conn.close()


async def test_failing_migration_leaves_no_trace(database: str, tmp_path: Path) -> None:
    directory = write_migrations(
        tmp_path / "migrations",
        {
            "0001_good.sql": "CREATE TABLE good (id int);",
            "0002_bad.sql": "CREATE TABLE half (id int);\nSELECT * FROM no_such_table;",
        },
    )
    with pytest.raises(MigrationError, match=re.escape("0002_bad.sql")):
        await apply_migrations(database, directory=directory)
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT to_regclass('good') IS NOT NULL")
        assert await conn.fetchval("SELECT to_regclass('half') IS NULL")
        assert await conn.fetchval("SELECT array_agg(version) FROM schema_migrations") == [1]

        (directory / "0002_bad.sql").write_text("CREATE TABLE half (id int);")
        assert await apply_migrations(conn, directory=directory) == ["0002_bad.sql"]
    finally:
        await conn.close()


async def test_concurrent_apply_applies_each_once(database: str, tmp_path: Path) -> None:
    directory = write_migrations(
        tmp_path / "migrations",
        {
            "0001_slow.sql": "CREATE TABLE counter (n int); SELECT pg_sleep(0.3);",
            "0002_count.sql": "INSERT INTO counter VALUES (1);",
        },
    )
    first, second = await asyncpg.connect(database), await asyncpg.connect(database)
    try:
        results = await asyncio.gather(
            apply_migrations(first, directory=directory),
            apply_migrations(second, directory=directory),
        )
        assert sorted(name for result in results for name in result) == [
            "0001_slow.sql",
            "0002_count.sql",
        ]
        assert await first.fetchval("SELECT count(*) FROM counter") == 1
    finally:
        await first.close()
        await second.close()


def test_misnamed_or_duplicate_migrations_are_refused(tmp_path: Path) -> None:
    misnamed = write_migrations(tmp_path / "a", {"1_init.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match=re.escape("1_init.sql")):
        discover_migrations(misnamed)
    duplicate = write_migrations(tmp_path / "b", {"0001_a.sql": "", "0001_b.sql": ""})
    with pytest.raises(MigrationError, match="share version"):
        discover_migrations(duplicate)


def test_shipped_migrations_are_well_named() -> None:
    versions = [m.version for m in discover_migrations()]
    assert versions == sorted(set(versions))


# ---- mail sink ----------------------------------------------------------------------------------


async def test_mail_sink_stores_parseable_eml(mail_sink: MailSink) -> None:
    for subject in ("Lernvereinbarung prüfen", "Second"):
        message = EmailMessage()
        message["From"] = "internflow <noreply@internflow.localhost>"
        message["To"] = "intern@example.org"
        message["Subject"] = subject
        message.set_content("Bitte bestätigen.")
        await aiosmtplib.send(
            message,
            hostname=mail_sink.host,
            port=mail_sink.port,
            recipients=["intern@example.org", "tutor@example.org"],
        )

    files = mail_sink.messages()
    assert [f.suffix for f in files] == [".eml", ".eml"]
    assert sorted(p.name for p in mail_sink.outbox_dir.iterdir()) == [f.name for f in files]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "Lernvereinbarung prüfen"
    assert parsed["To"] == "intern@example.org"
    assert parsed.get_all("Delivered-To") == ["intern@example.org", "tutor@example.org"]
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content().strip() == "Bitte bestätigen."


async def test_mail_sink_holds_deliveries_and_stores_none_for_a_client_gone_meanwhile(
    mail_sink: MailSink,
) -> None:
    """The drill's slow server: held sessions wait after MAIL FROM; one whose client went away
    stores nothing, one still connected is stored on release."""
    message = EmailMessage()
    message["From"] = "internflow <noreply@internflow.localhost>"
    message["To"] = "intern@example.org"
    message["Subject"] = "held"
    message.set_content("x")

    async def send() -> None:
        await aiosmtplib.send(message, hostname=mail_sink.host, port=mail_sink.port, timeout=60)

    async def held(n: int) -> bool:
        return mail_sink.held == n

    mail_sink.hold()
    gone = asyncio.create_task(send())
    await eventually(lambda: held(1), "the first session is held")
    gone.cancel()  # the client disconnects while held, as a killed worker's would
    waiting = asyncio.create_task(send())
    await eventually(lambda: held(2), "the second session is held too")
    assert mail_sink.messages() == []
    mail_sink.release()
    await waiting
    await eventually(lambda: held(0), "no session is held after release")
    assert len(mail_sink.messages()) == 1


def test_mail_sink_port_in_use_names_the_setting(tmp_path: Path, listener: socket.socket) -> None:
    sink = MailSink(tmp_path / "outbox", "127.0.0.1", listener.getsockname()[1])
    with pytest.raises(StackError, match="INTERNFLOW_SMTP_PORT"):
        sink.start()
    assert not sink.running


# ---- Temporal -----------------------------------------------------------------------------------


def test_temporal_binary_is_executable() -> None:
    assert os.access(temporal_binary(), os.X_OK)


async def test_temporal_server_registers_namespace_and_search_attributes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, temporal_namespace="internflow-test")
    async with TemporalServer(settings) as server:
        assert (tmp_path / "temporal" / "temporal.sqlite").exists()
        client = await Client.connect(server.address, namespace=settings.temporal_namespace)
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace="internflow-test")
        )
        assert described.namespace_info.name == "internflow-test"
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace="internflow-test")
        )
        for key in search_attributes.ALL:
            assert listed.custom_attributes[key.name] == int(key.indexed_value_type)
    assert server.pid is None


@pytest.mark.parametrize("taken", ["grpc", "ui"])
async def test_temporal_port_in_use_names_the_setting(
    tmp_path: Path, listener: socket.socket, taken: str
) -> None:
    port = listener.getsockname()[1]
    settings = (
        make_settings(tmp_path, temporal_address=f"127.0.0.1:{port}")
        if taken == "grpc"
        else make_settings(tmp_path, temporal_ui_port=port)
    )
    setting = "INTERNFLOW_TEMPORAL_ADDRESS" if taken == "grpc" else "INTERNFLOW_TEMPORAL_UI_PORT"
    server = TemporalServer(settings)
    with pytest.raises(StackError, match=setting):
        await server.start()
    assert server.pid is None


# ---- the stack ----------------------------------------------------------------------------------


def stack_info(state_dir: Path, owner: ProcessRecord, *, ready: bool, ports: list[int]) -> str:
    info = StackInfo(
        owner=owner,
        started_at="2026-01-01T00:00:00+00:00",
        ready=ready,
        state_dir=str(state_dir),
        temporal_address=f"127.0.0.1:{ports[0]}",
        temporal_namespace="internflow",
        temporal_ui_url="http://127.0.0.1:1",
        database_dsn=f"postgresql://postgres@127.0.0.1:{ports[1]}/internflow",
        smtp_address=f"127.0.0.1:{ports[2]}",
        outbox=str(state_dir / "outbox"),
        worker_log=str(state_dir / "logs" / "worker.log"),
    )
    return info.to_json()


def test_find_running_tells_a_live_stack_from_a_stale_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    stack_file = tmp_path / "stack.json"
    assert EmbeddedStack.find_running(settings) is None

    sockets = [socket.create_server(("127.0.0.1", 0)) for _ in range(3)]
    try:
        ports = [s.getsockname()[1] for s in sockets]
        me = ProcessRecord.of(os.getpid())
        stack_file.write_text(stack_info(tmp_path, me, ready=True, ports=ports))
        found = EmbeddedStack.find_running(settings)
        assert found is not None and found.owner.pid == os.getpid()

        stack_file.write_text(stack_info(tmp_path, me, ready=False, ports=ports))
        assert EmbeddedStack.find_running(settings) is None, "still starting"
        dead = ProcessRecord(dead_pid(), None)
        stack_file.write_text(stack_info(tmp_path, dead, ready=True, ports=ports))
        assert EmbeddedStack.find_running(settings) is None, "owner is dead"
        reused = ProcessRecord(os.getpid(), me.create_time - 1000 if me.create_time else 0.0)
        stack_file.write_text(stack_info(tmp_path, reused, ready=True, ports=ports))
        assert EmbeddedStack.find_running(settings) is None, "owner pid was reused"
        stack_file.write_text("{ not json")
        assert EmbeddedStack.find_running(settings) is None, "broken file"
        assert found.unreachable() == []
        stack_file.write_text(stack_info(tmp_path, me, ready=True, ports=ports))
        sockets.pop(0).close()  # Temporal's port
        found = EmbeddedStack.find_running(settings)
        assert found is not None, "a stack partly down is still that stack"
        assert found.unreachable() == ["temporal"]
        assert "Temporal is down in the embedded stack" in found.down_sentence(["temporal"])
    finally:
        for s in sockets:
            s.close()
    stack_file.write_text(stack_info(tmp_path, me, ready=True, ports=ports))
    found = EmbeddedStack.find_running(settings)
    assert found is not None and found.unreachable() == ["postgres", "temporal", "mail"]


async def test_stack_starts_describes_restarts_worker_and_stops(tmp_path: Path) -> None:
    env_file = tmp_path / "worker-saw"
    fake_worker = [
        sys.executable,
        "-c",
        "import os, sys, time; open(sys.argv[1], 'w').write(os.environ['INTERNFLOW_DATABASE_URL']);"
        " time.sleep(300)",
        str(env_file),
    ]
    port = free_port()
    settings = make_settings(
        tmp_path, database_url=f"postgresql://postgres:s3cret@127.0.0.1:{port}/internflow"
    )
    stale = ProcessRecord(dead_pid(), None)
    (tmp_path / "stack.json").write_text(stack_info(tmp_path, stale, ready=True, ports=[1, 2, 3]))

    stack = EmbeddedStack(settings, worker=fake_worker, postgres_options=FAST_POSTGRES)
    await stack.start()
    try:
        found = EmbeddedStack.find_running(settings)
        assert found is not None and found.owner.pid == os.getpid()
        assert set(found.processes) == {"postgres", "temporal", "mail", "worker"}
        text = "\n".join(stack.describe())
        assert f"http://127.0.0.1:{settings.temporal_ui_port}" in text
        assert settings.temporal_address in text
        assert f"postgresql://postgres@127.0.0.1:{port}/internflow" in text
        assert "s3cret" not in text and "s3cret" not in (tmp_path / "stack.json").read_text()
        assert f"127.0.0.1:{settings.smtp_port}" in text
        assert str(settings.outbox_path.absolute()) in text

        with pytest.raises(StackError, match="INTERNFLOW_STATE_DIR"):
            await EmbeddedStack(settings, worker=fake_worker).start()
        assert EmbeddedStack.find_running(settings) is not None, "the refused start broke nothing"

        await wait_for(env_file.exists, 10)
        assert env_file.read_text() == settings.database_url
        old_pid = stack.worker_pid
        assert old_pid is not None
        stack.kill_worker(signal.SIGKILL)
        await wait_for(lambda: stack.worker_exit_code() is not None, 5)
        assert stack.worker_exit_code() == -signal.SIGKILL
        new_pid = await stack.restart_worker()
        assert new_pid != old_pid and stack.worker_pid == new_pid
        recorded = EmbeddedStack.find_running(settings)
        assert recorded is not None and recorded.processes["worker"].pid == new_pid
    finally:
        await stack.stop()
    assert not (tmp_path / "stack.json").exists()
    assert EmbeddedStack.find_running(settings) is None
    assert all(not record.alive() for record in found.processes.values())


async def test_run_up_serves_until_interrupted_and_a_second_up_reuses_it(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    env = {
        **os.environ,
        "INTERNFLOW_STATE_DIR": str(tmp_path),
        "INTERNFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "INTERNFLOW_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
        "INTERNFLOW_DATABASE_URL": settings.database_url,
        "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
    }
    up = [
        sys.executable,
        "-c",
        "import asyncio; from runtime.settings import Settings;"
        " from embedded.supervisor import run_up; asyncio.run(run_up(Settings()))",
    ]
    pipe, out = asyncio.subprocess.PIPE, asyncio.subprocess.STDOUT
    first = await asyncio.create_subprocess_exec(*up, env=env, stdout=pipe, stderr=out)
    try:
        await wait_for(lambda: EmbeddedStack.find_running(settings) is not None, 30)
        found = EmbeddedStack.find_running(settings)
        assert found is not None and found.owner.pid == first.pid

        second = await asyncio.create_subprocess_exec(*up, env=env, stdout=pipe, stderr=out)
        second_output, _ = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 0
        assert f"already running (pid {first.pid})" in second_output.decode()
        assert f"http://127.0.0.1:{settings.temporal_ui_port}" in second_output.decode()

        first.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(first.communicate(), 30)
        assert first.returncode == 0, output.decode()
        assert "Temporal Web UI" in output.decode()
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    assert not (tmp_path / "stack.json").exists()
    assert all(not process_alive(r.pid, r.create_time) for r in found.processes.values())


async def test_a_worker_started_while_the_database_is_down_waits_for_it(database: str) -> None:
    """The pool retries until PostgreSQL answers (here: a port that starts forwarding to the
    database a second later), instead of the worker exiting."""
    target = urlsplit(database)
    front = free_port()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def open_later() -> asyncio.Server:
        await asyncio.sleep(1.5)
        return await asyncio.start_server(forward, "127.0.0.1", front)

    settings = make_settings(
        Path("."),
        database_url=target._replace(netloc=f"{target.username}@127.0.0.1:{front}").geturl(),
    )
    opening = asyncio.create_task(open_later())
    started = time.monotonic()
    pool = await asyncio.wait_for(pool_when_reachable(settings), timeout=30)
    server = await opening
    try:
        assert time.monotonic() - started >= 1.5
        assert await pool.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
        server.close()


async def test_stack_with_two_workers_runs_two_polling_processes(tmp_path: Path) -> None:
    """`up --workers 2`: two worker processes, both polling the task queue (Temporal names each
    poller by its identity, `<pid>@<host>`), each recorded in stack.json and stopped with it."""
    with pytest.raises(StackError, match="--workers"):
        EmbeddedStack(make_settings(tmp_path), workers=17)
    settings = make_settings(tmp_path)
    stack = EmbeddedStack(settings, workers=2, postgres_options=FAST_POSTGRES)
    await stack.start()
    try:
        pids = stack.worker_pids
        assert len(set(pids)) == 2
        client = await Client.connect(
            settings.temporal_address, namespace=settings.temporal_namespace
        )
        polling: set[int] = set()

        async def both_poll() -> bool:
            for kind in (
                TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            ):
                described = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=settings.temporal_namespace,
                        task_queue=TaskQueue(name=settings.task_queue),
                        task_queue_type=kind,
                    )
                )
                polling.update(int(p.identity.split("@")[0]) for p in described.pollers)
            return set(pids) <= polling

        await eventually(both_poll, "both workers poll the task queue", within=60)
        # They passed the start-up checks (runtime/readiness.py): the stack made the signing
        # key directory before them, and the first to start filled it.
        assert (settings.keys_path / "key-1.pem").is_file()
        found = EmbeddedStack.find_running(settings)
        assert found is not None
        assert {found.processes["worker"].pid, found.processes["worker-2"].pid} == set(pids)
        assert "2 of 2 processes running" in "\n".join(stack.describe())
        assert stack.worker_log_path(1).name == "worker-2.log"
    finally:
        await stack.stop()
    assert not any(process_alive(pid) for pid in pids)
