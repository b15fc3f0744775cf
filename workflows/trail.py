"""The internship's audit trail, and what goes with every step of it: the phase, the search
attributes operators filter by, and the status the read model keeps. Workflow code
(deterministic); the writing is the `record_event` activity (effects.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.activities import AuditEvent
    from models.ids import audit_event_id
    from models.plan import InternshipPlan
    from models.state import InternshipState
    from models.status import Phase
    from runtime import search_attributes as sa
    from workflows import effects, rules


class Trail:
    """`plan` gives the plan in force; `on_ending` runs when the internship is withdrawn or
    cancelled (the e-mails still trying are dropped)."""

    def __init__(
        self,
        plan: Callable[[], InternshipPlan],
        state: InternshipState,
        on_ending: Callable[[], None],
    ) -> None:
        self._plan = plan
        self._s = state
        self._on_ending = on_ending

    def set_overdue(self) -> None:
        """Keep the `overdue` search attribute as the status says (only a change is written)."""
        overdue = rules.status(self._plan(), self._s, workflow.now()).overdue
        if overdue != self._s.overdue:
            self._s.overdue = overdue
            workflow.upsert_search_attributes([sa.OVERDUE.value_set(overdue)])

    async def enter(self, phase: Phase, detail: dict[str, Any] | None = None) -> None:
        s = self._s
        s.phase = phase
        if phase in (Phase.WITHDRAWN, Phase.CANCELLED):
            self._on_ending()
        if phase.is_final:
            s.pause = None
        if s.pause is None:
            workflow.upsert_search_attributes([sa.PHASE.value_set(phase.value)])
        if phase.is_final and s.overdue:
            s.overdue = False
            workflow.upsert_search_attributes([sa.OVERDUE.value_set(False)])
        await self.record("phase", "system", phase.value, **(detail or {}))

    async def record(self, kind: str, actor: str, key: str, **detail: Any) -> None:
        """Append one event to the audit trail, with the status right after it."""
        info = workflow.info()
        now = workflow.now()
        s, plan = self._s, self._plan()
        if not s.started:  # a submission that came with the start waits for the plan's row
            await workflow.wait_condition(lambda: s.started)
            plan = self._plan()
        s.records += 1
        # A regular activity, not a local one: a local activity holds the workflow task open
        # until it ends, and under load (10,000 internships, row locks, a PostgreSQL outage)
        # those tasks overran their timeout and were replayed (bench/scale.py).
        try:
            await effects.record(
                AuditEvent(
                    event_id=audit_event_id(info.workflow_id, kind, key),
                    internship_id=plan.internship_id,
                    workflow_id=info.workflow_id,
                    run_id=info.run_id,
                    plan_version=plan.version,
                    actor=actor,
                    kind=kind,
                    phase=rules.reported_phase(s).value,
                    occurred_at=now,
                    detail=detail,
                    seq=s.records,
                    status=rules.status(plan, s, workflow.now()),
                )
            )
        except ActivityError as failure:
            # Only a write PostgreSQL refused for its data ends here (outages are retried): the
            # internship goes on, and the error is logged for the operator (ids only).
            workflow.logger.error("record %s %s refused: %s", kind, key, failure.cause)
