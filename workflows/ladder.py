"""A milestone's reminder ladder as a table: each step, and when it comes relative to the due
date, taken from the plan's reminder policy. `climb` runs the steps in order, each only while
something is still owed, and counts the steps done (`ladder_done`) so a new run skips them; a
step that changes the overdue flag records it (since the `overdue-recorded` patch).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from temporalio import workflow

from models.plan import InternshipPlan, Milestone, ReminderPolicy
from models.state import InternshipState
from workflows import effects, rules

if TYPE_CHECKING:  # workflow-side helpers, handed in by the workflow
    from workflows.clock import PausableClock
    from workflows.mail import Mailroom
    from workflows.trail import Trail

LadderStep = Literal["milestone_request", "reminder", "escalation", "missed"]

LADDER: tuple[tuple[LadderStep, Callable[[ReminderPolicy], timedelta]], ...] = (
    ("milestone_request", lambda policy: -policy.request_before),  # ask the parties
    ("reminder", lambda policy: policy.remind_after),  # remind them
    ("escalation", lambda policy: policy.escalate_after),  # tell the tutor
    ("missed", lambda policy: policy.missed_after),  # mark missed, tell the operator
)

#: A milestone whose ladder has run this many steps needs nothing more.
LADDER_STEPS = len(LADDER)


def next_step_at(milestone: Milestone, policy: ReminderPolicy, done: int) -> datetime | None:
    """When (plan time) the ladder of a milestone that has done `done` steps takes its next one;
    None when it has none left. A ladder in the middle of a step has its step's moment behind
    it."""
    if done >= LADDER_STEPS:
        return None
    return milestone.due + LADDER[done][1](policy)


async def climb(
    milestone: Milestone,
    plan: Callable[[], InternshipPlan],
    state: InternshipState,
    clock: PausableClock,
    mail: Mailroom,
    trail: Trail,
) -> None:
    """Ask, remind, escalate to the tutor, then mark missed and tell the operator: each step
    only while something is still owed. Workflow code: it waits on the workflow's clock."""
    s = state
    for index, (step, offset) in enumerate(LADDER):
        if index < s.ladder_done.get(milestone.id, 0):
            continue
        if await clock.wait_until(
            # The policy is read when waiting: an amendment can change it.
            lambda offset=offset: milestone.due + offset(plan().reminder_policy),  # type: ignore[misc]
            lambda: not rules.outstanding(s, milestone),
        ):
            return
        if s.withdrawal is not None:
            return
        owing = rules.outstanding(s, milestone)
        if step == "milestone_request" or step == "reminder":
            for party in owing:
                # Only plans that ask for a self-assessment carry the flag.
                asks = {"self_assessment": "yes"} if milestone.self_assessment else {}
                await mail.notify(step, party, key=milestone.id, milestone=milestone.title, **asks)
        elif step == "escalation":
            await mail.notify("escalation", "tutor", key=milestone.id, milestone=milestone.title)
        else:
            if milestone.id not in s.missed:  # a list kept as a set
                s.missed.append(milestone.id)
            await trail.record("milestone_missed", "system", milestone.id, owing=owing)
            await mail.notify("missed", "operator", key=milestone.id, milestone=milestone.title)
        s.ladder_done[milestone.id] = index + 1
        if trail.set_overdue() and workflow.patched(effects.OVERDUE_RECORDED):
            # The time passing this step made the internship overdue (or no longer): recorded
            # like every other change, so the read model's flag follows the workflow.
            trail.record_overdue(f"{milestone.id}-{step}", milestone_id=milestone.id)
