"""Heartbeats for activities that can take a while, so a killed worker's work moves on quickly.

An activity in flight on a worker that dies is retried only when Temporal notices: after its
start-to-close timeout, or, for one that heartbeats, after its heartbeat timeout. The workflow
gives the longer activities (the SMTP hand-over, issuing a badge) a short heartbeat timeout and
they beat while they work; a lost worker then costs seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

#: How often a working activity says it is alive; the workflow's heartbeat timeouts are a few
#: times this.
BEAT_EVERY = 2.0


@contextlib.asynccontextmanager
async def heartbeating(every: float = BEAT_EVERY) -> AsyncIterator[None]:
    """Heartbeat every `every` seconds while the body runs (the SDK throttles what it sends)."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
