"""Client factories: the Temporal client (with the pydantic data converter) and the asyncpg pool."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime

from runtime.codec import EncryptionCodec, codec_from_settings
from runtime.database import application_dsn
from runtime.settings import Settings
from runtime.tracing import tracing_interceptors


def data_converter(settings: Settings, codec: EncryptionCodec | None = None) -> DataConverter:
    """The pydantic data converter; with payload encryption when codec keys are configured (then
    failure messages and stack traces are encrypted too)."""
    codec = codec if codec is not None else codec_from_settings(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
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


@asynccontextmanager
async def connect_records(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the application's database, as the application role, for a
    short-lived command."""
    conn = await asyncpg.connect(application_dsn(settings))
    try:
        yield conn
    finally:
        await conn.close()


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The process's one connection pool (as the application role); its owner closes it on
    shutdown."""
    pool = await asyncpg.create_pool(application_dsn(settings), min_size=1, max_size=10)
    assert pool is not None
    return pool
