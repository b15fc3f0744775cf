"""Every kind of e-mail, as its reader gets it: internships run through every ladder step, a
change request, a missed milestone, a pass (the badge, then its suspension, reinstatement and
revocation), a fail, a withdrawal with a refused address (delivery failed) and a cancellation.
Then every link in every e-mail is followed as its reader would (a party link directly, a
dashboard link after signing in with an admin key) and none may answer 4xx or 5xx; every
e-mail says whose internship it is about; and every HTML body fits a 390 px phone screen."""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import get_args

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from playwright.async_api import Browser
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from embedded.ports import free_port
from embedded.postgres import EmbeddedPostgres
from models.activities import NotificationKind
from models.plan import PARTIES, InternshipPlan, Language
from models.status import Phase
from operations.access import create_api_key
from runtime.clients import create_pool
from runtime.database import owner_dsn
from runtime.migrations import apply_migrations
from runtime.secret import load_or_create_secret
from tests.conftest import application_dsn_of, make_settings
from tests.helpers import advance_to, eventually, load_outbox, running_worker, wait_for_phase
from tests.test_api_harness import Api, finished_internship, in_language, planned
from tests.test_api_schema import served
from tests.test_browser import browser
from tests.test_mail import _RefusingHandler

__all__ = ["browser"]

URL = re.compile(r"https?://[^\s\"'<>]+")
#: Where the badge e-mail's share links lead (the sites themselves; checked exactly in
#: tests/test_badge_page.py, not followed here).
SHARE_SITES = (
    "https://www.linkedin.com/",
    "https://x.com/",
    "https://www.facebook.com/",
)
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SCREENSHOTS = Path(tempfile.gettempdir()) / "internflow-screenshots"


@dataclass
class MailSite:
    api: Api
    admin_key: str
    refused: set[str]


