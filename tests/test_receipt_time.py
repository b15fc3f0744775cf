"""The time of receipt decides (decision 0046): a submission received before its deadline counts,
however late a workflow task sees it. On the real stack: with the worker dead, an approval, a
milestone report and company feedback are each sent a few seconds before their deadline, and the
worker comes back only after it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest

from bench.replay_check import check_replay, workflow_code_fingerprint
from cli.demo import compress_plan, worker_polling
from embedded.stack import EmbeddedStack
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import Approval, CompanyFeedback, MilestoneReport, Receipt
from operations import internships as ops
from records.read import recorded_phase
from runtime.clients import connect_temporal
from tests.conftest import FAST_POSTGRES, make_settings
from tests.helpers import EXAMPLE_PLAN

T = TypeVar("T")

BEFORE = timedelta(seconds=3)
"""How long before its deadline each submission is sent."""
AFTER = timedelta(seconds=1.5)
"""How long after the deadline the worker comes back."""


async def until(moment: datetime) -> None:
    """Return once the wall clock has reached `moment` (the condition is the time itself)."""
    await asyncio.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))
    assert datetime.now(UTC) >= moment


def test_a_client_given_receipt_time_is_replaced_by_the_servers() -> None:
    forged = datetime(2020, 1, 1, tzinfo=UTC)
    report = MilestoneReport(
        submission_id="r-1", milestone_id="check-in", summary="Done.", received_at=forged
    )
    before = datetime.now(UTC)
    stamped = ops.received_now(report)
    assert stamped.received_at is not None
    assert before <= stamped.received_at <= datetime.now(UTC)
    assert stamped.model_copy(update={"received_at": forged}) == report
    assert ops.received_now(report.model_copy(update={"received_at": None})).received_at


async def sent_while_no_worker(
    stack: EmbeddedStack,
    client: object,
    task_queue: str,
    deadline: datetime,
    sends: list[Callable[[], Awaitable[T]]],
) -> list[T]:
    """Kill the worker, send each submission `BEFORE` its deadline, bring a worker back `AFTER`
    the deadline, and return the answers."""
    stack.kill_worker()
    await until(deadline - BEFORE)
    sending = [asyncio.ensure_future(send()) for send in sends]
    await until(deadline + AFTER)
    # No worker ran: the workflow sees each submission only after its deadline.
    assert not any(task.done() for task in sending)
    await stack.restart_worker()
    await worker_polling(client, task_queue)  # type: ignore[arg-type]
    return list(await asyncio.gather(*sending))


@pytest.mark.slow
async def test_submissions_received_before_their_deadline_count_after_a_worker_died(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path / "state")
    code = workflow_code_fingerprint()
    async with EmbeddedStack(settings, postgres_options=FAST_POSTGRES) as stack:
        client = await connect_temporal(settings)
        await worker_polling(client, settings.task_queue)
        plan = compress_plan(
            InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text()),
            datetime.now().astimezone(),
            # The start 27 s after the agreement deadline, the check-in 14 s after the start.
            seconds=240,
            internship_id="receipt-drill",
            lead_seconds=15.0,
        )
        iid = plan.internship_id
        handle = await ops.start_internship(client, settings, plan)
        records = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        assert records is not None
        reader = await asyncpg.connect(settings.database_url)
        try:
            for party in ("intern", "tutor"):
                approval = Approval(submission_id=f"a-{party}", party=party, plan_version=1)
                await ops.approve(client, iid, approval, records)

            # The mentor approves 3 s before the agreement deadline, while no worker runs.
            mentor = Approval(submission_id="a-mentor", party="mentor", plan_version=1)
            [approved] = await sent_while_no_worker(
                stack,
                client,
                settings.task_queue,
                plan.agreement_deadline,
                [lambda: ops.approve(client, iid, mentor, records)],
            )
            assert approved.received_at is not None
            assert approved.received_at < plan.agreement_deadline < approved.accepted_at
            phase = await _phase_after(reader, iid, Phase.PLANNING)
            assert phase in (Phase.AWAITING_START, Phase.IN_PROGRESS), phase

            # The report and the feedback for the check-in, 3 s before it is due.
            check_in = plan.milestones[0]
            await _phase_after(reader, iid, Phase.AWAITING_START)
            assert datetime.now(UTC) < check_in.due - BEFORE - timedelta(seconds=2)
            report = MilestoneReport(
                submission_id="r-check-in", milestone_id=check_in.id, summary="My first week."
            )
            feedback = CompanyFeedback(
                submission_id="f-check-in",
                milestone_id=check_in.id,
                ratings={"lo-team": "good"},
                attendance_hours=36,
            )
            answers: list[Receipt] = await sent_while_no_worker(
                stack,
                client,
                settings.task_queue,
                check_in.due,
                [
                    lambda: ops.submit_report(client, iid, report, records),
                    lambda: ops.submit_feedback(client, iid, feedback, records),
                ],
            )
            for receipt in answers:
                assert receipt.received_at is not None
                assert receipt.received_at < check_in.due < receipt.accepted_at, receipt
                assert not receipt.late, receipt

            # The records say the same: on time.
            rows = await reader.fetch(
                "SELECT kind, late FROM submissions WHERE internship_id = $1 "
                "AND kind IN ('milestone_report', 'company_feedback') ORDER BY kind",
                iid,
            )
            assert [(r["kind"], r["late"]) for r in rows] == [
                ("company_feedback", False),
                ("milestone_report", False),
            ]
            cancelled = await reader.fetchval(
                "SELECT count(*) FROM audit_events "
                "WHERE internship_id = $1 AND phase = 'cancelled'",
                iid,
            )
            assert cancelled == 0
        finally:
            await reader.close()
            await records.close()
        # Every run's history replays against the current code.
        replay = await check_replay(client, [handle.id], code_at_start=code)
        assert replay.passed, (replay.summary(), replay.problems())


async def _phase_after(reader: asyncpg.Connection, internship_id: str, phase: Phase) -> Phase:
    """The recorded phase, once it is no longer `phase` (at most a minute)."""
    async with asyncio.timeout(60):
        while True:
            now = await recorded_phase(reader, internship_id) or Phase.PLANNING
            if now != phase:
                return now
            await asyncio.sleep(0.1)
