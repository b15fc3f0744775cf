"""What a party link stands for right now, read from the records: whether its step is open (and
if not, why: not yet, paused, waiting for others, done, over), what its holder already sent with
each receipt, and for the validation both assessments with the plan's pass rule applied. The
page and the JSON API say this before any form; the workflow stays the judge of a submission."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import asyncpg
from pydantic import ValidationError

from models import kinds
from models.evaluation import achieved_levels, shortfalls
from models.kinds import PURPOSES
from models.plan import InternshipPlan
from models.status import InternshipStatus, MilestoneState, Phase
from models.submissions import Assessment
from runtime.links import PartyGrant

StepState = Literal["open", "done", "not_yet", "paused", "waiting", "closed", "unknown"]
"""open: the form can be sent. done: sent, and it cannot be sent again (an approval, an
assessment, the validation). not_yet: the step opens later. paused: the internship is paused.
waiting: for someone else first (validation before both assessments). closed: the step is over.
unknown: the internship is not recorded (yet)."""


def _kinds_read(purpose: str) -> tuple[str, ...]:
    """The submission kinds a purpose's step reads: those its link sends (models/kinds.py) and,
    on the approval step, a signature given on paper, which counts as the signer's approval."""
    read = [k.kind for k in kinds.sent_through(purpose)]
    if purpose == "approve":
        read.append(kinds.PAPER_SIGNATURE.kind)
    return tuple(read)


#: The submission kinds each purpose's step reads.
KINDS: Final[dict[str, tuple[str, ...]]] = {purpose: _kinds_read(purpose) for purpose in PURPOSES}
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
    """The step `grant` stands for on the internship as recorded (see `Step`): read by its
    purpose's function in `_STEPS`."""
    row = await conn.fetchrow(
        "SELECT phase, status FROM internships WHERE internship_id = $1", grant.internship_id
    )
    if row is None:
        return Step(purpose=grant.purpose, state="unknown", phase=None)
    status: InternshipStatus | None = None
    if row["status"] is not None:
        try:
            status = InternshipStatus.model_validate_json(row["status"])
            status = status.at(now or datetime.now(UTC))
        except ValidationError:
            status = None
    sent = await _sent(conn, grant.internship_id, KINDS[grant.purpose])
    seen = _Seen(conn, grant, plan, Phase(row["phase"]), status, tuple(sent))
    return await _STEPS.get(grant.purpose, _given_once)(seen)


@dataclass(frozen=True)
class _Seen:
    """What a step is read from: the link, the plan, the internship's phase and status as
    recorded, and what was sent through links of this purpose (latest first)."""

    conn: asyncpg.Connection | asyncpg.Pool
    grant: PartyGrant
    plan: InternshipPlan
    phase: Phase
    status: InternshipStatus | None
    sent: tuple[Sent, ...]

    @property
    def start(self) -> datetime:
        return self.status.start if self.status is not None else self.plan.period.start

    @property
    def end(self) -> datetime:
        return self.status.end if self.status is not None else self.plan.period.end


#: The phases a step goes through, in order (a pause keeps the internship in one of the first
#: three; the other final phases end it from any of them).
_LIFECYCLE: Final = (
    Phase.PLANNING,
    Phase.AWAITING_START,
    Phase.IN_PROGRESS,
    Phase.EVALUATION,
    Phase.CERTIFICATION,
)


def _phase_state(phase: Phase, admitted: frozenset[Phase]) -> StepState:
    """Where a step stands in `phase` when its submission is admitted in `admitted` (the
    registry's phases): open in them; paused while a pause holds the internship in one of them;
    not yet before the first of them; closed after it, and once the internship has ended."""
    first = min(_LIFECYCLE.index(p) for p in admitted if p in _LIFECYCLE)
    if phase == Phase.PAUSED:  # a pause comes only while awaiting the start or in progress
        if admitted & kinds.PAUSABLE:
            return "paused"
        return "not_yet" if first > _LIFECYCLE.index(Phase.IN_PROGRESS) else "closed"
    if phase in admitted:
        return "open"
    if phase in _LIFECYCLE and _LIFECYCLE.index(phase) < first:
        return "not_yet"
    return "closed"


def _opens(seen: _Seen, admitted: frozenset[Phase], state: StepState) -> datetime | None:
    """When a step that is not open yet is expected to open: the start or the end in force, for
    a submission first admitted then."""
    if state != "not_yet":
        return None
    first = min((p for p in admitted if p in _LIFECYCLE), key=_LIFECYCLE.index)
    return {Phase.IN_PROGRESS: seen.start, Phase.EVALUATION: seen.end}.get(first)


