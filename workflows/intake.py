"""What accepting each kind of submission does: the change to the state, and the audit row that
keeps the person's words (detail). One function per kind, looked up by its kind; the row's kind
and actor are the registry's (models/kinds.py). A kind without a function here changes nothing
and records every field but its id (`recorded`). The workflow's `_accept` applies the entry once
and records it. Workflow code (deterministic): `now` is the workflow's time, `judged` the moment
the time rules judge (the receipt), and the only side effects are on the state, the clock and the
search attributes, in the order each function gives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models import kinds
    from models.plan import InternshipPlan
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
        Resume,
        SelfAssessment,
        Validation,
        Withdrawal,
    )
    from runtime import search_attributes as sa
    from workflows import rules
    from workflows.clock import PausableClock


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Desk:
    """What a submission is accepted against: the plan in force, the state, the clock, the time."""

    plan: InternshipPlan
    s: InternshipState
    clock: PausableClock
    now: datetime
    received: datetime | None = None
    """When the submission was received, bounded (`rules.received`); None in runs before the
    `receipt-time-decides` patch, which judge `now`."""

    @property
    def judged(self) -> datetime:
        """The moment the time rules judge: the receipt, else the workflow's time."""
        return self.received or self.now


@dataclass(frozen=True)
class Change:
    """What accepting one submission changes (`apply`) and keeps of it (`detail`)."""

    detail: dict[str, Any]
    apply: Callable[[], None] = _nothing
    late: bool = False
    plan: InternshipPlan | None = None
    """The plan in force once accepted, when the submission changes it (set before `apply`)."""


@dataclass(frozen=True)
class Entry:
    """A change as the workflow records it: under its kind, by its sender (the registry's)."""

    kind: str
    actor: str
    detail: dict[str, Any]
    apply: Callable[[], None] = _nothing
    late: bool = False
    plan: InternshipPlan | None = None


def _add(values: list[str], value: str) -> None:
    """Add to a list kept as a set (lists keep the carried state's JSON as it was)."""
    if value not in values:
        values.append(value)


def approval(d: Desk, a: Approval) -> Change:
    def apply() -> None:
        d.s.signatures.append(Signature(approval=a, at=d.now))

    detail = {"plan_version": a.plan_version, "comment": a.comment}
    return Change(detail, apply)


def change_request(d: Desk, r: ChangeRequest) -> Change:
    return Change({"plan_version": r.plan_version, "comment": r.comment})


def amendment(d: Desk, a: Amendment) -> Change:
    """A new plan version. Rule: the signers the amendment concerns approve again, and so does
    every signer it adds; a change to a core section (period, mode, hours, outcomes, milestones,
    rubric) concerns every signer; other approvals carry over. Every earlier signature is kept
    with its version."""
    new = a.plan
    concerned = rules.concerned(d.plan, new, a.concerns)

    def apply() -> None:
        for party in concerned:
            d.s.required_since[party] = new.version
        d.clock.changed()

    detail = {
        "plan_version": new.version,
        "sections": sorted(d.plan.changed_sections(new)),
        "concerns": sorted(concerned),
        "reason": a.reason,
    }
    return Change(detail, apply, plan=new)


def paper_signature(d: Desk, p: PaperSignature) -> Change:
    signature = rules.paper_signature(d.plan, p, d.now)
    detail = {
        "role": p.role,
        "plan_version": d.plan.version,
        "signed_at": p.signed_at.isoformat(),
        "note": p.note,
    }
    return Change(detail, lambda: d.s.signatures.append(signature))


def report(d: Desk, r: MilestoneReport) -> Change:
    def apply() -> None:
        _add(d.s.submitted.setdefault(r.milestone_id, []), "intern")
        if r.share_in_badge:
            d.s.evidence[r.milestone_id] = r.summary

    late = rules.is_late(d.plan, d.s, r.milestone_id, d.judged)
    detail = {
        "milestone_id": r.milestone_id,
        "summary": r.summary,
        "share_in_badge": r.share_in_badge,
    }
    return Change(detail, apply, late=late)


