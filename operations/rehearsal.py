"""Rehearse a plan before anyone receives anything: the real internship workflow runs on a private
Temporal dev server with time skipping, against stand-in activities that write down what would
happen (every e-mail, every phase, every submission, the badge) instead of writing to PostgreSQL
or sending mail.

The workflow code is the one the workers run (`InternshipWorkflow`, unchanged); only the
activities are stand-ins, registered under the real activity names. The rehearsal's clock starts at
the current wall time and then jumps from deadline to deadline, so months pass in seconds.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import textwrap
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from embedded.temporal_server import temporal_binary
from models import kinds
from models.activities import AuditEvent, BadgeRequest, Notification, StoredBadge
from models.ids import credential_id_for, notification_key
from models.plan import SIGNATORIES, InternshipPlan, Milestone
from models.status import InternshipOutcome, Phase
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    MilestoneReport,
    Receipt,
    Validation,
)
from operations import internships as ops
from operations.badge_images import rehearsed_plan_image
from runtime import search_attributes
from runtime.clients import PYDANTIC
from runtime.errors import StackError
from runtime.settings import Settings
from workflows.internship import InternshipWorkflow

StepType = Literal["phase", "e-mail", "act"]

#: Audit records that stand for a party's (or the operator's) submission: shown as "act" steps.
SUBMISSION_KINDS = kinds.SUBMISSION_KINDS

_ROLE_ORDER = {role: i for i, role in enumerate((*SIGNATORIES, "operator", "system"))}
_TYPE_ORDER = {"act": 0, "phase": 1, "e-mail": 2}


@dataclass(frozen=True)
class Step:
    """One thing that would happen: a phase change, an e-mail, or a party's submission."""

    at: datetime
    """The workflow's (plan) time, UTC."""
    type: StepType
    kind: str
    """The phase, the e-mail's kind, or the submission's kind."""
    role: str | None
    """Who receives the e-mail or sent the submission; None for a phase."""
    key: str
    """What it is about: a milestone id, a plan version (`v1`), `final`, a submission id."""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BadgeWouldIssue:
    credential_id: str
    name: str
    achievement_type: str
    issuer: str
    proof_format: str
    achieved_levels: dict[str, str]
    evidence: int
    issued_at: datetime


@dataclass(frozen=True)
class Refusal:
    """A submission the rehearsal made on a party's behalf that the workflow refused."""

    at: datetime
    what: str
    message: str


@dataclass
class Rehearsal:
    plan: InternshipPlan
    everyone_on_time: bool
    started_at: datetime
    steps: list[Step]
    outcome: InternshipOutcome
    badge: BadgeWouldIssue | None
    refusals: list[Refusal]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.plan.period.time_zone)

    def to_json(self) -> dict[str, Any]:
        zone = self.zone

        def local(moment: datetime) -> str:
            return moment.astimezone(zone).isoformat(timespec="seconds")

        return {
            "internship_id": self.plan.internship_id,
            "time_zone": self.plan.period.time_zone,
            "everyone_on_time": self.everyone_on_time,
            "started_at": local(self.started_at),
            "steps": [
                {
                    "at": local(step.at),
                    "type": step.type,
                    "kind": step.kind,
                    "role": step.role,
                    "key": step.key,
                    **({"detail": step.detail} if step.detail else {}),
                }
                for step in self.steps
            ],
            "outcome": {
                "phase": self.outcome.phase.value,
                "reason": self.outcome.reason,
                "credential_id": self.outcome.credential_id,
            },
            "badge": None
            if self.badge is None
            else {
                "credential_id": self.badge.credential_id,
                "name": self.badge.name,
                "achievement_type": self.badge.achievement_type,
                "issuer": self.badge.issuer,
                "recipient_role": "intern",
                "proof_format": self.badge.proof_format,
                "achieved_levels": self.badge.achieved_levels,
                "evidence": self.badge.evidence,
                "issued_at": local(self.badge.issued_at),
            },
            "refused": [
                {"at": local(r.at), "what": r.what, "message": r.message} for r in self.refusals
            ],
        }


