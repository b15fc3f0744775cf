"""The plan's pass rule: each outcome's achieved level and which outcomes fall short."""

from __future__ import annotations

from collections.abc import Iterable

from models.plan import InternshipPlan
from models.submissions import Assessment


def achieved_levels(plan: InternshipPlan, assessments: Iterable[Assessment]) -> dict[str, str]:
    """Per learning outcome, the lower of the assessors' levels: an outcome counts as achieved at
    the level that both the company mentor and the institution tutor confirm."""
    achieved: dict[str, str] = {}
    for assessment in assessments:
        for outcome_id, level in assessment.levels.items():
            current = achieved.get(outcome_id)
            if current is None or plan.rubric.rank(level) < plan.rubric.rank(current):
                achieved[outcome_id] = level
    return achieved


def shortfalls(plan: InternshipPlan, achieved: dict[str, str]) -> list[str]:
    """Human-readable reasons why the plan's rule (every outcome at or above its required level)
    is not met; empty when it passes."""
    reasons = []
    for outcome in plan.learning_outcomes:
        level = achieved.get(outcome.id)
        if level is None:
            reasons.append(f"outcome {outcome.id!r} was not assessed")
        elif plan.rubric.rank(level) < plan.rubric.rank(outcome.required_level):
            reasons.append(
                f"outcome {outcome.id!r} reached {level!r}, below the required "
                f"{outcome.required_level!r}"
            )
    return reasons
