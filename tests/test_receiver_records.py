"""A submission through the API: the API writes its audit row before it answers (so the person
reads what they wrote at once), the workflow spends one workflow task on it and no activity of
its own, and confirms the rows later with one activity that reads their ids. A receiver that
took the answer and never wrote the row (it crashed) loses nothing: the workflow writes the row
within CONFIRM_AFTER."""

from __future__ import annotations

import json
from datetime import datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from models.activities import Accepted
from models.ids import receiver_update_id
from models.submissions import Approval
from operations import internships as ops
from tests.helpers import advance_to, eventually
from tests.test_api_harness import Api, api, planned
from workflows.trail import CONFIRM_AFTER

__all__ = ["api"]


async def _scheduled(api: Api, handle: WorkflowHandle) -> list[tuple[str, str]]:
    """(activity name, its input as text) of every activity the workflow scheduled."""
    found = []
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attributes = event.activity_task_scheduled_event_attributes
            values = await api.client.data_converter.decode(list(attributes.input.payloads))
            found.append((attributes.activity_type.name, json.dumps(values, default=str)))
    return found


async def _submission_rows(api: Api, internship_id: str, submission_id: str) -> int:
    return int(
        await api.pool.fetchval(
            "SELECT count(*) FROM submissions WHERE internship_id = $1 AND submission_id = $2",
            internship_id,
            submission_id,
        )
    )


async def test_an_api_submission_is_recorded_before_the_answer_and_confirmed_in_one_batch(
    api: Api,
) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)
    approval = {"submission_id": "a-intern", "party": "intern", "plan_version": 1}
    headers = api.party(iid, "intern", "approve")

    # A refused submission leaves nothing behind, not even its update id: the same submission
    # id, corrected, is taken.
    wrong = await api.http.post(
        f"/api/internships/{iid}/approvals", json={**approval, "plan_version": 2}, headers=headers
    )
    assert wrong.status_code in (409, 422), wrong.text
    assert await _submission_rows(api, iid, "a-intern") == 0

    answer = await api.http.post(
        f"/api/internships/{iid}/approvals", json=approval, headers=headers
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()
    assert set(receipt) == {"submission_id", "kind", "accepted_at", "late", "received_at"}, (
        "no row leaks"
    )
    # Judged at the moment the API received it, which the workflow saw after (decision 0046).
    assert receipt["received_at"] is not None
    received = datetime.fromisoformat(receipt["received_at"])
    assert received <= datetime.fromisoformat(receipt["accepted_at"])
    # Read at once, without waiting: the API wrote the row, and the read model, before answering.
    assert await _submission_rows(api, iid, "a-intern") == 1
    status = (await api.http.get(f"/api/internships/{iid}", headers=api.operator)).json()
    assert status["approvals"] == {"intern": True, "tutor": False, "mentor": False}
    assert datetime.fromisoformat(status["recorded_at"]) == datetime.fromisoformat(
        answer.json()["accepted_at"]
    )

    again = await api.http.post(f"/api/internships/{iid}/approvals", json=approval, headers=headers)
    assert again.json() == answer.json(), "a retry gets the first receipt"
    assert await _submission_rows(api, iid, "a-intern") == 1

    withdrawn = await api.http.post(
        f"/api/internships/{iid}/withdrawal",
        json={"submission_id": "w-1", "reason": "moved abroad"},
        headers=api.operator,
    )
    assert withdrawn.status_code == 200, withdrawn.text
    handle = ops.handle_for(api.client, iid)
    await handle.result()

    scheduled = await _scheduled(api, handle)
    single = [data for name, data in scheduled if name == "record_event"]
    checks = [data for name, data in scheduled if name == "missing_records"]
    assert single, "the workflow still writes its own steps (phases) itself"
    assert not [
        data for data in single if "/approval/a-intern" in data or "/withdrawal/w-1" in data
    ]
    assert len(checks) == 1, "both submissions confirmed by one activity, as the run ended"
    assert "/approval/a-intern" in checks[0] and "/withdrawal/w-1" in checks[0]
    assert "moved abroad" not in checks[0], "the check carries ids, not what people wrote"
    assert "record_events" not in [name for name, _ in scheduled], "nothing was missing"
    assert await _submission_rows(api, iid, "a-intern") == 1
    assert await _submission_rows(api, iid, "w-1") == 1


async def test_a_row_its_receiver_never_wrote_is_written_by_the_workflow_in_time(api: Api) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)
    handle = ops.handle_for(api.client, iid)
    # A receiver that got the answer and stopped before writing the row (an API that crashed).
    accepted = await handle.execute_update(
        "approve",
        Approval(submission_id="a-intern", party="intern", plan_version=1),
        id=receiver_update_id("a-intern"),
        result_type=Accepted,
    )
    assert accepted.record is not None and accepted.record.event_id.endswith("/approval/a-intern")
    assert accepted.record.status is not None
    assert accepted.record.status.approvals["intern"]
    await api.settle(iid)
    assert await _submission_rows(api, iid, "a-intern") == 0, "nobody wrote it yet"

    await advance_to(api.env, handle, accepted.accepted_at + CONFIRM_AFTER + CONFIRM_AFTER / 5)

    async def written() -> bool:
        return await _submission_rows(api, iid, "a-intern") == 1

    await eventually(written, "the workflow wrote the approval's row")
    scheduled = [name for name, _ in await _scheduled(api, handle)]
    assert scheduled.count("missing_records") == scheduled.count("record_events") == 1
    status = (await api.http.get(f"/api/internships/{iid}", headers=api.operator)).json()
    assert status["approvals"]["intern"] is True
    await handle.terminate("end of test")
