"""Parties: link tokens (refused on the wrong internship, party or purpose; expired; tampered),
the JSON API and the HTML pages, through a whole internship; nothing is recorded on a refusal."""

from __future__ import annotations

import re
from datetime import timedelta

from models.status import Phase
from runtime.links import party_link
from tests.helpers import advance_to, wait_for_phase
from tests.test_api_harness import Api, api, detail, planned

__all__ = ["api"]


async def test_link_tokens_are_bound_to_internship_party_and_purpose(api: Api) -> None:
    plan, other = planned(), planned()
    for p in (plan, other):
        assert (await api.start(p)).status_code == 201
        await api.settle(p.internship_id)
    iid = plan.internship_id
    url = f"/api/internships/{iid}/approvals"
    approval = {"submission_id": "a-intern", "party": "intern", "plan_version": 1}
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)

    missing = await api.http.post(url, json=approval)
    assert missing.status_code == 401
    token = api.token(iid, "intern", "approve")
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    forged = await api.http.post(
        url, json=approval, headers={"Authorization": f"Bearer {tampered}"}
    )
    assert forged.status_code == 401 and "not valid" in detail(forged)
    expired = await api.http.post(
        url, json=approval, headers=api.party(iid, "intern", "approve", valid_for=timedelta(-1))
    )
    assert expired.status_code == 401 and "expired" in detail(expired)
    elsewhere = await api.http.post(
        url, json=approval, headers=api.party(other.internship_id, "intern", "approve")
    )
    assert elsewhere.status_code == 403 and "another internship" in detail(elsewhere)
    as_tutor = await api.http.post(
        url, json={**approval, "party": "tutor"}, headers=api.party(iid, "intern", "approve")
    )
    assert as_tutor.status_code == 403
    wrong_purpose = await api.http.post(
        url, json=approval, headers=api.party(iid, "mentor", "feedback")
    )
    assert wrong_purpose.status_code == 403
    invalid = await api.http.post(
        url, json={**approval, "plan_version": 0}, headers=api.party(iid, "intern", "approve")
    )
    assert invalid.status_code == 422 and invalid.json()["errors"][0]["field"] == (
        "body.plan_version"
    )
    stale = await api.http.post(
        url, json={**approval, "plan_version": 7}, headers=api.party(iid, "intern", "approve")
    )
    assert stale.status_code == 409 and "current version is 1" in detail(stale)
    assert await api.recorded(iid) == before, "no refusal recorded anything"

    ok = await api.http.post(url, json=approval, headers=api.party(iid, "intern", "approve"))
    assert ok.status_code == 200 and ok.json()["kind"] == "approval"
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    duplicate = await api.http.post(
        url,
        json={**approval, "submission_id": "a-intern-2"},
        headers=api.party(iid, "intern", "approve"),
    )
    assert duplicate.status_code == 409 and "already approved" in detail(duplicate)
    assert await api.recorded(iid) == before

    task = await api.http.get(
        f"/api/internships/{iid}/task", headers=api.party(iid, "tutor", "approve")
    )
    assert task.status_code == 200
    assert task.json()["purpose"] == "approve" and task.json()["plan"]["internship_id"] == iid


async def test_approval_pages_in_the_recipients_language(api: Api) -> None:
    example = planned()
    data = example.model_dump(mode="json")
    data["intern"]["language"] = "it"
    plan = type(example).model_validate(data)
    assert (await api.start(plan)).status_code == 201
    await api.settle(plan.internship_id)
    iid = plan.internship_id

    link = party_link(api.settings, iid, "intern", "approve")
    assert link.startswith(api.settings.public_base_url + "/p/")
    path = link.removeprefix(api.settings.public_base_url)
    page = await api.http.get(path)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    html = page.text
    assert 'lang="it"' in html and "Approva il learning agreement" in html
    assert plan.company.name in html and plan.learning_outcomes[0].title in html
    assert "<script" not in html

    # Ask for changes, then approve; the second click on approve gets the first receipt.
    changes = await api.http.post(
        path,
        data={
            "action": "request_changes",
            "submission_id": "web-changes-1",
            "plan_version": "1",
            "comment": "Per favore, più ore di laboratorio.",
        },
    )
    assert changes.status_code == 200 and "Grazie: ricevuto" in changes.text
    submission_id = re.search(r'name="submission_id" value="(web-approval[^"]+)"', html)
    assert submission_id is not None
    form = {"action": "approve", "submission_id": submission_id[1], "plan_version": "1"}
    first = await api.http.post(path, data=form)
    assert first.status_code == 200 and "change_request" not in first.text
    assert submission_id[1] in first.text
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    second = await api.http.post(path, data=form)
    assert second.status_code == 200 and submission_id[1] in second.text
    assert await api.recorded(iid) == before
    kinds = await api.pool.fetch(
        "SELECT kind, actor FROM submissions WHERE internship_id = $1 ORDER BY accepted_at", iid
    )
    assert [(r["kind"], r["actor"]) for r in kinds] == [
        ("change_request", "intern"),
        ("approval", "intern"),
    ]

    # A refusal shows the workflow's message on the form again (409).
    stale = await api.http.post(path, data={**form, "submission_id": "web-x", "plan_version": "9"})
    assert stale.status_code == 409
    assert "current version is 1" in stale.text
    # Bad links: tampered (401), expired (401), unknown internship (404).
    assert (await api.http.get(path[:-2] + "xx")).status_code == 401
    old = party_link(api.settings, iid, "intern", "approve", valid_for=timedelta(seconds=-5))
    expired = await api.http.get(old.removeprefix(api.settings.public_base_url))
    assert expired.status_code == 401 and "expired" in expired.text
    ghost = party_link(api.settings, "no-such-internship", "tutor", "approve")
    assert (await api.http.get(ghost.removeprefix(api.settings.public_base_url))).status_code == 404


async def test_reports_feedback_assessments_and_validation_through_a_whole_internship(
    api: Api,
) -> None:
    plan = planned()
    iid = plan.internship_id
    started = await api.start(plan)
    assert started.status_code == 201
    handle = api.client.get_workflow_handle(f"internship-{iid}")
    for party in ("intern", "tutor", "mentor"):
        ok = await api.http.post(
            f"/api/internships/{iid}/approvals",
            json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
            headers=api.party(iid, party, "approve"),
        )
        assert ok.status_code == 200, ok.text
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    first = plan.milestones[0]
    await advance_to(api.env, handle, first.due - timedelta(hours=1))
    await wait_for_phase(api.client, iid, Phase.IN_PROGRESS)
    await api.settle(iid)

    # Milestone report (JSON API): the link names the milestone.
    report = {"submission_id": "r-1", "milestone_id": first.id, "summary": "Built the form."}
    other_milestone = await api.http.post(
        f"/api/internships/{iid}/reports",
        json={**report, "milestone_id": plan.milestones[1].id},
        headers=api.party(iid, "intern", "report", first.id),
    )
    assert other_milestone.status_code == 403
    done = await api.http.post(
        f"/api/internships/{iid}/reports",
        json=report,
        headers=api.party(iid, "intern", "report", first.id),
    )
    assert done.status_code == 200 and done.json()["late"] is False

    # Company feedback page: a rating per outcome on the rubric's scale, hours, comments.
    path = party_link(api.settings, iid, "mentor", "feedback", first.id).removeprefix(
        api.settings.public_base_url
    )
    page = await api.http.get(path)
    assert page.status_code == 200
    for outcome in plan.learning_outcomes:
        assert f'name="level.{outcome.id}"' in page.text
    for level in plan.rubric.levels:
        assert f'value="{level.id}"' in page.text
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    bad_hours = await api.http.post(path, data={"attendance_hours": "lots"})
    assert bad_hours.status_code == 422 and "attendance_hours" in bad_hours.text
    unknown_level = await api.http.post(
        path,
        data={
            "submission_id": "web-feedback-x",
            f"level.{plan.learning_outcomes[0].id}": "legendary",
            "attendance_hours": "30",
        },
    )
    assert unknown_level.status_code == 422
    assert "not a level of this plan" in unknown_level.text
    assert await api.recorded(iid) == before
    ratings = {f"level.{o.id}": plan.rubric.levels[-1].id for o in plan.learning_outcomes}
    feedback = await api.http.post(
        path,
        data={
            "submission_id": f"web-feedback-{first.id}",
            **ratings,
            "attendance_hours": "36,5",
            "comments": "Great start.",
        },
    )
    assert feedback.status_code == 200, feedback.text
    await api.settle(iid)  # the receipt comes before the audit row
    row = await api.pool.fetchrow(
        "SELECT actor, milestone_id, payload FROM submissions "
        "WHERE internship_id = $1 AND kind = 'company_feedback'",
        iid,
    )
    assert row["actor"] == "mentor" and row["milestone_id"] == first.id
    status = (await api.http.get(f"/api/internships/{iid}", headers=api.operator)).json()
    state = next(m for m in status["milestones"] if m["milestone_id"] == first.id)
    assert state["outstanding"] == []

    # Evaluation: assessments by page (mentor) and JSON (tutor), then validation.
    await advance_to(api.env, handle, plan.period.end + timedelta(hours=1))
    await wait_for_phase(api.client, iid, Phase.EVALUATION)
    await api.settle(iid)
    assess_path = party_link(api.settings, iid, "mentor", "assess").removeprefix(
        api.settings.public_base_url
    )
    form = await api.http.get(assess_path)
    assert form.status_code == 200 and "required" in form.text
    incomplete = await api.http.post(
        assess_path,
        data={
            "submission_id": "web-assessment-mentor",
            f"level.{plan.learning_outcomes[0].id}": "good",
        },
    )
    if len(plan.learning_outcomes) > 1:
        assert incomplete.status_code == 422 and "every learning outcome" in incomplete.text
    levels = {f"level.{o.id}": "excellent" for o in plan.learning_outcomes}
    assessed = await api.http.post(
        assess_path, data={"submission_id": "web-assessment-mentor", **levels}
    )
    assert assessed.status_code == 200, assessed.text
    tutor_levels = {o.id: "good" for o in plan.learning_outcomes}
    as_mentor = await api.http.post(
        f"/api/internships/{iid}/assessments",
        json={"submission_id": "s-t", "assessor": "tutor", "levels": tutor_levels},
        headers=api.party(iid, "mentor", "assess"),
    )
    assert as_mentor.status_code == 403
    tutor = await api.http.post(
        f"/api/internships/{iid}/assessments",
        json={"submission_id": "s-t", "assessor": "tutor", "levels": tutor_levels},
        headers=api.party(iid, "tutor", "assess"),
    )
    assert tutor.status_code == 200
    again = await api.http.post(
        f"/api/internships/{iid}/assessments",
        json={"submission_id": "s-t2", "assessor": "tutor", "levels": tutor_levels},
        headers=api.party(iid, "tutor", "assess"),
    )
    assert again.status_code == 409 and "already assessed" in detail(again)

    validation = {"submission_id": "v-1", "decision": "pass"}
    url = f"/api/internships/{iid}/validation"
    assert (await api.http.post(url, json=validation)).status_code == 401
    intern = await api.http.post(url, json=validation, headers=api.party(iid, "intern", "approve"))
    assert intern.status_code == 403
    validated = await api.http.post(
        url, json=validation, headers=api.party(iid, "tutor", "validate")
    )
    assert validated.status_code == 200, validated.text
    by_operator = await api.http.post(
        url, json={**validation, "submission_id": "v-2"}, headers=api.operator
    )
    assert by_operator.status_code == 409, by_operator.text
    outcome = await handle.result()
    assert outcome["phase"] == Phase.COMPLETED.value


async def test_party_pages_are_rate_limited(api: Api) -> None:
    limiter = api.http._transport.app.state.limiter  # type: ignore[attr-defined]
    limiter.capacity, limiter.rate = 3.0, 0.001
    limiter._buckets.clear()
    responses = [(await api.http.get("/p/not-a-token")).status_code for _ in range(5)]
    assert responses[:3] == [401, 401, 401]
    assert responses[3:] == [429, 429]
    limited = await api.http.get("/healthz")
    assert limited.status_code == 200, "health is never limited"
