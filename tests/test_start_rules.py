"""Plans that cannot run are refused at start, through the API, a batch and the CLI: a plan whose
agreement_deadline has passed (nothing is started, recorded or sent), and a different plan under
the id of a running internship (the running plan is left as it is). The same plan again is still
harmless."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from models.plan import InternshipPlan
from models.state import InternshipState
from operations import internships as ops
from runtime.clients import data_converter
from runtime.settings import Settings
from tests.helpers import approve_all, clock_held, load_outbox, running_worker, sent
from tests.test_api_harness import Api, api, detail, planned
from tests.test_cli import cli_for
from tests.test_codec import K1, keys_json

__all__ = ["api"]


def changed(plan: InternshipPlan) -> InternshipPlan:
    """The plan under the same id and version, ending a week later with fewer weekly hours."""
    data = plan.model_dump()
    data["period"]["end"] = plan.period.end + timedelta(days=7)
    data["weekly_hours"] = plan.weekly_hours - 2
    return InternshipPlan.model_validate(data)


async def workflow_exists(client: Client, internship_id: str) -> bool:
    try:
        await client.get_workflow_handle(f"internship-{internship_id}").describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def wait_for_mails(settings: Settings, internship_id: str, count: int) -> None:
    """Until `count` e-mails about the internship are in the outbox (20 s at most)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(sent(load_outbox(settings), internship_id)) < count:
        if loop.time() > deadline:
            raise AssertionError(f"fewer than {count} e-mails about {internship_id} arrived")
        await asyncio.sleep(0.1)


async def recorded_plans(pool: asyncpg.Pool, internship_id: str) -> list[InternshipPlan]:
    rows = await pool.fetch(
        "SELECT plan FROM plan_versions WHERE internship_id = $1 ORDER BY version", internship_id
    )
    return [InternshipPlan.model_validate_json(row["plan"]) for row in rows]


