"""A badge's revocation, suspension or reinstatement told to the intern by a workflow of its own,
on the real parts (Temporal, PostgreSQL, an SMTP server): the admin's request answers once the
change is committed, and the notice follows, retried while the mail server defers, given up (and
the institution told) when it refuses; a change made while Temporal is unreachable is told once
a worker's sweep starts its notice."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from aiosmtpd.controller import Controller
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.badge import BadgeActivities
from activities.records import RecordActivities
from api.app import create_app
from badges.keyring import KeyRing
from embedded.mail_sink import OutboxWriter
from embedded.ports import free_port
from mail.sending import Mailer
from models.activities import BadgeRequest
from models.ids import credential_uuid_from_id, message_id_for, status_notice_id
from models.plan import InternshipPlan
from operations.access import create_api_key
from operations.credentials import change_status
from operations.notices import start_pending_notices
from runtime.clients import create_pool
from runtime.database import owner_dsn
from runtime.migrations import apply_migrations
from runtime.settings import Settings
from tests.conftest import application_dsn_of, make_settings
from tests.helpers import clock_held, eventually, load_outbox, running_worker, sample_plan
from tests.test_cli import Cli, cli_for

REASON = "Awarded by mistake."


class _Smtp:
    """An SMTP server that stores every message, but defers (451) the addresses in `deferred`
    and refuses (550) those in `refused` for good, as real servers do."""

    def __init__(self, outbox: Path) -> None:
        self.writer = OutboxWriter(outbox)
        self.deferred: set[str] = set()
        self.refused: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address in self.deferred:
            return f"451 4.2.0 <{address}>: mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.writer.write(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@dataclass
class Stack:
    env: WorkflowEnvironment
    settings: Settings
    pool: asyncpg.Pool
    smtp: _Smtp
    http: httpx.AsyncClient
    admin: dict[str, str]


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    time_skipping_env: WorkflowEnvironment, tmp_path: Path, postgres: Any, database: str
) -> AsyncIterator[Stack]:
    """The API and a worker on the test's Temporal and PostgreSQL, with `_Smtp` as the mail
    server."""
    settings = make_settings(
        tmp_path,
        database_url=application_dsn_of(postgres, database),
        database_owner_url=database,
        smtp_port=free_port(),
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
    )
    settings.outbox_path.mkdir(parents=True)
    smtp = _Smtp(settings.outbox_path)
    controller = Controller(smtp, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    await apply_migrations(owner_dsn(settings))
    pool = await create_pool(settings)
    client = time_skipping_env.client
    _, admin_key = await create_api_key(pool, "notices-admin", "admin")
    app = create_app(settings, client=client, pool=pool)
    try:
        async with (
            running_worker(client, settings, pool),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url=settings.public_base_url
            ) as http,
        ):
            yield Stack(
                time_skipping_env,
                settings,
                pool,
                smtp,
                http,
                {"Authorization": f"Bearer {admin_key}"},
            )
    finally:
        await pool.close()
        controller.stop()


async def issued_badge(pool: asyncpg.Pool, settings: Settings) -> tuple[InternshipPlan, str]:
    """An internship's plan saved and its badge stored, as its workflow does (by the real
    activities, under its workflow id); the credential id."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    workflow_id = f"internship-{plan.internship_id}"
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id)
    await env.run(RecordActivities(pool).save_plan, plan)
    ring = KeyRing.load_or_create(settings.keys_path)
    badge = BadgeActivities(pool, Mailer(settings), ring, settings)
    request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=now - timedelta(hours=1),
        workflow_id=workflow_id,
    )
    return plan, (await env.run(badge.store_badge, request)).credential_id


def of_kind(settings: Settings, kind: str) -> list[EmailMessage]:
    return [m for m in load_outbox(settings) if m["X-Internflow-Kind"] == kind]


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return " ".join(str(body.get_content()).split())


