"""The lifecycle's rules in plan time: reminder ladders, agreement reminders, amendments, pause,
extension, timeline and continue-as-new (time-skipping Temporal, real PostgreSQL and SMTP)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from models.state import InternshipState
from models.status import Phase
from models.submissions import (
    Amendment,
    Approval,
    ChangeRequest,
    CompanyFeedback,
    Extension,
    Pause,
    Resume,
    Validation,
)
from operations import internships as ops
from operations.internships import OperationRejected
from runtime import search_attributes as sa
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    audit_rows,
    clock_held,
    eventually,
    load_outbox,
    report_and_feedback,
    running_worker,
    sample_plan,
    sent,
    wait_for_phase,
)

TOLERANCE = timedelta(minutes=5)


async def planned(pool: asyncpg.Pool, internship_id: str) -> list[tuple[str, str, datetime]]:
    """(kind, role, plan time) of every e-mail the internship sent, in plan-time order."""
    rows = await pool.fetch(
        "SELECT kind, recipient_role, planned_at FROM notifications "
        "WHERE internship_id = $1 AND status = 'sent' ORDER BY planned_at, kind, recipient_role",
        internship_id,
    )
    return [(r["kind"], r["recipient_role"], r["planned_at"]) for r in rows]


def at(mails: list[tuple[str, str, datetime]], kind: str, key_role: str) -> list[datetime]:
    return [when for k, role, when in mails if k == kind and role == key_role]


def close_to(moments: list[datetime], expected: datetime) -> bool:
    return len(moments) == 1 and abs(moments[0] - expected) < TOLERANCE


async def test_reminder_ladder_asks_reminds_escalates_and_marks_missed_on_plan_time(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    check_in = plan.milestone("check-in")
    assert check_in is not None
    policy = plan.reminder_policy
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, check_in.due + policy.remind_after + timedelta(hours=1))
        described = await handle.describe()
        assert described.typed_search_attributes.get(sa.OVERDUE) is True
        assert described.typed_search_attributes.get(sa.PHASE) == "in_progress"
        await advance_to(env, handle, check_in.due + policy.missed_after + timedelta(hours=1))
        status = await ops.status(client, plan.internship_id)
        (state,) = [m for m in status.milestones if m.milestone_id == "check-in"]
        assert state.missed and state.overdue and state.outstanding == ("intern", "mentor")
        # A late report is still accepted, and marked late.
        late = await report_and_feedback(client, plan, "check-in")
        assert late == [True, True]

    mails = await planned(pool, plan.internship_id)
    for role in ("intern", "mentor"):
        assert close_to(at(mails, "milestone_request", role), check_in.due - policy.request_before)
        assert close_to(at(mails, "reminder", role), check_in.due + policy.remind_after)
    assert close_to(at(mails, "escalation", "tutor"), check_in.due + policy.escalate_after)
    assert close_to(at(mails, "missed", "operator"), check_in.due + policy.missed_after)
    # Nobody else was nagged about the check-in.
    assert len([m for m in mails if m[0] in ("reminder", "escalation", "missed")]) == 4
    kinds = [r["kind"] for r in await audit_rows(pool, plan.internship_id)]
    assert kinds.count("milestone_missed") == 1


async def test_agreement_reminder_then_cancellation_when_approvals_are_missing(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await ops.approve(
            client,
            plan.internship_id,
            Approval(submission_id="a-intern", party="intern", plan_version=1),
        )
        await advance_to(env, handle, plan.agreement_deadline + timedelta(minutes=1))
        outcome = await handle.result()
    assert outcome.phase == Phase.CANCELLED
    assert outcome.reason is not None and "tutor, mentor" in outcome.reason
    mails = await planned(pool, plan.internship_id)
    assert sorted(role for kind, role, _ in mails if kind == "cancellation") == [
        "intern",
        "mentor",
        "tutor",
    ]
    reminder_at = plan.agreement_deadline - plan.reminder_policy.agreement_reminders[0]
    assert close_to(at(mails, "agreement_reminder", "tutor"), reminder_at)
    assert close_to(at(mails, "agreement_reminder", "mentor"), reminder_at)
    assert at(mails, "agreement_reminder", "intern") == []


async def test_amendment_asks_again_only_whom_it_concerns_and_keeps_every_signature(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    iid = plan.internship_id
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        for party in ("intern", "mentor"):
            await ops.approve(
                client, iid, Approval(submission_id=f"a1-{party}", party=party, plan_version=1)
            )
        await ops.request_changes(
            client,
            iid,
            ChangeRequest(
                submission_id="c-1", party="tutor", plan_version=1, comment="Name the badge."
            ),
        )
        # A badge-only change concerns the tutor who asked for it: the others' approvals stay.
        v2 = plan.model_copy(
            update={
                "version": 2,
                "badge": plan.badge.model_copy(update={"name": "Web development abroad"}),
            }
        )
        await ops.amend(
            client,
            iid,
            Amendment(submission_id="m-2", plan=v2, concerns=("tutor",), reason="badge name"),
        )
        status = await ops.status(client, iid)
        assert status.plan_version == 2
        assert status.approvals == {"intern": True, "tutor": False, "mentor": True}
        with pytest.raises(OperationRejected, match="current version is 2"):
            await ops.approve(
                client, iid, Approval(submission_id="a1-tutor", party="tutor", plan_version=1)
            )
        # A change to a core section (the weekly hours) concerns everybody, whatever it says.
        v3 = v2.model_copy(update={"version": 3, "weekly_hours": 30})
        await ops.amend(
            client,
            iid,
            Amendment(submission_id="m-3", plan=v3, concerns=("tutor",), reason="fewer hours"),
        )
        status = await ops.status(client, iid)
        assert status.approvals == {"intern": False, "tutor": False, "mentor": False}
        with pytest.raises(OperationRejected, match="must have version 4"):
            await ops.amend(
                client,
                iid,
                Amendment(submission_id="m-x", plan=v2, reason="stale copy"),
            )
        for party in ("intern", "tutor", "mentor"):
            await ops.approve(
                client, iid, Approval(submission_id=f"a3-{party}", party=party, plan_version=3)
            )
        await wait_for_phase(client, iid, Phase.AWAITING_START)

        async def requests_sent() -> bool:  # e-mails go out beside the workflow's main line
            counts = dict(
                await pool.fetch(
                    "SELECT kind, count(*) FROM notifications WHERE internship_id = $1 "
                    "AND status = 'sent' GROUP BY kind",
                    iid,
                )
            )
            return counts.get("approval_request") == 7 and counts.get("change_request") == 1

        await eventually(requests_sent, "7 approval requests and the change request sent")
        await handle.terminate("end of test")

    rows = await audit_rows(pool, iid)
    approvals = [(r["actor"], r["detail"]) for r in rows if r["kind"] == "approval"]
    assert len(approvals) == 5  # two for version 1, three for version 3: none overwritten
    versions = await pool.fetch(
        "SELECT version FROM plan_versions WHERE internship_id = $1 ORDER BY version", iid
    )
    assert [r["version"] for r in versions] == [1, 2, 3]
    mails = await planned(pool, iid)
    requests = sorted(role for kind, role, _ in mails if kind == "approval_request")
    # v1 to all three, v2 to the tutor only, v3 to all three again.
    assert requests == sorted(["intern", "tutor", "mentor"] * 2 + ["tutor"])
    assert at(mails, "change_request", "operator")
    trail = [r["kind"] for r in await audit_rows(pool, iid)]
    assert [kind for kind in trail if kind == "amendment"] == ["amendment", "amendment"]


async def test_pause_moves_every_remaining_deadline_and_extension_moves_the_end(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    iid = plan.internship_id
    check_in = plan.milestone("check-in")
    assert check_in is not None
    paused_for = timedelta(days=10)
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, plan.period.start + timedelta(hours=1))
        await ops.pause(client, iid, Pause(submission_id="p-1", reason="illness"))
        assert (await ops.status(client, iid)).phase == Phase.PAUSED
        with pytest.raises(OperationRejected, match="while the internship is paused"):
            await report_and_feedback(client, plan, "check-in")
        await advance_to(env, handle, plan.period.start + timedelta(hours=1) + paused_for)
        await ops.resume(client, iid, Resume(submission_id="r-1"))
        status = await ops.status(client, iid)
        assert status.phase == Phase.IN_PROGRESS
        assert abs(status.end - (plan.period.end + paused_for)) < TOLERANCE
        # Answer every milestone on time (in the moved schedule) so nothing is escalated.
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due + paused_for - timedelta(hours=2))
            assert await report_and_feedback(client, plan, milestone.id) == [False] * len(
                milestone.submitted_by
            )
        with pytest.raises(OperationRejected, match="cannot shorten"):
            await ops.extend(
                client,
                iid,
                Extension(submission_id="x-0", new_end=plan.period.end, reason="typo"),
            )
        new_end = plan.period.end + paused_for + timedelta(days=14)
        await ops.extend(
            client, iid, Extension(submission_id="x-1", new_end=new_end, reason="more time")
        )
        await advance_to(env, handle, plan.period.end + paused_for + timedelta(days=1))
        assert (await ops.status(client, iid)).phase == Phase.IN_PROGRESS
        await advance_to(env, handle, new_end + timedelta(hours=1))
        assert (await ops.status(client, iid)).phase == Phase.EVALUATION
        described = await handle.describe()
        assert described.typed_search_attributes.get(sa.END_DATE) == new_end
        await handle.terminate("end of test")

    mails = await planned(pool, iid)
    assert close_to(
        at(mails, "milestone_request", "intern")[:1],
        check_in.due - plan.reminder_policy.request_before + paused_for,
    )
    assert at(mails, "assessment_request", "tutor")[0] - new_end < TOLERANCE
    assert not [m for m in mails if m[0] in ("reminder", "escalation", "missed")]
    kinds = [r["kind"] for r in await audit_rows(pool, iid)]
    assert {"pause", "resume", "extension"} <= set(kinds)


async def test_long_history_continues_as_new_and_the_internship_still_completes(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(
                client, settings, plan, state=InternshipState(history_limit=40)
            )
        await approve_all(client, plan)
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id)
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await wait_for_phase(client, plan.internship_id, Phase.EVALUATION)
        await assess(client, plan, mentor="good", tutor="good")
        await ops.validate(
            client, plan.internship_id, Validation(submission_id="v-1", decision="pass")
        )
        outcome = await ops.handle_for(client, plan.internship_id).result()
    assert outcome.phase == Phase.COMPLETED
    kinds = [r["kind"] for r in await audit_rows(pool, plan.internship_id)]
    assert kinds.count("continued_as_new") >= 2
    # Nothing was done twice across runs: one request per party and milestone, one badge.
    mails = await planned(pool, plan.internship_id)
    assert len(at(mails, "milestone_request", "intern")) == 3
    badges = [
        kind for kind, _ in sent(load_outbox(settings), plan.internship_id) if kind == "badge"
    ]
    assert badges == ["badge"]
    trail = await audit_rows(pool, plan.internship_id)
    assert (trail[-1]["kind"], trail[-1]["phase"]) == ("phase", "completed")


async def test_an_agreed_internship_waits_for_its_start_in_a_fresh_run(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Agreed, with weeks to its start date, an internship continues as new: a worker caching it
    then holds its state, not the agreement phase's activities. The audit trail does not tell of
    it (nothing changed for the school), the fresh run does not continue again, and the
    internship goes on to its badge."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    iid = plan.internship_id
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        first = handle.result_run_id
        await approve_all(client, plan)
        latest = client.get_workflow_handle(handle.id)

        async def continued() -> bool:
            return (await latest.describe()).run_id != first

        await eventually(continued, "the agreed internship continued as new")
        fresh = (await latest.describe()).run_id
        ended = (await client.get_workflow_handle(handle.id, run_id=first).fetch_history()).events
        assert ended[-1].HasField("workflow_execution_continued_as_new_event_attributes")

        async def kinds() -> list[str | None]:
            waiting = await client.get_workflow_handle(handle.id, run_id=fresh).fetch_history()
            return [event.WhichOneof("attributes") for event in waiting.events]

        async def waiting_for_the_start() -> bool:
            return (await kinds())[-1] == "timer_started_event_attributes"

        await eventually(waiting_for_the_start, "the fresh run waiting for the start date")
        assert "activity_task_scheduled_event_attributes" not in await kinds()
        assert (await ops.status(client, iid)).phase == Phase.AWAITING_START
        await advance_to(env, handle, plan.period.start + timedelta(hours=1))
        await wait_for_phase(client, iid, Phase.IN_PROGRESS)
        assert (await latest.describe()).run_id == fresh  # one fresh run for the wait, no more

        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id)
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await wait_for_phase(client, iid, Phase.EVALUATION)
        await assess(client, plan, mentor="good", tutor="good")
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
        outcome = await ops.handle_for(client, iid).result()
    assert outcome.phase == Phase.COMPLETED
    trail = await audit_rows(pool, iid)
    assert "continued_as_new" not in [r["kind"] for r in trail]
    assert (trail[-1]["kind"], trail[-1]["phase"]) == ("phase", "completed")
    mails = await planned(pool, iid)
    assert len(at(mails, "approval_request", "intern")) == 1  # not asked again by the fresh run
    assert len(at(mails, "milestone_request", "intern")) == 3
    badges = [kind for kind, _ in sent(load_outbox(settings), iid) if kind == "badge"]
    assert badges == ["badge"]


async def runs_of(env: WorkflowEnvironment, workflow_id: str) -> list[str]:
    """The run ids of one workflow, oldest first."""
    runs = [w async for w in env.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    return [w.run_id for w in sorted(runs, key=lambda w: w.start_time)]


async def test_an_internship_in_progress_continues_as_new_between_milestones(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """In progress, once a milestone's request and reminder are out and its next step is days
    away, the run continues as new (a worker caching it then holds its state, not those
    activities); the fresh run picks the ladders up where they were: every e-mail goes out once,
    the audit trail tells everything (and not of the fresh runs), the badge is issued once."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    iid = plan.internship_id
    check_in = plan.milestone("check-in")
    assert check_in is not None
    policy = plan.reminder_policy
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, plan.period.start + timedelta(hours=1))
        await wait_for_phase(client, iid, Phase.IN_PROGRESS)
        latest = client.get_workflow_handle(handle.id)
        started = (await latest.describe()).run_id
        # The check-in's request and reminder go out; its escalation is days away.
        await advance_to(env, handle, check_in.due + policy.remind_after + timedelta(hours=1))

        async def continued() -> bool:
            return (await latest.describe()).run_id != started

        await eventually(continued, "the internship in progress continued as new")
        history = await client.get_workflow_handle(handle.id, run_id=started).fetch_history()
        assert history.events[-1].HasField("workflow_execution_continued_as_new_event_attributes")
        status = await ops.status(client, iid)
        assert status.phase == Phase.IN_PROGRESS and status.overdue
        # The fresh run neither asks nor reminds again; the reports are late, and accepted.
        assert await report_and_feedback(client, plan, "check-in") == [True, True]
        for milestone in plan.milestones[1:]:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id)
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await wait_for_phase(client, iid, Phase.EVALUATION)
        await assess(client, plan, mentor="good", tutor="good")
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
        outcome = await ops.handle_for(client, iid).result()
        runs = await runs_of(env, handle.id)
        scheduled: list[str] = []
        for run in runs:
            events = (
                await client.get_workflow_handle(handle.id, run_id=run).fetch_history()
            ).events
            for event in events:
                if event.HasField("activity_task_scheduled_event_attributes"):
                    attributes = event.activity_task_scheduled_event_attributes
                    if attributes.activity_type.name == "send_notification":
                        payload = attributes.input.payloads[0].data
                        scheduled.append(json.loads(payload)["notification_id"])
    assert outcome.phase == Phase.COMPLETED
    # The start, the fresh run for the start date, at least one more between milestones.
    assert len(runs) >= 3
    # No e-mail twice: each asked for once by the workflow, across every run, and sent once.
    assert len(scheduled) == len(set(scheduled))
    mails = await planned(pool, iid)
    for role in ("intern", "mentor"):
        assert close_to(
            at(mails, "milestone_request", role)[:1], check_in.due - policy.request_before
        )
        assert close_to(at(mails, "reminder", role), check_in.due + policy.remind_after)
    assert len(at(mails, "milestone_request", "intern")) == 3
    assert not at(mails, "escalation", "tutor")
    outbox = sent(load_outbox(settings), iid)
    assert len(outbox) == len(set(scheduled))
    assert [kind for kind, _ in outbox].count("badge") == 1
    # The audit trail tells every phase and submission, written by more than one run, and not
    # of the fresh runs (nothing changed for the school).
    trail = await audit_rows(pool, iid)
    kinds = [r["kind"] for r in trail]
    assert "continued_as_new" not in kinds
    phases = [r["phase"] for r in trail if r["kind"] == "phase"]
    assert phases == [
        "planning",
        "awaiting_start",
        "in_progress",
        "evaluation",
        "certification",
        "completed",
    ]
    reports = [m.id for m in plan.milestones for _ in m.submitted_by]
    assert kinds.count("milestone_report") + kinds.count("company_feedback") == len(reports)
    writers = await pool.fetch(
        "SELECT DISTINCT run_id FROM audit_events WHERE internship_id = $1", iid
    )
    assert len(writers) >= 3


