"""The internship workflow: one durable run per internship, from learning agreement to badge.

Deterministic code only: every deadline comes from the plan, every side effect is an activity.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.badge import BadgeActivities
    from activities.notify import NotifyActivities
    from activities.records import RecordActivities
    from models.activities import AuditEvent, BadgeRequest, Notification, NotificationKind
    from models.evaluation import achieved_levels, shortfalls
    from models.plan import PARTIES, InternshipPlan, Milestone, Party, Person
    from models.status import (
        InternshipOutcome,
        InternshipStatus,
        MilestoneState,
        Phase,
    )
    from models.submissions import (
        Approval,
        Assessment,
        CompanyFeedback,
        MilestoneReport,
        Receipt,
        Validation,
        Withdrawal,
    )
    from runtime import search_attributes as sa

# Records must not be lost: retry until the database answers. E-mail gives up after a day so that a
# dead mailbox never blocks an internship; the failure is recorded instead.
RECORD_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
MAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))
MAIL_GIVE_UP_AFTER = timedelta(days=1)
BADGE_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))

# Phases in which each kind of submission is accepted.
FEEDBACK_PHASES = frozenset({Phase.AWAITING_START, Phase.IN_PROGRESS, Phase.EVALUATION})
REPORT_PHASES = frozenset({Phase.IN_PROGRESS, Phase.EVALUATION})


def workflow_id_for(internship_id: str) -> str:
    return f"internship-{internship_id}"


@workflow.defn
class InternshipWorkflow:
    @workflow.init
    def __init__(self, plan: InternshipPlan) -> None:
        self._plan = plan
        self._phase = Phase.PLANNING
        self._approvals: dict[Party, Approval] = {}
        self._receipts: dict[str, Receipt] = {}
        self._submitted: dict[str, set[str]] = {m.id: set() for m in plan.milestones}
        self._missed: set[str] = set()
        self._feedback: list[CompanyFeedback] = []
        self._assessments: dict[str, Assessment] = {}
        self._validation: Validation | None = None
        self._withdrawal: Withdrawal | None = None
        self._achieved: dict[str, str] = {}
        self._credential_id: str | None = None
        self._reason: str | None = None
        self._deadlines: list[datetime] = []
        """The deadlines being waited for right now (the main line and each milestone ladder)."""
        self._overdue = False

    # ----------------------------------------------------------------- the lifecycle

    @workflow.run
    async def run(self, plan: InternshipPlan) -> InternshipOutcome:
        workflow.upsert_search_attributes(
            [
                sa.INSTITUTION_ID.value_set(plan.institution.id),
                sa.COMPANY_ID.value_set(plan.company.id),
                sa.END_DATE.value_set(plan.period.end),
                sa.OVERDUE.value_set(False),
            ]
        )
        await workflow.execute_activity_method(
            RecordActivities.save_plan,
            plan,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )
        await self._enter(Phase.PLANNING)
        for party in PARTIES:
            await self._notify("approval_request", party, key=f"v{plan.version}")

        agreed = await self._wait_until(plan.agreement_deadline, self._agreement_complete)
        if self._withdrawal is not None:
            return await self._withdraw()
        if not agreed:
            return await self._cancel_unapproved()

        await self._enter(Phase.AWAITING_START)
        await self._wait_until(plan.period.start, lambda: False)
        if self._withdrawal is not None:
            return await self._withdraw()

        await self._enter(Phase.IN_PROGRESS)
        ladders = [asyncio.create_task(self._milestone_ladder(m)) for m in plan.milestones]
        try:
            return await self._after_start(plan)
        finally:
            for ladder in ladders:
                ladder.cancel()
            await workflow.wait_condition(workflow.all_handlers_finished)

    async def _after_start(self, plan: InternshipPlan) -> InternshipOutcome:
        await self._wait_until(plan.period.end, lambda: False)
        if self._withdrawal is not None:
            return await self._withdraw()

        await self._enter(Phase.EVALUATION)
        for party in ("mentor", "tutor"):
            await self._notify("assessment_request", party, key="final")
        assessed = await self._wait_until(
            plan.period.end + plan.assessment_window, lambda: len(self._assessments) == 2
        )
        if self._withdrawal is not None:
            return await self._withdraw()
        if not assessed:
            missing = sorted({"mentor", "tutor"} - set(self._assessments))
            return await self._not_certified(f"no assessment from {', '.join(missing)} in time")

        self._achieved = achieved_levels(plan, self._assessments.values())
        await self._notify("validation_request", "tutor", key="final")
        validated = await self._wait_until(
            workflow.now() + plan.validation_window, lambda: self._validation is not None
        )
        if self._withdrawal is not None:
            return await self._withdraw()
        if self._validation is None or not validated:
            return await self._not_certified("the institution did not validate the result in time")
        if self._validation.decision == "fail":
            return await self._not_certified(
                self._validation.reason or "the institution did not validate the result"
            )

        await self._enter(Phase.CERTIFICATION)
        issued = await workflow.execute_activity_method(
            BadgeActivities.issue_badge,
            BadgeRequest(
                plan=plan,
                achieved_levels=self._achieved,
                issued_at=workflow.now(),
                workflow_id=workflow.info().workflow_id,
            ),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=BADGE_RETRY,
        )
        self._credential_id = issued.credential_id
        await self._enter(Phase.COMPLETED, detail={"credential_id": issued.credential_id})
        return self._outcome()

    async def _milestone_ladder(self, milestone: Milestone) -> None:
        """Ask, remind, escalate, then mark missed: each step only while something is owed."""
        policy = self._plan.reminder_policy
        steps: list[
            tuple[Literal["milestone_request", "reminder", "escalation", "missed"], datetime]
        ] = [
            ("milestone_request", milestone.due - policy.request_before),
            ("reminder", milestone.due + policy.remind_after),
            ("escalation", milestone.due + policy.escalate_after),
            ("missed", milestone.due + policy.missed_after),
        ]
        for step, at in steps:
            if await self._wait_until(at, lambda: not self._outstanding(milestone)):
                return
            owing = self._outstanding(milestone)
            if step == "milestone_request" or step == "reminder":
                for party in owing:
                    await self._notify(step, party, key=milestone.id, milestone=milestone.title)
            elif step == "escalation":
                await self._notify(
                    "escalation", "tutor", key=milestone.id, milestone=milestone.title
                )
            else:
                self._missed.add(milestone.id)
                await self._record("milestone_missed", "system", milestone.id, owing=owing)
            if step == "reminder":
                self._set_overdue()

    async def _wait_until(self, deadline: datetime, condition: Callable[[], bool]) -> bool:
        """Wait for `condition` (or a withdrawal) until `deadline`; True if the condition held."""

        def done() -> bool:
            return self._withdrawal is not None or condition()

        remaining = (deadline - workflow.now()).total_seconds()
        if done() or remaining <= 0:
            return condition()
        self._deadlines.append(deadline)
        try:
            await workflow.wait_condition(done, timeout=remaining)
        except TimeoutError:
            return False
        finally:
            self._deadlines.remove(deadline)
        return condition()

    # ----------------------------------------------------------------- endings

    async def _withdraw(self) -> InternshipOutcome:
        assert self._withdrawal is not None
        self._reason = self._withdrawal.reason
        await self._enter(Phase.WITHDRAWN, detail={"reason": self._reason})
        for party in ("intern", "mentor"):
            await self._notify("withdrawal", party, key="final", reason=self._reason)
        return self._outcome()

    async def _cancel_unapproved(self) -> InternshipOutcome:
        missing = [p for p in PARTIES if p not in self._approvals]
        self._reason = (
            f"the learning agreement (version {self._plan.version}) was not approved by "
            f"{', '.join(missing)} before its deadline"
        )
        await self._enter(Phase.CANCELLED, detail={"reason": self._reason})
        for party in PARTIES:
            await self._notify("cancellation", party, key="final", reason=self._reason)
        return self._outcome()

    async def _not_certified(self, reason: str) -> InternshipOutcome:
        self._reason = reason
        await self._enter(Phase.NOT_CERTIFIED, detail={"reason": reason})
        for party in ("intern", "tutor"):
            await self._notify("outcome", party, key="final", reason=reason)
        return self._outcome()

    def _outcome(self) -> InternshipOutcome:
        return InternshipOutcome(
            internship_id=self._plan.internship_id,
            phase=self._phase,
            credential_id=self._credential_id,
            reason=self._reason,
        )

    # ----------------------------------------------------------------- submissions

    @workflow.update
    async def approve(self, approval: Approval) -> Receipt:
        return await self._accept(
            approval.submission_id,
            "approval",
            approval.party,
            lambda: self._approvals.__setitem__(approval.party, approval),
            plan_version=approval.plan_version,
        )

    @approve.validator
    def _check_approval(self, approval: Approval) -> None:
        if approval.submission_id in self._receipts:
            return
        self._require_phase("an approval", {Phase.PLANNING})
        if approval.plan_version != self._plan.version:
            raise ValueError(
                f"this approval is for plan version {approval.plan_version}, but the current "
                f"version is {self._plan.version}: review the current plan and approve that"
            )
        if approval.party in self._approvals:
            raise ValueError(f"the {approval.party} has already approved this plan version")

    @workflow.update
    async def submit_report(self, report: MilestoneReport) -> Receipt:
        return await self._accept(
            report.submission_id,
            "milestone_report",
            "intern",
            lambda: self._submitted[report.milestone_id].add("intern"),
            milestone_id=report.milestone_id,
            late=self._is_late(report.milestone_id),
        )

    @submit_report.validator
    def _check_report(self, report: MilestoneReport) -> None:
        if report.submission_id in self._receipts:
            return
        self._require_phase("a milestone report", REPORT_PHASES)
        self._require_milestone_party(report.milestone_id, "intern")

    @workflow.update
    async def submit_feedback(self, feedback: CompanyFeedback) -> Receipt:
        return await self._accept_feedback(feedback)

    @submit_feedback.validator
    def _check_feedback(self, feedback: CompanyFeedback) -> None:
        if feedback.submission_id in self._receipts:
            return
        self._require_phase("company feedback", FEEDBACK_PHASES)
        if feedback.milestone_id is not None:
            self._require_milestone_party(feedback.milestone_id, "mentor")
        self._require_levels(feedback.ratings, complete=False)

    @workflow.signal(name="company_feedback")
    async def company_feedback(self, feedback: CompanyFeedback) -> None:
        """The same as `submit_feedback`, for senders who do not wait for an answer. Signals come
        at least once: a duplicate is absorbed; an invalid one is dropped and logged."""
        try:
            self._check_feedback(feedback)
        except ValueError as invalid:
            workflow.logger.warning("ignored company feedback signal: %s", invalid)
            return
        await self._accept_feedback(feedback)

    async def _accept_feedback(self, feedback: CompanyFeedback) -> Receipt:
        def apply() -> None:
            self._feedback.append(feedback)
            if feedback.milestone_id is not None:
                self._submitted[feedback.milestone_id].add("mentor")

        return await self._accept(
            feedback.submission_id,
            "company_feedback",
            "mentor",
            apply,
            milestone_id=feedback.milestone_id,
            late=feedback.milestone_id is not None and self._is_late(feedback.milestone_id),
            attendance_hours=feedback.attendance_hours,
            ratings=dict(feedback.ratings),
        )

    @workflow.update
    async def submit_assessment(self, assessment: Assessment) -> Receipt:
        return await self._accept(
            assessment.submission_id,
            "assessment",
            assessment.assessor,
            lambda: self._assessments.__setitem__(assessment.assessor, assessment),
            levels=dict(assessment.levels),
        )

    @submit_assessment.validator
    def _check_assessment(self, assessment: Assessment) -> None:
        if assessment.submission_id in self._receipts:
            return
        self._require_phase("an assessment", {Phase.EVALUATION})
        if assessment.assessor in self._assessments:
            raise ValueError(f"the {assessment.assessor} has already assessed this internship")
        self._require_levels(assessment.levels, complete=True)

    @workflow.update
    async def validate(self, validation: Validation) -> Receipt:
        return await self._accept(
            validation.submission_id,
            "validation",
            "tutor",
            lambda: setattr(self, "_validation", validation),
            decision=validation.decision,
        )

    @validate.validator
    def _check_validation(self, validation: Validation) -> None:
        if validation.submission_id in self._receipts:
            return
        self._require_phase("a validation", {Phase.EVALUATION})
        missing = sorted({"mentor", "tutor"} - set(self._assessments))
        if missing:
            raise ValueError(f"cannot validate yet: waiting for the {' and '.join(missing)}")
        if self._validation is not None:
            raise ValueError("this internship has already been validated")
        reasons = shortfalls(self._plan, achieved_levels(self._plan, self._assessments.values()))
        if validation.decision == "pass" and reasons:
            raise ValueError("cannot validate as pass: " + "; ".join(reasons))

    @workflow.update
    async def withdraw(self, withdrawal: Withdrawal) -> Receipt:
        return await self._accept(
            withdrawal.submission_id,
            "withdrawal",
            "operator",
            lambda: setattr(self, "_withdrawal", withdrawal),
        )

    @withdraw.validator
    def _check_withdrawal(self, withdrawal: Withdrawal) -> None:
        if withdrawal.submission_id in self._receipts:
            return
        if self._phase.is_final or self._phase == Phase.CERTIFICATION:
            raise ValueError(f"cannot withdraw an internship that is {self._phase.value}")
        if self._withdrawal is not None:
            raise ValueError("this internship is already being withdrawn")

    async def _accept(
        self,
        submission_id: str,
        kind: str,
        actor: str,
        apply: Callable[[], None],
        late: bool = False,
        **detail: Any,
    ) -> Receipt:
        """Record a submission once and answer every duplicate with the first receipt."""
        if submission_id in self._receipts:
            return self._receipts[submission_id]
        receipt = Receipt(
            submission_id=submission_id, kind=kind, accepted_at=workflow.now(), late=late
        )
        self._receipts[submission_id] = receipt
        await self._record(kind, actor, submission_id, late=late, **detail)
        apply()
        self._set_overdue()
        return receipt

    # ----------------------------------------------------------------- queries

    @workflow.query
    def status(self) -> InternshipStatus:
        now = workflow.now()
        return InternshipStatus(
            internship_id=self._plan.internship_id,
            phase=self._phase,
            plan_version=self._plan.version,
            approvals={party: party in self._approvals for party in PARTIES},
            milestones=tuple(
                MilestoneState(
                    milestone_id=m.id,
                    due=m.due,
                    outstanding=tuple(self._outstanding(m)),
                    overdue=bool(self._outstanding(m)) and now > m.due,
                    missed=m.id in self._missed,
                )
                for m in self._plan.milestones
            ),
            next_deadline=min(self._deadlines, default=None),
            achieved_levels=self._achieved,
            credential_id=self._credential_id,
            reason=self._reason,
        )

    # ----------------------------------------------------------------- helpers

    def _agreement_complete(self) -> bool:
        return all(party in self._approvals for party in PARTIES)

    def _outstanding(self, milestone: Milestone) -> list[str]:
        done = self._submitted[milestone.id]
        return [party for party in milestone.submitted_by if party not in done]

    def _is_late(self, milestone_id: str) -> bool:
        milestone = self._plan.milestone(milestone_id)
        return milestone is not None and workflow.now() > milestone.due

    def _set_overdue(self) -> None:
        now = workflow.now()
        overdue = any(
            self._outstanding(m) and now > m.due + self._plan.reminder_policy.remind_after
            for m in self._plan.milestones
        )
        if overdue != self._overdue and not self._phase.is_final:
            self._overdue = overdue
            workflow.upsert_search_attributes([sa.OVERDUE.value_set(overdue)])

    def _require_phase(self, what: str, phases: set[Phase] | frozenset[Phase]) -> None:
        if self._phase not in phases:
            allowed = ", ".join(sorted(p.value for p in phases))
            raise ValueError(
                f"{what} is accepted only while the internship is {allowed}; "
                f"it is now {self._phase.value}"
            )

    def _require_milestone_party(self, milestone_id: str, party: str) -> None:
        milestone = self._plan.milestone(milestone_id)
        if milestone is None:
            known = ", ".join(m.id for m in self._plan.milestones)
            raise ValueError(f"unknown milestone {milestone_id!r}; this plan has: {known}")
        if party not in milestone.submitted_by:
            raise ValueError(f"milestone {milestone_id!r} asks nothing of the {party}")

    def _require_levels(self, levels: dict[str, str], complete: bool) -> None:
        outcomes = {o.id for o in self._plan.learning_outcomes}
        rubric = [level.id for level in self._plan.rubric.levels]
        for outcome_id, level in levels.items():
            if outcome_id not in outcomes:
                raise ValueError(
                    f"unknown learning outcome {outcome_id!r}; this plan has: "
                    f"{', '.join(sorted(outcomes))}"
                )
            if level not in rubric:
                raise ValueError(
                    f"{level!r} is not a level of this plan's rubric; use one of: "
                    f"{', '.join(rubric)}"
                )
        missing = sorted(outcomes - set(levels))
        if complete and missing:
            raise ValueError(f"every learning outcome must be assessed; missing: {missing}")

    async def _enter(self, phase: Phase, detail: dict[str, Any] | None = None) -> None:
        self._phase = phase
        workflow.upsert_search_attributes([sa.PHASE.value_set(phase.value)])
        await self._record("phase", "system", phase.value, **(detail or {}))

    async def _record(self, kind: str, actor: str, key: str, **detail: Any) -> None:
        info = workflow.info()
        await workflow.execute_activity_method(
            RecordActivities.record_event,
            AuditEvent(
                event_id=f"{info.workflow_id}/{kind}/{key}",
                internship_id=self._plan.internship_id,
                workflow_id=info.workflow_id,
                run_id=info.run_id,
                plan_version=self._plan.version,
                actor=actor,
                kind=kind,
                phase=self._phase.value,
                occurred_at=workflow.now(),
                detail=detail,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
        )

    async def _notify(self, kind: NotificationKind, role: str, key: str, **values: str) -> None:
        """E-mail one party. A permanent failure is recorded and the internship goes on."""
        person: Person = self._plan.person(role)  # type: ignore[arg-type]
        notification_id = f"{workflow.info().workflow_id}/{kind}/{key}/{role}"
        try:
            await workflow.execute_activity_method(
                NotifyActivities.send,
                Notification(
                    notification_id=notification_id,
                    internship_id=self._plan.internship_id,
                    kind=kind,
                    recipient_role=role,
                    recipient_email=person.email,
                    recipient_name=person.name,
                    language=person.language,
                    values={"internship": self._plan.internship_id, **values},
                ),
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=MAIL_GIVE_UP_AFTER,
                retry_policy=MAIL_RETRY,
            )
        except ActivityError as failure:
            await self._record(
                "notification_failed", "system", notification_id, error=str(failure.cause)
            )
