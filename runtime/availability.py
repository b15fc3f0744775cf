"""Whether Temporal answers right now, for the entry points: a write is refused at once while it
does not (a call to an unreachable server is retried by the SDK for about ten seconds before it
fails), and reads say that nothing moves meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from runtime.errors import StackError

log = structlog.get_logger(__name__)

#: What asyncpg raises when PostgreSQL is down or restarting (under an open pool too).
RECORDS_UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
)

RETRY_AFTER_SECONDS = 30
"""What a refusal for an outage tells the client to wait (HTTP Retry-After)."""

TEMPORAL_DOWN = (
    "Temporal, the workflow engine, is not reachable right now: nothing was recorded; "
    "try again in a minute"
)
"""The sentence for a write refused while Temporal is down (API, CLI; party pages translate)."""


class TemporalUnreachable(Exception):
    """Temporal did not answer: the request was not carried out and nothing was recorded; the
    same request can succeed once Temporal is back (the submission id makes a retry safe)."""

    def __init__(self, message: str = TEMPORAL_DOWN) -> None:
        super().__init__(message)


def unreachable(error: BaseException) -> bool:
    """Whether `error` from the Temporal client means the server could not be reached (down,
    restarting, a connection cut), as opposed to an answer of the server."""
    if isinstance(error, RPCError):
        if error.status == RPCStatusCode.UNAVAILABLE:
            return True
        return error.status == RPCStatusCode.UNKNOWN and "transport error" in error.message
    return isinstance(error, RuntimeError) and "Failed client connect" in str(error)


@dataclass(frozen=True)
class Outage:
    """Temporal does not answer: reads go on from the records, which are as of `as_of` (the
    latest step recorded; nothing newer can be recorded meanwhile)."""

    as_of: datetime | None

    def line(self) -> str:
        """The one line a read says (the CLI on stderr, the API in a header)."""
        when = (
            f"as of {self.as_of.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC (the latest step recorded)"
            if self.as_of is not None
            else "as last recorded"
        )
        return (
            "Temporal is unreachable, so no internship moves until it is back: these records "
            f"are {when}"
        )


class TemporalHealth:
    """What a process knows of Temporal's health: the last health check's answer, asked again
    when it is older than `fresh_for` seconds, and at once after a call found it unreachable.

    `connect` makes (or returns) the process's client; it raises when Temporal is down."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Client]],
        *,
        fresh_for: float = 2.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connect = connect
        self.fresh_for = fresh_for
        self.timeout = timeout
        self._clock = clock
        self._checked_at: float | None = None
        self._answered = False
        self.down_since: datetime | None = None
        self.problem: str | None = None
        """Why the last connection was refused (credentials, TLS, configuration), if it was."""
        self._lock = asyncio.Lock()

    async def answers(self) -> bool:
        """Whether Temporal answered a health check within the last `fresh_for` seconds (asked
        now when that is older)."""
        now = self._clock()
        if self._checked_at is not None and now - self._checked_at < self.fresh_for:
            return self._answered
        async with self._lock:
            if self._checked_at is None or self._clock() - self._checked_at >= self.fresh_for:
                self._note(await self._check())
        return self._answered

    async def require(self) -> None:
        """TemporalUnreachable unless Temporal answers."""
        if not await self.answers():
            raise TemporalUnreachable()

    def failed(self) -> None:
        """A call just found Temporal unreachable."""
        self._note(False)

    async def _check(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                client = await self._connect()
                return await client.service_client.check_health(
                    timeout=timedelta(seconds=self.timeout)
                )
        except (RPCError, RuntimeError, OSError, TimeoutError):
            return False
        except StackError as error:  # refused (credentials) or misconfigured: say which
            if str(error) != self.problem:
                log.warning("temporal.refused", error=str(error))
            self.problem = str(error)
            return False
        except Exception as error:  # the connect callable's own refusal: still "not reachable"
            log.warning("temporal.health_check_failed", error=type(error).__name__)
            return False

    def _note(self, answered: bool) -> None:
        self._checked_at = self._clock()
        if answered:
            self.problem = None
        if answered and not self._answered and self.down_since is not None:
            log.info("temporal.reachable_again", down_since=self.down_since.isoformat())
        if not answered and self.down_since is None:
            self.down_since = datetime.now(UTC)
            log.warning("temporal.unreachable")
        if answered:
            self.down_since = None
        self._answered = answered