async def test_submissions_alone_never_start_a_fresh_run_in_progress(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Feedback coming in at a company's pace makes the run's history long, but holds no
    milestone's activities: the internship in progress stays in its run until a reminder
    ladder takes a step (each fresh run would send the updates that meet the closing one
    again)."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    iid = plan.internship_id
    first = plan.milestones[0]
    policy = plan.reminder_policy
    later = plan.period.start + timedelta(hours=3)
    assert later < first.due - policy.request_before  # no ladder step in what follows
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, plan.period.start + timedelta(hours=1))
        await wait_for_phase(client, iid, Phase.IN_PROGRESS)
        latest = client.get_workflow_handle(handle.id)
        run = (await latest.describe()).run_id
        ratings = {o.id: "good" for o in plan.learning_outcomes}
        rows_before = len(await audit_rows(pool, iid))
        for n in range(8):
            feedback = CompanyFeedback(
                submission_id=f"f-{n}", milestone_id=first.id, ratings=ratings, attendance_hours=8
            )
            await ops.submit_feedback(client, iid, feedback)

        async def written() -> bool:
            return len(await audit_rows(pool, iid)) >= rows_before + 8

        # Every row written, everything settled, and time passes: the run is worn ...
        await eventually(written, "the eight feedback rows")
        await advance_to(env, handle, later)
        await advance_to(env, handle, later + timedelta(minutes=30))
        described = await latest.describe()
        assert described.history_length >= 20
        # ... and still the same run.
        assert described.run_id == run
