"""What a party link stands for right now, read from the records: whether its step is open (and
if not, why: not yet, paused, waiting for others, done, over), what its holder already sent with
each receipt, and for the validation both assessments with the plan's pass rule applied. The
page and the JSON API say this before any form; the workflow stays the judge of a submission."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import asyncpg
from pydantic import ValidationError

from models.evaluation import achieved_levels, shortfalls
from models.plan import InternshipPlan
from models.status import InternshipStatus, MilestoneState, Phase
from models.submissions import Assessment
from runtime.links import PartyGrant
from workflows.internship import FEEDBACK_PHASES, REPORT_PHASES

StepState = Literal["open", "done", "not_yet", "paused", "waiting", "closed", "unknown"]
"""open: the form can be sent. done: sent, and it cannot be sent again (an approval, an
assessment, the validation). not_yet: the step opens later. paused: the internship is paused.
waiting: for someone else first (validation before both assessments). closed: the step is over.
unknown: the internship is not recorded (yet)."""

#: The submission kinds each purpose's link sends.
KINDS: Final[dict[str, tuple[str, ...]]] = {
    "approve": ("approval", "change_request", "paper_signature"),
    "report": ("milestone_report",),
    "feedback": ("company_feedback",),
    "assess": ("assessment",),
    "validate": ("validation",),
    "self_assess": ("self_assessment",),
    "evaluate_placement": ("placement_evaluation",),
}
#: Purposes where a new submission supersedes the earlier one (both stay in the history).
CORRECTABLE: Final = frozenset({"report", "feedback"})


@dataclass(frozen=True)
class Sent:
    """One accepted submission as recorded, with its receipt's facts and what was written."""

    submission_id: str
    kind: str
    actor: str
    milestone_id: str | None
    plan_version: int
    late: bool
    accepted_at: datetime
    values: dict[str, Any]
    """What the sender wrote: summary, share_in_badge, ratings, attendance_hours, comments,
    levels, comment, decision, reason (as the workflow recorded them)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "submission_id": self.submission_id,
            "kind": self.kind,
            "milestone_id": self.milestone_id,
            "plan_version": self.plan_version,
            "late": self.late,
            "accepted_at": self.accepted_at.isoformat(),
            "values": self.values,
        }


@dataclass(frozen=True)
class OutcomeCheck:
    """One learning outcome under the pass rule: both assessors' levels, the achieved level (the
    lower of the two) and whether it reaches the required one."""

    outcome_id: str
    title: str
    required: str
    mentor: str | None
    tutor: str | None
    intern: str | None
    """The intern's final self-assessment (shown beside, never in the rule)."""
    achieved: str | None
    reaches: bool


@dataclass(frozen=True)
class Step:
    purpose: str
    state: StepState
    phase: Phase | None
    sent: tuple[Sent, ...] = ()
    """This link's accepted submissions, latest first."""
    correctable: bool = False
    """A new submission supersedes the latest one (reports, feedback)."""
    due: datetime | None = None
    """The milestone's due date in force (milestone links)."""
    missed: bool = False
    opens: datetime | None = None
    """When a step that is not open yet is expected to open (the start or the end in force)."""
    approved: bool = False
    """Approval links: this party's approval of the current plan version is in."""
    waiting_for: tuple[str, ...] = ()
    """Validation: the assessors still to assess."""
    assessments: dict[str, Sent] = field(default_factory=dict)
    checks: tuple[OutcomeCheck, ...] = ()
    shortfalls: tuple[str, ...] = ()
    """Validation: why pass is not possible (the workflow's own words); empty when it is."""
    self_assessments: tuple[Sent, ...] = ()
    """Validation: the intern's self-assessments, at milestones and at the end, earliest first."""

    @property
    def open(self) -> bool:
        return self.state == "open"

    @property
    def latest(self) -> Sent | None:
        return self.sent[0] if self.sent else None

    def message(self) -> str:
        """The step's state in plain English (the JSON API's words; pages translate)."""
        return _MESSAGES[self.state].get(self.purpose) or _MESSAGES[self.state]["*"]


