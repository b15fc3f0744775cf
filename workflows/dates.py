"""The dates in force: the plan's dates moved by time spent paused, defined once.

A pause stops the internship's clock: when it resumes, every date still ahead (the end, each
milestone's due date and ladder, the assessment and validation windows) moves by the time spent
paused. A date already behind does not move: the start moves only by pauses before it, and is
fixed when the internship starts. The workflow waits on these dates, reports them in its status
(and so in the read model and on every page), writes them into e-mails, and puts the start and
end into the badge's `activityStartDate`/`activityEndDate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from models.plan import InternshipPlan, Milestone, Period


@dataclass(frozen=True)
class DatesInForce:
    plan: InternshipPlan
    shift: timedelta
    """All the time spent paused so far (while paused: up to the pause)."""
    start_shift: timedelta | None
    """The paused time that moved the start, once it has started; None before."""

    @property
    def start(self) -> datetime:
        shift = self.shift if self.start_shift is None else self.start_shift
        return self.plan.period.start + shift

    @property
    def end(self) -> datetime:
        return self.moved(self.plan.period.end)

    @property
    def assessment_due(self) -> datetime:
        return self.moved(self.plan.period.end + self.plan.assessment_window)

    def due(self, milestone: Milestone) -> datetime:
        return self.moved(milestone.due)

    def overdue_from(self, milestone: Milestone) -> datetime:
        """When something still owed for the milestone makes the internship overdue."""
        return self.due(milestone) + self.plan.reminder_policy.remind_after

    def moved(self, plan_time: datetime) -> datetime:
        """A plan date still ahead, in force: moved by the time spent paused."""
        return plan_time + self.shift

    def period(self) -> Period:
        """The period in force (for the credential)."""
        return self.plan.period.model_copy(update={"start": self.start, "end": self.end})
