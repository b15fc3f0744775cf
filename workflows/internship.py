"""The internship workflow: one durable run per internship, from learning agreement to badge.

The class holds the phase sequence (`_lifecycle` reads as the internship goes) and thin handlers;
beside it: the rules as pure functions (rules.py), the dates in force (dates.py), the pausable
clock (clock.py), the reminder ladder as a table (ladder.py) and the side effects with their
retry policies and timeouts (effects.py). Deterministic code only: every deadline comes from the
plan, every side effect is an activity.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.activities import Accepted
    from models.ids import badge_mail_id, is_receiver_update_id, workflow_id_for
    from models.plan import PARTIES, Signatory
    from models.state import InternshipInput
    from models.status import InternshipOutcome, InternshipStatus, Phase
    from models.submissions import (
        Amendment,
        Approval,
        Assessment,
        ChangeRequest,
        CompanyFeedback,
        Extension,
        MilestoneReport,
        PaperSignature,
        Pause,
        PlacementEvaluation,
        Receipt,
        Resume,
        SelfAssessment,
        Validation,
        Withdrawal,
    )
    from runtime import search_attributes as sa
    from workflows import effects, intake, rules
    from workflows.clock import PausableClock
    from workflows.ladder import LADDER_STEPS, climb, next_step_at
    from workflows.mail import Mailroom
    from workflows.rules import FEEDBACK_PHASES, PAUSABLE_PHASES, REPORT_PHASES
    from workflows.trail import Trail

__all__ = [
    "FEEDBACK_PHASES",
    "PAUSABLE_PHASES",
    "REPORT_PHASES",
    "InternshipWorkflow",
    "workflow_id_for",
]


V = TypeVar("V", bound=Callable[..., None])

FRESH_RUN_WAIT = timedelta(hours=1)
"""A wait for the start date at least this long is taken in a fresh run (continued as new):
shorter ones end before what a cached run holds matters, and a fresh run costs a workflow task
and a run's start."""
FRESH_RUN_EVENTS = 20
"""A run with fewer history events is fresh enough already (a run that has just continued as new
has a handful)."""


def _once(validator: V) -> V:
    """The duplicate-submission guard, written once: a submission whose id was accepted before
    passes its validator whatever the state now, and its handler answers with the first receipt
    (a retry, or a duplicate signal)."""

    @functools.wraps(validator)
    def check(self: Any, submission: Any) -> None:
        if submission.submission_id not in self.s.receipts:
            validator(self, submission)

    return cast(V, check)