_MESSAGES: Final[dict[str, dict[str, str]]] = {
    "open": {"*": "open: send the form"},
    "done": {
        "approve": "approved: nothing more to do unless the plan changes",
        "assess": "assessed: an assessment cannot be changed",
        "validate": "validated: the result is decided",
        "self_assess": "self-assessed: a self-assessment cannot be changed",
        "evaluate_placement": "evaluated: an evaluation of the placement cannot be changed",
        "*": "sent",
    },
    "not_yet": {
        "feedback": "not open yet: feedback opens once every party has approved the agreement",
        "report": "not open yet: reports open when the internship starts",
        "assess": "not open yet: the final assessment opens when the internship ends",
        "validate": "not open yet: validation opens once both assessments are in",
        "self_assess": "not open yet: it opens at the milestone, or when the internship ends",
        "evaluate_placement": "not open yet: it opens when the internship ends",
        "*": "not open yet",
    },
    "paused": {"*": "the internship is paused: nothing can be sent until it resumes"},
    "waiting": {"*": "waiting for both final assessments"},
    "closed": {"*": "closed: this step is over, nothing more can be sent"},
    "unknown": {"*": "this internship is not recorded (yet)"},
}


def _json(value: Any) -> dict[str, Any]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return dict(loaded) if isinstance(loaded, dict) else {}


async def _sent(
    conn: asyncpg.Connection | asyncpg.Pool, internship_id: str, kinds: tuple[str, ...]
) -> list[Sent]:
    rows = await conn.fetch(
        """
        SELECT submission_id, kind, actor, milestone_id, plan_version, late, accepted_at, payload
        FROM submissions WHERE internship_id = $1 AND kind = ANY($2::text[])
        ORDER BY accepted_at DESC, submission_id DESC
        """,
        internship_id,
        list(kinds),
    )
    return [
        Sent(
            submission_id=row["submission_id"],
            kind=row["kind"],
            actor=row["actor"],
            milestone_id=row["milestone_id"],
            plan_version=row["plan_version"],
            late=row["late"],
            accepted_at=row["accepted_at"],
            values=_json(row["payload"]),
        )
        for row in rows
    ]


async def read_step(
    conn: asyncpg.Connection | asyncpg.Pool,
    grant: PartyGrant,
    plan: InternshipPlan,
    now: datetime | None = None,
) -> Step:
    """The step `grant` stands for on the internship as recorded (see `Step`)."""
    row = await conn.fetchrow(
        "SELECT phase, status FROM internships WHERE internship_id = $1", grant.internship_id
    )
    if row is None:
        return Step(purpose=grant.purpose, state="unknown", phase=None)
    phase = Phase(row["phase"])
    status: InternshipStatus | None = None
    if row["status"] is not None:
        try:
            status = InternshipStatus.model_validate_json(row["status"])
            status = status.at(now or datetime.now(UTC))
        except ValidationError:
            status = None
    start = status.start if status is not None else plan.period.start
    end = status.end if status is not None else plan.period.end
    sent = await _sent(conn, grant.internship_id, KINDS[grant.purpose])
    purpose = grant.purpose

    if purpose == "approve":
        mine = tuple(
            s
            for s in sent
            if s.actor == grant.party
            or (s.kind == "paper_signature" and s.values.get("role") == grant.party)
        )
        approved = bool(status and status.approvals.get(grant.party))
        if phase != Phase.PLANNING:
            state: StepState = "closed"
        else:
            state = "done" if approved else "open"
        return Step(purpose, state, phase, mine, approved=approved)

    if purpose in ("report", "feedback"):
        mine = tuple(s for s in sent if s.milestone_id == grant.milestone_id)
        milestone = _milestone_state(status, grant.milestone_id)
        due = milestone.due if milestone is not None else None
        if due is None and grant.milestone_id is not None:
            planned = plan.milestone(grant.milestone_id)
            due = planned.due if planned is not None else None
        phases = REPORT_PHASES if purpose == "report" else FEEDBACK_PHASES
        if phase == Phase.PAUSED:
            state = "paused"
        elif phase in phases:
            state = "open"
        elif phase in (Phase.PLANNING, Phase.AWAITING_START):
            state = "not_yet"
        else:
            state = "closed"
        return Step(
            purpose,
            state,
            phase,
            mine,
            correctable=True,
            due=due,
            missed=bool(milestone and milestone.missed),
            opens=start if state == "not_yet" and purpose == "report" else None,
        )

    if purpose == "self_assess" and grant.milestone_id is not None:
        mine = tuple(s for s in sent if s.milestone_id == grant.milestone_id)
        if phase == Phase.PAUSED:
            state = "paused"
        elif phase in REPORT_PHASES:
            state = "done" if mine else "open"
        elif phase in (Phase.PLANNING, Phase.AWAITING_START):
            state = "not_yet"
        else:
            state = "closed"
        return Step(purpose, state, phase, mine, opens=start if state == "not_yet" else None)

    if purpose in ("self_assess", "evaluate_placement"):
        # The end's: the final self-assessment (no milestone), the evaluation of the placement.
        mine = tuple(s for s in sent if s.milestone_id is None)
        state = _evaluation_state(phase)
        if state == "open" and mine:
            state = "done"
        return Step(purpose, state, phase, mine, opens=end if state == "not_yet" else None)

    if purpose == "assess":
        mine = tuple(s for s in sent if s.actor == grant.party)
        state = _evaluation_state(phase)
        if state == "open" and mine:
            state = "done"
        return Step(purpose, state, phase, mine, opens=end if state == "not_yet" else None)

    # validate: both assessments, and what the rule makes of them
    assessments = {
        s.actor: s
        for s in reversed(await _sent(conn, grant.internship_id, ("assessment",)))
        if s.actor in ("mentor", "tutor")
    }
    own = tuple(reversed(await _sent(conn, grant.internship_id, ("self_assessment",))))
    final = next((s for s in own if s.milestone_id is None), None)
    checks, short = _checks(plan, assessments, final)
    waiting_for = tuple(a for a in ("mentor", "tutor") if a not in assessments)
    state = _evaluation_state(phase)
    if state == "open" and sent:
        state = "done"
    elif state == "open" and waiting_for:
        state = "waiting"
    return Step(
        purpose,
        state,
        phase,
        tuple(sent),
        opens=end if state == "not_yet" else None,
        waiting_for=waiting_for,
        assessments=assessments,
        checks=checks,
        shortfalls=tuple(short),
        self_assessments=own,
    )


