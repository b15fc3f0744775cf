"""What a running internship reports about itself: phase, deadlines, submissions and outcome."""

from __future__ import annotations

from datetime import datetime
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
    """Something is still owed past the reminder (due + the plan's `remind_after`)."""
    missed: bool
    title: str | None = None
    late: bool = False
    """Something is still owed past the due date (not yet overdue, perhaps)."""
    overdue_from: AwareDatetime | None = None
    """When the milestone becomes overdue if something is still owed (the workflow's rule)."""


class SignatureView(StrictModel):
    """One approval of one plan version."""

    party: str
    plan_version: int
    at: AwareDatetime
    on_paper: bool = False
    signed_at: AwareDatetime | None = None
    """On paper: when it was signed (`at` is when an operator recorded it)."""
    note: str | None = None
    """On paper: the operator's note."""


class Deadline(StrictModel):
    """A date in force that someone has to meet (or that starts or ends a phase)."""

    what: str
    at: AwareDatetime


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
    signatures: tuple[SignatureView, ...] = ()
    """Every approval given, of every plan version."""
    deadlines: tuple[Deadline, ...] = ()
    """The dates in force still to come for the current phase, earliest first."""
    as_of: AwareDatetime | None = None
    """The workflow time this status describes (the read model's copy is as of its last
    record; `at` brings its time-dependent flags to the time of reading)."""

    def at(self, moment: datetime) -> InternshipStatus:
        """This status at a later `moment`, nothing having happened since: which milestones are
        late (something owed past the due date) or overdue (past the reminder, the `overdue`
        search attribute's rule), and the next deadline. The clock stands still while paused
        and outside the monitored phases."""
        if self.as_of is not None:
            moment = max(moment, self.as_of)
        ticking = self.phase in (Phase.IN_PROGRESS, Phase.EVALUATION)
        milestones = tuple(
            m.model_copy(
                update={
                    "late": bool(m.outstanding) and ticking and moment > m.due,
                    "overdue": bool(m.outstanding)
                    and ticking
                    and m.overdue_from is not None
                    and moment > m.overdue_from,
                }
            )
            for m in self.milestones
        )
        ahead = [d for d in self.deadlines if d.at > moment]
        return self.model_copy(
            update={
                "milestones": milestones,
                "deadlines": tuple(ahead),
                "next_deadline": ahead[0].at if ahead and self.phase != Phase.PAUSED else None,
                "as_of": moment,
            }
        )

    @property
    def overdue(self) -> bool:
        return any(m.overdue for m in self.milestones)


class InternshipOutcome(StrictModel):
    internship_id: str
    phase: Phase
    credential_id: str | None = None
    reason: str | None = None
