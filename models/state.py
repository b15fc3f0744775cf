"""What an internship workflow carries into its next run when it continues as new."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from models.activities import AuditEvent
from models.base import StrictModel
from models.plan import InternshipPlan
from models.status import Phase, TimelineEntry
from models.submissions import (
    Approval,
    Assessment,
    Pause,
    PlacementEvaluation,
    Receipt,
    SelfAssessment,
    Validation,
    Withdrawal,
)


class Signature(StrictModel):
    """An approval as kept forever: who approved which plan version, and when."""

    approval: Approval
    at: AwareDatetime
    signed_on_paper: AwareDatetime | None = None
    """For a signature given on paper and recorded by an operator: when it was signed (`at` is
    when it was recorded; its note is the approval's comment)."""


class InternshipState(BaseModel):
    """The workflow's state between runs, and during one: the workflow holds one of these and
    changes it in place (the only mutable model); a fresh internship starts from the defaults.
    Collections are lists and dicts so that the JSON stays what runs recorded before carried."""

    model_config = ConfigDict(extra="forbid")

    history_limit: int = Field(2000, ge=20)
    """Continue as new once the run's history has this many events (see the workflow)."""
    started: bool = False
    phase: Phase = Phase.PLANNING
    signatures: list[Signature] = Field(default_factory=list)
    required_since: dict[str, int] = Field(default_factory=dict)
    """Per party, the plan version from which its approval counts (an amendment raises it)."""
    receipts: dict[str, Receipt] = Field(default_factory=dict)
    submitted: dict[str, list[str]] = Field(default_factory=dict)
    """Milestone id -> the parties whose submission is in."""
    missed: list[str] = Field(default_factory=list)
    ladder_done: dict[str, int] = Field(default_factory=dict)
    """Milestone id -> how many steps of its reminder ladder are done."""
    agreement_reminders_sent: list[str] = Field(default_factory=list)
    assessments: dict[str, Assessment] = Field(default_factory=dict)
    assessed_at: AwareDatetime | None = None
    validation: Validation | None = None
    withdrawal: Withdrawal | None = None
    pause: Pause | None = None
    paused_at: AwareDatetime | None = None
    shift: timedelta = timedelta(0)
    start_shift: timedelta | None = None
    """The paused time that moved the start, fixed when the internship started (None before, and
    in runs recorded before it was kept: then the start moves with `shift`, as it did)."""
    overdue: bool = False
    credential_id: str | None = None
    reason: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    """No longer kept (the audit trail is the timeline): runs recorded before carried it, so it
    still loads, and a run that finds it counts its records from it and drops it."""
    records: int = 0
    """How many audit events this internship has written: orders the records made at one time."""
    evidence: dict[str, str] = Field(default_factory=dict)
    """Milestone id -> report summary the intern agreed to show in the badge."""
    runs: int = 1
    self_assessments: dict[str, SelfAssessment] = Field(default_factory=dict)
    """Milestone id -> the intern's self-assessment at that milestone."""
    final_self_assessment: SelfAssessment | None = None
    """The intern's self-assessment at the end."""
    placement_evaluation: PlacementEvaluation | None = None
    unconfirmed: list[AuditEvent] = Field(default_factory=list)
    """Rows of submissions whose receiver writes them (the API), kept until the workflow has
    checked that they are there (and written any that is not): see workflows/trail.py,
    `Trail.hold`."""


class InternshipInput(StrictModel):
    """The workflow's one argument: the plan and, when it continues as new, its state."""

    plan: InternshipPlan
    state: InternshipState = Field(default_factory=InternshipState)
