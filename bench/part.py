"""A benchmark part that measures or says why it could not: never a bare traceback instead of the
figures.

Each part (a benchmark, or one of `make bench`'s benchmarks run in its own process) records its
figures in a Progress as it measures them, and names the stage it is in. If it raises, passes its
time limit or is stopped (SIGTERM, Ctrl-C), its result is a failed entry

    {"status": "failed", "part": ..., "why": ..., "measured_so_far": {...}}

and the parts after it still run. A part that finishes gives its figures with "status": "ok".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class PartFailed(Exception):
    """A part's own report that it failed (a benchmark process that exited with a failure)."""


@dataclass
class Progress:
    """What a part has measured so far and where it is; saved to `path` (JSON) at every step,
    so that the process running the part can be killed and what it measured still read."""

    path: Path | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    stage: str = "starting"

    def step(self, stage: str) -> None:
        """Say what the part does now (named in the `why` if it fails there)."""
        self.stage = stage
        self.save()

    def record(self, **figures: Any) -> None:
        """Keep figures as soon as they are measured."""
        self.figures.update(figures)
        self.save()

    def save(self) -> None:
        if self.path is not None:
            snapshot = {"status": "running", "stage": self.stage, "measured_so_far": self.figures}
            self.path.write_text(json.dumps(snapshot, indent=2, default=str))


Measure = Callable[[Progress], Awaitable[dict[str, Any]]]


def failed(part: str, why: str, measured_so_far: dict[str, Any]) -> dict[str, Any]:
    return {"status": "failed", "part": part, "why": why, "measured_so_far": measured_so_far}


async def run_part(
    part: str, measure: Measure, progress: Progress, time_limit: float | None = None
) -> dict[str, Any]:
    """Run `measure` (at most `time_limit` seconds); its figures with "status": "ok", or a failed
    entry saying why, with what it measured so far. Only the caller's own cancellation passes."""
    began = time.monotonic()
    try:
        async with asyncio.timeout(time_limit) as limit:
            figures = await measure(progress)
    except TimeoutError as error:
        if limit.expired():
            why = f"did not finish within {time_limit:g} s (during: {progress.stage})"
        else:
            why = _describe(error, progress)
        return failed(part, why, progress.figures)
    except PartFailed as error:
        return failed(part, str(error), progress.figures)
    except Exception as error:
        traceback.print_exc()
        return failed(part, _describe(error, progress), progress.figures)
    return {"status": "ok", **figures, "seconds_total": round(time.monotonic() - began, 1)}


def _describe(error: BaseException, progress: Progress) -> str:
    while isinstance(error, BaseExceptionGroup):  # a task group's: the first that failed
        error = error.exceptions[0]
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}{': ' + text if text else ''} (during: {progress.stage})"


async def run_parts(
    parts: dict[str, Measure],
    time_limits: dict[str, float] | None = None,
    on_result: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every part in turn, each to its figures or its failed entry; `on_result` hears each
    one as it ends (to save it at once)."""
    results: dict[str, dict[str, Any]] = {}
    for name, measure in parts.items():
        results[name] = await run_part(name, measure, Progress(), (time_limits or {}).get(name))
        if on_result is not None:
            on_result(name, results[name])
    return results


def failures(results: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The parts that failed, with why."""
    return {
        name: str(entry.get("why", "failed"))
        for name, entry in results.items()
        if entry.get("status") == "failed"
    }


def console_logging() -> None:
    """A benchmark's own log lines on the console: info and above; every line, debug too, with
    INTERNFLOW_LOG_LEVEL=debug (`make bench DEBUG=1`, `python -m bench --debug` sets it for
    every benchmark). The stack's parts write theirs to their log files in the state dir."""
    from pydantic import ValidationError

    from runtime.logging import configure_logging
    from runtime.settings import Settings

    try:
        settings = Settings()
    except ValidationError:  # a setting the benchmark does not use is wrong: its own defaults
        settings = Settings.model_construct()
    configure_logging(settings)


def main_for(part: str, measure: Measure, json_path: Path | None) -> None:
    """A benchmark module's main: run `measure`, stopped cleanly by SIGTERM or Ctrl-C (the stack
    it started is stopped on the way out); print the figures or the failed entry, write them to
    `json_path` (what it measured so far is there at every step), exit 0 or 1."""
    progress = Progress(path=json_path)

    async def guarded() -> dict[str, Any]:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        stopped: list[str] = []

        def stop(signum: int) -> None:
            stopped.append(signal.Signals(signum).name)
            task.cancel()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop, signum)
        try:
            return await run_part(part, measure, progress)
        except asyncio.CancelledError:
            if not stopped:
                raise
            why = f"stopped by {stopped[0]} (during: {progress.stage})"
            return failed(part, why, progress.figures)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(signum)

    entry = asyncio.run(guarded())
    text = json.dumps(entry, indent=2, default=str)
    print(text)
    if json_path is not None:
        json_path.write_text(text)
    if entry["status"] != "ok":
        print(f"{part} FAILED: {entry['why']}", file=sys.stderr)
        sys.exit(1)