async def test_a_revocation_is_answered_at_once_and_its_notice_deferred_then_delivered_once(
    stack: Stack,
) -> None:
    plan, credential_id = await issued_badge(stack.pool, stack.settings)
    iid, uuid_ = plan.internship_id, credential_uuid_from_id(credential_id)
    mail_id = f"internship-{iid}/revocation/1/intern"
    stack.smtp.deferred.add(plan.intern.email)
    # The notice's clock held: its retries come in real time (1 s, then 2 s, ... apart).
    with clock_held(stack.env):
        answer = await stack.http.post(
            f"/api/admin/credentials/{uuid_}/revoke", json={"reason": REASON}, headers=stack.admin
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["notice"]) == ("revoked", "started")
    # Answered while the mail server defers the notice: the change stands, nothing was sent.
    assert of_kind(stack.settings, "revocation") == []

    async def deferred_and_retried() -> bool:
        row = await stack.pool.fetchrow(
            "SELECT status, attempts FROM notifications WHERE notification_id = $1", mail_id
        )
        return row is not None and row["status"] == "sending" and row["attempts"] >= 2

    await eventually(deferred_and_retried, "the notice deferred and tried again")
    stack.smtp.deferred.clear()
    handle = stack.env.client.get_workflow_handle(status_notice_id(credential_id, 1))
    assert await handle.result() is True
    (told,) = of_kind(stack.settings, "revocation")
    assert told["Message-ID"] == message_id_for(mail_id)
    assert told["To"].addresses[0].addr_spec == plan.intern.email
    assert REASON in text_of(told) and f"/verify/{uuid_}" in text_of(told)
    row = await stack.pool.fetchrow(
        "SELECT status, attempts, error FROM notifications WHERE notification_id = $1", mail_id
    )
    assert row is not None and row["status"] == "sent" and row["attempts"] >= 3
    assert row["error"] is None
    assert of_kind(stack.settings, "delivery_failed") == []
    started = await stack.pool.fetchval(
        "SELECT started_at FROM status_notices WHERE notice_id = $1",
        status_notice_id(credential_id, 1),
    )
    assert started is not None


async def test_a_revocation_notice_refused_for_good_is_told_to_the_institution(
    stack: Stack,
) -> None:
    plan, credential_id = await issued_badge(stack.pool, stack.settings)
    iid, uuid_ = plan.internship_id, credential_uuid_from_id(credential_id)
    mail_id = f"internship-{iid}/revocation/1/intern"
    stack.smtp.refused.add(plan.intern.email)
    read_model = await stack.pool.fetchrow(
        "SELECT phase, updated_at, record_seq FROM internships WHERE internship_id = $1", iid
    )
    answer = await stack.http.post(
        f"/api/admin/credentials/{uuid_}/revoke", json={"reason": REASON}, headers=stack.admin
    )
    assert answer.status_code == 200 and answer.json()["notice"] == "started", answer.text
    handle = stack.env.client.get_workflow_handle(status_notice_id(credential_id, 1))
    assert await handle.result() is False

    why = "recipient refused with SMTP [550]"
    row = await stack.pool.fetchrow(
        "SELECT status, attempts, error FROM notifications WHERE notification_id = $1", mail_id
    )
    assert row is not None and tuple(row) == ("failed", 1, why)
    failed = await stack.pool.fetchrow(
        "SELECT kind, actor, phase, detail FROM audit_events WHERE event_id = $1",
        f"internship-{iid}/notification_failed/{mail_id}",
    )
    assert failed is not None and (failed["kind"], failed["actor"]) == (
        "notification_failed",
        "system",
    )
    assert why in failed["detail"] and plan.intern.email not in failed["detail"]
    # The notice's records go to the audit trail only: the read model is the internship's.
    assert (
        await stack.pool.fetchrow(
            "SELECT phase, updated_at, record_seq FROM internships WHERE internship_id = $1", iid
        )
        == read_model
    )
    assert of_kind(stack.settings, "revocation") == []
    (told,) = of_kind(stack.settings, "delivery_failed")
    assert told["To"].addresses[0].addr_spec == plan.institution.email
    assert told["Message-ID"] == message_id_for(
        f"internship-{iid}/delivery_failed/revocation-1-intern/operator"
    )
    assert why in text_of(told) and plan.intern.email not in text_of(told)
    assert await stack.pool.fetchval(
        "SELECT revoked_at IS NOT NULL FROM credentials WHERE credential_id = $1", credential_id
    )


async def test_a_change_made_while_temporal_is_unreachable_is_told_once_it_answers(
    stack: Stack,
) -> None:
    """The API of a process that cannot reach Temporal (nothing listens at its address): the
    suspension is committed and answered, its notice recorded as pending; nothing is started
    until a worker's sweep, which starts it once; a second sweep starts nothing."""
    plan, credential_id = await issued_badge(stack.pool, stack.settings)
    uuid_ = credential_uuid_from_id(credential_id)
    notice_id = status_notice_id(credential_id, 1)
    down = stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    cut_off = create_app(down, pool=stack.pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cut_off), base_url=down.public_base_url
    ) as http:
        answer = await http.post(
            f"/api/admin/credentials/{uuid_}/suspend",
            json={"reason": "Under review."},
            headers=stack.admin,
        )
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["notice"]) == ("suspended", "pending")
    assert await stack.pool.fetchval(
        "SELECT started_at IS NULL FROM status_notices WHERE notice_id = $1", notice_id
    )
    handle = stack.env.client.get_workflow_handle(notice_id)
    try:
        await handle.describe()
        raise AssertionError("the notice was started without Temporal")
    except RPCError:
        pass

    async def connect() -> Client:
        return stack.env.client

    assert await start_pending_notices(stack.pool, stack.settings, connect) == 1
    assert await handle.result() is True
    (told,) = of_kind(stack.settings, "suspension")
    assert told["To"].addresses[0].addr_spec == plan.intern.email
    assert "Under review." in text_of(told)
    assert await start_pending_notices(stack.pool, stack.settings, connect) == 0
    assert len(of_kind(stack.settings, "suspension")) == 1
    assert await stack.pool.fetchval(
        "SELECT started_at IS NOT NULL FROM status_notices WHERE notice_id = $1", notice_id
    )


async def test_a_revocation_is_told_to_the_intern_by_a_notice_of_its_own(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """A suspension, its reinstatement and a revocation, each told once by its own notice (the
    history recorded as `status-notice`): the change's count names it, and starting one again
    starts nothing new."""
    client = time_skipping_env.client

    async def connect() -> Client:
        return client

    async with running_worker(client, settings, pool):
        plan, credential_id = await issued_badge(pool, settings)
        for n, (action, reason) in enumerate(
            [("suspend", "Under review."), ("reinstate", "Cleared."), ("revoke", REASON)], 1
        ):
            changed = await change_status(
                pool, settings, credential_id, action, reason, "admin:test", temporal=connect
            )
            assert changed.notice == "started"
            handle = client.get_workflow_handle(status_notice_id(credential_id, n))
            assert await handle.result() is True
    told = [
        (str(m["X-Internflow-Kind"]), str(m["Message-ID"]))
        for m in load_outbox(settings)
        if m["X-Internflow-Internship"] == plan.internship_id
    ]
    workflow_id = f"internship-{plan.internship_id}"
    assert told == [
        (kind, message_id_for(f"{workflow_id}/{kind}/{n}/intern"))
        for n, kind in enumerate(["suspension", "reinstatement", "revocation"], 1)
    ]
    assert await start_pending_notices(pool, settings, connect) == 0


async def test_the_command_line_changes_a_badge_and_its_notice_follows(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """`internflow badge suspend|revoke`: with Temporal reachable the notice follows; with
    Temporal unreachable the change is made all the same, the command says the e-mail waits
    (exit 0), and its notice is recorded for a worker to start."""
    cli = cli_for(time_skipping_env, settings)
    unreachable = Cli({**cli.env, "INTERNFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
    async with running_worker(time_skipping_env.client, settings, pool):
        plan, credential_id = await issued_badge(pool, settings)
        code, out = await unreachable("badge", "suspend", plan.internship_id, "--reason", "x")
        assert code == 0, out
        assert "suspended" in out and "Temporal is not reachable" in out, out
        assert await pool.fetchval(
            "SELECT started_at IS NULL FROM status_notices WHERE notice_id = $1",
            status_notice_id(credential_id, 1),
        )
        code, out = await cli("badge", "revoke", plan.internship_id, "--reason", REASON)
        assert code == 0, out
        assert "revoked" in out and "e-mail follows" in out, out

        async def told() -> bool:
            return len(of_kind(settings, "revocation")) == 1

        await eventually(told, "the revocation told")
    assert of_kind(settings, "suspension") == []  # its notice waits for a worker's sweep


async def test_a_notice_that_cannot_be_built_holds_up_no_other(stack: Stack) -> None:
    """A pending notice whose change's record is not there (it cannot be built) is logged and
    left pending; the sweep still starts the notices after it."""
    plan, credential_id = await issued_badge(stack.pool, stack.settings)
    await stack.pool.execute(
        "INSERT INTO status_notices (notice_id, event_id, internship_id, credential_id, change, "
        "kind, created_at) VALUES ('notice-broken-1', 'no/such/event', $1, $2, 9, 'revocation', "
        "now() - interval '1 hour')",
        plan.internship_id,
        credential_id,
    )
    down = stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    cut_off = create_app(down, pool=stack.pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=cut_off), base_url=down.public_base_url
    ) as http:
        answer = await http.post(
            f"/api/admin/credentials/{credential_uuid_from_id(credential_id)}/revoke",
            json={"reason": REASON},
            headers=stack.admin,
        )
    assert answer.json()["notice"] == "pending", answer.text

    async def connect() -> Client:
        return stack.env.client

    assert await start_pending_notices(stack.pool, stack.settings, connect) == 1
    handle = stack.env.client.get_workflow_handle(status_notice_id(credential_id, 1))
    assert await handle.result() is True
    assert len(of_kind(stack.settings, "revocation")) == 1
    assert await stack.pool.fetchval(
        "SELECT started_at IS NULL FROM status_notices WHERE notice_id = 'notice-broken-1'"
    )
