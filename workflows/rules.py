"""The internship's rules as pure functions over the plan, the carried state and the time.

No Temporal here: the workflow calls these from its validators and its phases, and plain
pytest tests them (tests/test_rules.py). Each refusal raises ValueError with the words a person
reads (the API turns them into 409/422).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from pydantic import ValidationError

from models import kinds
from models.activities import BadgeRequest
from models.evaluation import achieved_levels, shortfalls
from models.plan import InternshipPlan, Milestone, Signatory
from models.state import InternshipState, Signature
from models.status import Deadline, InternshipStatus, MilestoneState, Phase, SignatureView
from models.submissions import (
    Amendment,
    Approval,
    Assessment,
    ChangeRequest,
    CompanyFeedback,
    Extension,
    MilestoneReport,
    PaperSignature,
    PlacementEvaluation,
    SelfAssessment,
    Validation,
)
from workflows.dates import DatesInForce

# The phases in which each kind of submission is admitted are the registry's (models/kinds.py):
# each check below reads its kind's. These three keep their names for their readers.
FEEDBACK_PHASES = kinds.COMPANY_FEEDBACK.phases
REPORT_PHASES = kinds.MILESTONE_REPORT.phases
PAUSABLE_PHASES = kinds.PAUSE.phases

# Sections of a plan whose change needs every party's approval again.
CORE_SECTIONS = frozenset(
    {"period", "mode", "weekly_hours", "learning_outcomes", "milestones", "rubric"}
)

ASSESSORS = ("mentor", "tutor")


def dates_in_force(plan: InternshipPlan, state: InternshipState) -> DatesInForce:
    return DatesInForce(plan, state.shift, state.start_shift)


def reported_phase(state: InternshipState) -> Phase:
    return Phase.PAUSED if state.pause is not None else state.phase


def has_approved(state: InternshipState, party: str) -> bool:
    """Whether the party approved a plan version its approval still counts for."""
    since = state.required_since.get(party, 1)
    return any(
        signed.approval.party == party and signed.approval.plan_version >= since
        for signed in state.signatures
    )


def unapproved(plan: InternshipPlan, state: InternshipState) -> list[Signatory]:
    """The signers of the plan in force who have not approved it (a version they still count
    for): the internship starts only when there are none."""
    return [role for role in plan.signatories() if not has_approved(state, role)]


def concerned(old: InternshipPlan, new: InternshipPlan, concerns: Iterable[str]) -> list[Signatory]:
    """Whose approval an amendment asks again: the signers it names, every signer the new
    version adds, and every signer when it changes a core section."""
    if old.changed_sections(new) & CORE_SECTIONS:
        return list(new.signatories())
    added = set(new.signatories()) - set(old.signatories())
    return [role for role in new.signatories() if role in added or role in set(concerns)]


def paper_signature(plan: InternshipPlan, paper: PaperSignature, now: datetime) -> Signature:
    """A signature given on paper, kept as the signer's approval of the current version."""
    approval = Approval(
        submission_id=paper.submission_id,
        party=paper.role,
        plan_version=plan.version,
        comment=paper.note,
    )
    return Signature(approval=approval, at=now, signed_on_paper=paper.signed_at)


def signature_view(signature: Signature) -> SignatureView:
    approval = signature.approval
    paper = signature.signed_on_paper is not None
    return SignatureView(
        party=approval.party,
        plan_version=approval.plan_version,
        at=signature.at,
        on_paper=paper,
        signed_at=signature.signed_on_paper,
        note=approval.comment if paper else None,
    )


def outstanding(state: InternshipState, milestone: Milestone) -> list[str]:
    """The parties the milestone asks who have not submitted yet."""
    done = state.submitted.get(milestone.id, ())
    return [party for party in milestone.submitted_by if party not in done]


def missing_assessors(state: InternshipState) -> list[str]:
    return [assessor for assessor in ASSESSORS if assessor not in state.assessments]


def achieved(plan: InternshipPlan, state: InternshipState) -> dict[str, str]:
    return achieved_levels(plan, state.assessments.values())


