"""The workflow alone, in seconds: the real workflow code on the time-skipping Temporal server
with stand-in activities registered under the real names (operations/rehearsal.py's, which write
down what would happen), no PostgreSQL and no SMTP. An e-mail's stand-in can fail on demand, as
the real activity fails: refused for good, or deferred until the workflow gives up on it. The
real-stack tests keep what needs the real parts."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from mail.sending import TransientDeliveryError
from models.activities import AuditEvent, Notification, StatusNotice
from models.ids import (
    credential_id_for,
    notification_id,
    status_notice_id,
    workflow_id_for,
)
from models.plan import InternshipPlan
from models.state import InternshipState
from models.status import Phase
from models.submissions import Amendment, ChangeRequest, Pause, Resume, Withdrawal
from operations import internships as ops
from operations.notices import start_status_notice
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
from workflows.notice import StatusNoticeWorkflow

pytestmark = pytest.mark.fast


#: Decides whether a send fails, and how: an exception to raise, or None to send.
Failure = Callable[[Notification], Exception | None]


def refused(notification: Notification) -> Exception:
    """What the real activity raises for a permanent SMTP refusal (activities/notify.py)."""
    return ApplicationError(
        "recipient refused with SMTP [550]", type="PermanentDeliveryError", non_retryable=True
    )


def deferred(notification: Notification) -> Exception:
    """What the real activity raises for a transient failure (server unreachable, 4xx): not
    marked non-retryable, so the workflow's retry policy tries it again (workflows/effects.py)."""
    return TransientDeliveryError("recipient deferred with SMTP [451]")


def given_up_at(attempt: int) -> Failure:
    """Deferred until the `attempt`th try, which gives up: the real activity's `DeliveryGaveUp`
    (activities/notify.py, `deliver` on its last attempt). In production a deferred e-mail is
    also given up by Temporal when MAIL_GIVE_UP_AFTER (a day) has passed; that timeout is not
    played here: on the time-skipping server every retry of the day (about 290, at most five
    minutes apart) costs about a second of wall time. Both reach the workflow as the same
    ActivityError that is not a cancellation (workflows/mail.py)."""

    def fail(notification: Notification) -> Exception:
        if activity.info().attempt < attempt:
            return deferred(notification)
        return ApplicationError(
            "gave up: recipient deferred with SMTP [451]", type="DeliveryGaveUp", non_retryable=True
        )

    return fail


class StandInsOnDemand(StandIns):
    """The rehearsal's stand-ins, keeping every audit event and every attempt to send, with an
    e-mail that fails when `fail` says so."""

    def __init__(self, fail: Failure) -> None:
        super().__init__()
        self.fail = fail
        self.saving = asyncio.Event()
        """Set: `save_plan` saves (a test can hold it, as a slow PostgreSQL would)."""
        self.saving.set()
        self.events: list[AuditEvent] = []
        self.attempts: Counter[str] = Counter()
        """Attempts to send, by notification id."""
        self.sent: list[Notification] = []
        """Every notification sent (not failed), as the activity got it."""
        self.done: list[str] = []
        """What the activities did, in order: `save_plan`, and `<kind>` for each e-mail sent."""

    @activity.defn(name="record_event")
    async def record_event(self, event: AuditEvent) -> bool:
        self.events.append(event)
        return await super().record_event(event)

    @activity.defn(name="send_notification")
    async def send_notification(self, notification: Notification) -> bool:
        self.attempts[notification.notification_id] += 1
        failure = self.fail(notification)
        if failure is not None:
            raise failure
        self.sent.append(notification)
        self.done.append(notification.kind)
        return await super().send_notification(notification)

    @activity.defn(name="save_plan")
    async def save_plan(self, plan: InternshipPlan) -> None:
        await self.saving.wait()
        self.done.append("save_plan")

    @activity.defn(name="append_event")
    async def append_event(self, event: AuditEvent) -> bool:
        """A status notice's record (the audit trail only)."""
        self.events.append(event)
        return True

    def activities(self) -> list[Callable[..., Any]]:
        return [*super().activities(), self.append_event]

    def recorded(self, kind: str) -> list[AuditEvent]:
        return [event for event in self.events if event.kind == kind]

    def keys(self, kind: str) -> list[str]:
        """What the audit events of a kind are about (an e-mail's notification id)."""
        return [e.event_id.removeprefix(f"{e.workflow_id}/{kind}/") for e in self.recorded(kind)]


