"""The status an operator reads over HTTP comes from the read model the workflow's records keep:
it shows a submission once its record is written, says which record it is as of, answers for an
internship only the records hold (no workflow to ask), and keeps the institutions' access rules."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
import pytest
from temporalio.service import RPCError, RPCStatusCode

from operations.access import create_api_key
from tests.test_api_harness import Api, api, detail, planned

__all__ = ["api"]


async def _key(api: Api, name: str, institutions: list[str] | None) -> dict[str, str]:
    _, key = await create_api_key(api.pool, name, "operator", institutions=institutions)
    return {"Authorization": f"Bearer {key}"}


async def _status_until(
    api: Api, internship_id: str, accepted_at: datetime, within: float = 20
) -> dict[str, Any]:
    """The status over HTTP, read until its record is at or after `accepted_at` (the receipt's)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        answer = await api.http.get(f"/api/internships/{internship_id}", headers=api.operator)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        recorded = body["recorded_at"]
        if recorded is not None and datetime.fromisoformat(recorded) >= accepted_at:
            return body
        assert loop.time() < deadline, f"no record at or after {accepted_at} within {within} s"
        await asyncio.sleep(0.1)


async def test_status_answers_from_the_records_once_the_event_is_recorded(api: Api) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)
    before = (await api.http.get(f"/api/internships/{iid}", headers=api.operator)).json()
    assert before["approvals"] == {"intern": False, "tutor": False, "mentor": False}

    approved = await api.http.post(
        f"/api/internships/{iid}/approvals",
        json={"submission_id": "a-intern", "party": "intern", "plan_version": 1},
        headers=api.party(iid, "intern", "approve"),
    )
    assert approved.status_code == 200, approved.text
    accepted_at = datetime.fromisoformat(approved.json()["accepted_at"])

    status = await _status_until(api, iid, accepted_at)
    assert status["approvals"] == {"intern": True, "tutor": False, "mentor": False}
    assert [s["party"] for s in status["signatures"]] == ["intern"]
    # The status is the read model's row: its record time is the row's (read while no record
    # came in between), the time of one of the internship's audit events.
    await api.settle(iid)
    status, row = await _status_beside_row(api, iid)
    assert datetime.fromisoformat(status["recorded_at"]) == row["updated_at"]
    assert await api.pool.fetchval(
        "SELECT count(*) FROM audit_events WHERE internship_id = $1 AND occurred_at = $2",
        iid,
        row["updated_at"],
    )
    assert status["phase"] == row["phase"] == "planning"
    assert datetime.fromisoformat(status["as_of"]) >= datetime.fromisoformat(status["recorded_at"])


async def _status_beside_row(
    api: Api, internship_id: str, within: float = 20
) -> tuple[dict[str, Any], Any]:
    """The status over HTTP and the read model's row, read with no record in between."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    query = "SELECT updated_at, record_seq, phase FROM internships WHERE internship_id = $1"
    while True:
        before = await api.pool.fetchrow(query, internship_id)
        answer = await api.http.get(f"/api/internships/{internship_id}", headers=api.operator)
        assert answer.status_code == 200, answer.text
        after = await api.pool.fetchrow(query, internship_id)
        if before == after:
            return answer.json(), after
        assert loop.time() < deadline, f"the records kept changing for {within} s"
        await asyncio.sleep(0.1)


async def test_status_of_an_internship_only_the_records_hold_and_who_may_read_it(
    api: Api,
) -> None:
    """An internship whose workflow Temporal no longer keeps (past retention) or never ran here
    (its row copied from a real one) is answered from its row alone, to the keys that see its
    institution; to any other key it is exactly an unknown id."""
    source = planned()
    assert (await api.start(source)).status_code == 201
    await api.settle(source.internship_id)
    copy_id = f"{source.internship_id}-kept"
    await api.pool.execute(
        """
        INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase,
                                 plan_version, start_at, end_at, updated_at, record_seq, status)
        SELECT $2, 'internship-' || $2, 'school-kept', company_id, phase, plan_version,
               start_at, end_at, updated_at, record_seq,
               jsonb_set(status, '{internship_id}', to_jsonb($2::text))
        FROM internships WHERE internship_id = $1
        """,
        source.internship_id,
        copy_id,
    )
    path = f"/api/internships/{copy_id}"
    with pytest.raises(RPCError) as missing:  # nothing in Temporal to ask
        await api.client.get_workflow_handle(f"internship-{copy_id}").describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND

    owner = await _key(api, "kept-school", ["school-kept"])
    every = await _key(api, "kept-head-office", None)
    for headers in (owner, every, api.admin):
        answer = await api.http.get(path, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["internship_id"] == copy_id
        assert answer.json()["phase"] == "planning"
        assert answer.json()["recorded_at"] is not None

    elsewhere = await _key(api, "other-school", ["school-elsewhere"])
    ghost = "it-nobody-ever-here"
    theirs = await api.http.get(path, headers=elsewhere)
    unknown = await api.http.get(f"/api/internships/{ghost}", headers=elsewhere)
    assert (theirs.status_code, detail(theirs).replace(copy_id, "<id>")) == (
        unknown.status_code,
        detail(unknown).replace(ghost, "<id>"),
    )
    assert theirs.status_code == 404

    # A party's link is not an operator's key; no key at all is refused.
    party = api.party(copy_id, "intern", "approve")
    assert (await api.http.get(path, headers=party)).status_code == 401
    assert (await api.http.get(path)).status_code == 401
    refused: httpx.Response = await api.http.get(
        path, headers={"Authorization": "Bearer ifk_000000000000_" + "x" * 43}
    )
    assert refused.status_code == 401
