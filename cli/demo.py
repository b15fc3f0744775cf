"""`internflow demo`: one internship from plan to verified badge, months played in a minute."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from functools import partial
from pathlib import Path

import asyncpg
from rich.console import Console
from rich.text import Text
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from badges.bake import unbake_png
from badges.verify import local_issuer_keys, verify_credential
from cli.examples import example_plan
from embedded.stack import running_stack
from models.ids import badge_mail_id, message_id_for
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    MilestoneReport,
    Receipt,
    Validation,
)
from operations import internships as ops
from operations.internships import OperationRejected
from records.read import recorded_phase
from runtime.availability import RECORDS_UNREACHABLE, TemporalUnreachable
from runtime.clients import connect_temporal, create_pool, for_embedded_stack
from runtime.errors import StackError
from runtime.settings import Settings
from workflows.internship import workflow_id_for

#: The sample plan: the checkout's examples/plan.json, or the one installed with internflow.
EXAMPLE_PLAN = example_plan()


def compress_plan(
    plan: InternshipPlan,
    now: datetime,
    seconds: float,
    internship_id: str,
    lead_seconds: float = 5.0,
) -> InternshipPlan:
    """The plan with its agreement deadline `lead_seconds` from now and everything after it
    scaled so that the last deadline (the end of validation) comes `seconds` later."""
    last = plan.period.end + plan.assessment_window + plan.validation_window
    factor = seconds / (last - plan.agreement_deadline).total_seconds()
    return plan.retimed(internship_id, now + timedelta(seconds=lead_seconds), factor)


class PartyPlayer:
    """Plays the intern, mentor and tutor through the same calls the CLI and the API make."""

    def __init__(self, client: Client, plan: InternshipPlan, console: Console) -> None:
        self._client = client
        self._plan = plan
        self._console = console
        self.done: set[str] = set()

    async def _once(self, key: str, call: Callable[[], Awaitable[Receipt]]) -> None:
        if key in self.done:
            return
        try:
            receipt = await call()
        except OperationRejected as rejected:
            self._console.print(Text.assemble("  ", ("not yet", "yellow"), f": {rejected}"))
            return
        except TemporalUnreachable:
            # A part being restarted (`internflow up` brings it back): the same submission id
            # is sent again on the next round.
            self._console.print(Text.assemble("  ", ("waiting", "yellow"), " for Temporal"))
            return
        self.done.add(key)
        late = " (late)" if receipt.late else ""
        self._console.print(f"  [green]✓[/] {key}{late}")

    async def play(self, phase: Phase, now: datetime) -> None:
        plan, iid = self._plan, self._plan.internship_id
        if phase == Phase.PLANNING:
            for party in ("intern", "tutor", "mentor"):
                approval = Approval(
                    submission_id=f"approve-{party}", party=party, plan_version=plan.version
                )
                await self._once(
                    f"{party} approves", partial(ops.approve, self._client, iid, approval)
                )
        if phase == Phase.IN_PROGRESS:
            for milestone in plan.milestones:
                if now < milestone.due - plan.reminder_policy.request_before:
                    continue
                if "intern" in milestone.submitted_by:
                    report = MilestoneReport(
                        submission_id=f"report-{milestone.id}",
                        milestone_id=milestone.id,
                        summary=f"What I did and learned up to the {milestone.title.lower()}.",
                        # The intern agrees to show the final report's summary in the badge.
                        share_in_badge=milestone.kind == "final-report",
                    )
                    await self._once(
                        f"intern reports on {milestone.id}",
                        partial(ops.submit_report, self._client, iid, report),
                    )
                if "mentor" in milestone.submitted_by:
                    feedback = CompanyFeedback(
                        submission_id=f"feedback-{milestone.id}",
                        milestone_id=milestone.id,
                        ratings={o.id: "good" for o in plan.learning_outcomes},
                        attendance_hours=float(plan.weekly_hours),
                        comments="Reliable and curious; keeps the team informed.",
                    )
                    await self._once(
                        f"company feedback on {milestone.id}",
                        partial(ops.submit_feedback, self._client, iid, feedback),
                    )
        if phase == Phase.EVALUATION:
            for assessor, level in (("mentor", "excellent"), ("tutor", "good")):
                assessment = Assessment(
                    submission_id=f"assessment-{assessor}",
                    assessor=assessor,
                    levels={o.id: level for o in plan.learning_outcomes},
                )
                await self._once(
                    f"{assessor} assesses",
                    partial(ops.submit_assessment, self._client, iid, assessment),
                )
            if {"mentor assesses", "tutor assesses"} <= self.done:
                validation = Validation(submission_id="validation", decision="pass")
                await self._once(
                    "institution validates", partial(ops.validate, self._client, iid, validation)
                )


async def run_demo(settings: Settings, console: Console, seconds: float = 45.0) -> bool:
    """Run the sample internship, its months played in `seconds`, on the embedded stack (the
    running one, or one started for the demo); True only if a verified badge arrived."""
    console.print("[bold]Embedded stack[/] (PostgreSQL, Temporal, mail sink, worker)")
    async with running_stack(settings) as stack:
        for line in stack.describe():
            console.print(Text(f"  {line}"))
        # The stack's own Temporal (the dev server, in clear text), whatever TEMPORAL_* says.
        return await _run_internship(for_embedded_stack(settings), console, seconds)


async def worker_polling(client: Client, task_queue: str, within: float = 120.0) -> None:
    """Return once a worker polls `task_queue` for workflow tasks (StackError after `within`
    seconds): a plan's deadlines should count from when someone can act on them, and a worker
    starting on a busy machine can take seconds to poll."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = asyncio.get_running_loop().time() + within
    while not (await client.workflow_service.describe_task_queue(request)).pollers:
        if asyncio.get_running_loop().time() > deadline:
            raise StackError(
                f"no worker polls the task queue {task_queue!r} after {within:.0f} s: see the "
                "worker's log (.internflow/logs/worker.log with the embedded stack)"
            )
        await asyncio.sleep(0.2)


