"""Delivery under failure: each send and the badge survive a failure at any step without doing
anything twice (but for the one window the design accepts), and a whole internship survives its
database going away for a while."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.badge import BadgeActivities, badge_notification
from activities.notify import NotifyActivities
from activities.records import RecordActivities
from badges.bake import unbake_png
from badges.keyring import KeyRing
from embedded.mail_sink import MailSink
from embedded.postgres import EmbeddedPostgres
from mail.sending import Mailer, TransientDeliveryError
from models.activities import BadgeRequest, Notification
from models.ids import message_id_for
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import MilestoneReport, Validation
from operations import internships as ops
from runtime.clients import create_pool
from runtime.migrations import apply_migrations
from runtime.settings import Settings
from tests.conftest import FAST_POSTGRES, make_settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    clock_held,
    eventually,
    load_outbox,
    report_and_feedback,
    running_worker,
    sample_plan,
    wait_for_phase,
)


class SimulatedCrash(Exception):
    """The worker died here (raised by the test's mailer, never by internflow)."""


class CrashingAfterSend(Mailer):
    """Test only: the SMTP server accepts the message, then the worker "crashes" before it can
    record that (the first `crashes` times)."""

    def __init__(self, settings: Settings, crashes: int = 1) -> None:
        super().__init__(settings)
        self.crashes = crashes

    async def send(self, message: EmailMessage) -> None:
        await super().send(message)
        if self.crashes > 0:
            self.crashes -= 1
            raise SimulatedCrash("after the SMTP server accepted the message")


async def _as_owner(settings: Settings, *statements: str) -> None:
    """Run statements as the tables' owner (the application role may not touch triggers)."""
    owner = await asyncpg.connect(settings.database_owner_dsn)
    try:
        for statement in statements:
            await owner.execute(statement)
    finally:
        await owner.close()


async def _fail_writes(settings: Settings, table: str, when: str = "true") -> None:
    """Make PostgreSQL itself refuse inserts into / updates of `table` (rows matching `when`)."""
    await _as_owner(
        settings,
        """
        CREATE OR REPLACE FUNCTION simulated_failure() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'simulated failure writing %', TG_TABLE_NAME; END; $$
        """,
        f"CREATE TRIGGER simulated_failure BEFORE INSERT OR UPDATE ON {table} "
        f"FOR EACH ROW WHEN ({when}) EXECUTE FUNCTION simulated_failure()",
    )


async def _stop_failing(settings: Settings, table: str) -> None:
    await _as_owner(settings, f"DROP TRIGGER simulated_failure ON {table}")


# ----------------------------------------------------------------- one notification


def _notification(plan: InternshipPlan) -> Notification:
    return Notification(
        notification_id=f"internship-{plan.internship_id}/reminder/mid-term/intern",
        internship_id=plan.internship_id,
        kind="reminder",
        recipient_role="intern",
        recipient_email=plan.intern.email,
        recipient_name=plan.intern.name,
        language=plan.intern.language,
        planned_at=datetime(2027, 4, 12, 15, tzinfo=UTC),
        values={"internship": plan.internship_id, "milestone": "Mid-term review"},
    )


async def _notification_row(pool: asyncpg.Pool) -> tuple[object, ...]:
    rows = await pool.fetch(
        "SELECT notification_id, message_id, status, attempts FROM notifications"
    )
    assert len(rows) == 1
    return tuple(rows[0])


@pytest.mark.parametrize("step", ["recording", "sending", "after sending", "marking sent"])
async def test_a_notification_retried_after_a_failure_at_any_step_is_sent_once(
    settings: Settings, pool: asyncpg.Pool, mail_sink: MailSink, step: str
) -> None:
    """Before the SMTP handover a retry sends once; after it (the accepted window) at most one
    duplicate goes out, with the same Message-ID; a retry after success sends nothing."""
    plan = sample_plan(datetime(2027, 2, 15, 18, tzinfo=UTC))
    notification = _notification(plan)
    message_id = message_id_for(notification.notification_id)
    env = ActivityEnvironment()
    mailer = CrashingAfterSend(settings, crashes=1 if step == "after sending" else 0)
    notify = NotifyActivities(pool, mailer)

    if step == "recording":
        await _fail_writes(settings, "notifications")
        with pytest.raises(asyncpg.RaiseError, match="simulated failure"):
            await env.run(notify.send, notification)
        await _stop_failing(settings, "notifications")
        assert await pool.fetchval("SELECT count(*) FROM notifications") == 0
    elif step == "sending":
        mail_sink.stop()
        with pytest.raises(TransientDeliveryError):
            await env.run(notify.send, notification)
        mail_sink.start()
    elif step == "after sending":
        with pytest.raises(SimulatedCrash):
            await env.run(notify.send, notification)
    else:
        await _fail_writes(settings, "notifications", "NEW.status = 'sent'")
        with pytest.raises(asyncpg.RaiseError, match="simulated failure"):
            await env.run(notify.send, notification)
        await _stop_failing(settings, "notifications")
    failed_attempts = 0 if step == "recording" else 1
    accepted_before_retry = step in ("after sending", "marking sent")

    assert await env.run(notify.send, notification) is True
    assert await env.run(notify.send, notification) is False

    messages = load_outbox(settings)
    assert [m["Message-ID"] for m in messages] == [message_id] * (1 + accepted_before_retry)
    assert await _notification_row(pool) == (
        notification.notification_id,
        message_id,
        "sent",
        failed_attempts + 2,
    )


# ----------------------------------------------------------------- the badge


@pytest.fixture
def badge_request() -> BadgeRequest:
    plan = sample_plan(datetime(2027, 2, 15, 18, tzinfo=UTC))
    return BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=plan.period.end + timedelta(days=20),
        workflow_id=f"internship-{plan.internship_id}",
    )


