"""One definition of the dates in force: after a pause in progress, the workflow's status, the read
model (the API's status), the e-mails and the badge's activity dates agree. Also: names that look
like addresses stay display names in the e-mail headers."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import asyncpg
from temporalio.testing import WorkflowEnvironment

from mail.context import moment_text
from models.status import Phase
from models.submissions import Pause, Resume, Validation
from operations import internships as ops
from records.read import internship_status
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    clock_held,
    eventually,
    load_outbox,
    report_and_feedback,
    running_worker,
    sample_plan,
    wait_for_phase,
)


async def test_a_pause_in_progress_moves_the_end_alike_everywhere_and_not_the_start(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    iid = plan.internship_id
    paused_for = timedelta(days=3)
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        paused_at = plan.period.start + timedelta(hours=1)
        await advance_to(env, handle, paused_at)
        await ops.pause(client, iid, Pause(submission_id="p-1", reason="illness"))
        await advance_to(env, handle, paused_at + paused_for)
        await ops.resume(client, iid, Resume(submission_id="r-1"))
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due + paused_for - timedelta(hours=2))
            await report_and_feedback(client, plan, milestone.id)
        live = await ops.status(client, iid)

        async def resumed_in_read_model() -> bool:
            found = await internship_status(pool, iid)
            return found is not None and found.paused_for > 0 and found.phase == Phase.IN_PROGRESS

        await eventually(resumed_in_read_model, "the resume in the read model")
        read = await internship_status(pool, iid)
        assert read is not None
        # Nobody assesses until the reminder, which names the assessment deadline in force.
        window_end = read.end + plan.assessment_window
        reminder_at = window_end - plan.reminder_policy.assessment_reminder
        await advance_to(env, handle, reminder_at + timedelta(hours=1))
        await eventually(
            lambda: _has_mail(pool, iid, "assessment_reminder"), "the assessment reminder"
        )
        await assess(client, plan, mentor="good", tutor="good")
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED

    # 1. The workflow's own status, 2. the read model: the start stands (the pause came after
    # it), the end moved by the pause.
    shift = timedelta(seconds=live.paused_for)
    assert abs(shift - paused_for) < timedelta(minutes=1)
    for status in (live, read):
        assert status.start == plan.period.start
        assert status.paused_for == live.paused_for
        assert status.end == plan.period.end + shift
        assert [m.due for m in status.milestones] == [m.due + shift for m in plan.milestones]
    # 3. The e-mail names the assessment deadline in force.
    reminders = [
        m for m in load_outbox(settings) if m["X-Internflow-Kind"] == "assessment_reminder"
    ]
    assert len(reminders) == 2  # the mentor's and the tutor's, each in their language
    for reminder in reminders:
        body = reminder.get_body(preferencelist=("plain",))
        assert body is not None
        text = " ".join(body.get_content().split())
        language = str(reminder["Content-Language"])
        deadline = moment_text(window_end, plan.period.time_zone, language)  # type: ignore[arg-type]
        assert " ".join(deadline.split()) in text
    # 4. The badge's activity dates are the ones the status showed.
    stored = await pool.fetchval("SELECT credential FROM credentials WHERE internship_id = $1", iid)
    credential = json.loads(json.loads(stored) if stored.startswith('"') else stored)
    subject = credential["credentialSubject"]
    # (The credential gives whole seconds.)
    assert datetime.fromisoformat(subject["activityStartDate"]) == live.start.replace(microsecond=0)
    assert datetime.fromisoformat(subject["activityEndDate"]) == live.end.replace(microsecond=0)


async def _has_mail(pool: asyncpg.Pool, internship_id: str, kind: str) -> bool:
    count = await pool.fetchval(
        "SELECT count(*) FROM notifications WHERE internship_id = $1 AND kind = $2 "
        "AND status = 'sent'",
        internship_id,
        kind,
    )
    return bool(count)


async def test_names_that_look_like_addresses_stay_display_names(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    names = {
        "intern": 'Chiàra <script>alert(1)</script> "Ch" <chiara@evil.example>',
        "tutor": "Rossi, Mario; Bianchi <b@evil.example>",
        "mentor": "王小明 <x@evil.example>",
    }
    plan = plan.model_validate(
        {
            **plan.model_dump(),
            **{
                role: {**plan.person(role).model_dump(), "name": name}  # type: ignore[arg-type]
                for role, name in names.items()
            },
        }
    )
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await wait_for_phase(client, plan.internship_id, Phase.PLANNING)
        await eventually(lambda: _mails(settings, 3), "three approval requests")
        await handle.terminate("end of test")
    for message in load_outbox(settings):
        (address,) = message["To"].addresses
        role = next(r for r in names if plan.person(r).email == address.addr_spec)  # type: ignore[arg-type]
        # One address per header, the right one; the whole name is its display name (the
        # parser may fold a long encoded name with a space, so spaces are not compared).
        assert address.display_name.replace(" ", "") == names[role].replace(" ", "")


async def _mails(settings: Settings, count: int) -> bool:
    return settings.outbox_path.exists() and len(list(settings.outbox_path.glob("*.eml"))) >= count