@pytest_asyncio.fixture(loop_scope="session")
async def mail_site(
    time_skipping_env: WorkflowEnvironment,
    tmp_path: Path,
    postgres: EmbeddedPostgres,
    database: str,
) -> AsyncIterator[MailSite]:
    """The API served over HTTP at its public base URL (the links in e-mails lead to it), a
    worker, and an SMTP server that stores every message but refuses the addresses in
    `refused` for good (550), as a real one does."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        database_url=application_dsn_of(postgres, database),
        database_owner_url=database,
        smtp_port=free_port(),
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        api_port=port,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    settings.outbox_path.mkdir(parents=True)
    refused: set[str] = set()
    smtp = Controller(
        _RefusingHandler(settings.outbox_path, refused),
        hostname="127.0.0.1",
        port=settings.smtp_port,
    )
    smtp.start()
    await apply_migrations(owner_dsn(settings))
    pool = await create_pool(settings)
    client = time_skipping_env.client
    _, operator_key = await create_api_key(pool, "mail-operator", "operator")
    _, admin_key = await create_api_key(pool, "mail-admin", "admin")
    try:
        async with (
            running_worker(client, settings, pool),
            served(create_app(settings, client=client, pool=pool), port) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=60) as http,
        ):
            yield MailSite(
                api=Api(
                    http=http,
                    env=time_skipping_env,
                    client=client,
                    settings=settings,
                    pool=pool,
                    operator={"Authorization": f"Bearer {operator_key}"},
                    admin={"Authorization": f"Bearer {admin_key}"},
                    secret=load_or_create_secret(settings),
                ),
                admin_key=admin_key,
                refused=refused,
            )
    finally:
        await pool.close()
        smtp.stop()


async def _ok(response: httpx.Response) -> httpx.Response:
    assert response.status_code < 300, f"{response.request.url}: {response.text[:300]}"
    return response


async def _approve_all(api: Api, plan: InternshipPlan) -> None:
    for party in ("intern", "tutor", "mentor"):
        await _ok(
            await api.http.post(
                f"/api/internships/{plan.internship_id}/approvals",
                json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
                headers=api.party(plan.internship_id, party, "approve"),
            )
        )


async def _mails(api: Api, ids: set[str]) -> list[EmailMessage]:
    return [m for m in load_outbox(api.settings) if m["X-Internflow-Internship"] in ids]


async def _kinds_arrived(api: Api, iid: str, kinds: set[str], within: float = 60) -> None:
    async def arrived() -> bool:
        got = {str(m["X-Internflow-Kind"]) for m in await _mails(api, {iid})}
        return kinds <= got

    await eventually(arrived, f"{sorted(kinds)} e-mails of {iid}", within)


async def ladder_change_request_and_fail(api: Api, language: Language | None) -> InternshipPlan:
    """A change request with a comment; then nobody submits anything, so every milestone goes
    through its whole ladder (request, reminder, escalation, missed); both assessments, one
    below the required level, and a fail."""
    plan = in_language(planned(), language)
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await _ok(
        await api.http.post(
            f"/api/internships/{iid}/change-requests",
            json={
                "submission_id": "c-1",
                "party": "mentor",
                "plan_version": 1,
                "comment": "Please plan two lab days on Fridays.",
            },
            headers=api.party(iid, "mentor", "approve"),
        )
    )
    await _approve_all(api, plan)
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    handle = api.client.get_workflow_handle(f"internship-{iid}")
    policy = plan.reminder_policy
    for milestone in plan.milestones:
        await advance_to(api.env, handle, milestone.due + policy.missed_after + timedelta(hours=1))
    await advance_to(
        api.env,
        handle,
        plan.period.end + plan.assessment_window - policy.assessment_reminder + timedelta(hours=1),
    )
    await _kinds_arrived(
        api,
        iid,
        {"milestone_request", "reminder", "escalation", "missed", "assessment_reminder"},
    )
    for assessor, level in (("mentor", "good"), ("tutor", "insufficient")):
        await _ok(
            await api.http.post(
                f"/api/internships/{iid}/assessments",
                json={
                    "submission_id": f"s-{assessor}",
                    "assessor": assessor,
                    "levels": {o.id: level for o in plan.learning_outcomes},
                },
                headers=api.party(iid, assessor, "assess"),
            )
        )
    await _kinds_arrived(api, iid, {"validation_request"})
    await _ok(
        await api.http.post(
            f"/api/internships/{iid}/validation",
            json={"submission_id": "v-1", "decision": "fail", "reason": "Below the level."},
            headers=api.party(iid, "tutor", "validate"),
        )
    )
    assert (await handle.result())["phase"] == Phase.NOT_CERTIFIED.value
    return plan


async def badge_and_its_status_changes(api: Api, language: Language | None) -> InternshipPlan:
    plan = await finished_internship(api, language)
    credential = await api.pool.fetchval(
        "SELECT credential_id FROM credentials WHERE internship_id = $1", plan.internship_id
    )
    uuid_ = str(credential).removeprefix("urn:uuid:")
    for action, reason in (
        ("suspend", "Under review after a complaint."),
        ("reinstate", "The review found nothing wrong."),
        ("revoke", "Awarded by mistake."),
    ):
        await _ok(
            await api.http.post(
                f"/api/admin/credentials/{uuid_}/{action}",
                json={"reason": reason},
                headers=api.admin,
            )
        )
    # Each change's notice follows its answer, by a workflow of its own.
    await _kinds_arrived(api, plan.internship_id, {"suspension", "reinstatement", "revocation"})
    return plan


async def withdrawal_with_a_refused_address(
    site: MailSite, language: Language | None
) -> InternshipPlan:
    api = site.api
    base = in_language(planned(), language)
    data = base.model_dump(mode="json")
    data["intern"]["email"] = f"gone-{uuid.uuid4().hex[:6]}@students.example.org"
    plan = InternshipPlan.model_validate(data)
    site.refused.add(plan.intern.email)
    assert (await api.start(plan)).status_code == 201
    await _approve_all(api, plan)
    await wait_for_phase(api.client, plan.internship_id, Phase.AWAITING_START)
    await _ok(
        await api.http.post(
            f"/api/internships/{plan.internship_id}/withdrawal",
            json={"submission_id": "w-1", "reason": "The intern moved abroad."},
            headers=api.operator,
        )
    )
    handle = api.client.get_workflow_handle(f"internship-{plan.internship_id}")
    assert (await handle.result())["phase"] == Phase.WITHDRAWN.value
    return plan


async def reminders_then_cancellation(api: Api, language: Language | None) -> InternshipPlan:
    plan = in_language(planned(), language)
    assert (await api.start(plan)).status_code == 201
    handle = api.client.get_workflow_handle(f"internship-{plan.internship_id}")
    await advance_to(api.env, handle, plan.agreement_deadline + timedelta(hours=1))
    assert (await handle.result())["phase"] == Phase.CANCELLED.value
    return plan


async def _follow(http: httpx.AsyncClient, site: MailSite, url: str) -> httpx.Response:
    """Open a link as its reader would: a browser that follows redirects; on the dashboard's
    sign-in page, sign in with an admin key (and land where the link pointed)."""
    response = await http.get(url, headers=BROWSER)
    if response.url.path == "/admin/login" and "next" in response.url.params:
        response = await http.post(
            "/admin/login",
            data={"key": site.admin_key, "next": response.url.params["next"]},
            headers=BROWSER,
        )
        assert str(response.url) == url, f"signing in led to {response.url}, not {url}"
    return response


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


#: How a milestone's subject to the company mentor says when it is due: the example plan as
#: written (its mentor reads English; the intern and the tutor, so the institution, Italian), and
#: every party in German.
DUE: dict[Language | None, str] = {None: " due ", "de": " fällig am "}


def _language_of(plan: InternshipPlan, address: str) -> str:
    """The language of the recipient at `address`; the institution reads the tutor's."""
    readers = {plan.person(party).email: plan.person(party).language for party in PARTIES}
    return readers.get(address, plan.tutor.language)


