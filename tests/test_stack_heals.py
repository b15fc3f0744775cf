"""`internflow up` heals its stack: each part killed (SIGKILL) comes back by itself while an
internship runs to its badge, and a part that cannot come back ends `up` with exit 1."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from pathlib import Path

import pytest
from rich.console import Console

from cli.demo import run_demo
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack, StackInfo, settings_environment
from runtime.settings import Settings

pytestmark = pytest.mark.slow

PARTS = ("postgres", "temporal", "mail", "worker", "api")


async def until(predicate: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.1)


@asynccontextmanager
async def internflow_up(settings: Settings, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m cli up` on the settings' state dir and ports, as a person runs it."""
    env = {**settings_environment(settings), "INTERNFLOW_LOG_LEVEL": "info"}
    with log.open("wb") as out:
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "up", env=env, stdout=out, stderr=out
        )
    try:
        await until(lambda: EmbeddedStack.find_running(settings) is not None, 90, "up started")
        yield up
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(up.wait(), 60)
            except TimeoutError:
                up.kill()
                await up.wait()


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """Outside pytest's temp root: a second pytest session resets that root to mode 0700, which
    would lock the unprivileged PostgreSQL user out of its data directory mid-run."""
    path = Path(tempfile.mkdtemp(prefix="internflow-test-heal-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def running(settings: Settings) -> StackInfo:
    found = EmbeddedStack.find_running(settings)
    assert found is not None, "the stack is gone"
    return found


async def test_each_part_killed_comes_back_and_an_internship_in_flight_completes(
    tmp_path: Path, state_dir: Path
) -> None:
    settings = throwaway_settings(state_dir)
    log = tmp_path / "up.log"
    async with internflow_up(settings, log) as up:
        quiet = Console(file=io.StringIO())  # the demo's own output
        # The sample internship over two minutes: the kills fall in its months in progress.
        demo = asyncio.create_task(run_demo(settings, quiet, seconds=120))
        await until(lambda: any(settings.outbox_path.glob("*.eml")), 60, "first e-mail")
        for part in PARTS:
            before = running(settings).processes[part]
            os.kill(before.pid, signal.SIGKILL)

            def back(part: str = part, before_pid: int = before.pid) -> bool:
                info = running(settings)
                record = info.processes.get(part)
                return (
                    record is not None
                    and record.pid != before_pid
                    and record.alive()
                    and info.unreachable() == []
                )

            await until(back, 60, f"{part} back after SIGKILL")
            assert up.returncode is None, "up kept running"
        assert await asyncio.wait_for(demo, 240), "a verified badge arrived"
    assert up.returncode == 0
    text = log.read_text()
    for part in PARTS:
        assert f"part={part}" in text and "stack.part_exited" in text, part
    assert text.count("stack.part_restarted") == len(PARTS)
    # One badge e-mail, not two, for the internship that lived through it all.
    badges = [path for path in settings.outbox_path.glob("*.eml") if _carries_badge(path)]
    assert len(badges) == 1, [p.name for p in badges]


def _carries_badge(path: Path) -> bool:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return any(part.get_filename() == "badge.png" for part in message.iter_attachments())


async def test_a_part_that_cannot_come_back_ends_up_with_exit_1(
    tmp_path: Path, state_dir: Path
) -> None:
    """Temporal killed, and its port taken by another program before the restart: every
    restart fails, `up` says which part and why, stops the rest and exits 1."""
    settings = throwaway_settings(state_dir)
    log = tmp_path / "up.log"
    async with internflow_up(settings, log) as up:
        info = running(settings)
        host, _, port = settings.temporal_address.rpartition(":")
        os.kill(info.processes["temporal"].pid, signal.SIGKILL)
        squatter = None
        deadline = time.monotonic() + 5
        while squatter is None:
            try:
                squatter = socket.create_server((host, int(port)))
            except OSError:
                assert time.monotonic() < deadline, "Temporal's port never came free"
                await asyncio.sleep(0.01)
        try:
            code = await asyncio.wait_for(up.wait(), 90)
        finally:
            squatter.close()
    assert code == 1
    text = log.read_text()
    assert "error: Temporal could not be kept running" in text
    assert "is in use by another program" in text
    assert text.count("stack.restart_failed") == 5
    assert not (settings.state_dir / "stack.json").exists(), "up stopped the rest"
    assert all(not record.alive() for record in info.processes.values())