async def _approval(seen: _Seen) -> Step:
    """The signer's approval of the current version, through the link or on paper: open during
    planning until it is in."""
    grant = seen.grant
    mine = tuple(
        s
        for s in seen.sent
        if s.actor == grant.party
        or (s.kind == kinds.PAPER_SIGNATURE.kind and s.values.get("role") == grant.party)
    )
    approved = bool(seen.status and seen.status.approvals.get(grant.party))
    state = _phase_state(seen.phase, kinds.admitting_phases(grant.purpose))
    if state == "open" and approved:
        state = "done"
    return Step(grant.purpose, state, seen.phase, mine, approved=approved)


async def _milestone(seen: _Seen) -> Step:
    """A milestone's report or feedback: open while admitted, and correctable (a new one
    supersedes the latest)."""
    grant = seen.grant
    mine = tuple(s for s in seen.sent if s.milestone_id == grant.milestone_id)
    milestone = _milestone_state(seen.status, grant.milestone_id)
    due = milestone.due if milestone is not None else None
    if due is None and grant.milestone_id is not None:
        planned = seen.plan.milestone(grant.milestone_id)
        due = planned.due if planned is not None else None
    admitted = kinds.admitting_phases(grant.purpose)
    state = _phase_state(seen.phase, admitted)
    return Step(
        grant.purpose,
        state,
        seen.phase,
        mine,
        correctable=True,
        due=due,
        missed=bool(milestone and milestone.missed),
        opens=_opens(seen, admitted, state),
    )


def _once(seen: _Seen, admitted: frozenset[Phase]) -> Step:
    """A submission its sender gives once while it is admitted: done once it is in. What the
    holder sent: theirs, and for kinds sent per milestone, the link's milestone's (None: the
    end's)."""
    grant = seen.grant
    per_milestone = any(
        "milestone_id" in k.model.model_fields for k in kinds.sent_through(grant.purpose)
    )
    mine = tuple(
        s
        for s in seen.sent
        if s.actor == grant.party and (not per_milestone or s.milestone_id == grant.milestone_id)
    )
    state = _phase_state(seen.phase, admitted)
    if state == "open" and mine:
        state = "done"
    return Step(grant.purpose, state, seen.phase, mine, opens=_opens(seen, admitted, state))


async def _given_once(seen: _Seen) -> Step:
    """An assessment, the evaluation of the placement, and any purpose `_STEPS` does not
    name."""
    return _once(seen, kinds.admitting_phases(seen.grant.purpose))


async def _self_assessment(seen: _Seen) -> Step:
    """At a milestone that asks for one, while reports are admitted; the final one (a link
    without a milestone) at the end."""
    at_milestone = seen.grant.milestone_id is not None
    return _once(seen, kinds.SELF_ASSESSMENT.phases if at_milestone else kinds.AT_THE_END)


async def _validation(seen: _Seen) -> Step:
    """The tutor's validation: both assessments and what the pass rule makes of them (the
    intern's final self-assessment beside them); waiting until both are in."""
    grant = seen.grant
    iid = grant.internship_id
    assessments = {
        s.actor: s
        for s in reversed(await _sent(seen.conn, iid, (kinds.ASSESSMENT.kind,)))
        if s.actor in kinds.ASSESSMENT.actors
    }
    own = tuple(reversed(await _sent(seen.conn, iid, (kinds.SELF_ASSESSMENT.kind,))))
    final = next((s for s in own if s.milestone_id is None), None)
    checks, short = _checks(seen.plan, assessments, final)
    waiting_for = tuple(a for a in kinds.ASSESSMENT.actors if a not in assessments)
    admitted = kinds.admitting_phases(grant.purpose)
    state = _phase_state(seen.phase, admitted)
    if state == "open" and seen.sent:
        state = "done"
    elif state == "open" and waiting_for:
        state = "waiting"
    return Step(
        grant.purpose,
        state,
        seen.phase,
        seen.sent,
        opens=_opens(seen, admitted, state),
        waiting_for=waiting_for,
        assessments=assessments,
        checks=checks,
        shortfalls=tuple(short),
        self_assessments=own,
    )


#: Each purpose's step, read by its function; a purpose not named here is a submission given
#: once (`_given_once`).
_STEPS: Final[dict[str, Callable[[_Seen], Awaitable[Step]]]] = {
    "approve": _approval,
    "report": _milestone,
    "feedback": _milestone,
    "assess": _given_once,
    "validate": _validation,
    "self_assess": _self_assessment,
    "evaluate_placement": _given_once,
}


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
