"""Parties (intern, tutor, mentor): the same submissions as the pages, as JSON, by link token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from api.auth import Party, api_key_scheme, unauthorized
from api.ratelimit import rate_limited
from api.routers.operators import require_visible
from api.services import ReceiverDep, RecordsDep, ServicesDep, TemporalDep
from models.base import Identifier
from models.plan import InternshipPlan
from models.submissions import (
    Approval,
    Assessment,
    ChangeRequest,
    CompanyFeedback,
    MilestoneReport,
    PlacementEvaluation,
    Receipt,
    SelfAssessment,
    Validation,
)
from operations import internships as ops
from operations.access import KEY_PREFIX, authenticate
from operations.party_steps import StepState, read_step
from records import read
from runtime.links import read_token

router = APIRouter(
    prefix="/api/internships", tags=["parties"], dependencies=[Depends(rate_limited)]
)


class SentSubmission(BaseModel):
    """One accepted submission of this link, as recorded."""

    submission_id: str
    kind: str
    milestone_id: str | None
    plan_version: int
    late: bool
    accepted_at: str
    values: dict[str, Any]


class PartyTask(BaseModel):
    """What a link lets its holder do, where that step stands now, what was already sent
    through it, and the plan it is about."""

    internship_id: str
    party: str
    purpose: str
    milestone_id: str | None
    expires_at: str
    state: StepState
    """open, done, not_yet, paused, waiting, closed (see `message`)."""
    open: bool
    message: str
    due: str | None
    """The milestone's due date in force (milestone links)."""
    sent: list[SentSubmission]
    """This link's submissions, latest first: for reports and feedback the latest counts."""
    plan: InternshipPlan


@router.get("/{internship_id}/task", response_model=PartyTask, summary="What my link is for")
async def task(internship_id: Identifier, grant: Party, pool: RecordsDep) -> PartyTask:
    grant.require(internship_id, grant.purpose, milestone_id=grant.milestone_id)
    plan = await read.latest_plan(pool, internship_id)
    if plan is None:
        raise HTTPException(404, f"no internship {internship_id!r} is recorded yet")
    step = await read_step(pool, grant, plan)
    return PartyTask(
        internship_id=internship_id,
        party=grant.party,
        purpose=grant.purpose,
        milestone_id=grant.milestone_id,
        expires_at=grant.expires_at.isoformat(),
        state=step.state,
        open=step.open,
        message=step.message(),
        due=step.due.isoformat() if step.due else None,
        sent=[SentSubmission(**sent.as_dict()) for sent in step.sent],
        plan=plan,
    )


@router.post("/{internship_id}/approvals", response_model=Receipt, summary="Approve the plan")
async def approve(
    internship_id: Identifier,
    approval: Approval,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(internship_id, "approve", party=approval.party)
    return await ops.approve(client, internship_id, approval, records)


@router.post("/{internship_id}/change-requests", response_model=Receipt, summary="Ask for changes")
async def request_changes(
    internship_id: Identifier,
    request: ChangeRequest,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(internship_id, "approve", party=request.party)
    return await ops.request_changes(client, internship_id, request, records)


@router.post("/{internship_id}/reports", response_model=Receipt, summary="Milestone report")
async def report(
    internship_id: Identifier,
    report: MilestoneReport,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(internship_id, "report", party="intern", milestone_id=report.milestone_id)
    return await ops.submit_report(client, internship_id, report, records)


@router.post("/{internship_id}/feedback", response_model=Receipt, summary="Company feedback")
async def feedback(
    internship_id: Identifier,
    feedback: CompanyFeedback,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(internship_id, "feedback", party="mentor", milestone_id=feedback.milestone_id)
    return await ops.submit_feedback(client, internship_id, feedback, records)


@router.post("/{internship_id}/assessments", response_model=Receipt, summary="Final assessment")
async def assess(
    internship_id: Identifier,
    assessment: Assessment,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(internship_id, "assess", party=assessment.assessor)
    return await ops.submit_assessment(client, internship_id, assessment, records)


@router.post(
    "/{internship_id}/self-assessments",
    response_model=Receipt,
    summary="The intern's self-assessment (at a milestone that asks for one, or at the end)",
)
async def self_assess(
    internship_id: Identifier,
    assessment: SelfAssessment,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(
        internship_id, "self_assess", party="intern", milestone_id=assessment.milestone_id
    )
    if grant.milestone_id is None and assessment.milestone_id is not None:
        raise HTTPException(403, "this link is for the final self-assessment, not a milestone's")
    return await ops.submit_self_assessment(client, internship_id, assessment, records)


@router.post(
    "/{internship_id}/placement-evaluations",
    response_model=Receipt,
    summary="The intern's evaluation of the placement, at the end",
)
async def evaluate_placement(
    internship_id: Identifier,
    evaluation: PlacementEvaluation,
    grant: Party,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    grant.require(internship_id, "evaluate_placement", party="intern")
    return await ops.evaluate_placement(client, internship_id, evaluation, records)


validation_router = APIRouter(prefix="/api/internships", tags=["operators", "parties"])


@validation_router.post(
    "/{internship_id}/validation",
    response_model=Receipt,
    summary="Validate the result (an operator's key or the tutor's validation link)",
    dependencies=[Depends(api_key_scheme)],
)
async def validate(
    internship_id: Identifier,
    validation: Validation,
    request: Request,
    app: ServicesDep,
    client: TemporalDep,
    records: ReceiverDep,
) -> Receipt:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise unauthorized(
            request, "missing", "send an operator's API key or the tutor's link token (Bearer)"
        )
    if credential.startswith(KEY_PREFIX):
        key = await authenticate(await app.records(), credential)
        if key is None:
            raise unauthorized(request, "unknown_or_revoked", "this API key is unknown or revoked")
        if not key.allows("operator"):
            raise HTTPException(403, "this needs an operator key")
        await require_visible(key, internship_id, app)
    else:
        read_token(app.secret, credential).require(internship_id, "validate", party="tutor")
    return await ops.validate(client, internship_id, validation)
