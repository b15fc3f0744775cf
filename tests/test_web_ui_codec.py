"""Admins read encrypted histories in the Temporal Web UI of the embedded stack: the stack with
payload encryption on, an internship started through the API, an admin who signs in and opens
its workflow in the Web UI (served by the API under /temporal, on the codec endpoint's origin)
in headless Chromium and reads the intern's name in clear; and a codec endpoint that tells a
caller without an admin session or key what to do."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack
from models.plan import InternshipPlan
from operations.access import create_api_key
from runtime.clients import create_pool
from runtime.codec import new_key
from runtime.settings import Settings
from tests.conftest import FAST_POSTGRES
from tests.test_api_harness import planned
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

SCREENSHOT = Path("/tmp/internflow-screenshots/web-ui-decrypted.png")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def encrypted_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Settings, str, str]]:
    """The embedded stack (PostgreSQL, Temporal, the real worker and API) with payload
    encryption on; yields its settings, an admin key and an operator key."""
    settings = throwaway_settings(
        tmp_path_factory.mktemp("stack"),
        codec_keys=json.dumps({"k1": new_key()}),
        codec_key_id="k1",
    )
    async with EmbeddedStack(settings, start_api=True, postgres_options=FAST_POSTGRES):
        pool = await create_pool(settings)
        try:
            _, admin_key = await create_api_key(pool, "web-ui-admin", "admin")
            _, operator_key = await create_api_key(pool, "web-ui-operator", "operator")
        finally:
            await pool.close()
        yield settings, admin_key, operator_key


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


async def _start(settings: Settings, operator_key: str) -> InternshipPlan:
    plan = planned()
    async with httpx.AsyncClient(base_url=settings.public_base_url, timeout=30) as http:
        started = await http.post(
            "/api/internships",
            json=plan.model_dump(mode="json"),
            headers={"Authorization": f"Bearer {operator_key}"},
        )
    assert started.status_code in (200, 201, 202), started.text
    return plan


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="session")
async def test_an_admin_reads_an_encrypted_history_in_the_web_ui(
    encrypted_stack: tuple[Settings, str, str], browser: Browser
) -> None:
    settings, admin_key, operator_key = encrypted_stack
    plan = await _start(settings, operator_key)
    base = settings.public_base_url
    namespace = settings.temporal_namespace
    workflow = f"{base}/temporal/namespaces/{namespace}/workflows/internship-{plan.internship_id}"

    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await context.new_page()
        # Not signed in: the Web UI sends the admin to sign in, and back.
        await page.goto(workflow)
        await expect(page).to_have_url(f"{base}/admin/login?next=" + _quoted(workflow, base))
        await page.fill("input[name=key]", admin_key)
        await page.locator("form button[type=submit], form input[type=submit]").first.click()
        await expect(page).to_have_url(workflow)

        # The start input (the plan) is shown decrypted: the intern's and mentor's names.
        await expect(page.get_by_text(plan.intern.name).first).to_be_visible(timeout=30_000)
        content = await page.content()
        assert "binary/encrypted" not in content, "the UI shows ciphertext next to clear text"
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    finally:
        await context.close()

    # Another browser, never signed in, gets nothing out of the UI's API.
    stranger = await browser.new_context()
    try:
        answer = await stranger.request.get(f"{base}/temporal/api/v1/settings")
        assert answer.status == 401 and "/admin/login" in await answer.text()
    finally:
        await stranger.close()


def _quoted(url: str, base: str) -> str:
    """The `next` parameter the sign-in page gets for `url` of this site."""
    return quote(url.removeprefix(base), safe="")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_refused_codec_call_says_what_to_do(
    encrypted_stack: tuple[Settings, str, str],
) -> None:
    settings, admin_key, operator_key = encrypted_stack
    body = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}}]}
    async with httpx.AsyncClient(base_url=settings.public_base_url, timeout=30) as http:
        for headers in (
            {},
            {"Authorization": "Bearer not-a-key"},
            {"Authorization": f"Bearer {operator_key}"},
        ):
            refused = await http.post("/codec/decode", json=body, headers=headers)
            assert refused.status_code in (401, 403), refused.text
            reason = refused.json()["detail"]
            assert "/admin/login" in reason and "--codec-auth" in reason, reason
            assert "not-a-key" not in reason and operator_key not in reason
        fine = await http.post(
            "/codec/decode", json=body, headers={"Authorization": f"Bearer {admin_key}"}
        )
        assert fine.status_code == 200, fine.text