class StandIns:
    """The workflow's activities, under their real names, writing down instead of doing."""

    def __init__(self) -> None:
        self.steps: list[Step] = []
        self.badge: BadgeWouldIssue | None = None

    @activity.defn(name="save_plan")
    async def save_plan(self, plan: InternshipPlan) -> None:
        return None

    @activity.defn(name="record_event")
    async def record_event(self, event: AuditEvent) -> bool:
        key = event.event_id.rsplit("/", 1)[-1]
        if event.kind == "phase":
            detail = {"reason": event.detail["reason"]} if event.detail.get("reason") else {}
            self.steps.append(Step(event.occurred_at, "phase", key, None, key, detail))
        elif event.kind in SUBMISSION_KINDS:
            about = event.detail.get("milestone_id") or ""
            detail = {"late": True} if event.detail.get("late") else {}
            self.steps.append(
                Step(event.occurred_at, "act", event.kind, event.actor, about or key, detail)
            )
        return True

    @activity.defn(name="missing_records")
    async def missing_records(self, event_ids: list[str]) -> list[str]:
        return event_ids  # nothing is written here, so every row is missing

    @activity.defn(name="record_events")
    async def record_events(self, events: list[AuditEvent]) -> int:
        for event in events:
            await self.record_event(event)
        return len(events)

    @activity.defn(name="send_notification")
    async def send_notification(self, notification: Notification) -> bool:
        # notification_id is <workflow id>/<kind>/<key>/<role>; the badge's, <workflow id>/badge
        key = notification_key(notification.notification_id) or "final"
        self.steps.append(
            Step(
                notification.planned_at,
                "e-mail",
                notification.kind,
                notification.recipient_role,
                key,
            )
        )
        return True

    @activity.defn(name="store_badge")
    async def store_badge(self, request: BadgeRequest) -> StoredBadge:
        plan = request.plan
        credential_id = credential_id_for(plan.internship_id)
        self.badge = BadgeWouldIssue(
            credential_id=credential_id,
            name=plan.badge.name,
            achievement_type=plan.badge.achievement_type,
            issuer=plan.institution.name,
            proof_format=plan.badge.proof_format,
            achieved_levels=dict(request.achieved_levels),
            evidence=len(request.evidence),
            issued_at=request.issued_at,
        )
        return StoredBadge(credential_id=credential_id)

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.save_plan,
            self.record_event,
            self.missing_records,
            self.record_events,
            self.send_notification,
            self.store_badge,
        ]


async def rehearse(
    plan: InternshipPlan,
    settings: Settings,
    *,
    everyone_on_time: bool = False,
    within: float = 300,
) -> Rehearsal:
    """Run the plan on the real workflow in a private time-skipping Temporal server.

    Refused before anything starts, with the same rules and messages as a start: a plan whose
    agreement_deadline is not in the future, whose time zone is none, or whose badge image is not
    shipped. The names of its institution and company are not checked against the records: a
    rehearsal reads no records (it needs no PostgreSQL), so the start still may refuse them.
    Nobody acts unless `everyone_on_time`: then every party acts on time (see
    `_everyone_on_time`). A school's own badge image is checked as a start checks it, and not
    kept."""
    plan = rehearsed_plan_image(plan)
    ops.refuse_past_deadline(plan, datetime.now(UTC))
    with tempfile.TemporaryFile() as server_log:
        try:
            with _output_to(server_log):
                env = await WorkflowEnvironment.start_time_skipping_v2(
                    dev_server_existing_path=temporal_binary(),
                    dev_server_extra_args=[
                        "--dynamic-config-value",
                        "frontend.WorkflowTimeSkippingEnabled=true",
                    ],
                    namespace="rehearsal",
                    search_attributes=search_attributes.ALL,
                    data_converter=PYDANTIC,
                )
        except RuntimeError as failed:
            server_log.seek(0)
            said = server_log.read().decode(errors="replace").strip()[-2000:]
            raise StackError(
                f"the rehearsal's own Temporal server did not start ({failed})"
                + (f"; it said:\n{said}" if said else "")
            ) from None
        try:
            async with asyncio.timeout(within):
                return await _run(env, plan, settings, everyone_on_time)
        except TimeoutError:
            raise StackError(
                f"the rehearsal did not finish within {within:.0f} s (the workflow is stuck?)"
            ) from None
        finally:
            await env.shutdown()
            # Let go of the server's client (Rust objects under it) while the event loop still
            # runs: left to the interpreter's exit, its threads can abort the process with
            # "PyGILState_Release: thread state ... must be current" (temporalio sdk-python#300;
            # seen about one exit in four here, none since).
            del env
            gc.collect()
            await asyncio.sleep(0.1)


