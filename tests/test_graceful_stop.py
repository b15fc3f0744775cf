"""A stop asked for is a clean exit: the API process, started as production starts it
(`internflow serve`, the compose file's command, and `python -m api`, the embedded stack's), shuts
down on SIGTERM or SIGINT and exits 0, as the worker does; a supervisor counts no failure."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest

from runtime.settings import Settings
from tests.test_logging_json import production_environment


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: signal.Signals(s).name
)
@pytest.mark.parametrize(
    "command", [("-m", "cli", "serve"), ("-m", "api")], ids=["internflow-serve", "python-m-api"]
)
async def test_the_api_exits_0_when_asked_to_stop(
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    command: tuple[str, ...],
    signum: signal.Signals,
) -> None:
    env = production_environment(settings, tmp_path, INTERNFLOW_TEMPORAL_ADDRESS="127.0.0.1:1")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{settings.api_port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            for _ in range(300):
                assert process.returncode is None, "the API ended before it served"
                try:
                    answer = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert answer.status_code == 200
    finally:
        if process.returncode is None:
            process.send_signal(signum)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    text = output.decode()
    assert process.returncode == 0, text
    assert "Finished server process" in text, text  # uvicorn's graceful shutdown ran
    assert "Traceback" not in text, text
