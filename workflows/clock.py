"""The internship's clock: plan time that stops while the internship is paused.

Waits are on plan dates moved by the time spent paused (`state.shift`); a pause freezes every
wait, a resume adds the pause to the shift and wakes them to recompute, and so does any change of
plan (an amendment or extension bumps the epoch).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow

from models.state import InternshipState
from models.submissions import Pause


class PausableClock:
    def __init__(
        self,
        state: InternshipState,
        stop: Callable[[], bool],
        settle: Callable[[], bool] = lambda: False,
    ) -> None:
        self._state = state
        self._stop = stop
        """Ends every wait at once (a withdrawal)."""
        self._settle = settle
        """Whether a wait that reaches its deadline first lets every handler of the workflow
        task finish (`_deadline_passed`)."""
        self.epoch = 0
        """Bumped by pause, resume and plan changes: wakes every wait to recompute."""

    def changed(self) -> None:
        self.epoch += 1

    def pause(self, pause: Pause, now: datetime) -> None:
        self._state.pause = pause
        self._state.paused_at = now
        self.changed()

    def resume(self, now: datetime) -> None:
        assert self._state.paused_at is not None
        self._state.shift += now - self._state.paused_at
        self._state.pause = None
        self._state.paused_at = None
        self.changed()

    async def wait_until(
        self, deadline: Callable[[], datetime], condition: Callable[[], bool]
    ) -> bool:
        """Wait for `condition` (or the stop) until the plan time `deadline()`, moved by the time
        spent paused. The clock stops while paused; a change of plan recomputes the deadline.
        True if the condition held, False if the deadline passed."""

        def done() -> bool:
            return self._stop() or condition()

        while not done():
            epoch = self.epoch
            if self._state.pause is not None:
                await workflow.wait_condition(lambda: done() or self.epoch != epoch)  # noqa: B023
                continue
            effective = deadline() + self._state.shift
            remaining = (effective - workflow.now()).total_seconds()
            if remaining <= 0:
                return await self._deadline_passed(condition)
            try:
                await workflow.wait_condition(
                    lambda: done() or self.epoch != epoch,  # noqa: B023
                    timeout=remaining,
                )
            except TimeoutError:
                if self.epoch == epoch:
                    return await self._deadline_passed(condition)
        return condition()

    async def _deadline_passed(self, condition: Callable[[], bool]) -> bool:
        """The deadline has come: False, unless (since the `receipt-time-decides` patch) a
        submission that came in the same workflow task as the deadline's timer meets the
        condition. Such a submission was received before the workflow saw the deadline (a
        worker had died, say); its handler decides by its time of receipt (decision 0046), so
        it runs before the deadline does."""
        if not self._settle():
            return False
        await workflow.wait_condition(workflow.all_handlers_finished)
        return condition()