async def _run_internship(settings: Settings, console: Console, seconds: float) -> bool:
    client = await connect_temporal(settings)
    # The plan's first deadline (its agreement) counts from when the worker polls, with room
    # for the three approvals on a busy machine.
    await worker_polling(client, settings.task_queue)
    now = datetime.now().astimezone()
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    internship_id = f"demo-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:4]}"
    plan = compress_plan(
        example, now, seconds=seconds, internship_id=internship_id, lead_seconds=10.0
    )
    console.print(
        f"\n[bold]Internship {internship_id}[/] "
        f"({example.period.start:%d %b %Y} to {example.period.end:%d %b %Y}, in a minute)"
    )
    handle = await ops.start_internship(client, settings, plan)
    player = PartyPlayer(client, plan, console)
    shown = None
    records = await create_pool(settings)
    try:
        while True:
            # Follow the phase in the records, not with a Temporal query: see README, "Queries".
            try:
                phase = await recorded_phase(records, internship_id)
            # PostgreSQL restarting: the pool reconnects. A connection the kill caught in the
            # middle of a statement can also say it is busy (asyncpg's InternalClientError).
            except (*RECORDS_UNREACHABLE, asyncpg.InternalClientError):
                console.print(Text.assemble("  ", ("waiting", "yellow"), " for PostgreSQL"))
                await asyncio.sleep(1.0)
                continue
            if phase is not None and phase != shown:
                shown = phase
                console.print(f"[bold cyan]▶ {phase.value}[/]")
            if phase is not None and phase.is_final:
                break
            if phase is not None:
                await player.play(phase, datetime.now().astimezone())
            await asyncio.sleep(0.25)
    finally:
        await records.close()
    outcome = await handle.result()
    if outcome.phase != Phase.COMPLETED or outcome.credential_id is None:
        console.print(
            Text(f"The internship ended {outcome.phase.value}: {outcome.reason}", style="red")
        )
        return False
    return await _check_badge_mail(settings, console, workflow_id_for(internship_id))


def find_message(outbox: Path, message_id: str) -> tuple[Path, EmailMessage] | None:
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["Message-ID"] == message_id:
            assert isinstance(message, EmailMessage)
            return path, message
    return None


async def _check_badge_mail(settings: Settings, console: Console, workflow_id: str) -> bool:
    found = None
    for _ in range(40):  # the SMTP server may take a moment to write the file
        found = find_message(settings.outbox_path, message_id_for(badge_mail_id(workflow_id)))
        if found:
            break
        await asyncio.sleep(0.25)
    if found is None:
        console.print("[red]No badge e-mail arrived in the outbox.[/]")
        return False
    path, message = found
    png = next(
        part.get_content()
        for part in message.iter_attachments()
        if part.get_content_type() == "image/png"
    )
    report = verify_credential(unbake_png(png), local_issuer_keys(settings.keys_path))
    console.print(Text.assemble("\n", ("Badge e-mail", "bold"), f": {path}"))
    console.print(f"[bold]Credential[/]:  {report.credential_id}")
    if report.verified:
        console.print("[bold green]Signature verified[/] (eddsa-rdfc-2022, issuer key)")
    else:
        console.print(
            Text.assemble(("Verification failed", "bold red"), f": {'; '.join(report.errors)}")
        )
    return report.verified
