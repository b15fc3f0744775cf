"""Property-based checks from the OpenAPI document (schemathesis): whatever a client sends, valid
or not, the API never answers with a server error (5xx). Bounded: a few hundred requests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
import uvicorn
from schemathesis import GenerationMode
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from embedded.ports import free_port
from operations.access import create_api_key
from runtime.settings import Settings
from tests.helpers import running_worker

EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}


@contextlib.asynccontextmanager
async def served(app: Any, port: int | None = None) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port (default: a free one), in this event loop."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
        if task.done():
            task.result()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def fuzz(spec: dict[str, Any], base_url: str, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Every operation, positive and negative examples; returns the number of requests sent and
    the 5xx answers found."""
    schema = schemathesis.openapi.from_dict(spec)
    failures: list[str] = []
    sent: list[int] = []
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode, count in EXAMPLES.items():
            strategy = operation.as_strategy(generation_mode=mode, headers=headers)

            @hypothesis.settings(
                max_examples=count,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(hypothesis.HealthCheck),
                phases=[hypothesis.Phase.generate],
            )
            @hypothesis.given(case=strategy)
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=base_url, session=session, timeout=30)
                sent.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:200]}"
                    )

            # Nothing to make invalid (an operation without parameters) is not a failure.
            with contextlib.suppress(hypothesis.errors.Unsatisfiable):
                check()
    return len(sent), failures


@pytest.mark.timeout(120)
async def test_no_input_makes_the_api_fail(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    fast = Settings(**{**settings.model_dump(), "rate_limit_per_minute": 100_000})
    app = create_app(fast, client=time_skipping_env.client, pool=pool)
    _, admin_key = await create_api_key(pool, "fuzzer", "admin")
    spec = app.openapi()
    async with running_worker(time_skipping_env.client, fast, pool), served(app) as base_url:
        loop = asyncio.get_running_loop()
        started = loop.time()
        sent, failures = await asyncio.to_thread(
            fuzz, spec, base_url, {"Authorization": f"Bearer {admin_key}"}
        )
        assert loop.time() - started < 90
    assert failures == []
    assert sent >= 150, f"only {sent} requests: the generator found too little to send"
