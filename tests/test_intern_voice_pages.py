"""The intern's voice and the school's view of its host companies, as people meet them: the
intern self-assesses from the milestone e-mail's link and at the end from the `final_review`
e-mail, in their language, on a phone (390 px, no sideways scroll), and evaluates the placement;
the tutor's validation page shows the self-assessments beside the assessments. Then the host
companies: figures per company through the admin API (an institution's operator key sees its
own internships only; the placement rating only from three ratings), `internflow companies` and
`/admin/companies` on a phone."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Browser

from models.plan import InternshipPlan
from models.status import Phase
from operations.access import create_api_key
from runtime.links import read_token
from tests.helpers import advance_to, eventually, load_outbox, wait_for_phase
from tests.test_api_harness import Api, planned
from tests.test_browser import LINK, _mail, _text, browser, site
from tests.test_cli import cli_for
from tests.test_phone import PHONE, _phone, _pick_all, fits

__all__ = ["browser", "site"]


def _plan(
    intern_language: str = "en", institution: str | None = None, company: str | None = None
) -> InternshipPlan:
    data = planned().model_dump(mode="json")
    data["intern"]["language"] = intern_language
    for milestone in data["milestones"]:
        milestone["self_assessment"] = milestone["id"] == "mid-term"
    if institution is not None:
        data["institution"]["id"] = institution
    if company is not None:
        data["company"]["id"] = company
    return InternshipPlan.model_validate(data)


async def _approve(site: Api, plan: InternshipPlan) -> None:
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


def _links_by_purpose(site: Api, text: str) -> dict[str, str]:
    found = {}
    for link in LINK.findall(text):
        grant = read_token(site.secret, link.rsplit("/p/", 1)[1])
        found[
            grant.purpose if grant.milestone_id is None else f"{grant.purpose}@{grant.milestone_id}"
        ] = link
    return found


async def _requests(site: Api, iid: str, to: str, count: int) -> list[str]:
    """The texts of the milestone requests to `to`, by milestone due date, once `count` came."""
    found: list[str] = []

    async def arrived() -> bool:
        found[:] = [
            _text(m)
            for m in load_outbox(site.settings)
            if m["X-Internflow-Internship"] == iid
            and m["X-Internflow-Kind"] == "milestone_request"
            and m["To"].addresses[0].addr_spec == to
        ]
        return len(found) >= count

    await eventually(arrived, f"{count} milestone requests")
    return sorted(found, key=lambda text: "Mid-term" in text)


@pytest.mark.timeout(300)
async def test_the_intern_self_assesses_and_evaluates_the_placement_on_a_phone(
    site: Api, browser: Browser
) -> None:
    plan = _plan(intern_language="de")
    iid = plan.internship_id
    await _approve(site, plan)
    mid = next(m for m in plan.milestones if m.id == "mid-term")
    handle = site.client.get_workflow_handle(f"internship-{iid}")
    await advance_to(
        site.env, handle, mid.due - plan.reminder_policy.request_before + timedelta(hours=1)
    )
    requests = await _requests(site, iid, plan.intern.email, 2)
    # The mid-term's request carries the self-assessment's link beside the report's, in German;
    # the check-in's, whose milestone asks for none, only the report's.
    assert [set(_links_by_purpose(site, text)) for text in requests] == [
        {"report@check-in"},
        {"report@mid-term", "self_assess@mid-term"},
    ]
    assert "Selbsteinschätzung" in requests[1] and "Selbsteinschätzung" not in requests[0]
    links = _links_by_purpose(site, requests[1])
    context = await _phone(browser)
    page = await context.new_page()

    await page.goto(links["self_assess@mid-term"])
    assert await page.locator("#step").count() == 0, "an open step says nothing before the form"
    assert await page.locator("input[name='share_in_badge']").count() == 0, "not at a milestone"
    assert "Ihre Selbsteinschätzung" in await page.locator("h1").inner_text()
    await fits(page, "intern-self-assess-milestone")
    await page.locator("select[name='level.lo-web']").select_option("basic")
    await page.locator("select[name='level.lo-team']").select_option("good")
    await page.fill("textarea[name='comment']", "Noch unsicher bei CSS.\nGut im Team.")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    assert (
        "Wir haben Ihre Selbsteinschätzung erhalten" in await page.locator("#receipt").inner_text()
    )
    await fits(page, "intern-self-assess-receipt")
    await page.goto(links["self_assess@mid-term"])
    assert await page.locator("#step").get_attribute("data-state") == "done"
    assert await page.locator("form").count() == 0

    # The end: one e-mail asks for the final self-assessment (its button) and the placement.
    await advance_to(site.env, handle, plan.period.end + timedelta(hours=1))
    await wait_for_phase(site.client, iid, Phase.EVALUATION)
    review = await _mail(site, iid, "final_review", plan.intern.email)
    assert "Selbsteinschätzung" in str(review["Subject"])
    links = _links_by_purpose(site, _text(review))
    assert set(links) == {"self_assess", "evaluate_placement"}, links
    await page.goto(links["self_assess"])
    assert "Am Ende des Praktikums" in await page.locator(".lead").inner_text()
    await fits(page, "intern-self-assess-final")
    await _pick_all(page, "excellent")
    await page.check("input[name='share_in_badge']")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    assert "als Ihre eigene Sicht gekennzeichnet" in await page.locator("#receipt").inner_text()

    await page.goto(links["evaluate_placement"])
    await fits(page, "intern-placement")
    await page.check("input[name='tasks_matched'][value='4']")
    await page.check("input[name='mentor_support'][value='5']")
    await page.check("input[name='would_recommend'][value='yes']")
    await page.fill("textarea[name='comments']", "Gutes Team;\ndie Aufgaben passten.")
    await page.click("form button[type='submit']")
    await page.wait_for_selector("#receipt")
    receipt = await page.locator("#receipt").inner_text()
    assert "Bewertung des Praktikumsplatzes erhalten" in receipt and "4 / 5" in receipt
    await fits(page, "intern-placement-receipt")
    await page.goto(links["evaluate_placement"])
    assert await page.locator("#step").get_attribute("data-state") == "done"

    # The tutor's validation page: the intern's levels beside the assessments, not in the rule.
    for assessor, level in (("mentor", "good"), ("tutor", "good")):
        assessed = await site.http.post(
            f"/api/internships/{iid}/assessments",
            json={
                "submission_id": f"s-{assessor}",
                "assessor": assessor,
                "levels": {o.id: level for o in plan.learning_outcomes},
            },
            headers=site.party(iid, assessor, "assess"),
        )
        assert assessed.status_code == 200, assessed.text
    validation = _links_by_purpose(
        site, _text(await _mail(site, iid, "validation_request", plan.tutor.email))
    )["validate"]
    await page.goto(validation)
    own = page.locator("[data-self-assessed]")
    assert [await own.nth(i).get_attribute("data-self-assessed") for i in range(2)] == [
        "excellent",
        "excellent",
    ]
    assessments = await page.locator("#assessments").inner_text()
    # The tutor reads Italian.
    assert "Autovalutazione del tirocinante alla tappa “Mid-term review”:" in assessments
    assert "Autovalutazione del tirocinante (fuori dalla regola): Excellent" in assessments
    assert await page.locator("#verdict").get_attribute("data-pass") == "yes"
    await fits(page, "tutor-validate-with-self-assessment")
    await context.close()

    # The JSON API: what the intern's links are for, and the same submissions by token.
    task = await site.http.get(
        f"/api/internships/{iid}/task", headers=site.party(iid, "intern", "evaluate_placement")
    )
    assert task.status_code == 200 and task.json()["state"] == "done"
    # Every word kept (a browser sends a textarea's line breaks as CRLF).
    comments = task.json()["sent"][0]["values"]["comments"]
    assert comments.replace("\r\n", "\n") == "Gutes Team;\ndie Aufgaben passten."
    again = await site.http.post(
        f"/api/internships/{iid}/placement-evaluations",
        json={
            "submission_id": "api-2",
            "tasks_matched": 1,
            "mentor_support": 1,
            "would_recommend": False,
        },
        headers=site.party(iid, "intern", "evaluate_placement"),
    )
    assert again.status_code == 409 and "already evaluated" in again.text
    wrong = await site.http.post(
        f"/api/internships/{iid}/placement-evaluations",
        json={
            "submission_id": "api-3",
            "tasks_matched": 1,
            "mentor_support": 1,
            "would_recommend": False,
        },
        headers=site.party(iid, "intern", "self_assess"),
    )
    assert wrong.status_code == 403
    levels = {o.id: "good" for o in plan.learning_outcomes}
    for body, status, words in (
        ({"milestone_id": "mid-term"}, 403, "final self-assessment, not a milestone"),
        ({}, 409, "already sent the final self-assessment"),
    ):
        answer = await site.http.post(
            f"/api/internships/{iid}/self-assessments",
            json={"submission_id": f"api-own-{status}", "levels": levels, **body},
            headers=site.party(iid, "intern", "self_assess"),
        )
        assert answer.status_code == status and words in answer.text, answer.text


async def _evaluate(site: Api, iid: str, tasks: int, support: int, recommend: bool) -> None:
    sent = await site.http.post(
        f"/api/internships/{iid}/placement-evaluations",
        json={
            "submission_id": f"pe-{iid}",
            "tasks_matched": tasks,
            "mentor_support": support,
            "would_recommend": recommend,
            "comments": "private words",
        },
        headers=site.party(iid, "intern", "evaluate_placement"),
    )
    assert sent.status_code == 200, sent.text


async def _assess_and_validate(site: Api, plan: InternshipPlan, decision: str) -> None:
    iid = plan.internship_id
    for assessor in ("mentor", "tutor"):
        assessed = await site.http.post(
            f"/api/internships/{iid}/assessments",
            json={
                "submission_id": f"s-{assessor}",
                "assessor": assessor,
                "levels": {o.id: "good" for o in plan.learning_outcomes},
            },
            headers=site.party(iid, assessor, "assess"),
        )
        assert assessed.status_code == 200, assessed.text
    validated = await site.http.post(
        f"/api/internships/{iid}/validation",
        json={"submission_id": "v", "decision": decision, "reason": "test"},
        headers=site.admin,
    )
    assert validated.status_code == 200, validated.text


@pytest.mark.timeout(300)
async def test_the_school_sees_its_host_companies_by_api_cli_and_page(
    site: Api, browser: Browser
) -> None:
    company = f"co-{uuid.uuid4().hex[:8]}"
    school_a, school_b = f"sa-{uuid.uuid4().hex[:6]}", f"sb-{uuid.uuid4().hex[:6]}"
    plans = [
        _plan(institution=school_a, company=company),
        _plan(institution=school_a, company=company),
        _plan(institution=school_b, company=company),
        _plan(institution=school_a, company=company),
    ]
    for plan in plans:
        await _approve(site, plan)
    withdrawn = await site.http.post(
        f"/api/internships/{plans[3].internship_id}/withdrawal",
        json={"submission_id": "w", "reason": "moved away"},
        headers=site.admin,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    # Nobody reports: the check-in and the mid-term are missed in each of the three that run
    # (each internship has a clock of its own here).
    for plan in plans[:3]:
        handle = site.client.get_workflow_handle(f"internship-{plan.internship_id}")
        await advance_to(site.env, handle, plan.period.end + timedelta(hours=2))
        await wait_for_phase(site.client, plan.internship_id, Phase.EVALUATION)
    for plan, (tasks, support, recommend) in zip(
        plans[:2], ((4, 5, True), (2, 3, False)), strict=True
    ):
        await _evaluate(site, plan.internship_id, tasks, support, recommend)
    # The third intern answers on paper; the office types it in with the CLI.
    cli = cli_for(site.env, site.settings)
    third = plans[2].internship_id
    code, out = await cli(
        "evaluate-placement",
        third,
        "--tasks-matched",
        "3",
        "--mentor-support",
        "4",
        "--recommend",
        "--comments",
        "private words",
    )
    assert code == 0, out
    code, out = await cli(
        "evaluate-placement", third, "--tasks-matched", "6", "--mentor-support", "4", "--recommend"
    )
    assert code == 2 and "--tasks-matched" in out
    code, out = await cli(
        "self-assess",
        third,
        "--level",
        "lo-web=good",
        "--level",
        "lo-team=excellent",
        "--share-in-badge",
    )
    assert code == 0, out
    code, out = await cli("self-assess", third, "--level", "lo-web=good", "--milestone", "mid-term")
    assert code == 2 and "every learning outcome" in out, out
    own = await site.pool.fetchrow(
        "SELECT payload FROM submissions WHERE internship_id = $1 AND kind = 'self_assessment'",
        third,
    )
    assert own is not None
    assert json.loads(own["payload"])["levels"] == {"lo-web": "good", "lo-team": "excellent"}
    # The history (the school's): both, every word, in readable fields.
    history = await site.http.get(f"/api/admin/internships/{third}/history", headers=site.admin)
    assert history.status_code == 200
    fields = {
        entry["kind"]: {f["label"]: f["value"] for f in entry["fields"]}
        for entry in history.json()["entries"]
        if entry["kind"] in ("self_assessment", "placement_evaluation")
    }
    assert fields["self_assessment"]["levels"] == "lo-web = good, lo-team = excellent"
    assert fields["self_assessment"]["shared in badge"] == "yes"
    assert fields["placement_evaluation"]["comments"] == "private words"
    assert fields["placement_evaluation"]["tasks matched the agreement (1-5)"] == "3"
    await _assess_and_validate(site, plans[0], "pass")
    await _assess_and_validate(site, plans[1], "fail")
    for plan, phase in ((plans[0], "completed"), (plans[1], "not_certified")):
        await wait_for_phase(site.client, plan.internship_id, Phase(phase))

    async def figures(headers: dict[str, str]) -> dict[str, Any] | None:
        listed = await site.http.get("/api/admin/companies", headers=headers)
        assert listed.status_code == 200, listed.text
        return next((c for c in listed.json() if c["company_id"] == company), None)

    async def settled() -> bool:
        seen = await figures(site.admin)
        return (
            seen is not None
            and seen["missed_milestones"] == 6
            and seen["ratings"] == 3
            and (seen["by_phase"].get("completed") == 1)
        )

    await eventually(settled, "the records of the four internships")
    every = await figures(site.admin)
    assert every is not None
    assert every["name"] == plans[0].company.name
    assert every["internships"] == 4
    assert every["by_phase"] == {
        "completed": 1,
        "not_certified": 1,
        "evaluation": 1,
        "withdrawn": 1,
    }
    assert every["completion_rate"] == pytest.approx(1 / 3)
    assert every["placement"] == {
        "ratings": 3,
        "rating": 3.5,
        "tasks_matched": 3.0,
        "mentor_support": 4.0,
        "would_recommend": pytest.approx(2 / 3, abs=1e-4),
    }
    assert "private words" not in json.dumps(every)

    # An institution's operator key: its own internships only, and too few ratings to show.
    _, key_a = await create_api_key(site.pool, "office-a", "operator", institutions=[school_a])
    _, key_b = await create_api_key(site.pool, "office-b", "operator", institutions=[school_b])
    own_a = await figures({"Authorization": f"Bearer {key_a}"})
    assert own_a is not None
    assert (own_a["internships"], own_a["missed_milestones"], own_a["ratings"]) == (3, 4, 2)
    assert own_a["placement"] is None and own_a["completion_rate"] == pytest.approx(1 / 3)
    own_b = await figures({"Authorization": f"Bearer {key_b}"})
    assert own_b is not None and (own_b["internships"], own_b["ratings"]) == (1, 1)
    assert own_b["placement"] is None
    detail = await site.http.get(
        f"/api/admin/companies/{company}", headers={"Authorization": f"Bearer {key_b}"}
    )
    assert detail.status_code == 200
    assert [i["internship_id"] for i in detail.json()["internship_list"]] == [
        plans[2].internship_id
    ]
    assert detail.json()["internship_list"][0]["missed_milestones"] == 2
    _, key_c = await create_api_key(site.pool, "office-c", "operator", institutions=["elsewhere"])
    hidden = await site.http.get(
        f"/api/admin/companies/{company}", headers={"Authorization": f"Bearer {key_c}"}
    )
    assert hidden.status_code == 404
    refused = await site.http.get("/api/admin/companies")
    assert refused.status_code == 401

    # The CLI, from the same records.
    code, out = await cli("companies", company, "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["placement"]["rating"] == 3.5 and len(shown["internship_list"]) == 4
    code, out = await cli("companies", "--institution", school_a)
    assert code == 0, out
    assert company in out and "2 of 3 ratings needed" in out and "missed       4" in out
    code, out = await cli("companies", "nobody-here")
    assert code == 2 and "no internship is recorded at company 'nobody-here'" in out

    # The dashboard's page, on a phone.
    _, admin = await create_api_key(site.pool, "phone-companies", "admin")
    context = await _phone(browser)
    page = await context.new_page()
    await page.goto(f"{site.settings.public_base_url}/admin/companies/{company}")
    assert "/admin/login" in page.url
    await page.fill("input[name='key']", admin)
    await page.click("button[type='submit']")
    await page.wait_for_url(f"**/admin/companies/{company}")
    assert await page.locator("[data-figure='rating'] strong").inner_text() == "3.5"
    rows = page.locator("#company-internships tbody tr")
    assert await rows.count() == 4
    assert "private words" not in await page.content()
    await fits(page, "admin-company")
    await page.goto(f"{site.settings.public_base_url}/admin/companies")
    card = page.locator(f"[data-company='{company}']")
    assert "33%" in await card.locator("[data-figure='completion']").inner_text()
    await fits(page, "admin-companies")
    sign_out = await page.locator("header button").bounding_box()
    assert sign_out is not None and sign_out["x"] + sign_out["width"] <= PHONE["width"]
    await context.close()