# Not sandboxed: the sandbox re-imports this module for every run and wraps every payload, which
# cost a quarter of the worker's CPU under load (py-spy during bench/feedback.py). The module
# imports only deterministic code (time, randomness and I/O come through `workflow` and
# activities), and the replay tests replay recorded histories against every change.
@workflow.defn(sandboxed=False)
class InternshipWorkflow:
    """All state that outlives a run is one InternshipState, `self.s`: a run continues as new
    with it and can pick up in any phase."""

    @workflow.init
    def __init__(self, start: InternshipInput) -> None:
        self._plan = start.plan
        self.s = start.state
        """Everything that survives continue-as-new, in one object (see models/state.py). The
        decoded input's own state, not a copy: the SDK keeps the input for the whole run, and a
        copy would hold the state twice."""
        if not self.s.required_since:
            self.s.required_since = dict.fromkeys(start.plan.signatories(), start.plan.version)
        if self.s.timeline:  # carried by a run recorded before the audit trail was the timeline
            self.s.records = max(self.s.records, len(self.s.timeline))
            self.s.timeline = []
        # Live handles, never carried over:
        self._clock = PausableClock(
            self.s,
            stop=lambda: self.s.withdrawal is not None,
            settle=self._receipt_time_decides,
        )
        self._ladders: list[asyncio.Task[None]] = []
        self._fresh_between_milestones = False
        """Whether this run may continue as new between milestones: the patch's answer, asked once
        when the run begins its wait for the end date (`_fresh_run_between_milestones`)."""
        self._fresh_after_a_step = False
        """Since the `fresh-run-after-a-step` patch: only once this run has taken a ladder step."""
        self._steps_before_run = sum(self.s.ladder_done.values())
        """Reminder-ladder steps taken before this run: a run that has taken none since holds no
        milestone's activities, whatever else (feedback, reports) has come in."""
        self._background: set[asyncio.Task[None]] = set()
        self._trail = Trail(
            lambda: self._plan, self.s, lambda: self._mail.drop_pending(), self._background
        )
        self._mail = Mailroom(lambda: self._plan, self.s, self._trail.record, self._background)

    # ----------------------------------------------------------------- the lifecycle

    @workflow.run
    async def run(self, start: InternshipInput) -> InternshipOutcome:
        outcome = await self._lifecycle()
        # Every submission gets its answer and its audit row before the workflow closes.
        self._trail.close()
        await workflow.wait_condition(self._settled)
        return outcome

    async def _lifecycle(self) -> InternshipOutcome:
        if not self.s.started:
            await self._begin()
        if self.s.phase == Phase.PLANNING:
            ended = await self._planning()
            if ended is not None:
                return ended
            await self._trail.enter(Phase.AWAITING_START)
        if self.s.phase == Phase.AWAITING_START:
            await self._main_wait(lambda: self._plan.period.start, lambda: False)
            if self.s.withdrawal is not None:
                return await self._withdraw()
            self.s.start_shift = self.s.shift
            await self._trail.enter(Phase.IN_PROGRESS)
        if self.s.phase in (Phase.IN_PROGRESS, Phase.EVALUATION):
            self._ladders = [
                asyncio.create_task(
                    climb(m, lambda: self._plan, self.s, self._clock, self._mail, self._trail)
                )
                for m in self._plan.milestones
                if self.s.ladder_done.get(m.id, 0) < LADDER_STEPS
            ]
            try:
                ended = await self._monitoring_and_evaluation()
            finally:
                for ladder in self._ladders:
                    ladder.cancel()
            if ended is not None:
                return ended
        return await self._certify()

    async def _begin(self) -> None:
        plan = self._plan
        # The version this run started with: an amendment can arrive while the plan is saved,
        # and asks for its own approvals.
        version = plan.version
        workflow.upsert_search_attributes(
            [
                sa.INSTITUTION_ID.value_set(plan.institution.id),
                sa.COMPANY_ID.value_set(plan.company.id),
                sa.END_DATE.value_set(plan.period.end),
                sa.OVERDUE.value_set(False),
            ]
        )
        await effects.save_plan(self._plan)
        self.s.started = True
        await self._trail.enter(Phase.PLANNING)
        for party in self._signatories():
            await self._ask_approval(party, version)

    async def _planning(self) -> InternshipOutcome | None:
        """Until every signer has approved the current plan version: remind before the deadline,
        start over when the plan is amended, cancel when the deadline passes."""
        while not self._agreed():
            plan = self._plan
            stop_key, stop_at = rules.next_agreement_stop(plan, self.s, workflow.now())
            version = plan.version
            # The lambdas below are awaited within this iteration, so late binding is safe.
            await self._main_wait(
                lambda: stop_at,  # noqa: B023
                lambda: self._agreed() or self._plan.version != version,  # noqa: B023
            )
            if self.s.withdrawal is not None:
                return await self._withdraw()
            if self._agreed() or self._plan.version != version:
                continue
            if stop_key == "deadline":
                return await self._cancel_unapproved()
            if stop_key not in self.s.agreement_reminders_sent:
                self.s.agreement_reminders_sent.append(stop_key)
            for party in rules.unapproved(self._plan, self.s):
                await self._mail.notify(
                    "agreement_reminder",
                    party,
                    key=stop_key,
                    version=str(version),
                    deadline=f"{plan.agreement_deadline:%Y-%m-%d %H:%M %Z}",
                )
        return None

    async def _monitoring_and_evaluation(self) -> InternshipOutcome | None:
        if self.s.phase == Phase.IN_PROGRESS:
            # Asked here, at one point of the run, never in a wait's condition.
            self._fresh_between_milestones = workflow.patched(effects.FRESH_RUN_BETWEEN_MILESTONES)
            self._fresh_after_a_step = workflow.patched(effects.FRESH_RUN_AFTER_A_STEP)
            await self._main_wait(lambda: self._plan.period.end, lambda: False)
            if self.s.withdrawal is not None:
                return await self._withdraw()
            await self._trail.enter(Phase.EVALUATION)
            for party in ("mentor", "tutor"):
                await self._mail.notify("assessment_request", party, key="final")
            if workflow.patched(effects.INTERN_FINAL_REVIEW):
                await self._mail.notify("final_review", "intern", key="final")

        plan = self._plan
        window_end = plan.period.end + plan.assessment_window
        both = lambda: len(self.s.assessments) == 2  # noqa: E731
        if not await self._main_wait(
            lambda: window_end - plan.reminder_policy.assessment_reminder, both
        ):
            if self.s.withdrawal is not None:
                return await self._withdraw()
            due = rules.dates_in_force(self._plan, self.s).assessment_due
            for party in rules.missing_assessors(self.s):
                await self._mail.notify(
                    "assessment_reminder", party, key="final", deadline=f"{due:%Y-%m-%d %H:%M %Z}"
                )
        assessed = await self._main_wait(lambda: window_end, both)
        if self.s.withdrawal is not None:
            return await self._withdraw()
        if not assessed:
            missing = rules.missing_assessors(self.s)
            return await self._not_certified(f"no assessment from {', '.join(missing)} in time")

        if self.s.assessed_at is None:
            self.s.assessed_at = workflow.now() - self.s.shift
            await self._mail.notify("validation_request", "tutor", key="final")
        assessed_at = self.s.assessed_at
        validated = await self._main_wait(
            lambda: assessed_at + self._plan.validation_window,
            lambda: self.s.validation is not None,
        )
        if self.s.withdrawal is not None:
            return await self._withdraw()
        if self.s.validation is None or not validated:
            return await self._not_certified("the institution did not validate the result in time")
        if self.s.validation.decision == "fail":
            return await self._not_certified(
                self.s.validation.reason or "the institution did not validate the result"
            )
        await self._trail.enter(Phase.CERTIFICATION)
        return None

    async def _certify(self) -> InternshipOutcome:
        info = workflow.info()
        request = rules.badge_request(self._plan, self.s, workflow.now(), info.workflow_id)
        if workflow.patched(effects.BADGE_IN_TWO_STEPS):
            stored = await effects.store_badge(request)
            self.s.credential_id = stored.credential_id
            # Awaited: the internship completes once its badge e-mail is sent or given up.
            await self._mail.send(
                "badge",
                "intern",
                "final",
                {"badge": self._plan.badge.name},
                mail_id=badge_mail_id(request.workflow_id),
            )
        else:
            self.s.credential_id = (await effects.issue_badge(request)).credential_id
        await self._trail.enter(Phase.COMPLETED, detail={"credential_id": self.s.credential_id})
        return self._outcome()

    # ----------------------------------------------------------------- waiting

    async def _main_wait(
        self, deadline: Callable[[], datetime], condition: Callable[[], bool]
    ) -> bool:
        """`_wait_until` for the main line, which also continues as new when the history has
        grown past its limit (the audit trail tells of it), before a long wait for the start
        date (`_fresh_run_pays`) and in progress between milestones
        (`_fresh_run_between_milestones`). A normal internship writes about 300 events; the
        limit (2,000 by default) is reached only by one flooded with submissions, and keeps a
        cold replay of any internship fast."""
        while True:
            fresh = self._fresh_run_pays(deadline)

            def fresh_now() -> bool:
                return (fresh and self._settled()) or self._fresh_run_between_milestones(deadline)  # noqa: B023

            met = await self._clock.wait_until(
                deadline,
                # Awaited within this iteration, so late binding is safe.
                lambda: condition() or self._history_is_long() or fresh_now(),
            )
            if condition() or self.s.withdrawal is not None:
                return met and condition()
            if self._history_is_long():
                await self._continue_as_new()
            elif fresh_now():
                await self._continue_as_new(record=False)
            else:
                return met and condition()

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.s.history_limit
        )

    def _fresh_run_pays(self, deadline: Callable[[], datetime]) -> bool:
        """Whether to continue as new before this wait, once everything in flight has settled:
        an agreed internship waiting for its start date (weeks, usually), with the agreement
        phase's activities behind it in this run. The SDK keeps every activity a run has
        scheduled, with its input, for as long as the run is cached (4 KiB or so each, plus
        more than a byte per byte of input: bench/memory.py), against a fresh run's state
        alone."""
        if self.s.phase != Phase.AWAITING_START or self.s.pause is not None:
            return False
        long_wait = deadline() + self.s.shift - workflow.now() > FRESH_RUN_WAIT
        worn = workflow.info().get_current_history_length() >= FRESH_RUN_EVENTS
        return long_wait and worn and workflow.patched(effects.FRESH_RUN_TO_WAIT_FOR_START)

    def _fresh_run_between_milestones(self, deadline: Callable[[], datetime]) -> bool:
        """Whether to continue as new now, in progress between milestones (since the
        `fresh-run-between-milestones` patch): the run is worn, everything in flight has settled,
        and its next wake-up, the earliest next step of a ladder still climbing and the end date,
        is more than `FRESH_RUN_WAIT` away. Every ladder is then parked in its wait (one in the
        middle of a step has that step's moment behind it), and the fresh run starts them again
        from `ladder_done`: no step twice. A run keeps every milestone's activities for its life
        (`_fresh_run_pays`); this lets it keep those of the milestones since its last fresh run
        only. Read in the main wait's condition: deterministic, and asks no patch."""
        s, plan = self.s, self._plan
        if (
            not self._fresh_between_milestones
            or s.phase != Phase.IN_PROGRESS
            or s.pause is not None
            or s.withdrawal is not None
            or workflow.info().get_current_history_length() < FRESH_RUN_EVENTS
            # Only after a milestone's step (its e-mails and records: the activities a run
            # keeps): submissions alone never start a fresh run, which would send the updates
            # that meet the closing run again (bench/feedback.py at one a second).
            or (self._fresh_after_a_step and sum(s.ladder_done.values()) == self._steps_before_run)
            or not self._settled()
        ):
            return False
        wake = deadline()
        for milestone in plan.milestones:
            step = next_step_at(milestone, plan.reminder_policy, s.ladder_done.get(milestone.id, 0))
            if step is not None and rules.outstanding(s, milestone):
                wake = min(wake, step)
        return wake + s.shift - workflow.now() > FRESH_RUN_WAIT

    async def _continue_as_new(self, *, record: bool = True) -> None:
        """`record`: the audit trail tells of it (a history grown past its limit); a fresh run
        for a long wait changes nothing the school reads."""
        for ladder in self._ladders:
            ladder.cancel()
        if record:
            await self._trail.record("continued_as_new", "system", f"run-{self.s.runs}")
        self._trail.close()
        # No await between the last handler finishing and continuing: nothing can slip in.
        await workflow.wait_condition(self._settled)
        state = self.s.model_copy(update={"runs": self.s.runs + 1})
        workflow.continue_as_new(InternshipInput(plan=self._plan, state=state))

    # ----------------------------------------------------------------- endings

    async def _withdraw(self) -> InternshipOutcome:
        assert self.s.withdrawal is not None
        self.s.reason = self.s.withdrawal.reason
        await self._trail.enter(Phase.WITHDRAWN, detail={"reason": self.s.reason})
        told: list[Signatory] = ["intern", "mentor"]
        if self._plan.signers and workflow.patched(effects.SIGNERS_TOLD_OF_WITHDRAWAL):
            told += [signer.role for signer in self._plan.signers]
        for party in told:
            await self._mail.notify("withdrawal", party, key="final", reason=self.s.reason)
        return self._outcome()

    async def _cancel_unapproved(self) -> InternshipOutcome:
        self.s.reason = (
            f"the learning agreement (version {self._plan.version}) was not approved by "
            f"{', '.join(rules.unapproved(self._plan, self.s))} before its deadline"
        )
        await self._trail.enter(Phase.CANCELLED, detail={"reason": self.s.reason})
        for party in self._signatories():
            await self._mail.notify("cancellation", party, key="final", reason=self.s.reason)
        return self._outcome()

    async def _not_certified(self, reason: str) -> InternshipOutcome:
        self.s.reason = reason
        await self._trail.enter(Phase.NOT_CERTIFIED, detail={"reason": reason})
        for party in ("intern", "tutor"):
            await self._mail.notify("outcome", party, key="final", reason=reason)
        return self._outcome()

    def _outcome(self) -> InternshipOutcome:
        return InternshipOutcome(
            internship_id=self._plan.internship_id,
            phase=self.s.phase,
            credential_id=self.s.credential_id,
            reason=self.s.reason,
        )

    # ----------------------------------------------------------------- the learning agreement
    # Each update is a pair: the validator (a rule in rules.py) refuses before anything is
    # written to history; the handler accepts once (intake.py says what accepting does).

    @workflow.update
    async def approve(self, approval: Approval) -> Receipt:
        return await self._accept(approval)

    @approve.validator
    @_once
    def _check_approval(self, approval: Approval) -> None:
        rules.check_approval(self._plan, self.s, approval, workflow.now())

    @workflow.update
    async def request_changes(self, request: ChangeRequest) -> Receipt:
        receipt = await self._accept(request)
        version = str(request.plan_version)
        key = request.submission_id
        if workflow.patched(effects.CHANGE_REQUEST_CARRIES_COMMENT):
            # The comment travels with the e-mail, which goes out once the plan is saved: its
            # activity reads nothing written beside it.
            await self._mail.notify_after_plan(
                "change_request",
                "operator",
                key=key,
                party=request.party,
                version=version,
                comment=request.comment,
            )
        else:
            await self._mail.notify(
                "change_request", "operator", key=key, party=request.party, version=version
            )
        return receipt

    @request_changes.validator
    @_once
    def _check_change_request(self, request: ChangeRequest) -> None:
        rules.check_change_request(self._plan, self.s, request)

    @workflow.update
    async def amend(self, amendment: Amendment) -> Receipt:
        """A new plan version (the rule is in intake.amendment); the concerned signers are asked
        to approve it."""
        concerned = rules.concerned(self._plan, amendment.plan, amendment.concerns)
        receipt = await self._accept(amendment)
        await effects.save_plan(self._plan)
        for party in self._signatories():
            if party in concerned:
                await self._ask_approval(party, amendment.plan.version)
        return receipt

    @amend.validator
    @_once
    def _check_amendment(self, amendment: Amendment) -> None:
        rules.check_amendment(self._plan, self.s, amendment, workflow.now())

    @workflow.update
    async def record_paper_signature(self, paper: PaperSignature) -> Receipt:
        """A signature given on paper, recorded by an operator: the signer's approval of the
        current version."""
        return await self._accept(paper)

    @record_paper_signature.validator
    @_once
    def _check_paper_signature(self, paper: PaperSignature) -> None:
        rules.check_paper_signature(self._plan, self.s, paper, workflow.now())

    # ----------------------------------------------------------------- during the internship

    @workflow.update
    async def submit_report(self, report: MilestoneReport) -> Receipt:
        return await self._accept(report)

    @submit_report.validator
    @_once
    def _check_report(self, report: MilestoneReport) -> None:
        rules.check_report(self._plan, self.s, report)

    @workflow.update
    async def submit_feedback(self, feedback: CompanyFeedback) -> Receipt:
        return await self._accept(feedback)

    @submit_feedback.validator
    @_once
    def _check_feedback(self, feedback: CompanyFeedback) -> None:
        rules.check_feedback(self._plan, self.s, feedback)

    @workflow.signal(name="company_feedback")
    async def company_feedback(self, feedback: CompanyFeedback) -> None:
        """The same as `submit_feedback`, for senders who do not wait for an answer. Signals come
        at least once: a duplicate is absorbed; an invalid one is dropped and logged."""
        try:
            self._check_feedback(feedback)
        except ValueError as invalid:
            workflow.logger.warning("ignored company feedback signal: %s", invalid)
            return
        await self._accept(feedback)

    @workflow.update
    async def pause(self, pause: Pause) -> Receipt:
        return await self._accept(pause)

    @pause.validator
    @_once
    def _check_pause(self, pause: Pause) -> None:
        rules.check_pause(self.s)

    @workflow.update
    async def resume(self, resume: Resume) -> Receipt:
        return await self._accept(resume)

    @resume.validator
    @_once
    def _check_resume(self, resume: Resume) -> None:
        rules.check_resume(self.s)

    @workflow.update
    async def extend(self, extension: Extension) -> Receipt:
        receipt = await self._accept(extension)
        await effects.save_plan(self._plan)
        return receipt

    @extend.validator
    @_once
    def _check_extension(self, extension: Extension) -> None:
        rules.check_extension(self._plan, self.s, extension)

    @workflow.update
    async def withdraw(self, withdrawal: Withdrawal) -> Receipt:
        return await self._accept(withdrawal)

    @withdraw.validator
    @_once
    def _check_withdrawal(self, withdrawal: Withdrawal) -> None:
        rules.check_withdrawal(self.s)

    # ----------------------------------------------------------------- evaluation

    @workflow.update
    async def submit_assessment(self, assessment: Assessment) -> Receipt:
        return await self._accept(assessment)

    @submit_assessment.validator
    @_once
    def _check_assessment(self, assessment: Assessment) -> None:
        rules.check_assessment(self._plan, self.s, assessment, workflow.now())

    @workflow.update
    async def validate(self, validation: Validation) -> Receipt:
        return await self._accept(validation)

    @validate.validator
    @_once
    def _check_validation(self, validation: Validation) -> None:
        rules.check_validation(self._plan, self.s, validation, workflow.now())

    @workflow.update
    async def submit_self_assessment(self, assessment: SelfAssessment) -> Receipt:
        return await self._accept(assessment)

    @submit_self_assessment.validator
    @_once
    def _check_self_assessment(self, assessment: SelfAssessment) -> None:
        rules.check_self_assessment(self._plan, self.s, assessment)

    @workflow.update
    async def evaluate_placement(self, evaluation: PlacementEvaluation) -> Receipt:
        return await self._accept(evaluation)

    @evaluate_placement.validator
    @_once
    def _check_placement_evaluation(self, evaluation: PlacementEvaluation) -> None:
        rules.check_placement_evaluation(self.s, evaluation)

    async def _accept(self, submission: Any) -> Receipt:
        """Apply a submission once and record it; every duplicate gets the first receipt.

        Its audit row: a receiver that writes it (the API, before it answers: the person then
        reads what they wrote) sends the update with an id made by `receiver_update_id`, and gets
        the row with the receipt; the workflow confirms the row later (Trail.hold). That takes
        one workflow task per submission instead of three (bench/feedback.py). Otherwise (the
        CLI, signals, runs recorded before) the workflow writes the row itself."""
        if submission.submission_id in self.s.receipts:
            return self.s.receipts[submission.submission_id]
        now = workflow.now()
        # Since the `receipt-time-decides` patch, the time rules judge the moment the product
        # received the submission (bounded: rules.received), not when this task runs.
        received = (
            rules.received(submission.received_at, now) if self._receipt_time_decides() else None
        )
        desk = intake.Desk(self._plan, self.s, self._clock, now, received)
        entry = intake.entry(desk, submission)
        receipt = Receipt(
            submission_id=submission.submission_id,
            kind=entry.kind,
            accepted_at=now,
            late=entry.late,
            received_at=received,
        )
        self.s.receipts[submission.submission_id] = receipt
        if entry.plan is not None:
            self._plan = entry.plan
        entry.apply()
        status = rules.status(self._plan, self.s, now)
        self._trail.set_overdue(status)
        detail = {"late": entry.late, **entry.detail}
        update = workflow.current_update_info()
        if update is not None and is_receiver_update_id(update.id) and self.s.started:
            key = submission.submission_id
            event = self._trail.event(entry.kind, entry.actor, key, detail, now, status)
            self._trail.hold(event)
            return Accepted(**receipt.model_dump(), record=event)
        # The receipt goes back as soon as the state has changed: the submission is durable in
        # Temporal's history from here on. Its audit row is written in the background, and the
        # workflow does not end or continue as new before every such write is done.
        record = self._trail.record(entry.kind, entry.actor, submission.submission_id, **detail)
        task = asyncio.create_task(record)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return receipt

    def _receipt_time_decides(self) -> bool:
        """Whether this run judges submissions by their time of receipt (decision 0046)."""
        return workflow.patched(effects.RECEIPT_TIME_DECIDES)

    def _settled(self) -> bool:
        return not self._background and workflow.all_handlers_finished()

    # ----------------------------------------------------------------- queries

    @workflow.query
    def status(self) -> InternshipStatus:
        """For debugging only: people read the same status from the read model, which every
        record brings up to date (a query reaching a recovering worker can break a history)."""
        return rules.status(self._plan, self.s, workflow.now())

    # ----------------------------------------------------------------- helpers

    def _agreed(self) -> bool:
        return not rules.unapproved(self._plan, self.s)

    def _signatories(self) -> tuple[Signatory, ...]:
        """Whom the agreement's e-mails go to: since the `plan-signers` patch, every signer of the
        plan in force; runs recorded before it (three parties, no signers) take the old path."""
        return self._plan.signatories() if workflow.patched(effects.PLAN_SIGNERS) else PARTIES

    async def _ask_approval(self, party: Signatory, version: int) -> None:
        """Ask for an approval of one plan version (the version is fixed by the caller: an
        amendment may arrive while the requests for the previous version are going out)."""
        await self._mail.notify("approval_request", party, key=f"v{version}", version=str(version))