RECEIPT_MAX_AGE = timedelta(minutes=10)
"""How far before the workflow's time a receipt is believed (decision 0046): a receipt older
than this counts as received this long before the workflow saw it."""


def received(received_at: datetime | None, now: datetime) -> datetime:
    """The moment a submission's time rules judge: when the product received it, bounded by the
    workflow's time `now`. Never after `now` (an API host whose clock runs ahead of Temporal's),
    never more than RECEIPT_MAX_AGE before it (a receipt that old is a clock far behind, not a
    queue: see decision 0046); `now` itself for a submission that carries no receipt time."""
    if received_at is None or received_at > now:
        return now
    return max(received_at, now - RECEIPT_MAX_AGE)


def is_late(plan: InternshipPlan, state: InternshipState, milestone_id: str, now: datetime) -> bool:
    """Whether a submission for the milestone at `now` (its receipt, see `received`) comes after
    the milestone's due date in force."""
    milestone = plan.milestone(milestone_id)
    return milestone is not None and now > dates_in_force(plan, state).due(milestone)


def phase_deadlines(plan: InternshipPlan, state: InternshipState) -> list[Deadline]:
    """What is due in the current phase, earliest first (the times in force)."""
    dates, phase = dates_in_force(plan, state), state.phase
    found: list[Deadline] = []
    if phase == Phase.PLANNING:
        found.append(Deadline(what="agreement_deadline", at=plan.agreement_deadline))
    if phase in (Phase.PLANNING, Phase.AWAITING_START):
        found.append(Deadline(what="start", at=dates.start))
    if phase in (Phase.IN_PROGRESS, Phase.EVALUATION):
        found += [
            Deadline(what=f"milestone:{m.id}", at=dates.due(m))
            for m in plan.milestones
            if outstanding(state, m) and m.id not in state.missed
        ]
    if phase in (Phase.PLANNING, Phase.AWAITING_START, Phase.IN_PROGRESS):
        found.append(Deadline(what="end", at=dates.end))
    if phase == Phase.EVALUATION:
        if missing_assessors(state):
            found.append(Deadline(what="assessment", at=dates.assessment_due))
        elif state.validation is None and state.assessed_at is not None:
            validation_due = dates.moved(state.assessed_at + plan.validation_window)
            found.append(Deadline(what="validation", at=validation_due))
    return sorted(found, key=lambda d: d.at)


def status(plan: InternshipPlan, state: InternshipState, now: datetime) -> InternshipStatus:
    """The internship as people read it (the read model keeps a copy with every record)."""
    dates = dates_in_force(plan, state)
    return InternshipStatus(
        internship_id=plan.internship_id,
        phase=reported_phase(state),
        plan_version=plan.version,
        approvals={role: has_approved(state, role) for role in plan.signatories()},
        start=dates.start,
        end=dates.end,
        paused_for=state.shift.total_seconds(),
        milestones=tuple(
            MilestoneState(
                milestone_id=m.id,
                title=m.title,
                due=dates.due(m),
                outstanding=tuple(outstanding(state, m)),
                overdue=False,
                overdue_from=dates.overdue_from(m),
                missed=m.id in state.missed,
            )
            for m in plan.milestones
        ),
        next_deadline=None,
        achieved_levels=achieved(plan, state) if not missing_assessors(state) else {},
        credential_id=state.credential_id,
        reason=state.reason,
        signatures=tuple(signature_view(s) for s in state.signatures),
        deadlines=tuple(phase_deadlines(plan, state)),
    ).at(now)


# ----------------------------------------------------------------------------- refusals


def require_phase(state: InternshipState, what: str, phases: set[Phase] | frozenset[Phase]) -> None:
    if state.pause is not None:
        raise ValueError(f"{what} is not accepted while the internship is paused")
    if state.phase not in phases:
        allowed = ", ".join(sorted(p.value for p in phases))
        raise ValueError(
            f"{what} is accepted only while the internship is {allowed}; "
            f"it is now {state.phase.value}"
        )


def require_current_version(plan: InternshipPlan, version: int) -> None:
    if version != plan.version:
        raise ValueError(
            f"this is about plan version {version}, but the current version is "
            f"{plan.version}: review the current plan"
        )


