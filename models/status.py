"""What a running internship reports about itself: phase, deadlines, submissions and outcome."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime

from models.base import StrictModel


class Phase(StrEnum):
    PLANNING = "planning"
    AWAITING_START = "awaiting_start"
    IN_PROGRESS = "in_progress"
    PAUSED = "paused"
    EVALUATION = "evaluation"
    CERTIFICATION = "certification"
    COMPLETED = "completed"
    NOT_CERTIFIED = "not_certified"
    CANCELLED = "cancelled"
    WITHDRAWN = "withdrawn"

    @property
    def is_final(self) -> bool:
        return self in FINAL_PHASES


FINAL_PHASES = frozenset({Phase.COMPLETED, Phase.NOT_CERTIFIED, Phase.CANCELLED, Phase.WITHDRAWN})


class MilestoneState(StrictModel):
    milestone_id: str
    due: AwareDatetime
    outstanding: tuple[str, ...]
    """Parties who still owe their submission."""
    overdue: bool
    missed: bool


class TimelineEntry(StrictModel):
    """One step of an internship as the workflow saw it: a phase, a submission, an e-mail."""

    at: AwareDatetime
    kind: str
    actor: str
    key: str


class InternshipStatus(StrictModel):
    """Everything an operator's dashboard shows about one internship, in one answer."""

    internship_id: str
    phase: Phase
    plan_version: int
    approvals: dict[str, bool]
    """Whether each party's approval of the current plan version is in."""
    start: AwareDatetime
    end: AwareDatetime
    """The dates in force: the plan's, moved by extensions and paused time."""
    paused_for: float
    """Seconds the internship has been paused in all, which every later deadline moved by."""
    milestones: tuple[MilestoneState, ...]
    next_deadline: AwareDatetime | None
    achieved_levels: dict[str, str]
    credential_id: str | None
    reason: str | None
    """Why the internship ended without a badge (cancelled, withdrawn, not certified)."""


class InternshipOutcome(StrictModel):
    internship_id: str
    phase: Phase
    credential_id: str | None = None
    reason: str | None = None