def _badge_activities(pool: asyncpg.Pool, settings: Settings) -> BadgeActivities:
    ring = KeyRing.load_or_create(settings.keys_path)
    return BadgeActivities(pool, Mailer(settings), ring, settings)


async def _store(
    env: ActivityEnvironment, pool: asyncpg.Pool, settings: Settings, request: BadgeRequest
) -> str:
    """The workflow's first step (the plan saved before it, as the workflow does)."""
    await env.run(RecordActivities(pool).save_plan, request.plan)
    stored = await env.run(_badge_activities(pool, settings).store_badge, request)
    return stored.credential_id


def _proof_values(messages: list[EmailMessage]) -> list[str]:
    """The proofValue of the credential baked into each badge e-mail's PNG."""
    values = []
    for message in messages:
        png = next(p for p in message.iter_attachments() if p.get_content_type() == "image/png")
        values.append(json.loads(unbake_png(png.get_content()))["proof"][0]["proofValue"])
    return values


async def _stored_credential(pool: asyncpg.Pool) -> asyncpg.Record:
    rows = await pool.fetch("SELECT credential, message_id, emailed_at FROM credentials")
    assert len(rows) == 1
    return rows[0]


async def test_a_crash_between_smtp_acceptance_and_bookkeeping_resends_the_badge_once(
    settings: Settings, pool: asyncpg.Pool, badge_request: BadgeRequest
) -> None:
    """The one window the design accepts: the server took the badge, the worker died before
    writing that it was sent. The retry sends it again — the same signed credential (never
    re-signed) under the same Message-ID, so a mail client shows one — and nothing after that."""
    env = ActivityEnvironment()
    await _store(env, pool, settings, badge_request)
    mail = badge_notification(badge_request)
    crashing = NotifyActivities(pool, CrashingAfterSend(settings, crashes=1))
    with pytest.raises(SimulatedCrash):
        await env.run(crashing.send, mail)
    stored = await _stored_credential(pool)
    assert stored["emailed_at"] is None
    signed = json.loads(stored["credential"])["proof"][0]["proofValue"]
    assert len(load_outbox(settings)) == 1

    retried = NotifyActivities(pool, Mailer(settings))  # a new worker
    assert await env.run(retried.send, mail) is True
    assert await env.run(retried.send, mail) is False

    badges = load_outbox(settings)
    assert len(badges) == 2  # at most one duplicate
    expected = message_id_for(f"{badge_request.workflow_id}/badge")
    assert [m["Message-ID"] for m in badges] == [expected, expected]
    assert _proof_values(badges) == [signed, signed]
    after = await _stored_credential(pool)
    assert after["emailed_at"] is not None
    assert json.loads(after["credential"])["proof"][0]["proofValue"] == signed
    assert after["message_id"] == expected


@pytest.mark.parametrize("step", ["storing", "sending"])
async def test_a_badge_retried_after_a_failure_before_the_handover_goes_once(
    settings: Settings,
    pool: asyncpg.Pool,
    mail_sink: MailSink,
    badge_request: BadgeRequest,
    step: str,
) -> None:
    env = ActivityEnvironment()
    notify = NotifyActivities(pool, Mailer(settings))
    mail = badge_notification(badge_request)
    signed: str | None = None
    if step == "storing":
        await _fail_writes(settings, "credentials")
        with pytest.raises(asyncpg.RaiseError, match="simulated failure"):
            await _store(env, pool, settings, badge_request)
        await _stop_failing(settings, "credentials")
        assert await pool.fetchval("SELECT count(*) FROM credentials") == 0
    else:
        await _store(env, pool, settings, badge_request)
        mail_sink.stop()
        with pytest.raises(TransientDeliveryError):
            await env.run(notify.send, mail)
        mail_sink.start()
        stored = await _stored_credential(pool)
        signed = json.loads(stored["credential"])["proof"][0]["proofValue"]
    assert load_outbox(settings) == []

    ids = [await _store(env, pool, settings, badge_request) for _ in range(2)]
    assert ids[0] == ids[1]
    assert [await env.run(notify.send, mail) for _ in range(2)] == [True, False]
    badges = load_outbox(settings)
    assert len(badges) == 1
    stored = await _stored_credential(pool)
    assert stored["emailed_at"] is not None
    proof = json.loads(stored["credential"])["proof"][0]["proofValue"]
    assert _proof_values(badges) == [proof]
    if signed is not None:
        assert proof == signed  # stored before the failed send, reused by the retry