def require_milestone_party(plan: InternshipPlan, milestone_id: str, party: str) -> None:
    milestone = plan.milestone(milestone_id)
    if milestone is None:
        known = ", ".join(m.id for m in plan.milestones)
        raise ValueError(f"unknown milestone {milestone_id!r}; this plan has: {known}")
    if party not in milestone.submitted_by:
        raise ValueError(f"milestone {milestone_id!r} asks nothing of the {party}")


def require_levels(plan: InternshipPlan, levels: dict[str, str], complete: bool) -> None:
    outcomes = {o.id for o in plan.learning_outcomes}
    rubric = [level.id for level in plan.rubric.levels]
    for outcome_id, level in levels.items():
        if outcome_id not in outcomes:
            raise ValueError(
                f"unknown learning outcome {outcome_id!r}; this plan has: "
                f"{', '.join(sorted(outcomes))}"
            )
        if level not in rubric:
            raise ValueError(
                f"{level!r} is not a level of this plan's rubric; use one of: {', '.join(rubric)}"
            )
    missing = sorted(outcomes - set(levels))
    if complete and missing:
        raise ValueError(f"every learning outcome must be assessed; missing: {missing}")


# ----------------------------------------------------------------------------- admission
# One check per kind of submission, run by the workflow's update validators: a refusal raises
# ValueError before anything is written to the history.


def check_approval(
    plan: InternshipPlan, state: InternshipState, approval: Approval, now: datetime | None = None
) -> None:
    """`now`: the workflow's time. An approval that carries its receipt time counts only if it
    was received before the agreement deadline, whenever the workflow sees it (decision 0046)."""
    require_phase(state, "an approval", kinds.APPROVAL.phases)
    require_current_version(plan, approval.plan_version)
    require_signer(plan, approval.party)
    if has_approved(state, approval.party):
        raise ValueError(f"the {approval.party} has already approved this plan version")
    if now is not None and approval.received_at is not None:
        require_before(
            "the approval",
            received(approval.received_at, now),
            plan.agreement_deadline,
            "the agreement deadline",
        )


def require_before(what: str, at: datetime, deadline: datetime, name: str) -> None:
    """Refuse a submission received at or after its deadline (the deadline's own timer may not
    have reached the workflow yet)."""
    if at >= deadline:
        raise ValueError(
            f"{what} was received at {at.isoformat(timespec='seconds')}, after {name} "
            f"({deadline.isoformat(timespec='seconds')}); it no longer counts"
        )


def require_signer(plan: InternshipPlan, role: str) -> None:
    if role not in plan.signatories():
        raise ValueError(
            f"plan version {plan.version} has no {role} among its signers "
            f"({', '.join(plan.signatories())}); to add one, amend the plan's signers"
        )


def check_paper_signature(
    plan: InternshipPlan, state: InternshipState, paper: PaperSignature, now: datetime
) -> None:
    """A paper signature counts as an approval of the current version: only during planning,
    only for a signer the plan names who has not approved yet, and signed no later than now."""
    require_phase(state, "a paper signature", kinds.PAPER_SIGNATURE.phases)
    require_signer(plan, paper.role)
    signed = next(
        (
            s
            for s in reversed(state.signatures)
            if s.approval.party == paper.role
            and s.approval.plan_version >= state.required_since.get(paper.role, 1)
        ),
        None,
    )
    if signed is not None:
        how = "on paper" if signed.signed_on_paper is not None else "through their link"
        raise ValueError(
            f"the {paper.role} has already approved plan version {signed.approval.plan_version} "
            f"({how}, recorded {signed.at.isoformat()}): there is nothing to record"
        )
    if paper.signed_at > now:
        raise ValueError(
            f"signed_at {paper.signed_at.isoformat()} is in the future; give the date the "
            "paper was signed"
        )


def check_change_request(
    plan: InternshipPlan, state: InternshipState, request: ChangeRequest
) -> None:
    require_phase(state, "a change request", kinds.CHANGE_REQUEST.phases)
    require_current_version(plan, request.plan_version)


