"""A worker killed with SIGKILL mid-internship: a new one finishes it; the badge goes once."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from rich.console import Console

from bench.replay_check import check_replay, workflow_code_fingerprint
from cli.demo import PartyPlayer, compress_plan, worker_polling
from embedded.stack import EmbeddedStack
from models.plan import InternshipPlan
from models.status import Phase
from operations import internships as ops
from records.read import recorded_phase
from runtime.clients import connect_temporal
from tests.conftest import FAST_POSTGRES, make_settings
from tests.helpers import EXAMPLE_PLAN, load_outbox


@pytest.mark.slow
async def test_sigkilled_worker_loses_nothing_and_sends_one_badge(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "state")
    kills: list[str] = []
    code = workflow_code_fingerprint()
    async with EmbeddedStack(settings, postgres_options=FAST_POSTGRES) as stack:
        client = await connect_temporal(settings)
        # Dates from when the worker polls (a busy machine starts it in seconds), with room
        # for the approvals.
        await worker_polling(client, settings.task_queue)
        plan = compress_plan(
            InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text()),
            datetime.now().astimezone(),
            seconds=60,
            internship_id="crash-drill",
            lead_seconds=10.0,
        )
        handle = await ops.start_internship(client, settings, plan)
        player = PartyPlayer(client, plan, Console(quiet=True))
        records = await asyncpg.connect(settings.database_url)
        while True:
            phase = await recorded_phase(records, plan.internship_id) or Phase.PLANNING
            if phase.is_final:
                break
            await player.play(phase, datetime.now().astimezone())
            # Kill the worker once in each of these moments, and start a new one.
            moment = "validated" if "institution validates" in player.done else phase.value
            if moment in ("awaiting_start", "in_progress", "validated") and moment not in kills:
                kills.append(moment)
                stack.kill_worker()
                await stack.restart_worker()
            await asyncio.sleep(0.1)
        outcome = await handle.result()
        await records.close()
        assert outcome.phase == Phase.COMPLETED, outcome.reason
        # The history of each run replays against the current code; no workflow task failed.
        replay = await check_replay(client, [handle.id], code_at_start=code)
        assert replay.passed, (replay.summary(), replay.problems())

        assert kills == ["awaiting_start", "in_progress", "validated"]
        assert outcome.phase == Phase.COMPLETED
        conn = await asyncpg.connect(settings.database_url)
        try:
            credentials = await conn.fetchval("SELECT count(*) FROM credentials")
            phases = await conn.fetch(
                "SELECT phase FROM audit_events WHERE kind = 'phase' ORDER BY occurred_at, seq"
            )
            sent = await conn.fetchval("SELECT count(*) FROM notifications WHERE status = 'sent'")
        finally:
            await conn.close()

    assert credentials == 1
    assert [r["phase"] for r in phases] == [
        "planning",
        "awaiting_start",
        "in_progress",
        "evaluation",
        "certification",
        "completed",
    ]
    outbox = load_outbox(settings)
    badges = [m for m in outbox if m["X-Internflow-Kind"] == "badge"]
    assert len(badges) == 1
    # Every notification was recorded as sent; a resend in the crash window keeps its Message-ID.
    assert len({m["Message-ID"] for m in outbox}) == sent
