"""Shared test steps: a sample plan moved to the present, a running worker, phases, the outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import asyncpg
from temporalio.client import Client

from models.plan import InternshipPlan
from models.status import Phase
from operations import internships as ops
from runtime.settings import Settings
from worker import build_worker

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.json"


def sample_plan(agreement_deadline: datetime, factor: float = 1.0) -> InternshipPlan:
    """The example plan under a fresh id, with its agreement deadline moved to the given time."""
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    return example.retimed(f"t-{uuid.uuid4().hex[:12]}", agreement_deadline, factor)


@asynccontextmanager
async def running_worker(
    client: Client, settings: Settings, pool: asyncpg.Pool
) -> AsyncIterator[None]:
    async with build_worker(client, settings, pool):
        yield


async def wait_for_phase(
    client: Client, internship_id: str, phase: Phase, within: float = 20
) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        current = (await ops.status(client, internship_id)).phase
        if current == phase:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"internship stayed {current.value}, expected {phase.value}")
        await asyncio.sleep(0.1)


def load_outbox(settings: Settings) -> list[EmailMessage]:
    """Every message the SMTP sink stored, in arrival order."""
    messages = []
    for path in sorted(settings.outbox_path.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages
