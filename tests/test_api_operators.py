"""Operators' API: start (one, idempotent; a batch), list and search, status, changes; refusals."""

from __future__ import annotations

import json
from datetime import timedelta

from models.status import Phase
from records.read import internship_status
from tests.helpers import clock_held, eventually, wait_for_phase
from tests.test_api_harness import Api, api, detail, planned

__all__ = ["api"]


async def test_start_is_idempotent_and_needs_an_operator_key(api: Api) -> None:
    plan = planned()
    body = plan.model_dump(mode="json")
    assert (await api.http.post("/api/internships", json=body)).status_code == 401
    bad = {"Authorization": "Bearer ifk_000000000000_" + "x" * 43}
    assert (await api.http.post("/api/internships", json=body, headers=bad)).status_code == 401
    assert await api.recorded(plan.internship_id) == (0, 0), "nothing started without a key"

    first = await api.start(plan)
    assert first.status_code == 201, first.text
    assert first.json() == {
        "internship_id": plan.internship_id,
        "workflow_id": f"internship-{plan.internship_id}",
        "created": True,
    }
    again = await api.start(plan)
    assert again.status_code == 200 and again.json()["created"] is False

    await api.settle(plan.internship_id)  # the status is read from the records
    status = await api.http.get(f"/api/internships/{plan.internship_id}", headers=api.operator)
    assert status.status_code == 200
    assert status.json()["phase"] == "planning"
    assert status.json()["approvals"] == {"intern": False, "tutor": False, "mentor": False}
    # An admin key does what an operator key does.
    assert (
        await api.http.get(f"/api/internships/{plan.internship_id}", headers=api.admin)
    ).status_code == 200


async def test_an_invalid_plan_is_refused_with_field_paths_and_nothing_starts(api: Api) -> None:
    plan = planned()
    body = plan.model_dump(mode="json")
    body["intern"]["email"] = "not-an-address"
    body["period"]["end"] = body["period"]["start"]
    del body["weekly_hours"]
    response = await api.http.post("/api/internships", json=body, headers=api.operator)
    assert response.status_code == 422
    fields = {problem["field"] for problem in response.json()["errors"]}
    assert "body.intern.email" in fields
    assert "body.weekly_hours" in fields
    unknown = await api.http.get(f"/api/internships/{plan.internship_id}", headers=api.operator)
    assert unknown.status_code == 404
    assert "no internship" in detail(unknown)


async def test_unknown_internship_is_404_for_every_change(api: Api) -> None:
    for path, body in (
        ("pause", {"submission_id": "p-1", "reason": "illness"}),
        ("resume", {"submission_id": "r-1"}),
        ("withdrawal", {"submission_id": "w-1", "reason": "moved away"}),
        ("extension", {"submission_id": "e-1", "new_end": "2030-01-01T00:00:00Z", "reason": "x"}),
    ):
        response = await api.http.post(
            f"/api/internships/nobody-here/{path}", json=body, headers=api.operator
        )
        assert response.status_code == 404, (path, response.text)


