"""A party and a verifier in a real browser (headless Chromium): the company mentor opens the
feedback link from a real e-mail, fills the form and sends it; a verifier opens a badge's page,
sees it verified, and sees it revoked after an admin revokes it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from embedded.ports import free_port
from models.status import Phase
from operations.access import create_api_key
from runtime.secret import load_or_create_secret
from runtime.settings import Settings
from tests.helpers import advance_to, load_outbox, running_worker, wait_for_phase
from tests.test_api_harness import Api, compressed, finished_internship, planned
from tests.test_api_schema import served

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path("/tmp/internflow-screenshots")
LINK = re.compile(r"https?://[^\s\"'<>]+/p/[A-Za-z0-9_.=-]+")


@pytest_asyncio.fixture(loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def site(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[Api]:
    """The API served over HTTP on a free port that is also the public base URL, so the links
    the worker puts in e-mails lead to it."""
    port = free_port()
    served_settings = Settings(
        **{
            **settings.model_dump(),
            "api_port": port,
            "public_base_url": f"http://127.0.0.1:{port}",
        }
    )
    client = time_skipping_env.client
    app = create_app(served_settings, client=client, pool=pool)
    _, operator_key = await create_api_key(pool, "browser-operator", "operator")
    _, admin_key = await create_api_key(pool, "browser-admin", "admin")
    async with (
        running_worker(client, served_settings, pool),
        served(app, port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=60) as http,
    ):
        yield Api(
            http=http,
            env=time_skipping_env,
            client=client,
            settings=served_settings,
            pool=pool,
            operator={"Authorization": f"Bearer {operator_key}"},
            admin={"Authorization": f"Bearer {admin_key}"},
            secret=load_or_create_secret(served_settings),
        )


def _text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    assert part is not None
    return str(part.get_content())


async def _mail(site: Api, internship_id: str, kind: str, to: str) -> EmailMessage:
    """The e-mail of that kind to that address, once the SMTP sink has it."""
    for _ in range(100):
        for message in load_outbox(site.settings):
            if (
                message["X-Internflow-Internship"] == internship_id
                and message["X-Internflow-Kind"] == kind
                and message["To"].addresses[0].addr_spec == to
            ):
                return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {kind} e-mail to the {to} arrived")


async def _shot(page: Page, name: str) -> None:
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.timeout(180)
async def test_mentor_sends_feedback_from_the_link_in_the_e_mail(
    site: Api, browser: Browser
) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await site.start(plan)).status_code == 201
    for party in ("intern", "tutor", "mentor"):
        approved = await site.http.post(
            f"/api/internships/{iid}/approvals",
            json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
            headers=site.party(iid, party, "approve"),
        )
        assert approved.status_code == 200, approved.text
    await wait_for_phase(site.client, iid, Phase.AWAITING_START)
    milestone = next(m for m in plan.milestones if "mentor" in m.submitted_by)
    handle = site.client.get_workflow_handle(f"internship-{iid}")
    asked_at = milestone.due - plan.reminder_policy.request_before + timedelta(hours=1)
    await advance_to(site.env, handle, asked_at)

    message = await _mail(site, iid, "milestone_request", plan.mentor.email)
    links = LINK.findall(_text(message))
    assert links, "the milestone request carries the mentor's link"
    link = links[0]
    assert link.startswith(site.settings.public_base_url + "/p/")

    context = await browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = await context.new_page()
    response = await page.goto(link)
    assert response is not None and response.status == 200
    assert await page.locator("h1").inner_text() == f"Company feedback: {milestone.title}"
    await _shot(page, "feedback-form")
    for outcome in plan.learning_outcomes:
        await page.select_option(f"select[name='level.{outcome.id}']", plan.rubric.levels[-1].id)
    await page.fill("input[name='attendance_hours']", "38")
    await page.fill("textarea[name='comments']", "Careful and quick to learn.")
    await page.click("button[type='submit']")
    await page.wait_for_selector("section.ok[role='status']")
    assert "received" in (await page.locator("h1").inner_text()).lower()
    await _shot(page, "feedback-receipt")
    await context.close()

    status = await site.http.get(f"/api/internships/{iid}", headers=site.operator)
    state = next(m for m in status.json()["milestones"] if m["milestone_id"] == milestone.id)
    assert "mentor" not in state["outstanding"]
    row = await site.pool.fetchrow(
        "SELECT actor, milestone_id, payload FROM submissions "
        "WHERE internship_id = $1 AND kind = 'company_feedback'",
        iid,
    )
    assert row is not None and row["milestone_id"] == milestone.id


@pytest.mark.timeout(180)
async def test_verifier_sees_a_badge_verified_then_revoked(site: Api, browser: Browser) -> None:
    plan = await finished_internship(site)
    message = await _mail(site, plan.internship_id, "badge", plan.intern.email)
    verify_urls = re.findall(r"https?://[^\s\"'<>]+/verify/[0-9a-f-]{36}", _text(message))
    assert verify_urls, "the badge e-mail links to its verification page"
    verify_url = verify_urls[0]

    page = await browser.new_page()
    await page.goto(verify_url)
    verdict = page.locator("#verdict")
    assert await verdict.get_attribute("data-verdict") == "verified"
    assert "Verified" in await verdict.inner_text()
    await _shot(page, "verify-verified")

    uuid = verify_url.rsplit("/", 1)[1]
    revoked = await site.http.post(
        f"/api/admin/credentials/{uuid}/revoke",
        json={"reason": "awarded by mistake"},
        headers=site.admin,
    )
    assert revoked.status_code == 200, revoked.text
    await page.reload()
    assert await verdict.get_attribute("data-verdict") == "revoked"
    # When, not why: the reason stays in the audit trail and the intern's e-mail.
    said = await verdict.inner_text()
    assert "Revoked on " in said and "awarded by mistake" not in said
    await _shot(page, "verify-revoked")
    await page.close()


async def test_admin_dashboard_in_the_browser(site: Api, browser: Browser) -> None:
    # The agreement deadline is what the page must show as next: far enough out that a busy
    # machine does not pass it before the page is read.
    plan = compressed(600, lead_seconds=600)
    assert (await site.start(plan)).status_code == 201
    await site.settle(plan.internship_id)
    _, key = await create_api_key(site.pool, "dashboard", "admin")
    page = await browser.new_page()
    await page.goto(f"{site.settings.public_base_url}/admin")
    assert page.url.endswith("/admin/login")
    await page.fill("input[name='key']", "ifk_wrong")
    await page.click("button[type='submit']")
    assert "not an active admin key" in await page.inner_text("main")
    await page.fill("input[name='key']", key)
    await page.click("button[type='submit']")
    await page.wait_for_url("**/admin")
    await page.fill("input[name='q']", plan.internship_id)
    await page.click("form.filters button")
    await _shot(page, "admin-list")
    await page.click(f"a[href='/admin/internships/{plan.internship_id}']")
    link = await page.get_attribute("#temporal-link", "href")
    assert link == (
        f"{site.settings.temporal_ui_url}/namespaces/internflow/workflows/"
        f"internship-{plan.internship_id}"
    )
    assert "planning" in await page.inner_text("main")
    # What is owed now, from the read model: every milestone, none owed yet in planning.
    rows = page.locator("#status tr[data-milestone]")
    assert await rows.count() == len(plan.milestones)
    assert "agreement deadline" in await page.inner_text("#status")
    await _shot(page, "admin-internship")
    await page.close()