def check_amendment(
    plan: InternshipPlan, state: InternshipState, amendment: Amendment, now: datetime
) -> None:
    require_phase(state, "an amendment", kinds.AMENDMENT.phases)
    new = amendment.plan
    if new.internship_id != plan.internship_id:
        raise ValueError("an amendment cannot change the internship_id")
    if new.version != plan.version + 1:
        raise ValueError(
            f"the amended plan must have version {plan.version + 1} (the current "
            f"version is {plan.version}); reload the plan and amend that"
        )
    if new.agreement_deadline <= now:
        raise ValueError("the amended plan's agreement_deadline has already passed")
    if not plan.changed_sections(new):
        raise ValueError("the amended plan is the same as the current one")
    absent = [role for role in amendment.concerns if role not in new.signatories()]
    if absent:
        raise ValueError(
            f"the amendment concerns {', '.join(absent)}, but the amended plan has no such "
            f"signer (its signers: {', '.join(new.signatories())}); add them to its signers "
            "or leave them out of concerns"
        )


def check_report(plan: InternshipPlan, state: InternshipState, report: MilestoneReport) -> None:
    require_phase(state, "a milestone report", kinds.MILESTONE_REPORT.phases)
    require_milestone_party(plan, report.milestone_id, "intern")


def check_feedback(plan: InternshipPlan, state: InternshipState, feedback: CompanyFeedback) -> None:
    require_phase(state, "company feedback", kinds.COMPANY_FEEDBACK.phases)
    if feedback.milestone_id is not None:
        require_milestone_party(plan, feedback.milestone_id, "mentor")
    require_levels(plan, feedback.ratings, complete=False)


def check_pause(state: InternshipState) -> None:
    require_phase(state, "a pause", kinds.PAUSE.phases)
    if state.pause is not None:
        raise ValueError("this internship is already paused")


def check_resume(state: InternshipState) -> None:
    if state.pause is None:
        raise ValueError("this internship is not paused")


def extended_plan(
    plan: InternshipPlan, state: InternshipState, extension: Extension
) -> InternshipPlan:
    """The plan with the new end (given in effective time, so paused time is taken off)."""
    data = plan.model_dump()
    data["version"] = plan.version + 1
    data["period"]["end"] = extension.new_end - state.shift
    return InternshipPlan.model_validate(data)


def check_extension(plan: InternshipPlan, state: InternshipState, extension: Extension) -> None:
    require_phase(state, "an extension", kinds.EXTENSION.phases)
    current_end = plan.period.end + state.shift
    if extension.new_end <= current_end:
        raise ValueError(
            f"the new end must be after the current end ({current_end.isoformat()}); "
            "an extension cannot shorten an internship"
        )
    try:
        extended_plan(plan, state, extension)
    except ValidationError as inconsistent:
        problems = "; ".join(error["msg"] for error in inconsistent.errors())
        raise ValueError(f"the extended plan would be inconsistent: {problems}") from None


def check_withdrawal(state: InternshipState) -> None:
    if state.phase not in kinds.WITHDRAWAL.phases:
        raise ValueError(f"cannot withdraw an internship that is {state.phase.value}")
    if state.withdrawal is not None:
        raise ValueError("this internship is already being withdrawn")


def check_assessment(
    plan: InternshipPlan,
    state: InternshipState,
    assessment: Assessment,
    now: datetime | None = None,
) -> None:
    """`now`: the workflow's time; an assessment that carries its receipt time counts only if it
    was received within the assessment window."""
    require_phase(state, "an assessment", kinds.ASSESSMENT.phases)
    if assessment.assessor in state.assessments:
        raise ValueError(f"the {assessment.assessor} has already assessed this internship")
    require_levels(plan, assessment.levels, complete=True)
    if now is not None and assessment.received_at is not None:
        due = dates_in_force(plan, state).assessment_due
        at = received(assessment.received_at, now)
        require_before("the assessment", at, due, "the end of the assessment window")


