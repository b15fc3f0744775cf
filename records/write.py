"""Writing the records in PostgreSQL: plan versions, parties, the read model, the audit trail,
submissions, and each e-mail's `notifications` row. Every write carries an id derived from the
workflow, so that doing it again writes nothing twice. The activities (activities/records.py,
activities/notify.py), the e-mails' providers (mail/providers.py) and the API's receiver
(operations/internships.py) call these."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from models import kinds
from models.activities import AuditEvent, Notification
from models.ids import audit_event_id, audit_event_key
from models.plan import InternshipPlan, Language
from models.status import InternshipStatus

log = structlog.get_logger(__name__)

#: Audit event kinds that record a party's or the operator's submission (see the workflow's
#: `_accept`): each also becomes a `submissions` row. Every kind of the registry.
SUBMISSION_KINDS = kinds.SUBMISSION_KINDS

#: Detail keys that become columns of `submissions`; the rest is kept as its payload.
_SUBMISSION_COLUMNS = frozenset({"late", "milestone_id", "plan_version"})


def plan_parties(plan: InternshipPlan) -> list[tuple[str, str, str, str, Language]]:
    """(role, id, name, e-mail, language) of everyone the plan names: the three parties, the host
    company (in its mentor's language), the operator (the institution, in its tutor's) and the
    plan's other signers."""
    return [
        ("intern", plan.intern.id, plan.intern.name, plan.intern.email, plan.intern.language),
        ("tutor", plan.tutor.id, plan.tutor.name, plan.tutor.email, plan.tutor.language),
        ("mentor", plan.mentor.id, plan.mentor.name, plan.mentor.email, plan.mentor.language),
        (
            "company",
            plan.company.id,
            plan.company.name,
            plan.company.contact_email,
            plan.mentor.language,
        ),
        (
            "operator",
            plan.institution.id,
            plan.institution.name,
            plan.institution.email,
            plan.tutor.language,
        ),
        *(
            (signer.role, signer.id, signer.name, signer.email, signer.language)
            for signer in plan.signers
        ),
    ]


def submission_id_of(event: AuditEvent) -> str:
    """The submission id is the key of the submission's audit event id (models/ids.py)."""
    return audit_event_key(event.event_id)


async def refresh_overdue(conn: asyncpg.Connection, internship_id: str, at: datetime) -> None:
    """Bring `internships.overdue` to workflow time `at` (never going back before the latest
    record) from the status the workflow wrote with its latest record: the workflow owns the
    rule, this only compares times. Run it inside a transaction; it locks the internship's row
    first, so concurrent records of one internship take turns."""
    row = await conn.fetchrow(
        "SELECT status FROM internships WHERE internship_id = $1 FOR NO KEY UPDATE",
        internship_id,
    )
    if row is None or row["status"] is None:
        return
    overdue = InternshipStatus.model_validate_json(row["status"]).at(at).overdue
    await conn.execute(
        "UPDATE internships SET overdue = $2 WHERE internship_id = $1 AND overdue <> $2",
        internship_id,
        overdue,
    )


async def begin_notification(
    conn: asyncpg.Connection, notification: Notification, message_id: str
) -> bool:
    """Count an attempt at the e-mail (its row is written `sending` the first time, with its
    Message-ID); False when it was sent before, so the attempt is a resend to skip."""
    status = await conn.fetchval(
        """
        INSERT INTO notifications (notification_id, internship_id, kind, recipient_role,
                                   message_id, status, attempts, planned_at)
        VALUES ($1, $2, $3, $4, $5, 'sending', 1, $6)
        ON CONFLICT (notification_id) DO UPDATE
            SET attempts = notifications.attempts + 1
        RETURNING status
        """,
        notification.notification_id,
        notification.internship_id,
        notification.kind,
        notification.recipient_role,
        message_id,
        notification.planned_at,
    )
    return status != "sent"


async def note_notification_deferred(
    conn: asyncpg.Connection, notification_id: str, reason: str
) -> None:
    """The e-mail could not be handed over this time and will be tried again: keep why."""
    await conn.execute(
        "UPDATE notifications SET error = $2 WHERE notification_id = $1",
        notification_id,
        reason,
    )


async def mark_notification_sent(conn: asyncpg.Connection, notification_id: str) -> None:
    """The SMTP server accepted the e-mail."""
    await conn.execute(
        "UPDATE notifications SET status = 'sent', sent_at = now(), error = NULL "
        "WHERE notification_id = $1",
        notification_id,
    )


async def mark_badge_emailed(conn: asyncpg.Connection, internship_id: str) -> None:
    """The SMTP server accepted the badge e-mail: the credential says when (the first time)."""
    await conn.execute(
        "UPDATE credentials SET emailed_at = now(), email_error = NULL "
        "WHERE internship_id = $1 AND emailed_at IS NULL",
        internship_id,
    )


async def mark_notification_failed(
    conn: asyncpg.Connection, notification_id: str, reason: str
) -> None:
    """The e-mail will not be sent: keep why (a badge's, on its credential too)."""
    kind = await conn.fetchval(
        "UPDATE notifications SET status = 'failed', error = $2 "
        "WHERE notification_id = $1 AND status = 'sending' RETURNING kind",
        notification_id,
        reason,
    )
    if kind == "badge":
        await conn.execute(
            "UPDATE credentials c SET email_error = $2 FROM notifications n "
            "WHERE n.notification_id = $1 AND c.internship_id = n.internship_id "
            "AND c.emailed_at IS NULL",
            notification_id,
            reason,
        )


