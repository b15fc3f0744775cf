"""Every kind of submission, once: which model carries it, the `kind` it is recorded under, the
workflow update that takes it, who sends it, in which phases it is admitted, and where it comes
in (the party link and page, the API route, the CLI command).

The rest of the code reads this table instead of listing the kinds again: the workflow's intake
(`workflows/intake.py`), the phase rules (`workflows/rules.py`), the records (`SUBMISSION_KINDS`
in `records/write.py`), sending a submission (`operations.internships.send`), the party
links (`runtime/links.py`), the party steps and pages. `tests/test_kinds.py` checks that every
kind here has its update and validator on the workflow, its API route, its party page and its
CLI command. docs/adding-a-kind-of-submission.md says how to add one.

Pure data (no I/O): the workflow imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal, get_args

from pydantic import BaseModel

from models.plan import SIGNATORIES
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

Purpose = Literal[
    "approve", "report", "feedback", "assess", "validate", "self_assess", "evaluate_placement"
]
"""What a party link lets its holder do: approve (or ask changes to) the learning agreement,
report on a milestone, send company feedback, assess the internship, validate the result; the
intern's own self-assessment (at a milestone, or at the end without one) and evaluation of the
placement. Each is a page (`/p/<token>`) and a step (`operations/party_steps.py`)."""

PURPOSES: Final[tuple[Purpose, ...]] = get_args(Purpose)

# The phases the kinds below are admitted in (the state's phase: a paused internship keeps the
# phase it was paused in).
PLANNING: Final = frozenset({Phase.PLANNING})
PAUSABLE: Final = frozenset({Phase.AWAITING_START, Phase.IN_PROGRESS})
REPORTING: Final = frozenset({Phase.IN_PROGRESS, Phase.EVALUATION})
"""From the start to the end of the evaluation: milestone reports and self-assessments."""
FEEDBACK: Final = frozenset({Phase.AWAITING_START, Phase.IN_PROGRESS, Phase.EVALUATION})
AT_THE_END: Final = frozenset({Phase.EVALUATION})
"""The evaluation: the assessments, the validation, the intern's final self-assessment and
evaluation of the placement."""
NOT_ENDED: Final = frozenset(
    phase for phase in Phase if not phase.is_final and phase != Phase.CERTIFICATION
)
"""Until the badge is being issued or the internship has ended."""
ANY_PHASE: Final = frozenset(Phase)


@dataclass(frozen=True)
class SubmissionKind:
    """One kind of submission: what every layer needs to know about it, said once."""

    model: type[BaseModel]
    """What it carries (models/submissions.py): the argument of its update."""
    kind: str
    """The `kind` of its audit event, its `submissions` row (db/migrations: the row's check
    names every kind) and its receipt."""
    update: str
    """The workflow's update that takes it: the name of the decorated method on
    `InternshipWorkflow`, which its validator (`rules.check_<kind>`) guards."""
    actors: tuple[str, ...]
    """Who sends it (its audit event's actor): a role, or with `actor_field` the roles the
    submission may name."""
    actor_field: str | None
    """The submission's field that names its sender, when several may send it."""
    phases: frozenset[Phase]
    """The phases in which the workflow admits it (`rules.check_<kind>` reads them from here);
    a party step is open in them."""
    route: str
    """Its API route: POST /api/internships/{internship_id}/<route>."""
    purpose: Purpose | None = None
    """The party link that sends it: its page and its step. None: an operator's submission."""
    command: str | None = None
    """The `internflow` command that sends it, if there is one."""
    while_paused: bool = False
    """Admitted while the internship is paused (every other kind is refused until it resumes)."""

    def actor(self, submission: Any) -> str:
        """Who sent this submission (its audit event's actor)."""
        if self.actor_field is None:
            return self.actors[0]
        return str(getattr(submission, self.actor_field))


APPROVAL: Final = SubmissionKind(
    Approval,
    "approval",
    update="approve",
    actors=SIGNATORIES,
    actor_field="party",
    phases=PLANNING,
    route="approvals",
    purpose="approve",
    command="approve",
)
CHANGE_REQUEST: Final = SubmissionKind(
    ChangeRequest,
    "change_request",
    update="request_changes",
    actors=SIGNATORIES,
    actor_field="party",
    phases=PLANNING,
    route="change-requests",
    purpose="approve",
)
AMENDMENT: Final = SubmissionKind(
    Amendment,
    "amendment",
    update="amend",
    actors=("operator",),
    actor_field=None,
    phases=PLANNING,
    route="amendments",
)
PAPER_SIGNATURE: Final = SubmissionKind(
    PaperSignature,
    "paper_signature",
    update="record_paper_signature",
    actors=("operator",),
    actor_field=None,
    phases=PLANNING,
    route="paper-signatures",
    command="paper-signature",
)
MILESTONE_REPORT: Final = SubmissionKind(
    MilestoneReport,
    "milestone_report",
    update="submit_report",
    actors=("intern",),
    actor_field=None,
    phases=REPORTING,
    route="reports",
    purpose="report",
    command="report",
)
COMPANY_FEEDBACK: Final = SubmissionKind(
    CompanyFeedback,
    "company_feedback",
    update="submit_feedback",
    actors=("mentor",),
    actor_field=None,
    phases=FEEDBACK,
    route="feedback",
    purpose="feedback",
    command="feedback",
)
PAUSE: Final = SubmissionKind(
    Pause,
    "pause",
    update="pause",
    actors=("operator",),
    actor_field=None,
    phases=PAUSABLE,
    route="pause",
    command="pause",
)
RESUME: Final = SubmissionKind(
    Resume,
    "resume",
    update="resume",
    actors=("operator",),
    actor_field=None,
    phases=ANY_PHASE,  # whenever the internship is paused (rules.check_resume)
    route="resume",
    command="resume",
    while_paused=True,
)
EXTENSION: Final = SubmissionKind(
    Extension,
    "extension",
    update="extend",
    actors=("operator",),
    actor_field=None,
    phases=PAUSABLE,
    route="extension",
    command="extend",
)
WITHDRAWAL: Final = SubmissionKind(
    Withdrawal,
    "withdrawal",
    update="withdraw",
    actors=("operator",),
    actor_field=None,
    phases=NOT_ENDED,
    route="withdrawal",
    command="withdraw",
    while_paused=True,
)
ASSESSMENT: Final = SubmissionKind(
    Assessment,
    "assessment",
    update="submit_assessment",
    actors=("mentor", "tutor"),
    actor_field="assessor",
    phases=AT_THE_END,
    route="assessments",
    purpose="assess",
    command="assess",
)
VALIDATION: Final = SubmissionKind(
    Validation,
    "validation",
    update="validate",
    actors=("tutor",),  # also an operator's key, for the institution: recorded as the tutor's
    actor_field=None,
    phases=AT_THE_END,
    route="validation",
    purpose="validate",
    command="validate",
)
SELF_ASSESSMENT: Final = SubmissionKind(
    SelfAssessment,
    "self_assessment",
    update="submit_self_assessment",
    actors=("intern",),
    actor_field=None,
    phases=REPORTING,  # at a milestone that asks for one; the final one AT_THE_END only
    route="self-assessments",
    purpose="self_assess",
    command="self-assess",
)
PLACEMENT_EVALUATION: Final = SubmissionKind(
    PlacementEvaluation,
    "placement_evaluation",
    update="evaluate_placement",
    actors=("intern",),
    actor_field=None,
    phases=AT_THE_END,
    route="placement-evaluations",
    purpose="evaluate_placement",
    command="evaluate-placement",
)

KINDS: Final[tuple[SubmissionKind, ...]] = (
    APPROVAL,
    CHANGE_REQUEST,
    AMENDMENT,
    PAPER_SIGNATURE,
    MILESTONE_REPORT,
    COMPANY_FEEDBACK,
    PAUSE,
    RESUME,
    EXTENSION,
    WITHDRAWAL,
    ASSESSMENT,
    VALIDATION,
    SELF_ASSESSMENT,
    PLACEMENT_EVALUATION,
)
"""Every kind of submission the workflow takes."""

BY_MODEL: Final[dict[type[BaseModel], SubmissionKind]] = {k.model: k for k in KINDS}
BY_KIND: Final[dict[str, SubmissionKind]] = {k.kind: k for k in KINDS}
SUBMISSION_KINDS: Final[frozenset[str]] = frozenset(BY_KIND)
"""Every submission's audit `kind`."""


def kind_of(submission: Any) -> SubmissionKind:
    """The kind of a submission (by its model); KeyError for a model that is none."""
    return BY_MODEL[type(submission)]


def sent_through(purpose: str) -> tuple[SubmissionKind, ...]:
    """The kinds a party link of this purpose sends (the approval link: approvals and change
    requests)."""
    return tuple(k for k in KINDS if k.purpose == purpose)


def admitting_phases(purpose: str) -> frozenset[Phase]:
    """The phases in which a kind this purpose's link sends is admitted."""
    return frozenset().union(*(k.phases for k in sent_through(purpose)))


def who_may(purpose: str) -> frozenset[str]:
    """Who may hold a link of this purpose: whoever sends a kind through it."""
    return frozenset(actor for k in sent_through(purpose) for actor in k.actors)