@contextmanager
def _output_to(log: Any) -> Iterator[None]:
    """Point this process's stdout and stderr at `log` while the private Temporal server is
    spawned: it inherits them and prints a banner and warnings, which would spoil `--json`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


async def _run(
    env: WorkflowEnvironment, plan: InternshipPlan, settings: Settings, everyone_on_time: bool
) -> Rehearsal:
    client = env.client
    stand_ins = StandIns()
    # A task queue of its own on a server of its own: no real worker can pick anything up.
    settings = settings.model_copy(update={"task_queue": "rehearsal"})
    refusals: list[Refusal] = []
    async with Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[InternshipWorkflow],
        activities=stand_ins.activities(),
    ):
        started_at = datetime.now(UTC)
        # Started with its clock held: it moves only by `fast_forward`, from deadline to deadline.
        with env.with_time_skipping_disabled():
            handle = (await ops.start_plan(client, settings, plan)).handle
        if everyone_on_time:
            await _everyone_on_time(env, handle, plan, stand_ins, refusals)
        # Then to the end, skipping every wait.
        await _fast_forward(env, handle, None)
        outcome = await handle.result()
    steps = sorted(
        stand_ins.steps,
        key=lambda s: (s.at, _TYPE_ORDER[s.type], _ROLE_ORDER.get(s.role or "", 9), s.kind),
    )
    return Rehearsal(
        plan=plan,
        everyone_on_time=everyone_on_time,
        started_at=started_at,
        steps=steps,
        outcome=outcome,
        badge=stand_ins.badge,
        refusals=refusals,
    )


# ------------------------------------------------------------------------ everyone on time


def milestone_act_time(plan: InternshipPlan, milestone: Milestone) -> datetime:
    """When an on-time party answers a milestone: an hour before it is due, or halfway between
    being asked (never before the start) and the due date when that is sooner; a milestone due
    right at the start is answered a minute after it (and is then late)."""
    asked = max(milestone.due - plan.reminder_policy.request_before, plan.period.start)
    at = milestone.due - min(timedelta(hours=1), (milestone.due - asked) / 2)
    return at if at > plan.period.start else plan.period.start + timedelta(minutes=1)


def assessment_act_time(plan: InternshipPlan) -> datetime:
    """When on-time assessors assess: after the end, before the assessment reminder (an hour
    after the end, or halfway to the reminder when that is sooner; at least a minute after)."""
    window_end = plan.period.end + plan.assessment_window
    to_reminder = window_end - plan.reminder_policy.assessment_reminder - plan.period.end
    return plan.period.end + max(timedelta(minutes=1), min(timedelta(hours=1), to_reminder / 2))


async def _everyone_on_time(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[Any, Any],
    plan: InternshipPlan,
    stand_ins: StandIns,
    refusals: list[Refusal],
) -> None:
    """Every party acts on time: each approves as soon as its approval request is out; each
    milestone's report and feedback come before it is due (`milestone_act_time`); both
    assessments, every outcome at its required level, after the end (`assessment_act_time`);
    then the tutor's pass validation."""
    client, iid = env.client, plan.internship_id

    async def act(what: str, submission: Awaitable[Receipt]) -> None:
        try:
            await submission
        except ops.OperationRejected as refused:
            now = await env.get_current_time(handle)
            refusals.append(Refusal(at=now, what=what, message=str(refused)))

    def asked(party: str) -> bool:
        return any(
            step.kind == "approval_request" and step.role == party for step in stand_ins.steps
        )

    for party in plan.signatories():
        await _until(partial(asked, party))
        approval = Approval(
            submission_id=f"rehearsal-approval-{party}", party=party, plan_version=plan.version
        )
        await act(f"{party} approval", ops.approve(client, iid, approval))

    levels = {o.id: o.required_level for o in plan.learning_outcomes}
    for milestone in sorted(plan.milestones, key=lambda m: m.due):
        if not await _advance_to(env, handle, milestone_act_time(plan, milestone)):
            return
        await _until_phase(client, iid, {Phase.IN_PROGRESS, Phase.EVALUATION})
        if "intern" in milestone.submitted_by:
            report = MilestoneReport(
                submission_id=f"rehearsal-report-{milestone.id}",
                milestone_id=milestone.id,
                summary=f"Rehearsal: the intern's report for {milestone.title}.",
            )
            await act(f"intern report for {milestone.id}", ops.submit_report(client, iid, report))
        if "mentor" in milestone.submitted_by:
            feedback = CompanyFeedback(
                submission_id=f"rehearsal-feedback-{milestone.id}",
                milestone_id=milestone.id,
                ratings=levels,
                attendance_hours=min(plan.weekly_hours, 2000),
            )
            await act(
                f"mentor feedback for {milestone.id}", ops.submit_feedback(client, iid, feedback)
            )

    if not await _advance_to(env, handle, assessment_act_time(plan)):
        return
    await _until_phase(client, iid, {Phase.EVALUATION})
    for assessor in ("mentor", "tutor"):
        assessment = Assessment(
            submission_id=f"rehearsal-assessment-{assessor}",
            assessor=assessor,
            levels=levels,
        )
        await act(f"{assessor} assessment", ops.submit_assessment(client, iid, assessment))
    validation = Validation(submission_id="rehearsal-validation", decision="pass")
    await act("tutor validation", ops.validate(client, iid, validation))


