"""The workflow alone, in seconds: the real workflow code on the time-skipping Temporal server
with stand-in activities registered under the real names (operations/rehearsal.py's, which write
down what would happen), no PostgreSQL and no SMTP. The real-stack tests keep what needs the
real parts."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models.state import InternshipState
from models.status import Phase
from models.submissions import Amendment, Pause, Resume
from operations import internships as ops
from operations.rehearsal import StandIns
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    approve_all,
    clock_held,
    eventually,
    report_and_feedback,
    sample_plan,
)
from workflows.internship import InternshipWorkflow

pytestmark = pytest.mark.fast


@asynccontextmanager
async def stand_in_worker(env: WorkflowEnvironment) -> AsyncIterator[tuple[StandIns, Settings]]:
    stand_ins = StandIns()
    queue = f"fast-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[InternshipWorkflow],
        activities=stand_ins.activities(),
    ):
        yield stand_ins, Settings(task_queue=queue)


async def _asked(stand_ins: StandIns, what: str, count: int) -> bool:
    """Whether `count` e-mails of a kind (or about a milestone) went out (they go out beside the
    workflow's main line)."""
    return len([m for m in mails(stand_ins) if what in (m[0], m[2])]) >= count


def mails(stand_ins: StandIns) -> list[tuple[str, str | None, str]]:
    """(kind, role, key) of every e-mail the workflow sent, in order."""
    return [(s.kind, s.role, s.key) for s in stand_ins.steps if s.type == "e-mail"]


async def test_an_unanswered_milestone_climbs_the_whole_ladder(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    check_in = plan.milestone("check-in")
    assert check_in is not None
    policy = plan.reminder_policy
    async with stand_in_worker(env) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, check_in.due + policy.missed_after + timedelta(hours=1))
        status = await ops.status(client, plan.internship_id)
        await handle.terminate("end of test")
    steps = [m for m in mails(stand_ins) if m[2] == "check-in"]
    # (E-mails of one step go out side by side, in either order.)
    assert sorted(steps[:2]) == [
        ("milestone_request", "intern", "check-in"),
        ("milestone_request", "mentor", "check-in"),
    ]
    assert sorted(steps[2:4]) == [
        ("reminder", "intern", "check-in"),
        ("reminder", "mentor", "check-in"),
    ]
    assert steps[4:] == [("escalation", "tutor", "check-in"), ("missed", "operator", "check-in")]
    first = next(m for m in status.milestones if m.milestone_id == "check-in")
    assert first.missed and first.overdue and set(first.outstanding) == {"intern", "mentor"}


async def test_a_pause_holds_the_ladder_and_a_resume_moves_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    check_in = plan.milestone("check-in")
    assert check_in is not None
    paused_for = timedelta(days=20)
    async with stand_in_worker(env) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, plan.period.start + timedelta(hours=1))
        iid = plan.internship_id
        await ops.pause(client, iid, Pause(submission_id="p-1", reason="illness"))
        # Far past the check-in's due date: while paused nothing is asked.
        await advance_to(env, handle, plan.period.start + paused_for)
        assert not [m for m in mails(stand_ins) if m[2] == "check-in"]
        await ops.resume(client, iid, Resume(submission_id="r-1"))
        moved = check_in.due + paused_for - timedelta(hours=1)
        await advance_to(
            env, handle, moved - plan.reminder_policy.request_before + timedelta(hours=1)
        )
        await eventually(lambda: _asked(stand_ins, "check-in", 2), "the check-in requests")
        await report_and_feedback(client, plan, "check-in")
        await advance_to(env, handle, moved + plan.reminder_policy.missed_after)
        status = await ops.status(client, iid)
        await handle.terminate("end of test")
    asked = [m for m in mails(stand_ins) if m[2] == "check-in"]
    assert {m[0] for m in asked} == {"milestone_request"}  # answered: no reminder, no escalation
    assert status.phase == Phase.IN_PROGRESS
    shift = paused_for - timedelta(hours=1)  # paused an hour after the start
    assert abs(status.end - (plan.period.end + shift)) < timedelta(minutes=1)


async def test_an_amendment_asks_again_only_whom_it_concerns(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    iid = plan.internship_id
    async with stand_in_worker(env) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await eventually(lambda: _asked(stand_ins, "approval_request", 3), "the v1 requests")
        v2 = plan.model_copy(
            update={"version": 2, "badge": plan.badge.model_copy(update={"name": "Renamed"})}
        )
        await ops.amend(
            client,
            iid,
            Amendment(submission_id="m-2", plan=v2, concerns=("tutor",), reason="badge name"),
        )
        status = await ops.status(client, iid)
        await eventually(lambda: _asked(stand_ins, "approval_request", 4), "four requests")
        await handle.terminate("end of test")
    requests = sorted((m[1] or "", m[2]) for m in mails(stand_ins) if m[0] == "approval_request")
    assert requests == [("intern", "v1"), ("mentor", "v1"), ("tutor", "v1"), ("tutor", "v2")]
    assert status.plan_version == 2


async def test_a_long_history_continues_as_new_and_carries_its_state(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    iid = plan.internship_id
    async with stand_in_worker(env) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(
                client, settings, plan, state=InternshipState(history_limit=20)
            )
        await approve_all(client, plan)
        await advance_to(env, handle, plan.period.start + timedelta(hours=1))
        status = await ops.status(client, iid)
        phases = [s.key for s in stand_ins.steps if s.type == "phase"]
        await client.get_workflow_handle(handle.id).terminate("end of test")
    assert status.phase == Phase.IN_PROGRESS
    assert status.approvals == {"intern": True, "tutor": True, "mentor": True}
    assert phases[:3] == ["planning", "awaiting_start", "in_progress"]
    described = await client.get_workflow_handle(handle.id).describe()
    assert described.run_id != handle.result_run_id  # it went on in a newer run
