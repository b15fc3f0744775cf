"""Child processes of the embedded stack: spawned in their own process group, tied to our life."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # psutil ships no type information
import structlog

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class RunAs:
    """An unprivileged account a child runs as (used when we are root)."""

    name: str
    uid: int
    gid: int


def _death_signal_hook(sig: int) -> Callable[[], None] | None:
    """A preexec hook asking Linux to send `sig` to the child when its parent dies.

    The kernel sends it when the *thread* that forked exits, so it is only set up when spawning
    from the main thread (the event loop's thread in every internflow program)."""
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the hook ran
            os.kill(os.getpid(), sig)

    return hook


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    run_as: RunAs | None = None,
    death_signal: int = signal.SIGTERM,
) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group (a terminal's Ctrl-C reaches only us), output
    appended to `log_path`, signalled with `death_signal` if we die without stopping it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"==== {stamp} starting {Path(argv[0]).name}\n".encode())
        out.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            process_group=0,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
            preexec_fn=_death_signal_hook(death_signal),
        )


async def wait_exit(proc: subprocess.Popen[bytes], seconds: float) -> int | None:
    """Wait up to `seconds` for `proc` to exit; its return code, or None if still alive."""
    deadline = time.monotonic() + seconds
    while True:
        code = proc.poll()
        if code is not None or time.monotonic() >= deadline:
            return code
        await asyncio.sleep(0.05)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        proc.send_signal(sig)


async def stop(
    proc: subprocess.Popen[bytes],
    *,
    name: str,
    sig: int = signal.SIGTERM,
    grace_seconds: float = 10.0,
) -> int:
    """Send `sig` to the process group, then SIGKILL after `grace_seconds`; returns the exit
    code."""
    if proc.poll() is None:
        _signal_group(proc, sig)
        code = await wait_exit(proc, grace_seconds)
        if code is None:
            log.warning("child.kill", part=name, pid=proc.pid, after_seconds=grace_seconds)
            _signal_group(proc, signal.SIGKILL)
            code = await wait_exit(proc, 5.0)
    else:
        code = proc.returncode
    # Anything left in the group (a postgres backend, a helper) goes with its leader.
    _signal_group(proc, signal.SIGKILL)
    return code if code is not None else -signal.SIGKILL


def process_identity(pid: int) -> float | None:
    """The creation time of process `pid` (with the pid, it names one process), or None."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def process_alive(pid: int, create_time: float | None = None) -> bool:
    """Whether `pid` runs (and, given its creation time, is still that same process)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 0.5
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


async def terminate_leftover(pid: int, create_time: float | None, *, name: str, sig: int) -> None:
    """Stop a process a killed earlier run left behind (not our child): `sig`, then SIGKILL."""
    if not process_alive(pid, create_time):
        return
    log.warning("child.leftover_stopped", part=name, pid=pid)
    for signum, wait_seconds in ((sig, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            if not process_alive(pid, create_time):
                return
            await asyncio.sleep(0.05)


def process_cwd(pid: int) -> Path | None:
    """The working directory of live process `pid` (a postmaster's is its data dir), or None."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return Path(proc.cwd())
    except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
        return None


def log_tail(path: Path, lines: int = 8) -> str:
    """The last lines of a child's log, indented, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    tail = text.strip().splitlines()[-lines:]
    return "\n".join("    " + line for line in tail)
