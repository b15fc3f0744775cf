"""Client factories: the Temporal client (with the pydantic data converter) and the asyncpg pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from runtime.settings import Settings


async def connect_temporal(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


@asynccontextmanager
async def connect_records(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    """One connection to the application's database, for a short-lived command."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """The process's one connection pool; its owner closes it on shutdown."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
    assert pool is not None
    return pool
