"""The internship's audit trail, and what goes with every step of it: the phase, the search
attributes operators filter by, and the status the read model keeps. Workflow code
(deterministic); the writing is the `record_event` activity (effects.py), or, for a submission
whose receiver writes its row (the API), the confirmation of those rows in batches
(`missing_records`, then `record_events` for any row missing)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.activities import AuditEvent
    from models.ids import audit_event_id
    from models.plan import InternshipPlan
    from models.state import InternshipState
    from models.status import InternshipStatus, Phase
    from runtime import search_attributes as sa
    from workflows import effects, rules


CONFIRM_AFTER = timedelta(minutes=5)
"""How long a row its receiver wrote waits before the workflow checks that it is there (and
writes it if not): the bound on how long a row is missing when its receiver failed to write it."""
CONFIRM_BATCH = 50
"""Rows waiting for confirmation that make the workflow confirm them at once (keeps the state
it carries small under a flood of submissions)."""


class Trail:
    """`plan` gives the plan in force; `on_ending` runs when the internship is withdrawn or
    cancelled (the e-mails still trying are dropped); `background` is the workflow's set of tasks
    it waits for before it ends or continues as new."""

    def __init__(
        self,
        plan: Callable[[], InternshipPlan],
        state: InternshipState,
        on_ending: Callable[[], None],
        background: set[asyncio.Task[None]],
    ) -> None:
        self._plan = plan
        self._s = state
        self._on_ending = on_ending
        self._background = background
        self._confirming: asyncio.Task[None] | None = None
        self._closing = False

    def set_overdue(self, status: InternshipStatus | None = None) -> bool:
        """Keep the `overdue` search attribute as the status (now) says (only a change is
        written); True when it changed. A change that no record of its own carries (the time
        passing a milestone's reminder) is recorded by the caller (`record_overdue`)."""
        if status is None:
            status = rules.status(self._plan(), self._s, workflow.now())
        overdue = status.overdue
        if overdue == self._s.overdue:
            return False
        self._s.overdue = overdue
        workflow.upsert_search_attributes([sa.OVERDUE.value_set(overdue)])
        return True

    def record_overdue(self, key: str, **detail: Any) -> None:
        """Record a change of the overdue flag that time made (a ladder step): the record carries
        the status, from which the read model takes its flag as from every record
        (records/write.py); no activity writes it for the workflow. `key` names the step (once
        per internship). Written in the background: a ladder cancelled meanwhile (the run
        continuing as new, the monitoring ending) does not cancel it, and the run waits for it
        before it ends or continues."""
        task = asyncio.create_task(
            self.record("overdue", "system", key, overdue=self._s.overdue, **detail)
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        s = self._s
        at = workflow.now()
        if not s.started:  # a submission that came with the start waits for the plan's row
            await workflow.wait_condition(lambda: s.started)
        event = self.event(kind, actor, key, detail, at=at)
        # A regular activity, not a local one: a local activity holds the workflow task open
        # until it ends, and under load (10,000 internships, row locks, a PostgreSQL outage)
        # those tasks overran their timeout and were replayed (bench/scale.py).
        try:
            await effects.record(event)
        except ActivityError as failure:
            # Only a write PostgreSQL refused for its data ends here (outages are retried): the
            # internship goes on, and the error is logged for the operator (ids only).
            workflow.logger.error("record %s %s refused: %s", kind, key, failure.cause)

    def event(
        self,
        kind: str,
        actor: str,
        key: str,
        detail: dict[str, Any],
        at: datetime,
        status: InternshipStatus | None = None,
    ) -> AuditEvent:
        """The next event of the audit trail, which happened `at`, with the status as it is now
        (`status`, or worked out here); not yet written."""
        info = workflow.info()
        s, plan = self._s, self._plan()
        s.records += 1
        return AuditEvent(
            event_id=audit_event_id(info.workflow_id, kind, key),
            internship_id=plan.internship_id,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            plan_version=plan.version,
            actor=actor,
            kind=kind,
            phase=rules.reported_phase(s).value,
            occurred_at=at,
            detail=detail,
            seq=s.records,
            status=status if status is not None else rules.status(plan, s, workflow.now()),
        )

    # ------------------------------------------------------- rows written by their receiver

    def hold(self, event: AuditEvent) -> None:
        """The receiver of a submission writes its row (the API, before it answers): the
        workflow keeps the row (without the status) and, after CONFIRM_AFTER, at CONFIRM_BATCH
        rows, or before it ends or continues as new, checks that its rows are there and writes
        any that is not (idempotent by event id). A row its receiver could not write is there
        within CONFIRM_AFTER; one activity confirms many submissions."""
        self._s.unconfirmed.append(event.model_copy(update={"status": None}))
        if self._confirming is None:
            self._start_confirming()

    def close(self) -> None:
        """The run is about to end or continue as new: confirm what waits now (also rows a
        previous run carried over)."""
        self._closing = True
        if self._s.unconfirmed and self._confirming is None:
            self._start_confirming()

    def _start_confirming(self) -> None:
        task = asyncio.create_task(self._confirm())
        self._confirming = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _confirm(self) -> None:
        s = self._s
        try:
            try:
                await workflow.wait_condition(
                    lambda: self._closing or len(s.unconfirmed) >= CONFIRM_BATCH,
                    timeout=CONFIRM_AFTER,
                )
            except TimeoutError:
                pass
            while s.unconfirmed:
                batch = list(s.unconfirmed)
                await self._write_missing(batch)
                del s.unconfirmed[: len(batch)]
        finally:
            self._confirming = None

    async def _write_missing(self, batch: list[AuditEvent]) -> None:
        ids = [event.event_id for event in batch]
        try:
            # Read first (ids only, a small activity): the receiver has almost always written
            # them, and the rows themselves then never travel through Temporal again.
            missing = set(await effects.missing_records(ids))
        except ActivityError as failure:  # not for an outage (retried): write them all
            workflow.logger.error("reading %d records failed: %s", len(ids), failure.cause)
            missing = set(ids)
        if not missing:
            return
        events = [event for event in batch if event.event_id in missing]
        # The last carries the status as it is now (older statuses are history: the read model
        # keeps the newest, and never goes back before a newer record).
        events[-1] = events[-1].model_copy(
            update={"status": rules.status(self._plan(), self._s, workflow.now())}
        )
        try:
            await effects.record_all(events)
        except ActivityError as failure:
            workflow.logger.error(
                "records of %d submissions refused: %s", len(events), failure.cause
            )