@pytest.mark.timeout(420)
@pytest.mark.parametrize("language", list(DUE), ids=["example", "de"])
async def test_every_e_mail_leads_somewhere_and_says_whose_it_is(
    mail_site: MailSite, browser: Browser, language: Language | None
) -> None:
    api = mail_site.api
    plans = [
        await ladder_change_request_and_fail(api, language),
        await badge_and_its_status_changes(api, language),
        await withdrawal_with_a_refused_address(mail_site, language),
        await reminders_then_cancellation(api, language),
    ]
    by_id = {p.internship_id: p for p in plans}
    for plan in plans:
        await api.settle(plan.internship_id)
    messages = await _mails(api, set(by_id))
    kinds = {str(m["X-Internflow-Kind"]) for m in messages}
    assert kinds == set(get_args(NotificationKind)), sorted(set(get_args(NotificationKind)) - kinds)

    # Every link in every e-mail, as its reader opens it: none answers 4xx or 5xx.
    base = api.settings.public_base_url
    followed: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=base, follow_redirects=True, timeout=60) as reader:
        for message in messages:
            text, html = _parts(message)
            links = set(URL.findall(text)) | {
                u.replace("&amp;", "&") for u in re.findall(r'href="([^"]+)"', html)
            }
            for url in sorted(links):
                if message["X-Internflow-Kind"] == "badge" and url.startswith(SHARE_SITES):
                    continue
                if not url.startswith(("http://", "https://")):
                    # The badge e-mail's share by e-mail and its wallet offer: for the reader's
                    # mail app and wallet app, not a browser.
                    assert message["X-Internflow-Kind"] == "badge", url
                    assert url.startswith(("mailto:", "openid-credential-offer://")), url
                    continue
                assert url.startswith(base), f"{message['X-Internflow-Kind']}: {url}"
                if url not in followed:
                    reader.cookies.clear()
                    followed[url] = (await _follow(reader, mail_site, url)).status_code
    failing = {url: status for url, status in followed.items() if status >= 400}
    assert not failing, failing
    paths = {httpx.URL(url).path.split("/")[1] for url in followed}
    assert paths == {"p", "admin", "verify", "badges", "b"}, paths

    # Every e-mail says whose internship it is; the ones to the company in the subject too.
    for message in messages:
        plan = by_id[str(message["X-Internflow-Internship"])]
        kind, subject = str(message["X-Internflow-Kind"]), str(message["Subject"])
        text = " ".join(_parts(message)[0].split())
        to = message["To"].addresses[0].addr_spec
        assert plan.company.name in text, (kind, to)
        if to != plan.intern.email:
            assert plan.intern.name in text, (kind, to)
        if to == plan.mentor.email and kind in ("milestone_request", "reminder"):
            assert plan.intern.name in subject and DUE[language] in subject, subject
        text_part = message.get_body(("plain",))
        assert text_part is not None
        assert text_part["Content-Language"] == _language_of(plan, to), (kind, to)
    ladder = by_id[plans[0].internship_id]
    texts = {
        (str(m["X-Internflow-Kind"]), m["To"].addresses[0].addr_spec): " ".join(
            _parts(m)[0].split()
        )
        for m in messages
        if m["X-Internflow-Internship"] == ladder.internship_id
    }
    assert (
        "Please plan two lab days on Fridays."
        in texts[("change_request", ladder.institution.email)]
    )
    both = next(m for m in ladder.milestones if set(m.submitted_by) == {"intern", "mentor"})
    escalation = next(
        " ".join(_parts(m)[0].split())
        for m in messages
        if m["X-Internflow-Kind"] == "escalation"
        and both.title in str(m["Subject"])
        and m["X-Internflow-Internship"] == ladder.internship_id
    )
    # Who has not submitted, and how to reach them.
    assert ladder.intern.email in escalation and ladder.mentor.email in escalation, escalation
    revoked = next(m for m in messages if m["X-Internflow-Kind"] == "revocation")
    assert "Awarded by mistake" in _parts(revoked)[0]

    # Every HTML body fits a phone: no horizontal scrolling at 390 px.
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    too_wide: dict[str, int] = {}
    for message in messages:
        await page.set_content(_parts(message)[1])
        width = await page.evaluate("document.scrollingElement.scrollWidth")
        if width > 390:
            too_wide[f"{message['X-Internflow-Kind']} to {message['To']}"] = width
    for kind, to in (
        ("milestone_request", ladder.mentor.email),
        ("escalation", ladder.tutor.email),
    ):
        message = next(
            m
            for m in messages
            if m["X-Internflow-Kind"] == kind and m["To"].addresses[0].addr_spec == to
        )
        await page.set_content(_parts(message)[1])
        await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
        suffix = f"-{language}" if language else ""
        await page.screenshot(path=str(SCREENSHOTS / f"mail-{kind}{suffix}.png"), full_page=True)
    await context.close()
    assert not too_wide, too_wide
