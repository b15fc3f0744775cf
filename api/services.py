"""What request handlers need: settings, the Temporal client, the database pool, the secret."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import asyncpg
import structlog
from fastapi import Depends, HTTPException, Request
from temporalio.client import Client

from records import read as recorded
from runtime.availability import RECORDS_UNREACHABLE, Outage, TemporalHealth
from runtime.clients import (
    TemporalConnection,
    connect_temporal,
    create_pool,
    temporal_connection,
)
from runtime.errors import StackError
from runtime.secret import load_or_create_secret
from runtime.settings import Settings

log = structlog.get_logger(__name__)


class Services:
    """The process's connections, made on first use (so the API starts, and says it is not ready,
    while Temporal or PostgreSQL is still coming up); ones given at construction are not closed
    here. `temporal_health` says whether Temporal answers: a write is refused at once (503)
    while it does not, and reads say so."""

    def __init__(
        self, settings: Settings, client: Client | None = None, pool: asyncpg.Pool | None = None
    ) -> None:
        self.settings = settings
        self._client = client
        self._pool = pool
        self._own_pool = pool is None
        self._lock = asyncio.Lock()
        self.secret = load_or_create_secret(settings)
        self.temporal_health = TemporalHealth(self._connect_temporal)
        self._outage: tuple[datetime | None, Outage] | None = None
        self._target: TemporalConnection | None = None

    @property
    def temporal_target(self) -> TemporalConnection:
        """Where and how this process connects to Temporal (runtime/clients.py decides)."""
        if self._target is None:
            self._target = temporal_connection(self.settings)
        return self._target

    @property
    def temporal_namespace(self) -> str:
        """The namespace of the client given, or of the configured connection."""
        if self._client is not None:
            return self._client.namespace
        return self.temporal_target.namespace

    async def _connect_temporal(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.wait_for(connect_temporal(self.settings), 10)
        return self._client

    async def temporal(self) -> Client:
        """The client, once Temporal has answered a health check lately; TemporalUnreachable
        (503) otherwise, at once rather than after the SDK's ten seconds of retries."""
        await self.temporal_health.require()
        return await self._connect_temporal()

    async def records(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    try:
                        self._pool = await asyncio.wait_for(create_pool(self.settings), 10)
                    except StackError as refused:
                        # A setting to change (TLS, credentials): the operator reads it in the
                        # log, one line; the client is told no more than for an outage.
                        log.error("api.database_refused", error=str(refused))
                        raise HTTPException(
                            503, "the database is not reachable; try again shortly"
                        ) from None
                    except (OSError, asyncpg.PostgresError, TimeoutError):
                        raise HTTPException(
                            503, "the database is not reachable; try again shortly"
                        ) from None
        return self._pool

    async def outage(self) -> Outage | None:
        """While Temporal does not answer: what reads say (what the records are as of); None
        while it answers. The records' time is read once per outage."""
        if await self.temporal_health.answers():
            self._outage = None
            return None
        since = self.temporal_health.down_since
        if self._outage is None or self._outage[0] != since:
            try:
                as_of = await recorded.records_as_of(await self.records())
            except (HTTPException, *RECORDS_UNREACHABLE, asyncpg.PostgresError):
                as_of = None
            self._outage = (since, Outage(as_of))
        return self._outage[1]

    async def close(self) -> None:
        if self._own_pool and self._pool is not None:
            await self._pool.close()
            self._pool = None


def _of(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


# The dependencies are coroutines even where they do not wait: FastAPI runs a plain function
# in its thread pool, a thread hand-off on every request.
async def services(request: Request) -> Services:
    return _of(request)


async def temporal(request: Request) -> Client:
    return await _of(request).temporal()


async def records(request: Request) -> asyncpg.Pool:
    return await _of(request).records()


async def receiver_records(request: Request) -> asyncpg.Pool | None:
    """The pool for writing a submission's audit row before answering it, or None while
    PostgreSQL is not reachable: the submission is still taken, and the workflow writes its row
    (operations/internships.py, `Records`)."""
    try:
        return await _of(request).records()
    except HTTPException:
        return None


async def settings(request: Request) -> Settings:
    return _of(request).settings


ServicesDep = Annotated[Services, Depends(services)]
TemporalDep = Annotated[Client, Depends(temporal)]
RecordsDep = Annotated[asyncpg.Pool, Depends(records)]
ReceiverDep = Annotated[asyncpg.Pool | None, Depends(receiver_records)]
SettingsDep = Annotated[Settings, Depends(settings)]
