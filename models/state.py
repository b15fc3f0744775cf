"""What an internship workflow carries into its next run when it continues as new."""

from __future__ import annotations

from datetime import timedelta

from pydantic import AwareDatetime, Field

from models.base import StrictModel
from models.plan import InternshipPlan
from models.status import Phase, TimelineEntry
from models.submissions import Approval, Assessment, Pause, Receipt, Validation, Withdrawal


class Signature(StrictModel):
    """An approval as kept forever: who approved which plan version, and when."""

    approval: Approval
    at: AwareDatetime


class InternshipState(StrictModel):
    """The workflow's state between runs. A fresh internship starts from the defaults."""

    history_limit: int = Field(2000, ge=20)
    """Continue as new once the run's history has this many events (see the workflow)."""
    started: bool = False
    phase: Phase = Phase.PLANNING
    signatures: tuple[Signature, ...] = ()
    required_since: dict[str, int] = {}
    receipts: dict[str, Receipt] = {}
    submitted: dict[str, tuple[str, ...]] = {}
    missed: tuple[str, ...] = ()
    ladder_done: dict[str, int] = {}
    agreement_reminders_sent: tuple[str, ...] = ()
    assessments: dict[str, Assessment] = {}
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
    timeline: tuple[TimelineEntry, ...] = ()
    evidence: dict[str, str] = {}
    """Milestone id -> report summary the intern agreed to show in the badge."""
    runs: int = 1


class InternshipInput(StrictModel):
    """The workflow's one argument: the plan and, when it continues as new, its state."""

    plan: InternshipPlan
    state: InternshipState = InternshipState()
