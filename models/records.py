"""What the PostgreSQL records answer: internships found by a search, a timeline, cohort figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from models.base import StrictModel
from models.status import Phase


class InternshipRow(StrictModel):
    """One internship as its workflow last recorded it (ids only, no personal data)."""

    internship_id: str
    workflow_id: str
    institution_id: str
    company_id: str
    phase: Phase
    plan_version: int
    start_at: AwareDatetime
    end_at: AwareDatetime
    """The planned period of the latest plan version (an extension moves the end)."""
    overdue: bool
    """A milestone is past its reminder and someone still owes a submission."""
    updated_at: AwareDatetime
    """The workflow time of the latest recorded step."""


class DetailField(StrictModel):
    """One labelled part of a timeline step's detail, readable as it stands ("comment", "Fine.";
    "ratings", "lo-web = good, lo-team = excellent"). Texts keep their line breaks."""

    label: str
    value: str


class TimelineRow(StrictModel):
    """One step of the audit trail: a phase, a submission, a missed milestone, a failed e-mail."""

    seq: int
    event_id: str
    occurred_at: AwareDatetime
    kind: str
    key: str
    """What the step is about: the phase entered, the submission id, the milestone id."""
    actor: str
    phase: str
    plan_version: int
    detail: dict[str, Any]
    """What the workflow recorded, as it recorded it."""
    fields: list[DetailField] = Field(default_factory=list)
    """The same detail as labelled, readable fields (what people wrote, in full)."""


class CohortStats(StrictModel):
    """Figures for the internships that match a filter (an institution, a range of start dates)."""

    institution_id: str | None
    start_from: datetime | None
    start_to: datetime | None
    internships: int
    by_phase: dict[Phase, int]
    """How many internships are in each phase (phases with none are left out)."""
    milestone_submissions: int
    """Milestone reports and company feedback answering a milestone."""
    on_time_submissions: int
    on_time_rate: float | None = Field(None, ge=0, le=1)
    """on_time_submissions / milestone_submissions, None when there are none."""
    completed: int
    not_certified: int
    pass_rate: float | None = Field(None, ge=0, le=1)
    """completed / (completed + not_certified), None before any internship was decided."""
