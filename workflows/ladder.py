"""A milestone's reminder ladder as a table: each step, and when it comes relative to the due
date, taken from the plan's reminder policy. The workflow runs the steps in order, each only
while something is still owed, and counts the steps done (`ladder_done`) so a new run skips them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Literal

from models.plan import ReminderPolicy

LadderStep = Literal["milestone_request", "reminder", "escalation", "missed"]

LADDER: tuple[tuple[LadderStep, Callable[[ReminderPolicy], timedelta]], ...] = (
    ("milestone_request", lambda policy: -policy.request_before),  # ask the parties
    ("reminder", lambda policy: policy.remind_after),  # remind them
    ("escalation", lambda policy: policy.escalate_after),  # tell the tutor
    ("missed", lambda policy: policy.missed_after),  # mark missed, tell the operator
)

#: A milestone whose ladder has run this many steps needs nothing more.
LADDER_STEPS = len(LADDER)