def _evaluation_state(phase: Phase) -> StepState:
    if phase == Phase.EVALUATION:
        return "open"
    if phase == Phase.PAUSED or not (phase.is_final or phase == Phase.CERTIFICATION):
        return "not_yet"
    return "closed"


def _milestone_state(
    status: InternshipStatus | None, milestone_id: str | None
) -> MilestoneState | None:
    if status is None or milestone_id is None:
        return None
    return next((m for m in status.milestones if m.milestone_id == milestone_id), None)


def _checks(
    plan: InternshipPlan, assessments: dict[str, Sent], own: Sent | None = None
) -> tuple[tuple[OutcomeCheck, ...], list[str]]:
    """Each outcome under the pass rule (`models.evaluation`, the workflow's own rule)."""
    levels: dict[str, dict[str, str]] = {}
    for assessor, sent in assessments.items():
        given = sent.values.get("levels")
        levels[assessor] = (
            {str(k): str(v) for k, v in given.items()} if isinstance(given, dict) else {}
        )
    try:
        achieved = achieved_levels(
            plan,
            [
                Assessment(submission_id=s.submission_id, assessor=a, levels=levels[a])
                for a, s in assessments.items()
            ],
        )
    except (ValidationError, ValueError):
        achieved = {}
    if len(assessments) < 2:
        achieved = {}
    checks = []
    for outcome in plan.learning_outcomes:
        level = achieved.get(outcome.id)
        reaches = level is not None and plan.rubric.rank(level) >= plan.rubric.rank(
            outcome.required_level
        )
        checks.append(
            OutcomeCheck(
                outcome_id=outcome.id,
                title=outcome.title,
                required=outcome.required_level,
                mentor=levels.get("mentor", {}).get(outcome.id),
                tutor=levels.get("tutor", {}).get(outcome.id),
                intern=_level_of(own, outcome.id),
                achieved=level,
                reaches=reaches,
            )
        )
    short = shortfalls(plan, achieved) if len(assessments) == 2 else []
    return tuple(checks), short


def _level_of(sent: Sent | None, outcome_id: str) -> str | None:
    levels = sent.values.get("levels") if sent is not None else None
    level = levels.get(outcome_id) if isinstance(levels, dict) else None
    return str(level) if level is not None else None