async def _advance_to(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], moment: datetime
) -> bool:
    """Move the workflow's clock forward to `moment` (if it is not there yet); False if the
    workflow ended on the way."""
    now = await env.get_current_time(handle)
    if moment <= now:
        return True
    return await _fast_forward(env, handle, moment - now)


async def _fast_forward(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], by: timedelta | None
) -> bool:
    """`env.fast_forward` (by None: to the end), for a workflow that may have ended already
    (the last submission can end it before this is asked): False if it has."""
    try:
        reached: bool = await env.fast_forward(handle, by)
        return reached
    except RPCError:
        if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            raise
        return False


async def _until_phase(client: Any, internship_id: str, phases: set[Phase]) -> None:
    """Wait until the workflow has taken the steps its clock reached (a timer that fired during a
    fast-forward is handled in a workflow task of its own). The status query is safe here: this
    server and its histories are thrown away. If it never gets there, the submissions that follow
    are refused, and the rehearsal says so."""

    async def reached() -> bool:
        return (await ops.status(client, internship_id)).phase in phases

    await _until(reached)


async def _until(check: Callable[[], bool | Awaitable[bool]], within: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        held = check()
        if held if isinstance(held, bool) else await held:
            return
        if loop.time() > deadline:
            return
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------------ what is printed

WIDTH = 80


def render_text(rehearsal: Rehearsal) -> list[str]:
    """The rehearsal for an 80-column terminal: a header, one line per step, the outcome."""
    plan, zone = rehearsal.plan, rehearsal.zone
    name = plan.period.time_zone
    # A long zone name (America/Argentina/ComodRivadavia) would push lines past 80 columns: the
    # header names it, the lines carry its abbreviation.
    short = len(name) <= 23

    def when(moment: datetime) -> str:
        local = moment.astimezone(zone)
        return f"{local:%Y-%m-%d %H:%M} {name if short else local.strftime('%Z')}"

    milestones = {m.id for m in plan.milestones}
    who = "everyone acting on time" if rehearsal.everyone_on_time else "nobody acting"
    lines = [
        *_wrap(f"Rehearsal of {plan.internship_id}, {who} (times in {name})"),
        *_wrap("Nothing is sent or recorded: each e-mail below is one the plan would send."),
    ]
    for step in rehearsal.steps:
        if step.type == "phase":
            what = step.kind
        else:
            arrow = "→" if step.type == "e-mail" else "←"
            what = f"{step.kind} {arrow} {step.role}"
            if step.key in milestones:
                what += f", {step.key}"
            if step.detail.get("late"):
                what += ", late"
        line = f"{when(step.at)}  {step.type:<6}  {what}"
        lines.append(line if len(line) <= WIDTH else line[: WIDTH - 1] + "…")
    outcome = rehearsal.outcome
    lines += _wrap(
        f"Outcome: {outcome.phase.value}" + (f": {outcome.reason}" if outcome.reason else "")
    )
    badge = rehearsal.badge
    if badge is not None:
        levels = ", ".join(f"{k}={v}" for k, v in badge.achieved_levels.items())
        lines += _wrap(
            f'Badge: "{badge.name}" ({badge.achievement_type}, {badge.proof_format}) from '
            f"{badge.issuer} to the intern, levels {levels}, credential {badge.credential_id}"
        )
    for refusal in rehearsal.refusals:
        lines += _wrap(f"Refused at {when(refusal.at)}: {refusal.what}: {refusal.message}")
    return lines


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False)
