"""Every refusal of every admission rule (`check_*` in workflows/rules.py), one row each, with
the words a person reads; and for each rule what it accepts. Plain functions over a plan, a
state and a submission: no Temporal, no database, milliseconds in all.

A row names the rule, what the case is, the arguments (built afresh for each run) and the
refusal. A refusal for the phase is read back into its parts (the submission, the phases it
names, the phase now) rather than compared as one string, so that the order in which the
phases are listed is free."""

from __future__ import annotations

import inspect
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from models.plan import InternshipPlan, Signatory, Signer
from models.state import InternshipState, Signature
from models.status import Phase
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
    SelfAssessment,
    Validation,
    Withdrawal,
)
from tests.helpers import EXAMPLE_PLAN
from workflows import rules

pytestmark = pytest.mark.pure

DEADLINE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
NOW = DEADLINE - timedelta(days=1)
"""During planning, before the agreement deadline."""

PLAN = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text()).retimed("t-rules", DEADLINE)
"""The example plan: signers intern, tutor and mentor; milestones check-in and mid-term (intern
and mentor) and final-report (intern only); outcomes lo-web (good required) and lo-team (basic
required); rubric insufficient < basic < good < excellent."""

GUARDIAN = Signer(
    id="g-1", name="Rosa Esposito", email="rosa.esposito@example.org", role="guardian"
)


def _varied() -> InternshipPlan:
    """The example plan with a guardian among its signers, a self-assessment at the check-in,
    and a mid-term that asks only the mentor."""
    data = PLAN.model_dump()
    data["signers"] = [GUARDIAN.model_dump()]
    data["milestones"][0]["self_assessment"] = True
    data["milestones"][1]["submitted_by"] = ("mentor",)
    return InternshipPlan.model_validate(data)


VARIED = _varied()
Assessor = Literal["mentor", "tutor"]
ALL_GOOD = {"lo-web": "good", "lo-team": "good"}


def at(phase: Phase, **fields: Any) -> InternshipState:
    return InternshipState(phase=phase, **fields)


def paused(phase: Phase = Phase.IN_PROGRESS, **fields: Any) -> InternshipState:
    return at(phase, pause=Pause(submission_id="p-1", reason="illness"), **fields)


def signed(party: Signatory, version: int = 1, on_paper: datetime | None = None) -> Signature:
    approval = Approval(submission_id=f"a-{party}-{version}", party=party, plan_version=version)
    return Signature(approval=approval, at=NOW - timedelta(days=2), signed_on_paper=on_paper)


def assessed(assessor: Assessor, levels: dict[str, str] | None = None) -> Assessment:
    return Assessment(submission_id=f"s-{assessor}", assessor=assessor, levels=levels or ALL_GOOD)


def both_assessed(mentor: dict[str, str] | None = None) -> dict[str, Assessment]:
    return {"mentor": assessed("mentor", mentor), "tutor": assessed("tutor")}


def approval(
    party: Signatory = "intern", version: int = 1, received_at: datetime | None = None
) -> Approval:
    return Approval(submission_id="a-1", party=party, plan_version=version, received_at=received_at)


def paper(
    role: Signatory = "tutor", signed_at: datetime = NOW - timedelta(days=1)
) -> PaperSignature:
    return PaperSignature(submission_id="ps-1", role=role, signed_at=signed_at, note="in the file")


def change_request(version: int = 1) -> ChangeRequest:
    return ChangeRequest(submission_id="c-1", party="mentor", plan_version=version, comment="Hours")


def amended(concerns: tuple[Signatory, ...] = ("tutor",), **changes: Any) -> Amendment:
    """Version 2 of PLAN with the badge renamed, changed further by `changes`."""
    update = {"version": 2, "badge": PLAN.badge.model_copy(update={"name": "Renamed"}), **changes}
    return Amendment(
        submission_id="m-1",
        plan=PLAN.model_copy(update=update),
        concerns=concerns,
        reason="a new name",
    )


def report(milestone_id: str = "check-in") -> MilestoneReport:
    return MilestoneReport(submission_id="r-1", milestone_id=milestone_id, summary="Progress.")


def feedback(milestone_id: str | None = "check-in", **ratings: str) -> CompanyFeedback:
    return CompanyFeedback(
        submission_id="f-1",
        milestone_id=milestone_id,
        ratings=ratings or {"lo-web": "good"},
        attendance_hours=36,
    )


def extension(new_end: datetime) -> Extension:
    return Extension(submission_id="e-1", new_end=new_end, reason="more to learn")


