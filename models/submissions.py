"""What the parties send into a running internship, each with a client-given id."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from models.base import Identifier, StrictModel, Text
from models.plan import InternshipPlan, Signatory

SubmissionId = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$", strip_whitespace=True)
]
"""Chosen by the client; a retry with the same id is answered with the first receipt."""


class Submission(StrictModel):
    """What every submission carries besides its own fields: when the product received it."""

    received_at: AwareDatetime | None = None
    """When the product received the submission, by the receiving server's clock: stamped by the
    API or the CLI as it sends the update (`operations.internships`), whatever the client sent.
    The workflow judges every rule about time (late, on time, before the agreement deadline,
    within a window) at this moment, bounded by `workflows.rules.received` (decision 0046); None
    (submissions recorded before it): the moment the workflow sees it."""


class Approval(Submission):
    submission_id: SubmissionId
    party: Signatory
    plan_version: int = Field(ge=1)
    comment: Text | None = None


class MilestoneReport(Submission):
    submission_id: SubmissionId
    milestone_id: Identifier
    summary: Text
    share_in_badge: bool = False
    """The intern agrees that this summary appears as evidence in the badge (nothing else does)."""


class CompanyFeedback(Submission):
    submission_id: SubmissionId
    milestone_id: Identifier | None = None
    """The milestone this feedback answers, or None for feedback sent at any other time."""
    ratings: dict[Identifier, Identifier] = Field(default_factory=dict)
    """Learning outcome id -> rubric level id."""
    attendance_hours: float = Field(ge=0, le=2000)
    comments: Text | None = None


class Assessment(Submission):
    submission_id: SubmissionId
    assessor: Literal["mentor", "tutor"]
    levels: dict[Identifier, Identifier]
    """Learning outcome id -> rubric level id; every outcome must be assessed."""
    comment: Text | None = None


class SelfAssessment(Submission):
    """The intern's own view of each learning outcome, on the plan's rubric: at a milestone that
    asks for one, or at the end (`milestone_id` None). Shown beside the mentor's and the tutor's;
    never part of the pass rule."""

    submission_id: SubmissionId
    milestone_id: Identifier | None = None
    levels: dict[Identifier, Identifier]
    """Learning outcome id -> rubric level id; every outcome."""
    comment: Text | None = None
    share_in_badge: bool = False
    """The end's only: the intern agrees that these levels appear in the badge, labelled as their
    self-assessment beside the assessed level."""


PlacementAnswer = Annotated[int, Field(ge=1, le=5)]
"""1 (not at all) to 5 (fully)."""


class PlacementEvaluation(Submission):
    """The intern's evaluation of the placement at the end. The school reads it (figures per
    company, each intern's in the history); the company never sees one intern's."""

    submission_id: SubmissionId
    tasks_matched: PlacementAnswer
    """How far the tasks matched the learning agreement."""
    mentor_support: PlacementAnswer
    """How well the mentor supported the intern."""
    would_recommend: bool
    comments: Text | None = None


class Validation(Submission):
    submission_id: SubmissionId
    decision: Literal["pass", "fail"]
    reason: Text | None = None


class Withdrawal(Submission):
    submission_id: SubmissionId
    reason: Text


class ChangeRequest(Submission):
    """A party asks the operator to change the plan before approving it."""

    submission_id: SubmissionId
    party: Signatory
    plan_version: int = Field(ge=1)
    comment: Text


class Amendment(Submission):
    """The operator's new version of the plan, during planning. `concerns` names the parties whose
    approval the change needs again; changes to core sections concern every party."""

    submission_id: SubmissionId
    plan: InternshipPlan
    concerns: tuple[Signatory, ...] = ()
    reason: Text


class PaperSignature(Submission):
    """An operator records a signature given on paper: it counts as that signer's approval of
    the current plan version."""

    submission_id: SubmissionId
    role: Signatory
    signed_at: AwareDatetime
    """When the signer signed the paper."""
    note: Text
    """Where the paper is, or anything else worth keeping with it."""


def _one_problem(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """A date or a moment, with one message when it is neither (instead of one per type)."""
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "date_or_moment",
            "give the date the paper was signed (YYYY-MM-DD, read as midnight in the plan's "
            "time zone) or a date and time with its UTC offset (e.g. 2027-02-10T15:30+01:00)",
        ) from None


SignedOn = Annotated[AwareDatetime | date, WrapValidator(_one_problem)]
"""A day (YYYY-MM-DD) or a moment with its UTC offset."""


class PaperSignatureRequest(StrictModel):
    """What an operator sends to record a signature given on paper (the API, the CLI): when it
    was signed may be a date, taken as local midnight in the plan's time zone. It becomes a
    `PaperSignature` at the door, where the date is checked against the plan."""

    submission_id: SubmissionId
    role: Signatory
    signed_at: SignedOn
    """The day the signer signed the paper (local midnight in the plan's time zone), or the
    moment, with its UTC offset; not in the future, nor before the plan existed."""
    note: Text
    """Where the paper is, or anything else worth keeping with it."""


class Pause(Submission):
    submission_id: SubmissionId
    reason: Text


class Resume(Submission):
    submission_id: SubmissionId


class Extension(Submission):
    """Move the internship's end date later; milestones stay, evaluation starts from the new end."""

    submission_id: SubmissionId
    new_end: AwareDatetime
    reason: Text


class Receipt(StrictModel):
    """The workflow's answer to a submission: the first one, also for every duplicate."""

    submission_id: SubmissionId
    kind: str
    accepted_at: AwareDatetime
    late: bool = False
    received_at: AwareDatetime | None = None
    """The moment the rules judged (the submission's receipt, bounded); None in receipts given
    before receipts carried it."""
