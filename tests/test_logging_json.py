"""With INTERNFLOW_LOG_FORMAT=json every line a process prints is one JSON object: the API
process (uvicorn's own lines included), the worker process (the Temporal SDK's too) and the
migrations (`internflow migrate`), started as production starts them."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.testing import WorkflowEnvironment

from runtime.database import with_password
from runtime.settings import Settings


def production_environment(settings: Settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Secrets of its own (no trial), JSON logs, the test's database and Temporal."""
    keys = tmp_path / "codec-keys.json"
    keys.write_text(json.dumps({"k1": base64.b64encode(secrets.token_bytes(32)).decode()}))
    # The signing key directory, as production mounts it (the processes refuse to start without).
    (tmp_path / "state" / "keys").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERNFLOW_")}
    return {
        **env,
        "INTERNFLOW_STATE_DIR": str(tmp_path / "state"),
        "INTERNFLOW_LOG_FORMAT": "json",
        "INTERNFLOW_LOG_LEVEL": "debug",
        "INTERNFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "INTERNFLOW_CODEC_KEYS_FILE": str(keys),
        "INTERNFLOW_DATABASE_URL": settings.database_url,
        "INTERNFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
        "INTERNFLOW_TASK_QUEUE": settings.task_queue,
        "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
        "INTERNFLOW_API_PORT": str(settings.api_port),
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        **extra,
    }


def every_line_json(output: str) -> list[dict[str, Any]]:
    lines = output.splitlines()
    assert lines, "the process printed nothing"
    parsed = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}\nin:\n{output}") from None
        assert isinstance(value, dict) and "event" in value and "level" in value, line
        assert "timestamp" in value, line
        parsed.append(value)
    return parsed


async def test_the_api_process_prints_only_json_lines(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = production_environment(settings, tmp_path, INTERNFLOW_TEMPORAL_ADDRESS="127.0.0.1:1")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{settings.api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(200):
                try:
                    await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 503  # Temporal is not there
            assert (await http.get("/api/internships")).status_code == 401
            assert (await http.get("/p/not-a-token")).status_code in (400, 401, 404)
            assert (await http.get("/metrics")).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    lines = every_line_json(output.decode())
    events = [line["event"] for line in lines]
    # uvicorn's own lines, through structlog.
    assert any("Uvicorn running on" in event for event in events), events
    assert any("Application startup complete" in event for event in events), events
    assert any("Finished server process" in event for event in events), events
    assert {line["logger"] for line in lines if "Uvicorn" in line["event"]} == {"uvicorn.error"}
    # internflow's own.
    assert "auth.refused" in events


async def test_the_worker_and_the_migrations_print_only_json_lines(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    database: str,
    tmp_path: Path,
) -> None:
    target = time_skipping_env.client.service_client.config.target_host
    env = production_environment(
        settings,
        tmp_path,
        INTERNFLOW_TEMPORAL_ADDRESS=target,
        # The embedded superuser needs no password (trust on loopback); production has one.
        INTERNFLOW_DATABASE_OWNER_URL=with_password(database, secrets.token_hex(16)),
    )
    # `internflow migrate`, what the production shape's migrate step runs.
    migrate = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(migrate.communicate(), 60)
    assert migrate.returncode == 0, output.decode()
    lines = every_line_json(output.decode())
    applied = [line["file"] for line in lines if line["event"] == "migrations.applied"]
    assert "0001_records.sql" in applied
    assert lines[-1]["event"] == "migrations.done" and lines[-1]["files"] == applied

    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert worker.stdout is not None
    seen: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while not any(b"worker running" in line for line in seen):
                line = await worker.stdout.readline()
                assert line, b"".join(seen).decode()
                seen.append(line)
    finally:
        worker.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(worker.communicate(), 60)
    lines = every_line_json((b"".join(seen) + rest).decode())
    running = next(line for line in lines if line["event"] == "worker running")
    assert running["payload_encryption"] is True
    assert "worker stopping" in [line["event"] for line in lines]