def assessment(
    assessor: Assessor = "tutor",
    levels: dict[str, str] | None = None,
    received_at: datetime | None = None,
) -> Assessment:
    return Assessment(
        submission_id="s-1", assessor=assessor, levels=levels or ALL_GOOD, received_at=received_at
    )


def validation(
    decision: Literal["pass", "fail"] = "pass", received_at: datetime | None = None
) -> Validation:
    return Validation(submission_id="v-1", decision=decision, received_at=received_at)


ASSESSMENT_DUE = PLAN.period.end + PLAN.assessment_window
"""The end of PLAN's assessment window (nothing paused)."""
ASSESSED_AT = ASSESSMENT_DUE - timedelta(days=3)
VALIDATION_DUE = ASSESSED_AT + PLAN.validation_window
"""The end of the validation window of an internship both assessed at ASSESSED_AT."""
SECOND = timedelta(seconds=1)


def late_words(what: str, at: datetime, deadline: datetime, name: str) -> str:
    return (
        f"{what} was received at {at.isoformat(timespec='seconds')}, after {name} "
        f"({deadline.isoformat(timespec='seconds')}); it no longer counts"
    )


def self_assessment(
    milestone_id: str | None = None, levels: dict[str, str] | None = None, share: bool = False
) -> SelfAssessment:
    return SelfAssessment(
        submission_id="sa-1",
        milestone_id=milestone_id,
        levels=levels or ALL_GOOD,
        share_in_badge=share,
    )


def placement() -> PlacementEvaluation:
    return PlacementEvaluation(
        submission_id="pe-1", tasks_matched=4, mentor_support=5, would_recommend=True
    )


def withdrawal() -> Withdrawal:
    return Withdrawal(submission_id="w-1", reason="moved abroad")


# ----------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    check: str
    """The rule's name in workflows/rules.py."""
    case: str
    args: Callable[[], tuple[Any, ...]]
    says: str | None = None
    """The refusal, word for word; None for a phase refusal (`phase`) or an accepted row."""
    phase: tuple[str, frozenset[Phase], Phase] | None = None
    """A refusal for the phase: the submission as the message names it, the phases it names as
    admitted, and the phase it names as now."""

    @property
    def refused(self) -> bool:
        return self.says is not None or self.phase is not None


def refused(check: str, case: str, args: Callable[[], tuple[Any, ...]], says: str) -> Row:
    return Row(check, case, args, says=says)


def out_of_phase(
    check: str,
    case: str,
    args: Callable[[], tuple[Any, ...]],
    what: str,
    admitted: set[Phase] | frozenset[Phase],
    now: Phase,
) -> Row:
    return Row(check, case, args, phase=(what, frozenset(admitted), now))


def while_paused(check: str, args: Callable[[], tuple[Any, ...]], what: str) -> Row:
    return refused(
        check, "while paused", args, f"{what} is not accepted while the internship is paused"
    )


def in_phase(phase: Phase) -> Callable[[], tuple[Any, ...]]:
    return lambda: (at(phase),)


def accepted(check: str, case: str, args: Callable[[], tuple[Any, ...]]) -> Row:
    return Row(check, case, args)


PLANNING = {Phase.PLANNING}
EVALUATION = {Phase.EVALUATION}
REPORTS = {Phase.IN_PROGRESS, Phase.EVALUATION}
FEEDBACK = {Phase.AWAITING_START, Phase.IN_PROGRESS, Phase.EVALUATION}
RUNNING = {Phase.AWAITING_START, Phase.IN_PROGRESS}
SIGNERS_NOTE = "(intern, tutor, mentor); to add one, amend the plan's signers"