# ----------------------------------------------------------------- the database goes away


@pytest_asyncio.fixture(loop_scope="session")
async def own_postgres() -> AsyncIterator[tuple[EmbeddedPostgres, Settings, MailSink]]:
    """A PostgreSQL of this test's own (so it can be stopped), a mail sink and their settings."""
    state_dir = Path(tempfile.mkdtemp(prefix="internflow-test-pg-restart-"))
    settings = make_settings(state_dir, task_queue=f"test-{uuid.uuid4().hex[:8]}")
    server = EmbeddedPostgres(settings, server_options=FAST_POSTGRES)
    sink = MailSink(settings.outbox_path, "127.0.0.1", settings.smtp_port)
    await server.start()
    sink.start()
    try:
        yield server, settings, sink
    finally:
        sink.stop()
        await server.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


async def _wait_for_mail(settings: Settings, count: int, within: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while len(list(settings.outbox_path.glob("*.eml"))) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"fewer than {count} e-mails arrived")
        await asyncio.sleep(0.1)


async def _retrying(client: Client, workflow_id: str, activity_type: str) -> bool:
    """Whether the workflow's latest run has an activity of that type that failed and waits for
    (or is in) a later attempt."""
    described = await client.get_workflow_handle(workflow_id).describe()
    return any(
        pending.activity_type.name == activity_type and pending.attempt >= 2
        for pending in described.raw_description.pending_activities
    )


async def test_an_internship_survives_postgresql_stopping_and_restarting(
    time_skipping_env: WorkflowEnvironment,
    own_postgres: tuple[EmbeddedPostgres, Settings, MailSink],
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    server, settings, _sink = own_postgres
    await apply_migrations(settings.database_owner_dsn)
    pool = await create_pool(settings)
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    iid = plan.internship_id
    check_in = plan.milestones[0]
    try:
        async with running_worker(client, settings, pool):
            # Down as the internship starts: saving its plan and its first records wait.
            await server.stop()
            with clock_held(env):
                handle = await ops.start_internship(client, settings, plan)
            await eventually(
                lambda: _retrying(client, handle.id, "save_plan"), "saving the plan tried again"
            )
            assert load_outbox(settings) == []  # nothing goes out before the plan is saved
            await server.start()
            await _wait_for_mail(settings, 3)  # the approval requests
            await approve_all(client, plan)
            await wait_for_phase(client, iid, Phase.AWAITING_START)

            # Down again while a report comes in: its record waits for the database (whether
            # the receipt does too is the workflow's choice), and is written once it is back.
            await advance_to(env, handle, check_in.due - timedelta(hours=2))
            await server.stop()
            report = MilestoneReport(
                submission_id=f"r-{check_in.id}", milestone_id=check_in.id, summary="Progress."
            )
            submitting = asyncio.create_task(ops.submit_report(client, iid, report))
            await eventually(
                lambda: _retrying(client, handle.id, "record_event"), "the report's record retried"
            )
            await server.start()
            assert (await asyncio.wait_for(submitting, 30)).late is False

            await report_and_feedback(client, plan, check_in.id)  # a retry: first receipts
            for milestone in plan.milestones[1:]:
                await advance_to(env, handle, milestone.due - timedelta(hours=1))
                await report_and_feedback(client, plan, milestone.id)
            await advance_to(env, handle, plan.period.end + timedelta(hours=1))
            await assess(client, plan, mentor="good", tutor="good")
            await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
            outcome = await asyncio.wait_for(handle.result(), 30)

        assert outcome.phase == Phase.COMPLETED
        audit = await pool.fetch(
            "SELECT event_id, kind, key FROM (SELECT event_id, kind, "
            "split_part(event_id, '/', 3) AS key, occurred_at, seq FROM audit_events "
            "WHERE internship_id = $1) e ORDER BY occurred_at, seq",
            iid,
        )
        ids = [r["event_id"] for r in audit]
        assert len(ids) == len(set(ids))
        assert [r["key"] for r in audit if r["kind"] == "phase"] == [
            "planning",
            "awaiting_start",
            "in_progress",
            "evaluation",
            "certification",
            "completed",
        ]
        kinds = [r["kind"] for r in audit]
        counts = {kind: kinds.count(kind) for kind in set(kinds)}
        assert counts == {
            "phase": 6,
            "approval": 3,
            "milestone_report": 3,
            "company_feedback": 2,
            "assessment": 2,
            "validation": 1,
        }
        assert await pool.fetchval("SELECT count(*) FROM submissions") == 11
        assert await pool.fetchval("SELECT count(*) FROM plan_versions") == 1
        assert await pool.fetchval("SELECT count(*) FROM parties") == 5
        outbox = load_outbox(settings)
        sent = await pool.fetch("SELECT message_id, status FROM notifications")
        assert {r["status"] for r in sent} == {"sent"}
        # Every e-mail, the badge's included, is one notification sent once.
        assert sorted(str(m["Message-ID"]) for m in outbox) == sorted(r["message_id"] for r in sent)
        assert [m["X-Internflow-Kind"] for m in outbox].count("badge") == 1
    finally:
        await pool.close()
