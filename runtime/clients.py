"""Client factories: the Temporal client (with the pydantic data converter) and the asyncpg pool."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
)
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from runtime.codec import EncryptionCodec, codec_from_settings
from runtime.database import application_dsn, named_refusals
from runtime.settings import Settings
from runtime.tracing import tracing_interceptors


class SharedPydanticPayloadConverter(CompositePayloadConverter):
    """The pydantic payload converter (the same JSON on the wire), with one cache of pydantic
    TypeAdapters for the whole process.

    The SDK makes a payload converter per workflow instance (it could carry a serialization
    context), and the contrib pydantic converter keeps its own TypeAdapter cache: every cached
    internship built and held a TypeAdapter for its input, its receipts and each submission type.
    That was most of a cached workflow's memory (0.26 MiB each, against 0.08 MiB for a bare
    workflow) and CPU on every workflow start and replay. The converters here are stateless apart
    from that cache, so sharing them is safe."""

    _shared = PydanticPayloadConverter()

    def __init__(self) -> None:
        super().__init__(*self._shared.converters.values())


PYDANTIC = DataConverter(payload_converter_class=SharedPydanticPayloadConverter)
"""The data converter of every client and worker (without payload encryption)."""


def data_converter(settings: Settings, codec: EncryptionCodec | None = None) -> DataConverter:
    """The pydantic data converter; with payload encryption when codec keys are configured (then
    failure messages and stack traces are encrypted too)."""
    codec = codec if codec is not None else codec_from_settings(settings)
    if codec is None:
        return PYDANTIC
    return dataclasses.replace(
        PYDANTIC,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect_temporal(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """The Temporal client of every process (worker, API, CLI): the configured data converter
    (payload encryption), tracing interceptors if configured, and `runtime` (the worker passes
    one serving metrics; None is the SDK's default)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        interceptors=tracing_interceptors(settings),
        runtime=runtime,
    )


async def temporal_answers(settings: Settings, within: float = 2.0) -> bool:
    """Whether Temporal answers a health check within `within` seconds (a connection of its
    own, without the data converter: no codec keys needed to ask)."""
    try:
        async with asyncio.timeout(within):
            client = await Client.connect(
                settings.temporal_address, namespace=settings.temporal_namespace
            )
            return await client.service_client.check_health(timeout=timedelta(seconds=within))
    except (RPCError, RuntimeError, OSError, TimeoutError):
        return False


@asynccontextmanager
async def connect_records(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the application's database, as the application role, for a
    short-lived command."""
    dsn = application_dsn(settings)
    with named_refusals(dsn, "INTERNFLOW_DATABASE_URL"):
        conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A released connection's reset: nothing beyond what asyncpg does on its side anyway (roll
    back a transaction left open, forget listeners). Its default sends RESET ALL, CLOSE ALL,
    UNLISTEN * and an advisory unlock as one more round trip for every use of the pool; the
    application never sets session state, listens, or takes advisory locks on a pooled
    connection (the migrations' lock is on a connection of their own)."""


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The process's one connection pool (as the application role); its owner closes it on
    shutdown. A connection refused for a setting's sake (TLS, credentials) is a StackError
    naming INTERNFLOW_DATABASE_URL."""
    dsn = application_dsn(settings)
    with named_refusals(dsn, "INTERNFLOW_DATABASE_URL"):
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10, reset=_keep_session)
    assert pool is not None
    return pool