ROWS: list[Row] = [
    # ------------------------------------------------------------------ check_approval
    while_paused(
        "check_approval", lambda: (PLAN, paused(Phase.AWAITING_START), approval()), "an approval"
    ),
    out_of_phase(
        "check_approval",
        "after planning",
        lambda: (PLAN, at(Phase.IN_PROGRESS), approval()),
        "an approval",
        PLANNING,
        Phase.IN_PROGRESS,
    ),
    refused(
        "check_approval",
        "of another plan version",
        lambda: (PLAN, at(Phase.PLANNING), approval(version=2)),
        "this is about plan version 2, but the current version is 1: review the current plan",
    ),
    refused(
        "check_approval",
        "by a role the plan does not name",
        lambda: (PLAN, at(Phase.PLANNING), approval("guardian")),
        f"plan version 1 has no guardian among its signers {SIGNERS_NOTE}",
    ),
    refused(
        "check_approval",
        "a second time",
        lambda: (PLAN, at(Phase.PLANNING, signatures=[signed("intern")]), approval()),
        "the intern has already approved this plan version",
    ),
    accepted("check_approval", "the first", lambda: (PLAN, at(Phase.PLANNING), approval())),
    # The time of receipt decides (decision 0046): the workflow may see an approval after the
    # deadline (a worker died), and may see one received after it before its timer.
    accepted(
        "check_approval",
        "received 5 s before the deadline, seen 4 s after it",
        lambda: (
            PLAN,
            at(Phase.PLANNING),
            approval(received_at=DEADLINE - 5 * SECOND),
            DEADLINE + 4 * SECOND,
        ),
    ),
    refused(
        "check_approval",
        "received 1 s after the deadline, seen before its timer",
        lambda: (
            PLAN,
            at(Phase.PLANNING),
            approval(received_at=DEADLINE + SECOND),
            DEADLINE + 4 * SECOND,
        ),
        late_words("the approval", DEADLINE + SECOND, DEADLINE, "the agreement deadline"),
    ),
    refused(
        "check_approval",
        "received at the deadline",
        lambda: (PLAN, at(Phase.PLANNING), approval(received_at=DEADLINE), DEADLINE),
        late_words("the approval", DEADLINE, DEADLINE, "the agreement deadline"),
    ),
    refused(
        "check_approval",
        "received an hour before the deadline, seen 30 minutes after it (at most 10 min back)",
        lambda: (
            PLAN,
            at(Phase.PLANNING),
            approval(received_at=DEADLINE - timedelta(hours=1)),
            DEADLINE + timedelta(minutes=30),
        ),
        late_words(
            "the approval", DEADLINE + timedelta(minutes=20), DEADLINE, "the agreement deadline"
        ),
    ),
    accepted(
        "check_approval",
        "stamped by a clock ahead of the workflow's, after the deadline: taken as seen",
        lambda: (
            PLAN,
            at(Phase.PLANNING),
            approval(received_at=DEADLINE + timedelta(hours=1)),
            DEADLINE - SECOND,
        ),
    ),
    accepted(
        "check_approval",
        "without a receipt time (sent before receipts were stamped)",
        lambda: (PLAN, at(Phase.PLANNING), approval(), DEADLINE + SECOND),
    ),
    accepted(
        "check_approval",
        "by a signer the plan adds",
        lambda: (VARIED, at(Phase.PLANNING), approval("guardian")),
    ),
    accepted(
        "check_approval",
        "again, of an amended version that asks for it",
        lambda: (
            PLAN.model_copy(update={"version": 2}),
            at(Phase.PLANNING, signatures=[signed("intern")], required_since={"intern": 2}),
            approval(version=2),
        ),
    ),
    # ------------------------------------------------------------------ check_paper_signature
    while_paused(
        "check_paper_signature",
        lambda: (PLAN, paused(Phase.AWAITING_START), paper(), NOW),
        "a paper signature",
    ),
    out_of_phase(
        "check_paper_signature",
        "after planning",
        lambda: (PLAN, at(Phase.AWAITING_START), paper(), NOW),
        "a paper signature",
        PLANNING,
        Phase.AWAITING_START,
    ),
    refused(
        "check_paper_signature",
        "for a role the plan does not name",
        lambda: (PLAN, at(Phase.PLANNING), paper("guardian"), NOW),
        f"plan version 1 has no guardian among its signers {SIGNERS_NOTE}",
    ),
    refused(
        "check_paper_signature",
        "for a signer who approved through their link",
        lambda: (PLAN, at(Phase.PLANNING, signatures=[signed("tutor")]), paper(), NOW),
        "the tutor has already approved plan version 1 (through their link, recorded "
        f"{(NOW - timedelta(days=2)).isoformat()}): there is nothing to record",
    ),
    refused(
        "check_paper_signature",
        "for a signer already recorded on paper",
        lambda: (
            PLAN,
            at(Phase.PLANNING, signatures=[signed("tutor", on_paper=NOW - timedelta(days=3))]),
            paper(),
            NOW,
        ),
        "the tutor has already approved plan version 1 (on paper, recorded "
        f"{(NOW - timedelta(days=2)).isoformat()}): there is nothing to record",
    ),
    refused(
        "check_paper_signature",
        "signed in the future",
        lambda: (PLAN, at(Phase.PLANNING), paper(signed_at=NOW + timedelta(hours=1)), NOW),
        f"signed_at {(NOW + timedelta(hours=1)).isoformat()} is in the future; give the date "
        "the paper was signed",
    ),
    accepted(
        "check_paper_signature",
        "signed yesterday",
        lambda: (PLAN, at(Phase.PLANNING), paper(), NOW),
    ),
    accepted(
        "check_paper_signature",
        "signed right now",
        lambda: (PLAN, at(Phase.PLANNING), paper(signed_at=NOW), NOW),
    ),
    accepted(
        "check_paper_signature",
        "for a signer whose earlier approval an amendment voided",
        lambda: (
            PLAN.model_copy(update={"version": 2}),
            at(Phase.PLANNING, signatures=[signed("tutor")], required_since={"tutor": 2}),
            paper(),
            NOW,
        ),
    ),
    # ------------------------------------------------------------------ check_change_request
    while_paused(
        "check_change_request",
        lambda: (PLAN, paused(Phase.AWAITING_START), change_request()),
        "a change request",
    ),
    out_of_phase(
        "check_change_request",
        "after planning",
        lambda: (PLAN, at(Phase.EVALUATION), change_request()),
        "a change request",
        PLANNING,
        Phase.EVALUATION,
    ),
    refused(
        "check_change_request",
        "about another plan version",
        lambda: (PLAN, at(Phase.PLANNING), change_request(version=3)),
        "this is about plan version 3, but the current version is 1: review the current plan",
    ),
    accepted(
        "check_change_request",
        "during planning",
        lambda: (PLAN, at(Phase.PLANNING), change_request()),
    ),
    # ------------------------------------------------------------------ check_amendment
    while_paused(
        "check_amendment",
        lambda: (PLAN, paused(Phase.AWAITING_START), amended(), NOW),
        "an amendment",
    ),
    out_of_phase(
        "check_amendment",
        "after planning",
        lambda: (PLAN, at(Phase.IN_PROGRESS), amended(), NOW),
        "an amendment",
        PLANNING,
        Phase.IN_PROGRESS,
    ),
    refused(
        "check_amendment",
        "of another internship's id",
        lambda: (PLAN, at(Phase.PLANNING), amended(internship_id="t-other"), NOW),
        "an amendment cannot change the internship_id",
    ),
    refused(
        "check_amendment",
        "skipping a version",
        lambda: (PLAN, at(Phase.PLANNING), amended(version=3), NOW),
        "the amended plan must have version 2 (the current version is 1); reload the plan and "
        "amend that",
    ),
    refused(
        "check_amendment",
        "after its own agreement deadline",
        lambda: (PLAN, at(Phase.PLANNING), amended(), DEADLINE + timedelta(minutes=1)),
        "the amended plan's agreement_deadline has already passed",
    ),
    refused(
        "check_amendment",
        "that changes nothing",
        lambda: (PLAN, at(Phase.PLANNING), amended(badge=PLAN.badge), NOW),
        "the amended plan is the same as the current one",
    ),
    refused(
        "check_amendment",
        "concerning a signer the new version does not name",
        lambda: (PLAN, at(Phase.PLANNING), amended(concerns=("tutor", "guardian")), NOW),
        "the amendment concerns guardian, but the amended plan has no such signer (its "
        "signers: intern, tutor, mentor); add them to its signers or leave them out of concerns",
    ),
    accepted(
        "check_amendment",
        "a renamed badge, for the tutor",
        lambda: (PLAN, at(Phase.PLANNING), amended(), NOW),
    ),
    accepted(
        "check_amendment",
        "adding a signer it concerns",
        lambda: (
            PLAN,
            at(Phase.PLANNING),
            amended(concerns=("guardian",), signers=(GUARDIAN,)),
            NOW,
        ),
    ),
    # ------------------------------------------------------------------ check_report
    while_paused("check_report", lambda: (PLAN, paused(), report()), "a milestone report"),
    out_of_phase(
        "check_report",
        "before the start",
        lambda: (PLAN, at(Phase.AWAITING_START), report()),
        "a milestone report",
        REPORTS,
        Phase.AWAITING_START,
    ),
    refused(
        "check_report",
        "for an unknown milestone",
        lambda: (PLAN, at(Phase.IN_PROGRESS), report("nope")),
        "unknown milestone 'nope'; this plan has: check-in, mid-term, final-report",
    ),
    refused(
        "check_report",
        "for a milestone that asks only the mentor",
        lambda: (VARIED, at(Phase.IN_PROGRESS), report("mid-term")),
        "milestone 'mid-term' asks nothing of the intern",
    ),
    accepted("check_report", "in progress", lambda: (PLAN, at(Phase.IN_PROGRESS), report())),
    accepted(
        "check_report",
        "the final report, during the evaluation",
        lambda: (PLAN, at(Phase.EVALUATION), report("final-report")),
    ),
    # ------------------------------------------------------------------ check_feedback
    while_paused("check_feedback", lambda: (PLAN, paused(), feedback()), "company feedback"),
    out_of_phase(
        "check_feedback",
        "during planning",
        lambda: (PLAN, at(Phase.PLANNING), feedback()),
        "company feedback",
        FEEDBACK,
        Phase.PLANNING,
    ),
    refused(
        "check_feedback",
        "for an unknown milestone",
        lambda: (PLAN, at(Phase.IN_PROGRESS), feedback("nope")),
        "unknown milestone 'nope'; this plan has: check-in, mid-term, final-report",
    ),
    refused(
        "check_feedback",
        "for a milestone that asks only the intern",
        lambda: (PLAN, at(Phase.IN_PROGRESS), feedback("final-report")),
        "milestone 'final-report' asks nothing of the mentor",
    ),
    refused(
        "check_feedback",
        "rating an unknown outcome",
        lambda: (PLAN, at(Phase.IN_PROGRESS), feedback(**{"lo-x": "good"})),
        "unknown learning outcome 'lo-x'; this plan has: lo-team, lo-web",
    ),
    refused(
        "check_feedback",
        "rating off the rubric",
        lambda: (PLAN, at(Phase.IN_PROGRESS), feedback(**{"lo-web": "stellar"})),
        "'stellar' is not a level of this plan's rubric; use one of: insufficient, basic, good, "
        "excellent",
    ),
    accepted(
        "check_feedback",
        "for a milestone, some outcomes rated",
        lambda: (PLAN, at(Phase.IN_PROGRESS), feedback()),
    ),
    accepted(
        "check_feedback",
        "for no milestone, before the start",
        lambda: (PLAN, at(Phase.AWAITING_START), feedback(None)),
    ),
    # ------------------------------------------------------------------ check_pause
    out_of_phase(
        "check_pause",
        "during planning",
        lambda: (at(Phase.PLANNING),),
        "a pause",
        RUNNING,
        Phase.PLANNING,
    ),
    out_of_phase(
        "check_pause",
        "during the evaluation",
        lambda: (at(Phase.EVALUATION),),
        "a pause",
        RUNNING,
        Phase.EVALUATION,
    ),
    # A second pause meets the phase rule's sentence first: rules.check_pause's own "this
    # internship is already paused" is never reached (require_phase refuses any paused state).
    while_paused("check_pause", lambda: (paused(),), "a pause"),
    accepted("check_pause", "before the start", lambda: (at(Phase.AWAITING_START),)),
    accepted("check_pause", "in progress", lambda: (at(Phase.IN_PROGRESS),)),
    # ------------------------------------------------------------------ check_resume
    refused(
        "check_resume",
        "when not paused",
        lambda: (at(Phase.IN_PROGRESS),),
        "this internship is not paused",
    ),
    accepted("check_resume", "when paused", lambda: (paused(),)),
    accepted(
        "check_resume", "when paused before the start", lambda: (paused(Phase.AWAITING_START),)
    ),
    # ------------------------------------------------------------------ check_extension
    while_paused(
        "check_extension",
        lambda: (PLAN, paused(), extension(PLAN.period.end + timedelta(days=7))),
        "an extension",
    ),
    out_of_phase(
        "check_extension",
        "during planning",
        lambda: (PLAN, at(Phase.PLANNING), extension(PLAN.period.end + timedelta(days=7))),
        "an extension",
        RUNNING,
        Phase.PLANNING,
    ),
    out_of_phase(
        "check_extension",
        "during the evaluation",
        lambda: (PLAN, at(Phase.EVALUATION), extension(PLAN.period.end + timedelta(days=7))),
        "an extension",
        RUNNING,
        Phase.EVALUATION,
    ),
    refused(
        "check_extension",
        "to the current end",
        lambda: (PLAN, at(Phase.IN_PROGRESS), extension(PLAN.period.end)),
        f"the new end must be after the current end ({PLAN.period.end.isoformat()}); an "
        "extension cannot shorten an internship",
    ),
    refused(
        "check_extension",
        "to before the end a pause moved",
        lambda: (
            PLAN,
            at(Phase.IN_PROGRESS, shift=timedelta(days=3)),
            extension(PLAN.period.end + timedelta(days=2)),
        ),
        "the new end must be after the current end "
        f"({(PLAN.period.end + timedelta(days=3)).isoformat()}); an extension cannot shorten an "
        "internship",
    ),
    refused(
        # Reached only by a plan in force that today's validation refuses (a run recorded
        # before a rule was added): every plan accepted today stays consistent when its end
        # moves later.
        "check_extension",
        "of a plan that no longer validates",
        lambda: (
            PLAN.model_copy(update={"agreement_deadline": PLAN.period.start + timedelta(days=1)}),
            at(Phase.IN_PROGRESS),
            extension(PLAN.period.end + timedelta(days=7)),
        ),
        "the extended plan would be inconsistent: must not be after period.start "
        "(agreement_deadline <= period.start < period.end)",
    ),
    accepted(
        "check_extension",
        "a week, in progress",
        lambda: (PLAN, at(Phase.IN_PROGRESS), extension(PLAN.period.end + timedelta(days=7))),
    ),
    accepted(
        "check_extension",
        "a day past the end a pause moved, before the start",
        lambda: (
            PLAN,
            at(Phase.AWAITING_START, shift=timedelta(days=3)),
            extension(PLAN.period.end + timedelta(days=4)),
        ),
    ),
    # ------------------------------------------------------------------ check_withdrawal
    *(
        refused(
            "check_withdrawal",
            f"once {phase.value}",
            in_phase(phase),
            f"cannot withdraw an internship that is {phase.value}",
        )
        for phase in (
            Phase.CERTIFICATION,
            Phase.COMPLETED,
            Phase.NOT_CERTIFIED,
            Phase.CANCELLED,
            Phase.WITHDRAWN,
        )
    ),
    refused(
        "check_withdrawal",
        "a second time",
        lambda: (at(Phase.IN_PROGRESS, withdrawal=withdrawal()),),
        "this internship is already being withdrawn",
    ),
    *(
        accepted("check_withdrawal", f"while {phase.value}", in_phase(phase))
        for phase in (Phase.PLANNING, Phase.AWAITING_START, Phase.IN_PROGRESS, Phase.EVALUATION)
    ),
    accepted("check_withdrawal", "while paused", lambda: (paused(),)),
    # ------------------------------------------------------------------ check_assessment
    while_paused("check_assessment", lambda: (PLAN, paused(), assessment()), "an assessment"),
    out_of_phase(
        "check_assessment",
        "in progress",
        lambda: (PLAN, at(Phase.IN_PROGRESS), assessment()),
        "an assessment",
        EVALUATION,
        Phase.IN_PROGRESS,
    ),
    refused(
        "check_assessment",
        "a second time",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments={"mentor": assessed("mentor")}),
            assessment("mentor"),
        ),
        "the mentor has already assessed this internship",
    ),
    refused(
        "check_assessment",
        "of an unknown outcome",
        lambda: (PLAN, at(Phase.EVALUATION), assessment(levels={**ALL_GOOD, "lo-x": "good"})),
        "unknown learning outcome 'lo-x'; this plan has: lo-team, lo-web",
    ),
    refused(
        "check_assessment",
        "off the rubric",
        lambda: (
            PLAN,
            at(Phase.EVALUATION),
            assessment(levels={"lo-web": "outstanding", "lo-team": "good"}),
        ),
        "'outstanding' is not a level of this plan's rubric; use one of: insufficient, basic, "
        "good, excellent",
    ),
    refused(
        "check_assessment",
        "of some outcomes only",
        lambda: (PLAN, at(Phase.EVALUATION), assessment(levels={"lo-web": "good"})),
        "every learning outcome must be assessed; missing: ['lo-team']",
    ),
    accepted("check_assessment", "the tutor's", lambda: (PLAN, at(Phase.EVALUATION), assessment())),
    accepted(
        "check_assessment",
        "received 3 s before the window ends, seen 6 s after",
        lambda: (
            PLAN,
            at(Phase.EVALUATION),
            assessment(received_at=ASSESSMENT_DUE - 3 * SECOND),
            ASSESSMENT_DUE + 6 * SECOND,
        ),
    ),
    refused(
        "check_assessment",
        "received after the window ended, seen before its timer",
        lambda: (
            PLAN,
            at(Phase.EVALUATION),
            assessment(received_at=ASSESSMENT_DUE + SECOND),
            ASSESSMENT_DUE + 6 * SECOND,
        ),
        late_words(
            "the assessment",
            ASSESSMENT_DUE + SECOND,
            ASSESSMENT_DUE,
            "the end of the assessment window",
        ),
    ),
    accepted(
        "check_assessment",
        "the tutor's after the mentor's",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments={"mentor": assessed("mentor")}),
            assessment(),
        ),
    ),
    # ------------------------------------------------------------------ check_validation
    while_paused("check_validation", lambda: (PLAN, paused(), validation()), "a validation"),
    out_of_phase(
        "check_validation",
        "in progress",
        lambda: (PLAN, at(Phase.IN_PROGRESS), validation()),
        "a validation",
        EVALUATION,
        Phase.IN_PROGRESS,
    ),
    refused(
        "check_validation",
        "before any assessment",
        lambda: (PLAN, at(Phase.EVALUATION), validation()),
        "cannot validate yet: waiting for the mentor and tutor",
    ),
    refused(
        "check_validation",
        "before the tutor's assessment",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments={"mentor": assessed("mentor")}),
            validation(),
        ),
        "cannot validate yet: waiting for the tutor",
    ),
    refused(
        "check_validation",
        "a second time",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments=both_assessed(), validation=validation()),
            validation("fail"),
        ),
        "this internship has already been validated",
    ),
    refused(
        "check_validation",
        "as pass, with an outcome below its required level",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments=both_assessed({"lo-web": "basic", "lo-team": "good"})),
            validation(),
        ),
        "cannot validate as pass: outcome 'lo-web' reached 'basic', below the required 'good'",
    ),
    accepted(
        "check_validation",
        "as pass, every outcome at its level",
        lambda: (PLAN, at(Phase.EVALUATION, assessments=both_assessed()), validation()),
    ),
    accepted(
        "check_validation",
        "as fail, with an outcome below its level",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments=both_assessed({"lo-web": "basic", "lo-team": "good"})),
            validation("fail"),
        ),
    ),
    accepted(
        "check_validation",
        "received 2 s before the window ends, seen 8 s after",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments=both_assessed(), assessed_at=ASSESSED_AT),
            validation(received_at=VALIDATION_DUE - 2 * SECOND),
            VALIDATION_DUE + 8 * SECOND,
        ),
    ),
    refused(
        "check_validation",
        "received after the window ended, seen before its timer",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, assessments=both_assessed(), assessed_at=ASSESSED_AT),
            validation(received_at=VALIDATION_DUE),
            VALIDATION_DUE + 8 * SECOND,
        ),
        late_words(
            "the validation", VALIDATION_DUE, VALIDATION_DUE, "the end of the validation window"
        ),
    ),
    # ------------------------------------------------------------------ check_self_assessment
    while_paused(
        "check_self_assessment",
        lambda: (PLAN, paused(), self_assessment()),
        "the final self-assessment",
    ),
    out_of_phase(
        "check_self_assessment",
        "the final one, in progress",
        lambda: (PLAN, at(Phase.IN_PROGRESS), self_assessment()),
        "the final self-assessment",
        EVALUATION,
        Phase.IN_PROGRESS,
    ),
    refused(
        "check_self_assessment",
        "the final one, a second time",
        lambda: (
            PLAN,
            at(Phase.EVALUATION, final_self_assessment=self_assessment()),
            self_assessment(),
        ),
        "the intern has already sent the final self-assessment",
    ),
    refused(
        "check_self_assessment",
        "the final one, of some outcomes only",
        lambda: (PLAN, at(Phase.EVALUATION), self_assessment(levels={"lo-team": "basic"})),
        "every learning outcome must be assessed; missing: ['lo-web']",
    ),
    refused(
        "check_self_assessment",
        "the final one, off the rubric",
        lambda: (
            PLAN,
            at(Phase.EVALUATION),
            self_assessment(levels={"lo-web": "wow", "lo-team": "good"}),
        ),
        "'wow' is not a level of this plan's rubric; use one of: insufficient, basic, good, "
        "excellent",
    ),
    while_paused(
        "check_self_assessment",
        lambda: (VARIED, paused(), self_assessment("check-in")),
        "a self-assessment",
    ),
    out_of_phase(
        "check_self_assessment",
        "at a milestone, before the start",
        lambda: (VARIED, at(Phase.AWAITING_START), self_assessment("check-in")),
        "a self-assessment",
        REPORTS,
        Phase.AWAITING_START,
    ),
    refused(
        "check_self_assessment",
        "at an unknown milestone",
        lambda: (VARIED, at(Phase.IN_PROGRESS), self_assessment("nope")),
        "unknown milestone 'nope'; this plan has: check-in, mid-term, final-report",
    ),
    refused(
        "check_self_assessment",
        "at a milestone that does not ask for one",
        lambda: (VARIED, at(Phase.IN_PROGRESS), self_assessment("final-report")),
        "milestone 'final-report' does not ask for a self-assessment",
    ),
    refused(
        "check_self_assessment",
        "at a milestone, a second time",
        lambda: (
            VARIED,
            at(Phase.IN_PROGRESS, self_assessments={"check-in": self_assessment("check-in")}),
            self_assessment("check-in"),
        ),
        "the intern has already sent the self-assessment for 'check-in'",
    ),
    refused(
        "check_self_assessment",
        "at a milestone, shared in the badge",
        lambda: (VARIED, at(Phase.IN_PROGRESS), self_assessment("check-in", share=True)),
        "only the final self-assessment can be shown in the badge; leave share_in_badge unset "
        "at a milestone",
    ),
    refused(
        "check_self_assessment",
        "at a milestone, of an unknown outcome",
        lambda: (
            VARIED,
            at(Phase.IN_PROGRESS),
            self_assessment("check-in", {**ALL_GOOD, "lo-x": "good"}),
        ),
        "unknown learning outcome 'lo-x'; this plan has: lo-team, lo-web",
    ),
    accepted(
        "check_self_assessment",
        "the final one, shared in the badge",
        lambda: (PLAN, at(Phase.EVALUATION), self_assessment(share=True)),
    ),
    accepted(
        "check_self_assessment",
        "at a milestone that asks for one",
        lambda: (VARIED, at(Phase.IN_PROGRESS), self_assessment("check-in")),
    ),
    # ------------------------------------------------------------------ check_placement_evaluation
    while_paused(
        "check_placement_evaluation",
        lambda: (paused(), placement()),
        "the evaluation of the placement",
    ),
    out_of_phase(
        "check_placement_evaluation",
        "in progress",
        lambda: (at(Phase.IN_PROGRESS), placement()),
        "the evaluation of the placement",
        EVALUATION,
        Phase.IN_PROGRESS,
    ),
    refused(
        "check_placement_evaluation",
        "a second time",
        lambda: (at(Phase.EVALUATION, placement_evaluation=placement()), placement()),
        "the intern has already evaluated the placement",
    ),
    accepted(
        "check_placement_evaluation",
        "during the evaluation",
        lambda: (at(Phase.EVALUATION), placement()),
    ),
]