def feedback(d: Desk, f: CompanyFeedback) -> Change:
    def apply() -> None:
        if f.milestone_id is not None:
            _add(d.s.submitted.setdefault(f.milestone_id, []), "mentor")

    late = f.milestone_id is not None and rules.is_late(d.plan, d.s, f.milestone_id, d.judged)
    detail = {
        "milestone_id": f.milestone_id,
        "attendance_hours": f.attendance_hours,
        "ratings": dict(f.ratings),
        "comments": f.comments,
    }
    return Change(detail, apply, late=late)


def pause(d: Desk, p: Pause) -> Change:
    def apply() -> None:
        d.clock.pause(p, d.now)
        workflow.upsert_search_attributes([sa.PHASE.value_set(Phase.PAUSED.value)])

    return Change({"reason": p.reason}, apply)


def resume(d: Desk, r: Resume) -> Change:
    def apply() -> None:
        d.clock.resume(d.now)
        workflow.upsert_search_attributes(
            [
                sa.PHASE.value_set(d.s.phase.value),
                sa.END_DATE.value_set(d.plan.period.end + d.s.shift),
            ]
        )

    return Change({}, apply)


def extension(d: Desk, e: Extension) -> Change:
    def apply() -> None:
        d.clock.changed()
        workflow.upsert_search_attributes([sa.END_DATE.value_set(e.new_end)])

    detail = {"new_end": e.new_end.isoformat(), "reason": e.reason}
    return Change(detail, apply, plan=rules.extended_plan(d.plan, d.s, e))


def withdrawal(d: Desk, w: Withdrawal) -> Change:
    def apply() -> None:
        d.s.withdrawal = w

    return Change({"reason": w.reason}, apply)


def assessment(d: Desk, a: Assessment) -> Change:
    def apply() -> None:
        d.s.assessments[a.assessor] = a

    return Change({"levels": dict(a.levels), "comment": a.comment}, apply)


def validation(d: Desk, v: Validation) -> Change:
    def apply() -> None:
        d.s.validation = v

    return Change({"decision": v.decision, "reason": v.reason}, apply)


def self_assessment(d: Desk, a: SelfAssessment) -> Change:
    def apply() -> None:
        if a.milestone_id is None:
            d.s.final_self_assessment = a
        else:
            d.s.self_assessments[a.milestone_id] = a

    detail = {
        "milestone_id": a.milestone_id,
        "levels": dict(a.levels),
        "comment": a.comment,
        "share_in_badge": a.share_in_badge,
    }
    return Change(detail, apply)


def placement_evaluation(d: Desk, e: PlacementEvaluation) -> Change:
    def apply() -> None:
        d.s.placement_evaluation = e

    detail = {
        "tasks_matched": e.tasks_matched,
        "mentor_support": e.mentor_support,
        "would_recommend": e.would_recommend,
        "comments": e.comments,
    }
    return Change(detail, apply)


def recorded(d: Desk, submission: Any) -> Change:
    """A kind that changes nothing: its row keeps every field but the submission's id."""
    return Change(submission.model_dump(mode="json", exclude={"submission_id", "received_at"}))


_BY_KIND: dict[str, Callable[[Desk, Any], Change]] = {
    kinds.APPROVAL.kind: approval,
    kinds.CHANGE_REQUEST.kind: change_request,
    kinds.AMENDMENT.kind: amendment,
    kinds.PAPER_SIGNATURE.kind: paper_signature,
    kinds.MILESTONE_REPORT.kind: report,
    kinds.COMPANY_FEEDBACK.kind: feedback,
    kinds.PAUSE.kind: pause,
    kinds.RESUME.kind: resume,
    kinds.EXTENSION.kind: extension,
    kinds.WITHDRAWAL.kind: withdrawal,
    kinds.ASSESSMENT.kind: assessment,
    kinds.VALIDATION.kind: validation,
    kinds.SELF_ASSESSMENT.kind: self_assessment,
    kinds.PLACEMENT_EVALUATION.kind: placement_evaluation,
}


def entry(d: Desk, submission: Any) -> Entry:
    """What accepting `submission` changes and records, under its kind and its sender."""
    kind = kinds.kind_of(submission)
    change = _BY_KIND.get(kind.kind, recorded)(d, submission)
    return Entry(
        kind.kind, kind.actor(submission), change.detail, change.apply, change.late, change.plan
    )