def check_validation(
    plan: InternshipPlan,
    state: InternshipState,
    validation: Validation,
    now: datetime | None = None,
) -> None:
    """`now`: the workflow's time; a validation that carries its receipt time counts only if it
    was received within the validation window."""
    require_phase(state, "a validation", kinds.VALIDATION.phases)
    missing = missing_assessors(state)
    if missing:
        raise ValueError(f"cannot validate yet: waiting for the {' and '.join(missing)}")
    if state.validation is not None:
        raise ValueError("this internship has already been validated")
    if now is not None and validation.received_at is not None and state.assessed_at is not None:
        due = dates_in_force(plan, state).moved(state.assessed_at + plan.validation_window)
        at = received(validation.received_at, now)
        require_before("the validation", at, due, "the end of the validation window")
    reasons = shortfalls(plan, achieved(plan, state))
    if validation.decision == "pass" and reasons:
        raise ValueError("cannot validate as pass: " + "; ".join(reasons))


def check_self_assessment(
    plan: InternshipPlan, state: InternshipState, assessment: SelfAssessment
) -> None:
    """At a milestone that asks for one, while reports are accepted; at the end, during the
    evaluation. Once per milestone and once at the end; every outcome on the rubric."""
    if assessment.milestone_id is None:
        require_phase(state, "the final self-assessment", kinds.AT_THE_END)
        if state.final_self_assessment is not None:
            raise ValueError("the intern has already sent the final self-assessment")
    else:
        require_phase(state, "a self-assessment", kinds.SELF_ASSESSMENT.phases)
        milestone = plan.milestone(assessment.milestone_id)
        if milestone is None:
            known = ", ".join(m.id for m in plan.milestones)
            raise ValueError(
                f"unknown milestone {assessment.milestone_id!r}; this plan has: {known}"
            )
        if not milestone.self_assessment:
            raise ValueError(
                f"milestone {assessment.milestone_id!r} does not ask for a self-assessment"
            )
        if assessment.milestone_id in state.self_assessments:
            raise ValueError(
                f"the intern has already sent the self-assessment for {assessment.milestone_id!r}"
            )
        if assessment.share_in_badge:
            raise ValueError(
                "only the final self-assessment can be shown in the badge; leave share_in_badge "
                "unset at a milestone"
            )
    require_levels(plan, assessment.levels, complete=True)


def check_placement_evaluation(state: InternshipState, evaluation: PlacementEvaluation) -> None:
    require_phase(state, "the evaluation of the placement", kinds.PLACEMENT_EVALUATION.phases)
    if state.placement_evaluation is not None:
        raise ValueError("the intern has already evaluated the placement")


def shared_self_assessment(state: InternshipState) -> dict[str, str]:
    """The intern's final self-assessment levels, when they agreed to show them in the badge."""
    final = state.final_self_assessment
    return dict(final.levels) if final is not None and final.share_in_badge else {}


def next_agreement_stop(
    plan: InternshipPlan, state: InternshipState, now: datetime
) -> tuple[str, datetime]:
    """While the agreement is unsigned: the next reminder not yet sent (key, time), or the
    agreement deadline ("deadline") when no reminder comes before it."""
    reminders = [
        (f"v{plan.version}-{i}", plan.agreement_deadline - before)
        for i, before in enumerate(plan.reminder_policy.agreement_reminders)
    ]
    pending = [
        (key, at) for key, at in reminders if key not in state.agreement_reminders_sent and at > now
    ]
    return min([*pending, ("deadline", plan.agreement_deadline)], key=lambda stop: stop[1])


def badge_request(
    plan: InternshipPlan, state: InternshipState, now: datetime, workflow_id: str
) -> BadgeRequest:
    """What the badge certifies: the period in force (the activity dates the status showed), the
    levels achieved, the evidence the intern chose to share, and the shared self-assessment."""
    return BadgeRequest(
        plan=plan.model_copy(update={"period": dates_in_force(plan, state).period()}),
        achieved_levels=achieved(plan, state),
        issued_at=now,
        workflow_id=workflow_id,
        evidence=tuple(
            (m.title, state.evidence[m.id]) for m in plan.milestones if m.id in state.evidence
        ),
        self_assessed_levels=shared_self_assessment(state),
    )