def _params(refusals: bool) -> list[Any]:
    return [
        pytest.param(row, id=f"{row.check}: {row.case}") for row in ROWS if row.refused == refusals
    ]


PHASE_REFUSAL = re.compile(
    r"^(?P<what>.+) is accepted only while the internship is (?P<admitted>[a-z_, ]+); "
    r"it is now (?P<now>[a-z_]+)$"
)


@pytest.mark.parametrize("row", _params(refusals=True))
def test_each_refusal_says_why(row: Row) -> None:
    check = getattr(rules, row.check)
    with pytest.raises(ValueError) as refused:
        check(*row.args())
    # A plain ValueError (the API answers it with its words): never pydantic's ValidationError,
    # a ValueError too, whose text is written for a developer.
    assert type(refused.value) is ValueError
    message = str(refused.value)
    if row.says is not None:
        assert message == row.says
    else:
        assert row.phase is not None
        said = PHASE_REFUSAL.match(message)
        assert said is not None, message
        admitted = frozenset(Phase(p) for p in said["admitted"].split(", "))
        assert (said["what"], admitted, Phase(said["now"])) == row.phase


@pytest.mark.parametrize("row", _params(refusals=False))
def test_what_each_rule_accepts(row: Row) -> None:
    assert getattr(rules, row.check)(*row.args()) is None


def test_every_admission_rule_has_refusals_and_acceptances_in_the_table() -> None:
    checks = sorted(
        name
        for name, value in inspect.getmembers(rules, inspect.isfunction)
        if name.startswith("check_") and value.__module__ == rules.__name__
    )
    assert len(checks) == 14
    refusals = Counter(row.check for row in ROWS if row.refused)
    acceptances = Counter(row.check for row in ROWS if not row.refused)
    assert sorted({row.check for row in ROWS}) == checks
    assert [name for name in checks if refusals[name] < 1 or acceptances[name] < 1] == []
    # Each refusal a rule can give is a row of its own: no two rows of a rule expect the same.
    expected = [(row.check, row.says, row.phase) for row in ROWS if row.refused]
    assert len(expected) == len(set(expected))
