"""The pages on a phone (Chromium, 390 px wide): the intern approves and reports (sharing the
report in the badge), the mentor sends feedback from the e-mail's link, reopens it, sees what
was sent and corrects it, assesses; the tutor validates seeing both assessments; a link to a
closed step says so; the verification page, the dashboard (sign-in, list, internship) and the
error pages. No page scrolls sideways (document.scrollingElement.scrollWidth <= 390)."""

from __future__ import annotations

import asyncio
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from models.status import Phase
from operations.access import create_api_key
from tests.helpers import advance_to, wait_for_phase
from tests.test_api_harness import Api, finished_internship, planned
from tests.test_browser import LINK, _mail, _text, browser, site

__all__ = ["browser", "site"]

PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(tempfile.gettempdir()) / "internflow-screenshots"


async def _phone(browser: Browser) -> BrowserContext:
    return await browser.new_context(viewport=PHONE, locale="en-GB")


async def fits(page: Page, name: str) -> None:
    """The page does not scroll sideways on the phone; a full-page screenshot is kept."""
    width = await page.evaluate("document.scrollingElement.scrollWidth")
    await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"phone-{name}.png"), full_page=True)
    assert width <= PHONE["width"], f"{name}: the page is {width} px wide on a 390 px screen"


async def _link(site: Api, iid: str, kind: str, to: str) -> str:
    links = LINK.findall(_text(await _mail(site, iid, kind, to)))
    assert links, f"the {kind} e-mail to {to} carries a link"
    return str(links[0])


async def _pick_all(page: Page, level: str) -> None:
    for select in await page.locator("select[name^='level.']").all():
        await select.select_option(level)


@pytest.mark.timeout(300)
async def test_parties_on_a_phone(site: Api, browser: Browser) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await site.start(plan)).status_code == 201
    context = await _phone(browser)
    page = await context.new_page()

    # The intern approves from the e-mail's link.
    await page.goto(await _link(site, iid, "approval_request", plan.intern.email))
    await fits(page, "intern-approve")
    await page.click("form.ok button[type='submit']")
    await page.wait_for_selector("#receipt")
    await fits(page, "intern-approve-receipt")
    for party in ("tutor", "mentor"):
        approved = await site.http.post(
            f"/api/internships/{iid}/approvals",
            json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
            headers=site.party(iid, party, "approve"),
        )
        assert approved.status_code == 200, approved.text
    await wait_for_phase(site.client, iid, Phase.AWAITING_START)
    milestone = next(m for m in plan.milestones if set(m.submitted_by) == {"intern", "mentor"})
    handle = site.client.get_workflow_handle(f"internship-{iid}")
    asked = milestone.due - plan.reminder_policy.request_before + timedelta(hours=1)
    await advance_to(site.env, handle, asked)
    await wait_for_phase(site.client, iid, Phase.IN_PROGRESS)

    # The mentor: the feedback form from the e-mail, a receipt, the link reopened, a correction.
    feedback = await _link(site, iid, "milestone_request", plan.mentor.email)
    await page.goto(feedback)
    assert await page.locator("h1").inner_text() == f"Company feedback: {milestone.title}"
    assert plan.intern.name in await page.locator("p.lead").inner_text()
    await fits(page, "mentor-feedback-form")
    levels = plan.rubric.levels
    await _pick_all(page, levels[1].id)
    await page.fill("input[name='attendance_hours']", "36")
    await page.fill("textarea[name='comments']", "A careful start; asks good questions.")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    receipt = await page.locator("#receipt").inner_text()
    assert "We received the company's feedback" in receipt and levels[1].name in receipt
    await fits(page, "mentor-feedback-receipt")
    await site.settle(iid)
    await page.goto(feedback)
    assert await page.locator("#sent").count() == 1
    assert await page.locator("select[name^='level.']").first.input_value() == levels[1].id
    await fits(page, "mentor-feedback-reopened")
    await _pick_all(page, levels[2].id)
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    await site.settle(iid)
    await page.goto(feedback)
    sent = await page.locator("#sent").inner_text()
    assert levels[2].name in sent and "Earlier versions, kept (1)" in sent
    await page.click("#sent details summary")
    await fits(page, "mentor-feedback-corrected")

    # The intern reports and agrees to show the report in the badge.
    await page.goto(await _link(site, iid, "milestone_request", plan.intern.email))
    await page.fill("textarea[name='summary']", "Set up the project and the first page.")
    await page.check("input[name='share_in_badge']")
    await fits(page, "intern-report-form")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    await fits(page, "intern-report-receipt")

    # Evaluation: the mentor assesses; the tutor validates seeing both assessments.
    await advance_to(site.env, handle, plan.period.end + timedelta(hours=1))
    await wait_for_phase(site.client, iid, Phase.EVALUATION)
    assess = await _link(site, iid, "assessment_request", plan.mentor.email)
    await page.goto(assess)
    await _pick_all(page, levels[-1].id)
    await fits(page, "mentor-assess-form")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    await site.settle(iid)
    await page.goto(assess)
    assert await page.locator("#step").get_attribute("data-state") == "done"
    assert await page.locator("form").count() == 0
    await fits(page, "mentor-assess-done")
    tutor = await site.http.post(
        f"/api/internships/{iid}/assessments",
        json={
            "submission_id": "s-tutor",
            "assessor": "tutor",
            "levels": {o.id: o.required_level for o in plan.learning_outcomes},
            "comment": "Solid work, as agreed.",
        },
        headers=site.party(iid, "tutor", "assess"),
    )
    assert tutor.status_code == 200, tutor.text
    await page.goto(await _link(site, iid, "validation_request", plan.tutor.email))
    assert await page.locator("#assessments .outcome[data-outcome]").count() == len(
        plan.learning_outcomes
    )
    assert await page.locator("#verdict").get_attribute("data-pass") == "yes"
    await fits(page, "tutor-validate")
    await page.check("input[value='pass']")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    await fits(page, "tutor-validate-receipt")
    assert (await handle.result())["phase"] == Phase.COMPLETED.value
    await site.settle(iid)

    # A link to a step that is over says so before any form.
    await page.goto(feedback)
    assert await page.locator("#step").get_attribute("data-state") == "closed"
    assert await page.locator("form").count() == 0
    await fits(page, "mentor-feedback-closed")
    await context.close()