def _audit_row(event: AuditEvent) -> tuple[Any, ...]:
    """The event's `audit_events` columns, in the order both writes below name them."""
    return (
        event.event_id,
        event.internship_id,
        event.workflow_id,
        event.run_id,
        event.plan_version,
        event.actor,
        event.kind,
        event.phase,
        event.occurred_at,
        json.dumps(event.detail),
    )


def failed_notification_id(event: AuditEvent) -> str:
    """The e-mail a `notification_failed` event is about (its key: the notification id, which
    has slashes of its own)."""
    return event.event_id.removeprefix(audit_event_id(event.workflow_id, event.kind, ""))


async def append_event(conn: asyncpg.Connection, event: AuditEvent) -> bool:
    """Append one event to the audit trail, and leave the read model to the internship's
    workflow (a status notice's records: `append_event` activity); a `notification_failed` marks
    its e-mail failed too, as `write_event` does. One transaction; False when it was recorded
    before (a retry)."""
    async with conn.transaction():
        inserted = await append_audit_event(conn, event)
        if event.kind == "notification_failed":
            await mark_notification_failed(
                conn, failed_notification_id(event), str(event.detail.get("error", ""))
            )
    return inserted


async def append_audit_event(conn: asyncpg.Connection, event: AuditEvent) -> bool:
    """Append one event to the audit trail and nothing else (a credential's status change; the
    workflow's records go through `write_event`); False when an event with its id is there
    already (a retry)."""
    inserted = await conn.fetchval(
        """
        INSERT INTO audit_events (event_id, internship_id, workflow_id, run_id,
                                  plan_version, actor, kind, phase, occurred_at, detail)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING true
        """,
        *_audit_row(event),
    )
    return bool(inserted)


_WRITE_EVENT = """
WITH audit AS (
    INSERT INTO audit_events (event_id, internship_id, workflow_id, run_id,
                              plan_version, actor, kind, phase, occurred_at, detail)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING true
), submission AS (
    INSERT INTO submissions (internship_id, submission_id, kind, actor, plan_version,
                             milestone_id, late, payload, accepted_at, event_id)
    SELECT $2, $11, $7, $6, $12, $13, $14, $15, $9, $1
    WHERE $11::text IS NOT NULL
    ON CONFLICT DO NOTHING
), newest AS (
    UPDATE internships
    SET phase = $8, plan_version = $5, updated_at = $9, record_seq = $16,
        status = coalesce($17::jsonb, status), overdue = coalesce($18, overdue)
    WHERE internship_id = $2 AND (updated_at, record_seq) <= ($9, $16)
    RETURNING true
)
SELECT EXISTS (SELECT FROM audit) AS inserted, EXISTS (SELECT FROM newest) AS newest
"""
"""One statement, one round trip: the audit event, its submission row (for a submission), and
the read model. The read model's row is the only row it locks (the inserts take key-share locks,
which do not conflict), so concurrent records of one internship cannot deadlock; the foreign
keys are checked at the end of the statement, when the audit row is there."""


async def write_event(conn: asyncpg.Connection, event: AuditEvent) -> bool:
    """Append the event to the audit trail, a submission to `submissions`, and bring the read
    model up to date (never back before a newer record). Every write is idempotent by the
    event's id; returns False when the event was recorded before.

    The usual record, an event with the status after it, is one statement and needs no
    transaction (BEGIN and COMMIT would be two more round trips). A record that takes a second
    statement (an event without a status, notification_failed) runs in a transaction of its own
    when the caller has none."""
    # The overdue flag as of this record, from the status it carries (without one, from the
    # status the read model holds); a record older than the read model's changes nothing.
    overdue = event.status.at(event.occurred_at).overdue if event.status is not None else None
    if (overdue is None or event.kind == "notification_failed") and not conn.is_in_transaction():
        async with conn.transaction():
            return await _write_event(conn, event, overdue)
    return await _write_event(conn, event, overdue)


async def _write_event(conn: asyncpg.Connection, event: AuditEvent, overdue: bool | None) -> bool:
    detail: dict[str, Any] = event.detail
    submission = event.kind in SUBMISSION_KINDS
    milestone_id = detail.get("milestone_id")
    row = await conn.fetchrow(
        _WRITE_EVENT,
        *_audit_row(event),
        submission_id_of(event) if submission else None,
        int(detail.get("plan_version", event.plan_version)),
        str(milestone_id) if milestone_id is not None else None,
        bool(detail.get("late", False)),
        json.dumps({k: v for k, v in detail.items() if k not in _SUBMISSION_COLUMNS}),
        event.seq,
        event.status.model_dump_json() if event.status is not None else None,
        overdue,
    )
    assert row is not None
    if event.kind == "notification_failed":
        # The workflow gave up on the e-mail (its retries spent): the row says so.
        await mark_notification_failed(
            conn, failed_notification_id(event), str(detail.get("error", ""))
        )
    if row["newest"] and overdue is None:
        await refresh_overdue(conn, event.internship_id, event.occurred_at)
    return bool(row["inserted"])