async def wait_for_recorded_versions(pool: asyncpg.Pool, internship_id: str, count: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while len(await recorded_plans(pool, internship_id)) < count:
        if loop.time() > deadline:
            raise AssertionError(f"fewer than {count} plan versions of {internship_id} recorded")
        await asyncio.sleep(0.1)


def flat(text: str) -> str:
    """The CLI's output with its line wrapping (and a table's cell borders) undone."""
    return " ".join(text.replace("│", " ").split())


async def test_a_plan_past_its_agreement_deadline_is_refused_and_nothing_starts(api: Api) -> None:
    late = planned(days=-1)
    iid = late.internship_id
    refused = await api.start(late)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["errors"] == [{"field": "body.agreement_deadline", "message": body["detail"]}], (
        "the validation error shape, naming the field"
    )
    assert f"agreement_deadline {late.agreement_deadline.isoformat()} has already passed" in (
        detail(refused)
    )
    assert "choose a later agreement_deadline" in detail(refused)

    # Nothing exists under the id: Temporal has no workflow, so it can still be used.
    assert not await workflow_exists(api.client, iid)
    described = await api.http.get(f"/api/admin/internships/{iid}/describe", headers=api.admin)
    assert described.status_code == 404, described.text
    # Had it started, its approval requests would be out before those of a plan started after it.
    control = planned()
    assert (await api.start(control)).status_code == 201
    await wait_for_mails(api.settings, control.internship_id, 3)
    outbox = load_outbox(api.settings)
    assert {str(m["X-Internflow-Internship"]) for m in outbox} == {control.internship_id}
    assert await api.recorded(iid) == (0, 0)
    assert (
        await api.pool.fetchval("SELECT count(*) FROM internships WHERE internship_id = $1", iid)
        == 0
    )

    # The same id with a deadline in the future starts: the refusal did not use it up.
    retimed = late.retimed(iid, late.agreement_deadline + timedelta(days=30))
    assert (await api.start(retimed)).status_code == 201


async def test_a_plan_naming_a_badge_image_not_shipped_is_refused_at_the_start(api: Api) -> None:
    """Its badge e-mail could never carry the image: refused before anything starts."""
    plan = planned()
    plan = plan.model_copy(
        update={"badge": plan.badge.model_copy(update={"image": "our-logo.png"}), "version": 1}
    )
    refused = await api.start(plan)
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["errors"] == [{"field": "body.badge.image", "message": body["detail"]}]
    assert "badge.image 'our-logo.png' is not an image internflow ships (badge.png)" in (
        detail(refused)
    )
    assert not await workflow_exists(api.client, plan.internship_id)
    assert await api.recorded(plan.internship_id) == (0, 0)


async def test_the_same_plan_is_idempotent_and_a_different_one_is_refused(api: Api) -> None:
    plan = planned()
    iid = plan.internship_id
    first = await api.start(plan)
    assert first.status_code == 201 and first.json()["created"] is True
    again = await api.start(plan)
    assert again.status_code == 200, again.text
    assert again.json() == {
        "internship_id": iid,
        "workflow_id": f"internship-{iid}",
        "created": False,
    }

    other = changed(plan)
    refused = await api.start(other)
    assert refused.status_code == 409, refused.text
    message = detail(refused)
    assert f"a different plan (version 1) is running under internship_id {iid!r}" in message
    assert "it differs in period, weekly_hours" in message
    assert f"POST /api/internships/{iid}/amendments" in message
    assert "start this plan under a new internship_id" in message

    # The running plan is the first one: its status and its records.
    await wait_for_recorded_versions(api.pool, iid, 1)
    status = await api.http.get(f"/api/internships/{iid}", headers=api.operator)
    assert status.status_code == 200, status.text
    assert status.json()["plan_version"] == 1
    assert datetime.fromisoformat(status.json()["end"]) == plan.period.end
    assert await recorded_plans(api.pool, iid) == [plan]

    # After an amendment the current version is only in the records: sending it again is the
    # same plan, and so is the first version (the workflow's start input).
    amended = other.model_copy(update={"version": 2})
    amendment = {
        "submission_id": "am-1",
        "plan": amended.model_dump(mode="json"),
        "concerns": ["intern", "mentor"],
        "reason": "a week longer",
    }
    ok = await api.http.post(
        f"/api/internships/{iid}/amendments", json=amendment, headers=api.operator
    )
    assert ok.status_code == 200, ok.text
    await wait_for_recorded_versions(api.pool, iid, 2)
    for same in (amended, plan):
        resent = await api.start(same)
        assert resent.status_code == 200 and resent.json()["created"] is False, resent.text
    stale = await api.start(other)  # version 1 with the amended content: neither version
    assert stale.status_code == 409 and "(version 2)" in detail(stale), stale.text
    assert "with version 3" in detail(stale)
    assert await recorded_plans(api.pool, iid) == [plan, amended]


async def test_a_batch_refuses_rows_that_cannot_run_and_starts_the_others(api: Api) -> None:
    late, good, running = planned(days=-2), planned(), planned()
    assert (await api.start(running)).status_code == 201
    rows = [
        late.model_dump(mode="json"),
        good.model_dump(mode="json"),
        changed(running).model_dump(mode="json"),
        running.model_dump(mode="json"),
    ]
    with clock_held(api.env):
        response = await api.http.post(
            "/api/internships/batch", content=json.dumps(rows), headers=api.operator
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert [(r["internship_id"], r["status"]) for r in result["rows"]] == [
        (late.internship_id, "refused"),
        (good.internship_id, "started"),
        (running.internship_id, "refused"),
        (running.internship_id, "invalid"),
    ]
    assert (result["started"], result["already_running"], result["failed"]) == (1, 0, 3)
    assert result["rows"][0]["errors"][0].startswith(
        f"agreement_deadline {late.agreement_deadline.isoformat()} has already passed"
    )
    assert "a different plan (version 1) is running" in result["rows"][2]["errors"][0]
    # The same id twice in one batch is a mistake in the file, whatever the first row met.
    assert result["rows"][3]["errors"] == [
        f"internship_id: duplicate id {running.internship_id!r} (row 3 has it already): "
        "give each row its own id"
    ]
    # The running plan alone, sent again: already running, nothing changed.
    with clock_held(api.env):
        again = await api.http.post(
            "/api/internships/batch", content=json.dumps(rows[3:]), headers=api.operator
        )
    assert again.status_code == 200, again.text
    assert [r["status"] for r in again.json()["rows"]] == ["already_running"]
    assert not await workflow_exists(api.client, late.internship_id)
    assert await workflow_exists(api.client, good.internship_id)
    await wait_for_recorded_versions(api.pool, running.internship_id, 1)
    assert await recorded_plans(api.pool, running.internship_id) == [running]


@pytest.mark.parametrize("source", ["plan file", "batch"])
async def test_the_cli_refuses_plans_that_cannot_run(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    source: str,
) -> None:
    cli = cli_for(time_skipping_env, settings)
    client = time_skipping_env.client
    late, plan = planned(days=-1), planned()
    files = {}
    for name, content in (("late", late), ("plan", plan), ("other", changed(plan))):
        if source == "plan file":
            files[name] = tmp_path / f"{name}.json"
            files[name].write_text(content.model_dump_json())
        else:
            files[name] = tmp_path / f"{name}-batch.json"
            files[name].write_text(f"[{content.model_dump_json()}]")
    late_file, plan_file, other_file = files["late"], files["plan"], files["other"]

    async def start(file: Path) -> tuple[int, str]:
        if source == "plan file":
            return await cli("start", str(file))
        return await cli("start", "--batch", str(file))

    async with running_worker(client, settings, pool):
        code, out = await start(late_file)
        assert code == 2, out
        assert (
            f"agreement_deadline {late.agreement_deadline.isoformat()} has already passed: nobody "
            "could approve the plan in time" in flat(out)
        )
        assert not await workflow_exists(client, late.internship_id)

        # (The CLI's own client starts workflows without time skipping.)
        code, out = await start(plan_file)
        assert code == 0, out
        code, out = await start(plan_file)
        assert code == 0, out
        if source == "plan file":
            assert f"{plan.internship_id} is already running with this plan" in flat(out)
        else:
            assert "0 started, 1 already running, 0 failed" in flat(out)
        code, out = await start(other_file)
        assert code == 2, out
        assert (
            f"a different plan (version 1) is running under internship_id {plan.internship_id!r}"
            in flat(out)
        )
        assert f"/api/internships/{plan.internship_id}/amendments" in flat(out)
        await wait_for_recorded_versions(pool, plan.internship_id, 1)
        assert await recorded_plans(pool, plan.internship_id) == [plan]
        # The started plan's approval requests arrive; none about the refused one.
        await wait_for_mails(settings, plan.internship_id, 3)
        assert {str(m["X-Internflow-Internship"]) for m in load_outbox(settings)} == {
            plan.internship_id
        }


async def test_the_running_plan_is_read_through_the_payload_codec(
    time_skipping_env: WorkflowEnvironment, settings: Settings
) -> None:
    """With encryption keys set, the start input in the history is encrypted: it is decoded with
    the client's data converter (codec included) to compare the plans."""
    encrypted = Settings.model_validate(
        {**settings.model_dump(), "codec_keys": keys_json(k1=K1), "codec_key_id": "k1"}
    )
    env = time_skipping_env
    client = Client(
        env.client.service_client,
        namespace=env.client.namespace,
        data_converter=data_converter(encrypted),
    )
    plan = planned()
    with clock_held(env):
        first = await ops.start_plan(client, encrypted, plan)
        again = await ops.start_plan(client, encrypted, plan)
        with pytest.raises(ops.DifferentPlanRunning, match="it differs in period, weekly_hours"):
            await ops.start_plan(client, encrypted, changed(plan))
    assert (first.created, again.created) == (True, False)
    started = await anext(aiter(first.handle.fetch_history_events(page_size=1)))
    stored = started.workflow_execution_started_event_attributes.input.payloads[0]
    assert stored.metadata["encoding"] != b"json/plain"
    assert plan.intern.email.encode() not in stored.data, "the start input is encrypted"
    await first.handle.terminate("test over")


async def test_after_continue_as_new_the_plan_is_still_recognised(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A run continued as new starts from its own input: the same plan is still the same, and a
    different one is still refused."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = planned()
    async with running_worker(client, settings, pool):
        with clock_held(env):
            started = await ops.start_plan(
                client, settings, plan, state=InternshipState(history_limit=20)
            )
        await approve_all(client, plan)
        handle = client.get_workflow_handle(started.handle.id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            described = await handle.describe()
            if described.raw_description.workflow_execution_info.first_run_id != (described.run_id):
                break
            assert loop.time() < deadline, "the workflow did not continue as new"
            await asyncio.sleep(0.1)
        again = await ops.start_plan(client, settings, plan)
        assert again.created is False
        with pytest.raises(ops.DifferentPlanRunning, match="version 1"):
            await ops.start_plan(client, settings, changed(plan))
