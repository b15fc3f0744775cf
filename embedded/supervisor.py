"""`internflow up` keeps its stack whole: a part whose process exits is logged at once and started
again with backoff; one that cannot come back ends `up` with an error instead of pretending."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from embedded.stack import EmbeddedStack, check_workers, part_label
from runtime.errors import StackError
from runtime.settings import Settings

log = structlog.get_logger(__name__)

BACKOFF = (0.25, 1.0, 2.0, 4.0, 8.0)
"""Seconds before each restart of a part that keeps exiting; after the last, `up` gives up."""

STABLE_AFTER = 60.0
"""A part that has run this long since its last restart counts its exits afresh."""


class PartFailed(Exception):
    """A part of the stack exited and could not be brought back (not a StackError: nothing the
    user typed is wrong; `internflow up` exits 1 with the message)."""


@dataclass
class _Restarts:
    count: int = 0
    last: float = 0.0


class Supervisor:
    """Watches every part of `stack` (each process it started) and restarts the ones that exit.

    Restarts run one at a time, in the stack's start order (PostgreSQL before Temporal before
    the workers), so a part that needs another finds it up. A part restarted `len(backoff)` times
    without running `stable_after` seconds in between is given up: `watch` raises PartFailed."""

    def __init__(
        self,
        stack: EmbeddedStack,
        *,
        backoff: Sequence[float] = BACKOFF,
        stable_after: float = STABLE_AFTER,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stack = stack
        self.backoff = tuple(backoff)
        self.stable_after = stable_after
        self.interval = interval
        self.clock = clock
        self._restarts: dict[str, _Restarts] = {}

    async def watch(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: bring back every part that exits. PartFailed if one cannot."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)
            for name, code in self.stack.exited_parts().items():
                if stop.is_set():
                    return
                await self._bring_back(name, code, stop)

    async def _bring_back(self, name: str, code: int, stop: asyncio.Event) -> None:
        down_at, since = self.clock(), datetime.now(UTC)
        part_log = self.stack.part_log(name)
        log.error("stack.part_exited", part=name, exit_code=code, log=str(part_log))
        self.stack.mark_down(name, since)
        restarts = self._restarts.setdefault(name, _Restarts())
        if restarts.count and self.clock() - restarts.last >= self.stable_after:
            restarts.count = 0
        why = f"it exited with code {code}"
        while True:
            if restarts.count >= len(self.backoff):
                log.error("stack.part_gave_up", part=name, restarts=restarts.count)
                raise PartFailed(
                    f"{part_label(name)} could not be kept running: {restarts.count} restarts "
                    f"in a row failed or did not last {self.stable_after:.0f} s (last: {why}); "
                    f"its log: {part_log}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.backoff[restarts.count])
            if stop.is_set():
                return
            restarts.count += 1
            restarts.last = self.clock()
            try:
                await self.stack.restart_part(name)
            except StackError as error:
                log.warning(
                    "stack.restart_failed", part=name, attempt=restarts.count, error=str(error)
                )
                why = str(error)
                continue
            self.stack.mark_up(name)
            log.info(
                "stack.part_restarted",
                part=name,
                attempt=restarts.count,
                pid=self.stack.part_pid(name),
                down_seconds=round(self.clock() - down_at, 2),
            )
            return


async def run_up(settings: Settings, workers: int = 1) -> None:
    """`internflow up`: reuse a running stack or start one with `workers` worker processes, print
    where its parts listen, keep every part running (Supervisor) until SIGINT/SIGTERM, then stop
    every part cleanly. Raises StackError on problems the user can fix, PartFailed when a part
    cannot be kept running (the CLI prints the message)."""
    check_workers(workers)
    found = EmbeddedStack.find_running(settings)
    if found is not None:
        print(f"An internflow stack is already running (pid {found.owner.pid}); using it.")
        running = sum(name.split("-")[0] == "worker" for name in found.processes)
        if workers != running:
            print(f"  (--workers {workers} applies to a stack started now; this one has {running})")
        for line in found.describe():
            print(f"  {line}")
        down = found.unreachable()
        if down:
            print(f"  {found.down_sentence(down)}")
        return

    stack = EmbeddedStack(settings, start_api=True, workers=workers)
    stop_requested = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop_requested.set)
    starting = asyncio.create_task(stack.start())
    stopping = asyncio.create_task(stop_requested.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return
        starting.result()
        print("internflow stack is running (Ctrl-C to stop):")
        for line in stack.describe():
            print(f"  {line}")
        await Supervisor(stack).watch(stop_requested)
        print("Stopping the internflow stack ...")
    finally:
        stopping.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await stack.stop()
