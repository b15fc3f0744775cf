"""The workflow's side effects: one activity call per kind, with its retry policy and named
timeouts. The workflow owns what happens when one fails for good (see InternshipWorkflow).

How each kind fails (the README's "When something fails" says the same):
- records (audit trail, submissions, read model, plan versions): retried until PostgreSQL
  answers, for as long as an outage lasts, because the trail must have no gap; a write that
  PostgreSQL refuses for its data is non-retryable (`RecordRejected`).
- e-mail: a transient failure (server unreachable, 4xx) is retried with backoff up to 5 minutes
  apart for at most a day; a permanent refusal (5xx) or a message that cannot be composed is not
  retried.
- the badge: building, signing and storing it retries until PostgreSQL answers, like a record;
  its e-mail is an ordinary notification (it carries the stored credential).
- a badge's status notice (workflows/notice.py) is sent by `send`, like the internship's e-mails,
  and records its failure with `append` (the audit trail only).

A worker that dies loses its work in flight for: a record or the badge's storing, its
start-to-close timeout (10 s); an e-mail, which can take longer, its heartbeat timeout (8 s; it
beats every 2 s, activities/liveness.py).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.badge import BadgeActivities
    from activities.notify import NotifyActivities
    from activities.records import RecordActivities
    from models.activities import (
        AuditEvent,
        BadgeRequest,
        IssuedBadge,
        Notification,
        NotificationKind,
        StoredBadge,
    )
    from models.plan import InternshipPlan

RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))
MAIL_GIVE_UP_AFTER = timedelta(days=1)
BADGE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))

RECORD_TIMEOUT = timedelta(seconds=10)
MAIL_TIMEOUT = timedelta(seconds=30)
BADGE_TIMEOUT = timedelta(minutes=2)
"""The one-step issue_badge of runs recorded before BADGE_IN_TWO_STEPS (it also e-mails)."""
STORE_BADGE_TIMEOUT = timedelta(seconds=10)
HEARTBEAT_TIMEOUT = timedelta(seconds=8)

#: Version marker: e-mails are sent beside the main line instead of in it. Runs recorded before it
#: replay the old way (each e-mail awaited where it was asked for).
MAIL_BESIDE_MAIN_LINE = "mail-beside-main-line"

#: Version marker: the badge is issued in two steps, `store_badge` (build, sign, store) and the
#: badge e-mail as an ordinary notification. Runs recorded before it call `issue_badge`.
BADGE_IN_TWO_STEPS = "badge-in-two-steps"

#: Version marker: when the evaluation begins, the intern is asked for a final self-assessment and
#: an evaluation of the placement (`final_review`). Runs recorded before it send no such e-mail.
INTERN_FINAL_REVIEW = "intern-final-review"

#: Version marker: the learning agreement's e-mails (approval requests, cancellation) go to every
#: signer the plan names, not only to the intern, the tutor and the mentor.
PLAN_SIGNERS = "plan-signers"

#: Version marker: a withdrawal is told to the plan's signers too (the guardian of a minor, the
#: company representative, the coordinators), not only to the intern and the mentor. Runs
#: recorded before it tell the two.
SIGNERS_TOLD_OF_WITHDRAWAL = "signers-told-of-withdrawal"

#: Version marker: an agreed internship continues as new before its wait for the start date, so
#: that a worker caching it keeps only its state, not the agreement phase's activities. Runs
#: recorded before it wait in the run that was agreed.
FRESH_RUN_TO_WAIT_FOR_START = "fresh-run-to-wait-for-start"

#: Version marker: an internship in progress continues as new between milestones, once its run is
#: worn, everything has settled and its next wake-up (a ladder's next step, the end date) is more
#: than an hour away, so that a worker caching it keeps only its state, not the activities of the
#: milestones behind it (decision 0048). Runs recorded before keep every milestone's activities
#: in the run that started the internship.
FRESH_RUN_BETWEEN_MILESTONES = "fresh-run-between-milestones"

#: Version marker: the fresh run between milestones only once the run has taken a step of a
#: milestone's reminder ladder (its e-mails and records are the activities a run keeps);
#: submissions alone (feedback at one a second) no longer start fresh runs, each of which sent the
#: updates that met the closing run again. Runs recorded before may continue as new on their
#: history's length alone.
FRESH_RUN_AFTER_A_STEP = "fresh-run-after-a-step"

#: Version marker: a change request's e-mail carries the comment in its values and goes out once
#: the plan is saved, so its activity reads no record written beside it. Runs recorded before it
#: send it at once, and its activity read the comment (and the plan) from the records.
CHANGE_REQUEST_CARRIES_COMMENT = "change-request-carries-comment"

#: Version marker: a ladder step that changes the internship's overdue flag records the change
#: (an `overdue` audit event with the status), so the read model's flag follows the workflow's
#: record. Runs recorded before it left the flag to the ladder e-mail's activity.
OVERDUE_RECORDED = "overdue-recorded"

#: Version marker: the time of receipt decides (decision 0046). A submission's time rules (late,
#: before the agreement deadline, within a window) judge when the product received it, and a
#: wait that ends at its deadline first lets the submissions of the same workflow task in. Runs
#: recorded before it judge the workflow's time and let the deadline go first.
RECEIPT_TIME_DECIDES = "receipt-time-decides"

#: E-mails that still matter once an internship has been withdrawn or cancelled; any other e-mail
#: still trying then is dropped (an approval request for a withdrawn internship helps nobody).
ENDING_MAIL: frozenset[NotificationKind] = frozenset(
    {"withdrawal", "cancellation", "outcome", "badge", "revocation", "delivery_failed"}
)


async def save_plan(plan: InternshipPlan) -> None:
    await workflow.execute_activity_method(
        RecordActivities.save_plan,
        plan,
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
    )


async def record(event: AuditEvent) -> None:
    # A regular activity, not a local one: a local activity holds the workflow task open until
    # it ends, and under load (10,000 internships, row locks, a PostgreSQL outage) those tasks
    # overran their timeout and were replayed (bench/scale.py).
    await workflow.execute_activity_method(
        RecordActivities.record_event,
        event,
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
    )


async def append(event: AuditEvent) -> None:
    """Append an event to the audit trail without the read model (a status notice's record)."""
    await workflow.execute_activity_method(
        RecordActivities.append_event,
        event,
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
    )


async def missing_records(event_ids: list[str]) -> list[str]:
    """Which rows that the submissions' receiver should have written are missing (the
    workflow's confirmation, workflows/trail.py)."""
    missing: list[str] = await workflow.execute_activity_method(
        RecordActivities.missing_records,
        event_ids,
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
    )
    return missing


async def record_all(events: list[AuditEvent]) -> None:
    """Write the rows their receiver did not: one activity for many."""
    await workflow.execute_activity_method(
        RecordActivities.record_events,
        events,
        start_to_close_timeout=RECORD_TIMEOUT,
        retry_policy=RECORD_RETRY,
    )


async def send(notification: Notification) -> None:
    await workflow.execute_activity_method(
        NotifyActivities.send,
        notification,
        start_to_close_timeout=MAIL_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        schedule_to_close_timeout=MAIL_GIVE_UP_AFTER,
        retry_policy=MAIL_RETRY,
    )


async def store_badge(request: BadgeRequest) -> StoredBadge:
    return await workflow.execute_activity_method(
        BadgeActivities.store_badge,
        request,
        start_to_close_timeout=STORE_BADGE_TIMEOUT,
        retry_policy=RECORD_RETRY,
    )


async def issue_badge(request: BadgeRequest) -> IssuedBadge:
    return await workflow.execute_activity_method(
        BadgeActivities.issue_badge,
        request,
        start_to_close_timeout=BADGE_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        retry_policy=BADGE_RETRY,
    )