async def test_pause_resume_extend_withdraw_and_their_refusals(api: Api) -> None:
    plan = planned()
    assert (await api.start(plan)).status_code == 201
    iid = plan.internship_id
    base = f"/api/internships/{iid}"
    await wait_for_phase(api.client, iid, Phase.PLANNING)
    await api.settle(iid)

    # Resume before any pause: a state conflict, and nothing is recorded.
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    refused = await api.http.post(
        f"{base}/resume", json={"submission_id": "r-0"}, headers=api.operator
    )
    assert refused.status_code == 409 and "not paused" in detail(refused)
    # Pausing in planning is refused by the workflow (only awaiting_start and in_progress).
    paused_early = await api.http.post(
        f"{base}/pause", json={"submission_id": "p-0", "reason": "x"}, headers=api.operator
    )
    assert paused_early.status_code == 409 and "planning" in detail(paused_early)
    # An extension that would shorten the internship is invalid content.
    shorter = (plan.period.end - timedelta(days=1)).isoformat()
    invalid = await api.http.post(
        f"{base}/extension",
        json={"submission_id": "e-0", "new_end": shorter, "reason": "x"},
        headers=api.operator,
    )
    assert invalid.status_code in (409, 422), invalid.text  # planning: phase is checked first
    # A malformed body never reaches the workflow.
    malformed = await api.http.post(
        f"{base}/pause", json={"submission_id": "p 1", "reason": ""}, headers=api.operator
    )
    assert malformed.status_code == 422
    assert {e["field"] for e in malformed.json()["errors"]} == {
        "body.submission_id",
        "body.reason",
    }
    assert await api.recorded(iid) == before

    # Approvals move the internship to awaiting_start, where pause and extension work.
    for party in ("intern", "tutor", "mentor"):
        approval = {"submission_id": f"a-{party}", "party": party, "plan_version": 1}
        ok = await api.http.post(
            f"{base}/approvals", json=approval, headers=api.party(iid, party, "approve")
        )
        assert ok.status_code == 200, ok.text
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    await api.settle(iid)

    longer = (plan.period.end + timedelta(days=14)).isoformat()
    extended = await api.http.post(
        f"{base}/extension",
        json={"submission_id": "e-1", "new_end": longer, "reason": "project overran"},
        headers=api.operator,
    )
    assert extended.status_code == 200 and extended.json()["kind"] == "extension"
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    shorter_now = await api.http.post(
        f"{base}/extension",
        json={"submission_id": "e-2", "new_end": plan.period.end.isoformat(), "reason": "x"},
        headers=api.operator,
    )
    assert shorter_now.status_code == 422 and "new end must be after" in detail(shorter_now)
    assert await api.recorded(iid) == before

    pause = {"submission_id": "p-1", "reason": "illness"}
    assert (
        await api.http.post(f"{base}/pause", json=pause, headers=api.operator)
    ).status_code == 200
    # The same submission again: the first receipt, nothing new recorded.
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    again = await api.http.post(f"{base}/pause", json=pause, headers=api.operator)
    assert again.status_code == 200 and again.json()["submission_id"] == "p-1"
    assert await api.recorded(iid) == before
    twice = await api.http.post(
        f"{base}/pause", json={"submission_id": "p-2", "reason": "again"}, headers=api.operator
    )
    assert twice.status_code == 409 and "paused" in detail(twice)
    assert (
        await api.http.post(f"{base}/resume", json={"submission_id": "r-1"}, headers=api.operator)
    ).status_code == 200

    # The dashboard says how far the pause moved the dates in a unit that fits it: a pause of
    # seconds says nothing (never "moved by 0 days").
    async def resumed() -> bool:
        status = await internship_status(api.pool, iid)
        return status is not None and status.paused_for > 0

    await eventually(resumed, "the resume in the read model")
    status = await internship_status(api.pool, iid)
    assert status is not None
    key = api.admin["Authorization"].removeprefix("Bearer ")
    assert (await api.http.post("/admin/login", data={"key": key})).status_code == 303
    page = await api.http.get(f"/admin/internships/{iid}", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Dates in force" in page.text, page.text
    assert "moved by 0" not in page.text
    assert ("moved by" in page.text) == (status.paused_for >= 60), status.paused_for
    api.http.cookies.clear()

    withdrawn = await api.http.post(
        f"{base}/withdrawal",
        json={"submission_id": "w-1", "reason": "moved abroad"},
        headers=api.operator,
    )
    assert withdrawn.status_code == 200
    await wait_for_phase(api.client, iid, Phase.WITHDRAWN)
    after_end = await api.http.post(
        f"{base}/withdrawal",
        json={"submission_id": "w-2", "reason": "again"},
        headers=api.operator,
    )
    assert after_end.status_code == 409
    kinds = [
        r["kind"]
        for r in await api.pool.fetch(
            "SELECT kind FROM submissions WHERE internship_id = $1 ORDER BY accepted_at", iid
        )
    ]
    assert kinds.count("pause") == 1 and kinds.count("extension") == 1
    assert kinds[-1] == "withdrawal"


async def test_amendment_success_and_refusals(api: Api) -> None:
    plan = planned()
    assert (await api.start(plan)).status_code == 201
    iid = plan.internship_id
    await wait_for_phase(api.client, iid, Phase.PLANNING)
    amended = plan.model_copy(update={"version": 2, "weekly_hours": plan.weekly_hours - 2})
    body = {
        "submission_id": "am-1",
        "plan": amended.model_dump(mode="json"),
        "concerns": ["intern"],
        "reason": "fewer hours",
    }
    ok = await api.http.post(f"/api/internships/{iid}/amendments", json=body, headers=api.operator)
    assert ok.status_code == 200, ok.text
    await api.settle(iid)  # receipts come before their audit rows
    before = await api.recorded(iid)
    body["submission_id"] = "am-2"  # the same plan again: version 2 is now current
    stale = await api.http.post(
        f"/api/internships/{iid}/amendments", json=body, headers=api.operator
    )
    assert stale.status_code == 422 and "version 3" in detail(stale)
    assert await api.recorded(iid) == before


async def test_list_and_search_from_the_records(api: Api) -> None:
    first, second = planned(), planned(40)
    for plan in (first, second):
        assert (await api.start(plan)).status_code == 201
        await api.settle(plan.internship_id)
    listed = await api.http.get("/api/internships", headers=api.operator)
    assert listed.status_code == 200
    ids = {item["internship_id"] for item in listed.json()["items"]}
    assert {first.internship_id, second.internship_id} <= ids

    found = await api.http.get(
        "/api/internships", params={"q": first.internship_id[-6:]}, headers=api.operator
    )
    assert [i["internship_id"] for i in found.json()["items"]] == [first.internship_id]
    by_company = await api.http.get(
        "/api/internships",
        params={"company": first.company.id, "phase": "planning", "overdue": "false"},
        headers=api.operator,
    )
    assert {first.internship_id, second.internship_id} <= {
        i["internship_id"] for i in by_company.json()["items"]
    }
    none = await api.http.get(
        "/api/internships", params={"phase": "completed"}, headers=api.operator
    )
    assert none.json()["items"] == []
    bad = await api.http.get("/api/internships", params={"phase": "asleep"}, headers=api.operator)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.phase"
    assert (await api.http.get("/api/internships")).status_code == 401


async def test_batch_from_json_and_from_csv_reports_each_row(api: Api) -> None:
    good, running = planned(), planned()
    assert (await api.start(running)).status_code == 201
    broken = good.model_dump(mode="json")
    broken["internship_id"] = "Not An Id"
    # The last row repeats the first one's id (a copied line): a duplicate, named as such.
    plans = [
        good.model_dump(mode="json"),
        running.model_dump(mode="json"),
        broken,
        good.model_dump(mode="json"),
    ]
    with clock_held(api.env):
        response = await api.http.post(
            "/api/internships/batch", content=json.dumps(plans), headers=api.operator
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert [row["status"] for row in result["rows"]] == [
        "started",
        "already_running",
        "invalid",
        "invalid",
    ]
    assert "internship_id" in result["rows"][2]["errors"][0]
    assert result["rows"][3]["errors"] == [
        f"internship_id: duplicate id {good.internship_id!r} (row 1 has it already): give each "
        "row its own id"
    ]
    assert (result["started"], result["already_running"], result["failed"]) == (1, 1, 2)

    template = planned()
    ids = [f"{template.internship_id}-csv{n}" for n in range(2)]
    csv_text = (
        "internship_id,intern.name,intern.email,intern.language\n"
        f"{ids[0]},Anna Rossi,anna@example.org,it\n"
        f"{ids[1]},Ben Okafor,not-an-email,en\n"
    )
    with clock_held(api.env):
        uploaded = await api.http.post(
            "/api/internships/batch",
            files={
                "rows": ("interns.csv", csv_text, "text/csv"),
                "template": ("plan.json", template.model_dump_json(), "application/json"),
            },
            headers=api.operator,
        )
    assert uploaded.status_code == 200, uploaded.text
    rows = uploaded.json()["rows"]
    assert [(r["internship_id"], r["status"]) for r in rows] == [
        (ids[0], "started"),
        (ids[1], "invalid"),
    ]
    assert "intern.email" in rows[1]["errors"][0]
    await api.settle(ids[0])
    assert (await api.recorded(ids[0]))[0] > 0
    assert await api.recorded(ids[1]) == (0, 0)

    unreadable = await api.http.post(
        "/api/internships/batch", content=b"{not json", headers=api.operator
    )
    assert unreadable.status_code == 422 and "not JSON" in detail(unreadable)