def never(notification: Notification) -> None:
    return None


@asynccontextmanager
async def stand_in_worker(
    env: WorkflowEnvironment, fail: Failure = never
) -> AsyncIterator[tuple[StandInsOnDemand, Settings]]:
    stand_ins = StandInsOnDemand(fail)
    queue = f"fast-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[InternshipWorkflow, StatusNoticeWorkflow],
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


# ----------------------------------------------------------------- e-mails that fail


def to(kind: str, role: str) -> Callable[[Notification], bool]:
    return lambda n: (n.kind, n.recipient_role) == (kind, role)


async def test_a_refused_e_mail_is_recorded_and_the_operator_told(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    to_intern = to("approval_request", "intern")
    async with stand_in_worker(env, lambda n: refused(n) if to_intern(n) else None) as (
        stand_ins,
        settings,
    ):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await eventually(
            lambda: _asked(stand_ins, "delivery_failed", 1), "the operator told of the refusal"
        )
        await approve_all(client, plan)  # the refusal held up nothing
        status = await ops.status(client, plan.internship_id)
        await handle.terminate("end of test")
    mail_id = f"{handle.id}/approval_request/v1/intern"
    assert stand_ins.attempts[mail_id] == 1  # a refusal is not retried
    why = "PermanentDeliveryError: recipient refused with SMTP [550]"
    failed = stand_ins.recorded("notification_failed")
    assert [(e.event_id, e.detail) for e in failed] == [
        (f"{handle.id}/notification_failed/{mail_id}", {"error": why})
    ]
    sent = mails(stand_ins)
    assert sorted(m for m in sent if m[0] == "approval_request") == [
        ("approval_request", "mentor", "v1"),
        ("approval_request", "tutor", "v1"),
    ]
    assert [m for m in sent if m[0] == "delivery_failed"] == [
        ("delivery_failed", "operator", "approval_request-v1-intern")
    ]
    assert status.phase == Phase.AWAITING_START


async def test_an_e_mail_deferred_then_given_up_is_recorded_and_the_operator_told(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    to_mentor, give_up = to("approval_request", "mentor"), given_up_at(3)
    async with stand_in_worker(env, lambda n: give_up(n) if to_mentor(n) else None) as (
        stand_ins,
        settings,
    ):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await eventually(
            lambda: _asked(stand_ins, "delivery_failed", 1), "the operator told of the give-up"
        )
        await handle.terminate("end of test")
    mail_id = f"{handle.id}/approval_request/v1/mentor"
    assert stand_ins.attempts[mail_id] == 3  # deferred twice, retried by the workflow's policy
    failed = stand_ins.recorded("notification_failed")
    assert [(e.event_id, e.detail) for e in failed] == [
        (
            f"{handle.id}/notification_failed/{mail_id}",
            {"error": "DeliveryGaveUp: gave up: recipient deferred with SMTP [451]"},
        )
    ]
    assert [m for m in mails(stand_ins) if m[0] == "delivery_failed"] == [
        ("delivery_failed", "operator", "approval_request-v1-mentor")
    ]


async def test_a_failed_e_mail_to_the_operator_is_recorded_and_not_told_again(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The operator's own e-mails (here the news of the intern's refusal) are recorded when they
    fail, and nobody is told: no e-mail about an e-mail about an e-mail."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    to_intern = to("approval_request", "intern")

    def fail(n: Notification) -> Exception | None:
        return refused(n) if to_intern(n) or n.recipient_role == "operator" else None

    async with stand_in_worker(env, fail) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        notice = f"{handle.id}/delivery_failed/approval_request-v1-intern/operator"

        async def both_failed() -> bool:
            return len(stand_ins.recorded("notification_failed")) == 2

        await eventually(both_failed, "the request and the operator's notice recorded failed")
        # The workflow ends only once every e-mail it started is settled: after its result,
        # nothing more can come.
        await ops.withdraw(
            client, plan.internship_id, Withdrawal(submission_id="w-1", reason="moved abroad")
        )
        outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome.phase == Phase.WITHDRAWN
    assert stand_ins.keys("notification_failed") == [
        f"{handle.id}/approval_request/v1/intern",
        notice,
    ]
    assert stand_ins.attempts[notice] == 1
    assert [n for n in stand_ins.attempts if n.endswith("/operator")] == [notice]
    assert not [m for m in mails(stand_ins) if m[1] == "operator"]


async def test_a_withdrawal_drops_the_e_mails_still_trying_that_no_longer_hold(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Approval requests still being deferred when the internship is withdrawn are dropped
    (recorded, nobody told). The operator's notice of an earlier failure, still being deferred
    then, is kept trying (it still holds) and goes out; so are the withdrawal's own e-mails, and
    one given up is told to the operator like any other."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    give_up = given_up_at(2)
    notice_held = True

    def fail(n: Notification) -> Exception | None:
        if (n.kind, n.recipient_role) == ("approval_request", "intern"):
            return refused(n)
        if n.kind == "approval_request" or (n.kind == "delivery_failed" and notice_held):
            return deferred(n)
        if (n.kind, n.recipient_role) == ("withdrawal", "mentor"):
            return give_up(n)
        return None

    async with stand_in_worker(env, fail) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        requests = [f"{handle.id}/approval_request/v1/{role}" for role in ("tutor", "mentor")]
        notice = f"{handle.id}/delivery_failed/approval_request-v1-intern/operator"

        async def each_retried() -> bool:
            return all(stand_ins.attempts[mail] >= 2 for mail in [*requests, notice])

        await eventually(each_retried, "the requests and the operator's notice tried again")
        await ops.withdraw(
            client, plan.internship_id, Withdrawal(submission_id="w-1", reason="moved abroad")
        )

        async def dropped() -> bool:
            return len(stand_ins.recorded("notification_dropped")) >= 2

        await eventually(dropped, "the two approval requests dropped")
        notice_held = False  # its next retry goes through
        outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome.phase == Phase.WITHDRAWN
    assert sorted(stand_ins.keys("notification_dropped")) == sorted(requests)
    assert {e.actor for e in stand_ins.recorded("notification_dropped")} == {"system"}
    assert stand_ins.keys("notification_failed") == [
        f"{handle.id}/approval_request/v1/intern",
        f"{handle.id}/withdrawal/final/mentor",
    ]
    assert not [m for m in mails(stand_ins) if m[0] == "approval_request"]
    told = [m for m in mails(stand_ins) if m[0] in ("withdrawal", "delivery_failed")]
    assert sorted(told) == [
        ("delivery_failed", "operator", "approval_request-v1-intern"),
        ("delivery_failed", "operator", "withdrawal-final-mentor"),
        ("withdrawal", "intern", "final"),
    ]


# ----------------------------------------------------------------- what an e-mail carries


async def test_a_change_request_e_mail_carries_its_comment_and_follows_the_plan(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """A change request that comes while the workflow is still saving its plan: the receipt comes
    back at once, the e-mail is not scheduled before the plan is saved, and the comment travels
    in the e-mail's values (its activity reads nothing written beside it)."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    comment = "Please plan two lab days on Fridays."
    async with stand_in_worker(env) as (stand_ins, settings):
        stand_ins.saving.clear()  # the plan is being saved, slowly
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        receipt = await ops.request_changes(
            client,
            plan.internship_id,
            ChangeRequest(submission_id="c-1", party="mentor", plan_version=1, comment=comment),
        )
        assert receipt.kind == "change_request"
        # Whatever the update's workflow task scheduled is in the history with its answer.
        scheduled = [
            e.activity_task_scheduled_event_attributes.activity_type.name
            async for e in handle.fetch_history_events()
            if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert scheduled == ["save_plan"]
        stand_ins.saving.set()
        await eventually(lambda: _asked(stand_ins, "change_request", 1), "the change request")
        await handle.terminate("end of test")
    (mail,) = [n for n in stand_ins.sent if n.kind == "change_request"]
    assert mail.recipient_role == "operator"
    assert mail.values == {
        "internship": plan.internship_id,
        "party": "mentor",
        "version": "1",
        "comment": comment,
    }
    assert stand_ins.done.index("save_plan") < stand_ins.done.index("change_request")


async def test_a_ladder_step_that_makes_the_internship_overdue_records_it(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """The time passing a milestone's reminder makes the internship overdue: the workflow records
    that change (an `overdue` event whose status says so, from which the read model takes its
    flag), once; the submissions that settle what was owed carry the flag back in their own
    records. No e-mail activity is involved."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=2))
    check_in = plan.milestone("check-in")
    assert check_in is not None
    policy = plan.reminder_policy
    async with stand_in_worker(env) as (stand_ins, settings):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, check_in.due + policy.remind_after + timedelta(hours=1))

        async def recorded_overdue() -> bool:
            return bool(stand_ins.recorded("overdue"))

        await eventually(recorded_overdue, "the overdue flag recorded")
        await report_and_feedback(client, plan, "check-in")

        async def feedback_recorded() -> bool:
            return bool(stand_ins.recorded("company_feedback"))

        await eventually(feedback_recorded, "the feedback recorded")
        await handle.terminate("end of test")
    (event,) = stand_ins.recorded("overdue")
    assert event.event_id.startswith(f"{handle.id}/overdue/check-in-")
    assert (event.actor, event.detail) == ("system", {"overdue": True, "milestone_id": "check-in"})
    assert event.status is not None
    # What records/write.py writes into the read model's `overdue` column for this record.
    assert event.status.at(event.occurred_at).overdue is True
    assert event.occurred_at > check_in.due + policy.remind_after
    (report,) = stand_ins.recorded("milestone_report")
    (feedback,) = stand_ins.recorded("company_feedback")
    assert report.status is not None and feedback.status is not None
    last = max((report, feedback), key=lambda e: e.seq)
    assert last.status is not None and last.status.at(last.occurred_at).overdue is False


# ----------------------------------------------------------------- a badge's status notices


def status_notice(plan: InternshipPlan, change: int = 1) -> StatusNotice:
    """The notice of a badge's `change`th status change (a revocation), as the records give it."""
    iid, workflow_id = plan.internship_id, workflow_id_for(plan.internship_id)
    return StatusNotice(
        credential_id=credential_id_for(iid),
        change=change,
        notification=Notification(
            notification_id=notification_id(workflow_id, "revocation", str(change), "intern"),
            internship_id=iid,
            kind="revocation",
            recipient_role="intern",
            recipient_email=plan.intern.email,
            recipient_name=plan.intern.name,
            language=plan.intern.language,
            planned_at=datetime.now(UTC),
            values={"internship": iid, "badge": plan.badge.name, "reason": "awarded by mistake"},
        ),
        internship_workflow_id=workflow_id,
        plan_version=plan.version,
        phase="completed",
        operator_name=plan.institution.name,
        operator_email=plan.institution.email,
        operator_language=plan.tutor.language,
    )


async def test_a_status_notice_deferred_then_accepted_is_sent_once(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    notice = status_notice(sample_plan(datetime.now().astimezone() + timedelta(days=1)))
    mail_id = notice.notification.notification_id

    def fail(n: Notification) -> Exception | None:
        return deferred(n) if activity.info().attempt < 3 else None

    async with stand_in_worker(time_skipping_env, fail) as (stand_ins, settings):
        await start_status_notice(client, settings.task_queue, notice)
        handle = client.get_workflow_handle(status_notice_id(notice.credential_id, 1))
        assert await asyncio.wait_for(handle.result(), 30) is True
    assert stand_ins.attempts == Counter({mail_id: 3})  # retried by the e-mails' policy
    assert [n.notification_id for n in stand_ins.sent] == [mail_id]
    assert stand_ins.events == []


@pytest.mark.parametrize(
    ("failure", "attempts", "why"),
    [
        (refused, 1, "PermanentDeliveryError: recipient refused with SMTP [550]"),
        (given_up_at(3), 3, "DeliveryGaveUp: gave up: recipient deferred with SMTP [451]"),
    ],
    ids=["refused", "deferred-then-given-up"],
)
async def test_a_status_notice_given_up_is_recorded_and_the_operator_told(
    time_skipping_env: WorkflowEnvironment, failure: Failure, attempts: int, why: str
) -> None:
    client = time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=1))
    notice = status_notice(plan)
    mail = notice.notification

    def fail(n: Notification) -> Exception | None:
        return failure(n) if n.kind == "revocation" else None

    async with stand_in_worker(time_skipping_env, fail) as (stand_ins, settings):
        await start_status_notice(client, settings.task_queue, notice)
        handle = client.get_workflow_handle(status_notice_id(notice.credential_id, 1))
        assert await asyncio.wait_for(handle.result(), 30) is False
    assert stand_ins.attempts[mail.notification_id] == attempts
    (failed,) = stand_ins.events
    assert failed.event_id == (
        f"internship-{plan.internship_id}/notification_failed/{mail.notification_id}"
    )
    assert (failed.kind, failed.actor, failed.phase, failed.status, failed.detail) == (
        "notification_failed",
        "system",
        "completed",
        None,
        {"error": why},
    )
    (told,) = stand_ins.sent
    assert (told.kind, told.recipient_role, told.recipient_email) == (
        "delivery_failed",
        "operator",
        plan.institution.email,
    )
    assert told.notification_id == (
        f"internship-{plan.internship_id}/delivery_failed/revocation-1-intern/operator"
    )
    assert told.values == {
        "internship": plan.internship_id,
        "failed_kind": "revocation",
        "failed_role": "intern",
        "error": why,
    }


async def test_a_status_notice_whose_operator_notice_fails_too_tells_nobody_more(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    client = time_skipping_env.client
    notice = status_notice(sample_plan(datetime.now().astimezone() + timedelta(days=1)))
    async with stand_in_worker(time_skipping_env, refused) as (stand_ins, settings):
        await start_status_notice(client, settings.task_queue, notice)
        handle = client.get_workflow_handle(status_notice_id(notice.credential_id, 1))
        assert await asyncio.wait_for(handle.result(), 30) is False
    told = f"{notice.internship_workflow_id}/delivery_failed/revocation-1-intern/operator"
    assert stand_ins.attempts == Counter({notice.notification.notification_id: 1, told: 1})
    assert [e.event_id.partition("/notification_failed/")[2] for e in stand_ins.events] == [
        notice.notification.notification_id,
        told,
    ]
    assert stand_ins.sent == []


async def test_starting_the_same_status_notice_again_starts_nothing_new(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    """Started again while it runs (a retried request, the worker's sweep), the running notice is
    kept; started again once it has closed, nothing runs and nothing is sent again."""
    env, client = time_skipping_env, time_skipping_env.client
    notice = status_notice(sample_plan(datetime.now().astimezone() + timedelta(days=1)))
    mail_id = notice.notification.notification_id
    held = True

    def fail(n: Notification) -> Exception | None:
        return deferred(n) if held else None

    async with stand_in_worker(env, fail) as (stand_ins, settings):
        handle = client.get_workflow_handle(status_notice_id(notice.credential_id, 1))
        with clock_held(env):
            await start_status_notice(client, settings.task_queue, notice)
            first = await handle.describe()

            async def tried() -> bool:
                return stand_ins.attempts[mail_id] >= 1

            await eventually(tried, "the notice tried")
            await start_status_notice(client, settings.task_queue, notice)
        again = await handle.describe()
        assert again.status == WorkflowExecutionStatus.RUNNING
        assert again.run_id == first.run_id
        held = False
        assert await asyncio.wait_for(handle.result(), 30) is True
        await start_status_notice(client, settings.task_queue, notice)
        closed = await handle.describe()
    assert closed.run_id == first.run_id
    assert closed.status == WorkflowExecutionStatus.COMPLETED
    assert [n.notification_id for n in stand_ins.sent] == [mail_id]