@pytest.mark.timeout(240)
async def test_verification_dashboard_and_errors_on_a_phone(site: Api, browser: Browser) -> None:
    plan = await finished_internship(site)
    iid = plan.internship_id
    context = await _phone(browser)
    page = await context.new_page()
    badge = _text(await _mail(site, iid, "badge", plan.intern.email))
    verify = re.findall(r"https?://[^\s\"'<>]+/verify/[0-9a-f-]{36}", badge)[0]
    await page.goto(verify)
    assert await page.locator("#verdict").get_attribute("data-verdict") == "verified"
    await fits(page, "verify")

    # The dashboard: the internship's page from an e-mail, sign-in, back to it; the list.
    _, key = await create_api_key(site.pool, "phone-admin", "admin")
    internship = f"{site.settings.public_base_url}/admin/internships/{iid}"
    await page.goto(internship)
    assert "/admin/login" in page.url
    await fits(page, "admin-login")
    await page.fill("input[name='key']", key)
    await page.click("button[type='submit']")
    await page.wait_for_url(internship)
    await fits(page, "admin-internship")
    header = page.locator("header")
    box = await header.bounding_box()
    sign_out = await page.locator("header button").bounding_box()
    assert box is not None and sign_out is not None
    assert sign_out["x"] + sign_out["width"] <= PHONE["width"], "the header fits"
    await page.goto(f"{site.settings.public_base_url}/admin?q={iid}")
    assert await page.locator(f"a[href='/admin/internships/{iid}']").is_visible()
    await fits(page, "admin-list")

    # Errors a browser meets are pages: a page that does not exist, a form far too large.
    missing = await page.goto(f"{site.settings.public_base_url}/p/")
    assert missing is not None and missing.status == 404
    assert await page.locator("#error").get_attribute("data-status") == "404"
    await fits(page, "error-404")
    link = await _link(site, iid, "milestone_request", plan.mentor.email)
    await page.set_content(
        f'<form method="post" action="{link}"><textarea name="comments">'
        f"{'x' * (2 * 1024 * 1024)}</textarea><input name='attendance_hours' value='1'>"
        '<button type="submit">send</button></form>'
    )
    async with page.expect_navigation():
        await page.click("button")
    assert await page.locator("#error").get_attribute("data-status") == "413"
    assert "4,000 characters" in await page.locator("#error").inner_text()
    await fits(page, "error-413")
    await context.close()
