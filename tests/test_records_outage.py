"""While PostgreSQL is down, the API says so (503 with Retry-After) instead of failing with a 500,
and answers again once it is back: the status people read comes from the records."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.app import create_app
from embedded.ports import throwaway_settings
from embedded.postgres import EmbeddedPostgres
from operations.access import create_api_key
from runtime.clients import create_pool
from runtime.migrations import apply_migrations
from tests.conftest import FAST_POSTGRES


async def test_status_during_a_postgres_outage_is_503_then_answers_again(tmp_path: Path) -> None:
    settings = throwaway_settings(tmp_path)
    server = EmbeddedPostgres(settings, server_options=FAST_POSTGRES)
    await server.start()
    try:
        await apply_migrations(settings.database_owner_dsn)  # as the tables' owner
        pool = await create_pool(settings)
        try:
            _, key = await create_api_key(pool, "outage", "operator")
            app = create_app(settings, pool=pool)
            headers = {"Authorization": f"Bearer {key}"}
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                before = await http.get("/api/internships/nobody", headers=headers)
                assert before.status_code == 404
                await server.stop()
                during = await http.get("/api/internships/nobody", headers=headers)
                assert during.status_code == 503, during.text
                assert during.headers["Retry-After"] == "5"
                assert "PostgreSQL" in during.json()["detail"]
                assert settings.database_url not in during.text
                await server.start()
                after = await http.get("/api/internships/nobody", headers=headers)
                assert after.status_code == 404, after.text
        finally:
            await pool.close()
    finally:
        await server.stop()
