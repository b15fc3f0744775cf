"""Signers as data: a plan with a guardian and a company representative besides the intern, the
tutor and the mentor. Each signer gets their own e-mail and link and approves on the page (one
on a phone, in German); the internship starts only once all five have approved; a reminder
reaches only those who have not; an amendment that concerns only the guardian asks only the
guardian again; an operator records a paper signature (API and CLI), shown as "on paper" with
when and the note; and the refusals say what to change."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import Browser
from temporalio.testing import WorkflowEnvironment

from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import Amendment, Approval, PaperSignature, Withdrawal
from operations import internships as ops
from operations.internships import OperationRejected
from records.read import RecordedStatus
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    clock_held,
    eventually,
    running_worker,
    sample_plan,
    wait_for_phase,
)
from tests.test_api_harness import Api, api, detail, planned
from tests.test_browser import browser, site
from tests.test_cli import cli_for
from tests.test_phone import PHONE, _link, fits

__all__ = ["api", "browser", "site"]

GUARDIAN = {
    "id": "guardian-anna-keller",
    "role": "guardian",
    "name": "Anna Keller",
    "email": "anna.keller@example.org",
    "language": "de",
}
REPRESENTATIVE = {
    "id": "rep-marco-bianchi",
    "role": "company_representative",
    "name": "Marco Bianchi",
    "email": "marco.bianchi@example.com",
    "language": "en",
}


def with_signers(plan: InternshipPlan, *signers: dict[str, str]) -> InternshipPlan:
    data = plan.model_dump(mode="json")
    data["signers"] = list(signers)
    return InternshipPlan.model_validate(data)


async def _approve(api: Api, iid: str, role: Any, version: int = 1) -> None:
    answer = await api.http.post(
        f"/api/internships/{iid}/approvals",
        json={"submission_id": f"a-{role}-v{version}", "party": role, "plan_version": version},
        headers=api.party(iid, role, "approve"),
    )
    assert answer.status_code == 200, answer.text


async def _status(api: Api, iid: str) -> RecordedStatus:
    answer = await api.http.get(f"/api/internships/{iid}", headers=api.operator)
    assert answer.status_code == 200, answer.text
    return RecordedStatus.model_validate(answer.json())


async def _sent_to(api: Api, iid: str, kind: str) -> list[str]:
    rows = await api.pool.fetch(
        "SELECT recipient_role FROM notifications WHERE internship_id = $1 AND kind = $2 "
        "ORDER BY recipient_role",
        iid,
        kind,
    )
    return [row["recipient_role"] for row in rows]


@pytest.mark.timeout(300)
async def test_five_signers_each_approve_from_their_own_link(site: Api, browser: Browser) -> None:
    plan = with_signers(planned(), GUARDIAN, REPRESENTATIVE)
    iid = plan.internship_id
    assert (await site.start(plan)).status_code == 201

    # Each signer has their own e-mail with their own link.
    guardian_link = await _link(site, iid, "approval_request", GUARDIAN["email"])
    representative_link = await _link(site, iid, "approval_request", REPRESENTATIVE["email"])
    intern_link = await _link(site, iid, "approval_request", plan.intern.email)
    assert len({guardian_link, representative_link, intern_link}) == 3

    for party in ("intern", "tutor", "mentor"):
        await _approve(site, iid, party)

    # The guardian on a phone, in German (the plan's language for them).
    phone = await browser.new_context(viewport=PHONE, locale="de-DE")
    page = await phone.new_page()
    await page.goto(guardian_link)
    assert "Erziehungsberechtigte Person" in await page.inner_text("main")
    assert GUARDIAN["name"] in await page.inner_text("main")
    await fits(page, "guardian-approve-de")
    await page.click("form.ok button[type='submit']")
    await page.wait_for_selector("#receipt")
    await fits(page, "guardian-approve-receipt-de")

    # Four of five: still planning, waiting for the company representative.
    async def recorded_four() -> bool:
        status = await _status(site, iid)
        return status.approvals == {
            "intern": True,
            "tutor": True,
            "mentor": True,
            "guardian": True,
            "company_representative": False,
        }

    await eventually(recorded_four, "four of the five signers approved")
    await site.settle(iid)
    assert (await _status(site, iid)).phase == Phase.PLANNING

    desktop = await browser.new_context(locale="en-GB")
    page = await desktop.new_page()
    await page.goto(representative_link)
    assert "Company representative" in await page.inner_text("main")
    # The plan's summary names every signer, with their role.
    summary = await page.inner_text("main")
    assert f"Guardian of the intern\n{GUARDIAN['name']}" in summary
    await page.click("form.ok button[type='submit']")
    await page.wait_for_selector("#receipt")
    await wait_for_phase(site.client, iid, Phase.AWAITING_START)
    await phone.close()
    await desktop.close()


async def test_reminders_amendments_and_a_paper_signature(api: Api) -> None:
    plan = with_signers(planned(), GUARDIAN, REPRESENTATIVE)
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)
    assert await _sent_to(api, iid, "approval_request") == sorted(plan.signatories())
    for role in ("intern", "tutor", "mentor", "guardian"):
        await _approve(api, iid, role)
    await api.settle(iid)

    # The reminder (3 days before the deadline) reaches only the company representative.
    handle = api.client.get_workflow_handle(f"internship-{iid}")
    await advance_to(api.env, handle, plan.agreement_deadline - timedelta(days=2))
    await api.settle(iid)
    assert await _sent_to(api, iid, "agreement_reminder") == ["company_representative"]

    # They signed on paper earlier today; the operator records it.
    now = datetime.now(ZoneInfo(plan.period.time_zone))
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    signed_at = max(now - timedelta(hours=3), midnight)
    paper = {
        "submission_id": "paper-rep",
        "role": "company_representative",
        "signed_at": signed_at.isoformat(),
        "note": "signed copy in the school's file 2027/41",
    }
    recorded = await api.http.post(
        f"/api/internships/{iid}/paper-signatures", json=paper, headers=api.operator
    )
    assert recorded.status_code == 200, recorded.text
    # With it, all five have approved: the internship waits for its start.
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    await api.settle(iid)
    status = await _status(api, iid)
    (on_paper,) = [s for s in status.signatures if s.on_paper]
    assert (on_paper.party, on_paper.plan_version, on_paper.note) == (
        "company_representative",
        1,
        paper["note"],
    )
    assert on_paper.signed_at == signed_at
    history = await api.http.get(f"/api/admin/internships/{iid}/history", headers=api.admin)
    assert history.status_code == 200, history.text
    assert "paper_signature" in history.text and paper["note"] in history.text
    signed_in = await api.http.post(
        "/admin/login", data={"key": api.admin["Authorization"].removeprefix("Bearer ")}
    )
    assert signed_in.status_code in (200, 303), signed_in.text
    page = await api.http.get(f"/admin/internships/{iid}")
    assert page.status_code == 200, page.text
    assert "on paper" in page.text and "school&#39;s file 2027/41" in page.text

    # After the start of waiting, no paper signature is taken any more.
    late = await api.http.post(
        f"/api/internships/{iid}/paper-signatures",
        json={**paper, "submission_id": "paper-late", "role": "guardian"},
        headers=api.operator,
    )
    assert late.status_code == 409, late.text
    assert "only while the internship is planning" in detail(late)


async def test_an_amendment_for_the_guardian_asks_only_the_guardian(api: Api) -> None:
    plan = with_signers(planned(), GUARDIAN, REPRESENTATIVE)
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    for role in ("intern", "tutor", "mentor", "guardian"):
        await _approve(api, iid, role)
    await api.settle(iid)

    data = plan.model_dump(mode="json")
    data["version"] = 2
    data["signers"][0]["email"] = "anna.keller@example.net"
    amended = await api.http.post(
        f"/api/internships/{iid}/amendments",
        json={
            "submission_id": "amend-guardian",
            "plan": data,
            "concerns": ["guardian"],
            "reason": "the guardian's e-mail was mistyped",
        },
        headers=api.operator,
    )
    assert amended.status_code == 200, amended.text
    await api.settle(iid)
    rows = await api.pool.fetch(
        "SELECT recipient_role FROM notifications WHERE internship_id = $1 "
        "AND kind = 'approval_request' AND notification_id LIKE '%/v2/%'",
        iid,
    )
    assert [row["recipient_role"] for row in rows] == ["guardian"]
    status = await _status(api, iid)
    assert status.approvals["guardian"] is False
    assert status.approvals["intern"] is True

    # Refusals name what to change: the workflow's (409) and, at the door, the date's (422,
    # naming the field, see test_master_data.py).
    refusals = [
        ({"role": "sending_coordinator"}, "has no sending_coordinator among its signers", 409),
        ({"role": "intern"}, "the intern has already approved plan version 1", 409),
        ({"signed_at": "2099-01-01T00:00:00+00:00"}, "is in the future", 422),
    ]
    for change, words, status in refusals:
        body = {
            "submission_id": f"paper-{len(words)}",
            "role": "company_representative",
            "signed_at": datetime.now().astimezone().isoformat(),
            "note": "paper copy",
            **change,
        }
        refused = await api.http.post(
            f"/api/internships/{iid}/paper-signatures", json=body, headers=api.operator
        )
        assert refused.status_code == status, refused.text
        assert words in detail(refused), detail(refused)

    # The CLI records the company representative's paper signature (signed today), shown by
    # `status`.
    cli = cli_for(api.env, api.settings)
    code, output = await cli(
        "paper-signature",
        iid,
        "--role",
        "company_representative",
        "--signed-at",
        datetime.now(ZoneInfo(plan.period.time_zone)).date().isoformat(),
        "--note",
        "signed at the company's office",
    )
    assert code == 0, output
    code, output = await cli("paper-signature", iid, "--role", "guardian", "--signed-at", "x")
    assert code == 2, output
    await _approve(api, iid, "guardian", version=2)
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    await api.settle(iid)
    code, output = await cli("status", iid)
    assert code == 0, output
    assert '"on_paper": true' in output and "signed at the company's office" in output


async def test_a_guardian_s_agreement_through_the_workflow(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """The workflow alone (recorded as the `guardian` history): five signers, a reminder to the
    two who have not approved, a paper signature, an amendment for the guardian, a refused
    approval by a signer the plan does not name, then a withdrawal while waiting for the start."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = with_signers(
        sample_plan(datetime.now().astimezone() + timedelta(days=10)), GUARDIAN, REPRESENTATIVE
    )
    iid = plan.internship_id
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        for party in ("intern", "tutor", "mentor"):
            await ops.approve(
                client, iid, Approval(submission_id=f"a1-{party}", party=party, plan_version=1)
            )
        await advance_to(env, handle, plan.agreement_deadline - timedelta(days=2))
        with pytest.raises(OperationRejected, match="has no sending_coordinator among its signers"):
            await ops.approve(
                client,
                iid,
                Approval(submission_id="a1-x", party="sending_coordinator", plan_version=1),
            )
        await ops.record_paper_signature(
            client,
            iid,
            PaperSignature(
                submission_id="p1-rep",
                role="company_representative",
                signed_at=datetime.now().astimezone() - timedelta(days=1),
                note="signed copy in the school's file",
            ),
        )
        data = plan.model_dump(mode="json")
        data["version"] = 2
        data["signers"][0]["language"] = "it"
        await ops.amend(
            client,
            iid,
            Amendment(
                submission_id="m-2",
                plan=InternshipPlan.model_validate(data),
                concerns=("guardian",),
                reason="the guardian reads Italian",
            ),
        )
        status = await ops.status(client, iid)
        assert [role for role, done in status.approvals.items() if not done] == ["guardian"]
        await ops.approve(
            client, iid, Approval(submission_id="a2-guardian", party="guardian", plan_version=2)
        )
        await wait_for_phase(client, iid, Phase.AWAITING_START)
        await ops.withdraw(
            client, iid, Withdrawal(submission_id="w-1", reason="the family moved away")
        )
        outcome = await handle.result()
        assert outcome.phase == Phase.WITHDRAWN

        async def reminded() -> bool:
            rows = await pool.fetch(
                "SELECT recipient_role FROM notifications WHERE internship_id = $1 "
                "AND kind = 'agreement_reminder' ORDER BY recipient_role",
                iid,
            )
            return [r["recipient_role"] for r in rows] == ["company_representative", "guardian"]

        await eventually(reminded, "the reminder went to the two who had not approved")

        async def withdrawal_told() -> bool:
            rows = await pool.fetch(
                "SELECT recipient_role FROM notifications WHERE internship_id = $1 "
                "AND kind = 'withdrawal' AND status = 'sent' ORDER BY recipient_role",
                iid,
            )
            return [r["recipient_role"] for r in rows] == [
                "company_representative",
                "guardian",
                "intern",
                "mentor",
            ]

        await eventually(withdrawal_told, "the withdrawal told to the intern, mentor and signers")
