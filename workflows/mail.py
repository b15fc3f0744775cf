"""The workflow's e-mails: each goes out beside the main line, so nothing waits for the mail
server; a failure for good is recorded and told to the operator; a withdrawal or cancellation
drops the e-mails still trying that no longer hold. Workflow code (deterministic): the sending
itself is the `send_notification` activity (effects.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from models.activities import Notification, NotificationKind
    from models.ids import notification_id
    from models.plan import InternshipPlan, Language
    from models.state import InternshipState
    from workflows import effects

Record = Callable[..., Awaitable[None]]


class Mailroom:
    """`plan` gives the plan in force (an amendment replaces it); `record` writes an audit event;
    `background` is the workflow's set of tasks it waits for before it ends or continues."""

    def __init__(
        self,
        plan: Callable[[], InternshipPlan],
        state: InternshipState,
        record: Record,
        background: set[asyncio.Task[None]],
    ) -> None:
        self._plan = plan
        self._s = state
        self._record = record
        self._background = background
        self._pending: dict[asyncio.Task[None], NotificationKind] = {}
        """E-mails going out beside the main line, by kind."""

    async def notify(self, kind: NotificationKind, role: str, key: str, **values: str) -> None:
        """E-mail one person, beside the main line: nothing waits for the mail server, so a
        server that defers every message holds up no step, deadline or withdrawal. A failure is
        recorded and the internship goes on; for anyone but the operator, the operator is told
        with a `delivery_failed` e-mail."""
        await self._notify(kind, role, key, values, after_plan=False)

    async def notify_after_plan(
        self, kind: NotificationKind, role: str, key: str, **values: str
    ) -> None:
        """`notify`, for an e-mail that can be asked for while the run is still saving its plan
        (a change request): it goes out once the plan is saved, so that its activity reads the
        plan's record and never waits for one."""
        await self._notify(kind, role, key, values, after_plan=True)

    async def _notify(
        self, kind: NotificationKind, role: str, key: str, values: dict[str, str], after_plan: bool
    ) -> None:
        if not workflow.patched(effects.MAIL_BESIDE_MAIN_LINE):
            await self.send(kind, role, key, values, after_plan=after_plan)
            return
        task = asyncio.create_task(self.send(kind, role, key, values, after_plan=after_plan))
        self._pending[task] = kind
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        self._pending.pop(task, None)

    def drop_pending(self) -> None:
        """An internship withdrawn or cancelled: stop the e-mails still trying that ask or tell
        something no longer true (their activities are cancelled)."""
        for task, kind in list(self._pending.items()):
            if kind not in effects.ENDING_MAIL:
                task.cancel()

    def _recipient(self, role: str) -> tuple[str, str, Language]:
        """Name, e-mail and language of a role: a party, or the operator (the institution)."""
        plan = self._plan()
        if role == "operator":
            return plan.institution.name, plan.institution.email, plan.tutor.language
        person = plan.person(role)  # type: ignore[arg-type]
        return person.name, person.email, person.language

    async def send(
        self,
        kind: NotificationKind,
        role: str,
        key: str,
        values: dict[str, Any],
        mail_id: str | None = None,
        *,
        after_plan: bool = False,
    ) -> None:
        """Send one e-mail and wait for it (`notify` calls this beside the main line)."""
        name, address, language = self._recipient(role)
        internship_id = self._plan().internship_id
        mail_id = mail_id or notification_id(workflow.info().workflow_id, kind, key, role)
        now = workflow.now()
        try:
            if after_plan and not self._s.started:
                # Sent once the plan is saved (a withdrawal meanwhile drops it).
                await workflow.wait_condition(lambda: self._s.started)
            await effects.send(
                Notification(
                    notification_id=mail_id,
                    internship_id=internship_id,
                    kind=kind,
                    recipient_role=role,
                    recipient_email=address,
                    recipient_name=name,
                    language=language,
                    planned_at=now,
                    values={"internship": internship_id, **values},
                )
            )
        except (asyncio.CancelledError, ActivityError) as failure:
            # From here on the e-mail is no longer droppable: what follows must be recorded.
            droppable = self._pending.pop(asyncio.current_task(), None) is not None  # type: ignore[arg-type]
            if droppable and _cancelled(failure):
                # Dropped by a withdrawal or cancellation (see `drop_pending`).
                await self._record("notification_dropped", "system", mail_id)
                return
            if not isinstance(failure, ActivityError):
                raise
            await self._record("notification_failed", "system", mail_id, error=str(failure.cause))
            if role != "operator" and not _cancelled(failure):
                # Its own e-mail (beside the main line since the patch), never dropped.
                await self.notify(
                    "delivery_failed",
                    "operator",
                    key=f"{kind}-{key}-{role}",
                    failed_kind=kind,
                    failed_role=role,
                    error=str(failure.cause),
                )


def _cancelled(failure: BaseException) -> bool:
    """Whether an activity ended because the workflow cancelled it (the SDK reports that as an
    ActivityError caused by a CancelledError, or raises asyncio's CancelledError), as opposed to
    failing for good: refused, impossible to compose, or still failing when its time was up.
    Every failure for good is the operator's to know."""
    if isinstance(failure, asyncio.CancelledError):
        return True
    return isinstance(failure, ActivityError) and isinstance(failure.cause, CancelledError)
