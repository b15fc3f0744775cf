"""Benchmark the stack's healing: how long each part of `internflow up` takes to be back after a
SIGKILL, from the kill until it answers again (its port, or for a worker its log's "worker
running"), over several rounds. Run: `python -m bench.heal [--rounds N] [--json FILE]`.

It runs `python -m cli up` on free ports in a temporary state directory, as a person would, and
reads where each part is from its stack.json."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from embedded.ports import answers, throwaway_settings
from embedded.stack import EmbeddedStack, StackInfo, settings_environment
from runtime.settings import Settings

PARTS = ("postgres", "temporal", "mail", "worker", "api")


def _info(settings: Settings) -> StackInfo | None:
    return EmbeddedStack.find_running(settings)


def _size(path: str) -> int:
    return Path(path).stat().st_size


def _back(settings: Settings, part: str, killed_pid: int, worker_log_size: int) -> bool:
    info = _info(settings)
    if info is None or part in info.down:
        return False
    record = info.processes.get(part)
    if record is None or record.pid == killed_pid or not record.alive():
        return False
    if part == "worker":
        log = Path(info.worker_log).read_bytes()[worker_log_size:]
        return b"worker running" in log
    endpoint = info.endpoints().get(part)
    return endpoint is not None and answers(*endpoint)


async def measure(rounds: int) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-bench-heal-"))
    settings = throwaway_settings(state)
    log = state / "up.log"
    with log.open("wb") as out:
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "up", env=settings_environment(settings), stdout=out,
            stderr=out,
        )  # fmt: skip
    seconds: dict[str, list[float]] = {part: [] for part in PARTS}
    try:
        deadline = time.monotonic() + 120
        while _info(settings) is None:
            if time.monotonic() > deadline or up.returncode is not None:
                raise RuntimeError(f"internflow up did not start; see {log}")
            await asyncio.sleep(0.1)
        for _ in range(rounds):
            for part in PARTS:
                info = _info(settings)
                assert info is not None
                pid = info.processes[part].pid
                log_size = _size(info.worker_log)
                killed = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                while not _back(settings, part, pid, log_size):
                    if time.monotonic() - killed > 120 or up.returncode is not None:
                        raise RuntimeError(f"{part} did not come back; see {log}")
                    await asyncio.sleep(0.02)
                seconds[part].append(time.monotonic() - killed)
                # Settle before the next kill: a part restarted within STABLE_AFTER counts
                # towards giving up, which a benchmark must not provoke.
                await asyncio.sleep(1.0)
    finally:
        if up.returncode is None:
            up.send_signal(signal.SIGINT)
            await asyncio.wait_for(up.wait(), 120)
        shutil.rmtree(state, ignore_errors=True)
    return {
        "rounds": rounds,
        "back_after_sigkill_seconds": {
            part: {
                "median": round(statistics.median(values), 2),
                "max": round(max(values), 2),
                "all": [round(v, 2) for v in values],
            }
            for part, values in seconds.items()
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="kills of each part")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 4:
        # Five restarts of one part within embedded.supervisor.STABLE_AFTER make `up` give up.
        parser.error("--rounds must be 1 to 4")
    figures = asyncio.run(measure(args.rounds))
    figures["environment"] = {"python": platform.python_version(), "machine": platform.machine()}
    print(f"{'part':<10} {'median s':>9} {'max s':>7}  (back after SIGKILL, {args.rounds} rounds)")
    for part, values in figures["back_after_sigkill_seconds"].items():
        print(f"{part:<10} {values['median']:>9.2f} {values['max']:>7.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
