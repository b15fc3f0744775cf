"""Shared test steps: a sample plan moved to the present, a running worker, phases, the outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.badge import BadgeActivities, badge_notification
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from badges.keyring import KeyRing
from mail.sending import Mailer
from models.activities import BadgeRequest
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import Approval, Assessment, CompanyFeedback, MilestoneReport
from operations import internships as ops
from runtime.settings import Settings
from worker import build_worker

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.json"


def sample_plan(agreement_deadline: datetime, factor: float = 1.0) -> InternshipPlan:
    """The example plan under a fresh id, with its agreement deadline moved to the given time."""
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    return example.retimed(f"t-{uuid.uuid4().hex[:12]}", agreement_deadline, factor)


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[None]:
    async with build_worker(client, settings, pool):
        yield


async def wait_for_phase(
    client: Client, internship_id: str, phase: Phase, within: float = 20
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        current = (await ops.status(client, internship_id)).phase
        if current == phase:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"internship stayed {current.value}, expected {phase.value}")
        await asyncio.sleep(0.1)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 20) -> None:
    """Poll `check` until it holds; fail with `what` when it still does not after `within` s."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still not so after {within} s: {what}")
        await asyncio.sleep(0.1)


def load_outbox(settings: Settings) -> list[EmailMessage]:
    """Every message the SMTP sink stored, in arrival order."""
    messages = []
    for path in sorted(settings.outbox_path.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


@contextmanager
def clock_held(env: WorkflowEnvironment) -> Iterator[None]:
    """Start workflows in this block with their clock held: it moves only when the test moves it
    (`advance_to`, `env.fast_forward`).

    Why: the time-skipping environment (`WorkflowEnvironment.start_time_skipping_v2`) stamps
    every workflow its client starts with unbounded time skipping, so a workflow would jump from
    timer to timer to its end whenever it waits for nothing but time, and a test could not act
    between two deadlines. The SDK's way out, `with_time_skipping_disabled`, is experimental (it
    may change with any release, and it is a no-op outside that environment): this is the one
    place that calls it. Typing: temporalio declares it on `WorkflowEnvironment` itself (1.35),
    so no `type: ignore` is needed here; an SDK that moves it fails here alone."""
    with env.with_time_skipping_disabled():
        yield


async def advance_to(env: WorkflowEnvironment, handle: WorkflowHandle, moment: datetime) -> None:
    """Move one workflow's virtual clock forward to `moment` (a workflow started under
    `clock_held`)."""
    latest = env.client.get_workflow_handle(handle.id)  # follows continue-as-new
    now = await env.get_current_time(latest)
    assert moment > now, f"cannot go back in time from {now} to {moment}"
    await env.fast_forward(latest, moment - now)


async def approve_all(client: Client, plan: InternshipPlan) -> None:
    for party in ("intern", "tutor", "mentor"):
        await ops.approve(
            client,
            plan.internship_id,
            Approval(submission_id=f"a-{party}", party=party, plan_version=plan.version),
        )


async def report_and_feedback(
    client: Client,
    plan: InternshipPlan,
    milestone_id: str,
    level: str = "good",
    share: bool = False,
) -> list[bool]:
    """Submit what a milestone asks for; returns the receipts' late flags."""
    milestone = plan.milestone(milestone_id)
    assert milestone is not None
    late = []
    if "intern" in milestone.submitted_by:
        report = MilestoneReport(
            submission_id=f"r-{milestone_id}",
            milestone_id=milestone_id,
            summary=f"Progress at {milestone_id}.",
            share_in_badge=share,
        )
        late.append((await ops.submit_report(client, plan.internship_id, report)).late)
    if "mentor" in milestone.submitted_by:
        feedback = CompanyFeedback(
            submission_id=f"f-{milestone_id}",
            milestone_id=milestone_id,
            ratings={o.id: level for o in plan.learning_outcomes},
            attendance_hours=36,
        )
        late.append((await ops.submit_feedback(client, plan.internship_id, feedback)).late)
    return late


async def assess(client: Client, plan: InternshipPlan, mentor: str, tutor: str) -> None:
    for assessor, level in (("mentor", mentor), ("tutor", tutor)):
        await ops.submit_assessment(
            client,
            plan.internship_id,
            Assessment(
                submission_id=f"s-{assessor}",
                assessor=assessor,
                levels={o.id: level for o in plan.learning_outcomes},
            ),
        )


def sent(outbox: list[EmailMessage], internship_id: str) -> list[tuple[str, str]]:
    """(kind, recipient address) of every e-mail about one internship, in arrival order."""
    return [
        (str(m["X-Internflow-Kind"]), str(m["To"].addresses[0].addr_spec))
        for m in outbox
        if m["X-Internflow-Internship"] == internship_id
    ]


async def audit_rows(pool: asyncpg.Pool, internship_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT kind, actor, phase, detail FROM audit_events WHERE internship_id = $1 "
        "ORDER BY occurred_at, seq",
        internship_id,
    )


async def issue_badge_through_activities(
    pool: asyncpg.Pool, settings: Settings, request: BadgeRequest
) -> str:
    """The workflow's certification through the real activities, in its order: the plan saved,
    the badge built, signed and stored, then its e-mail sent. Returns the credential id."""
    env = ActivityEnvironment()
    await env.run(RecordActivities(pool).save_plan, request.plan)
    ring = KeyRing.load_or_create(settings.keys_path)
    badge = BadgeActivities(pool, Mailer(settings), ring, settings)
    stored = await env.run(badge.store_badge, request)
    await env.run(NotifyActivities(pool, Mailer(settings)).send, badge_notification(request))
    return stored.credential_id
