"""The e-mail activity: one notification delivered at most once (its `notifications` row says
where it got to), retried while the server defers, given up when it refuses. Composing and
sending are mail/'s (mail/sending.py, mail/providers.py)."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.liveness import heartbeating
from mail.context import load_context
from mail.providers import RecordMissing, provider_for
from mail.sending import (
    Mailer,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from mail.templates import TemplateError
from models.activities import Notification
from models.ids import message_id_for
from records.write import (
    begin_notification,
    mark_notification_failed,
    mark_notification_sent,
    note_notification_deferred,
)

log = structlog.get_logger(__name__)


async def deliver(
    conn: asyncpg.Connection,
    mailer: Mailer,
    notification: Notification,
    *,
    last_attempt: bool = False,
) -> bool:
    """Send one notification unless it was already sent; False for a skipped resend.

    The `notifications` row is written `sending` before the SMTP call and `sent` after it: a
    crash between the server's acceptance and the second write makes the retry send once more,
    with the same Message-ID, so that a mail client shows it once. A permanent refusal (and a
    transient failure on the `last_attempt`) marks the row `failed` with the reason and raises a
    non-retryable ApplicationError; a transient failure keeps the reason and raises
    TransientDeliveryError for a retry (the workflow's timeouts bound the retries, and it records
    the e-mail failed when they are spent: activities/records.py).

    Every kind goes the same way; what a kind adds is its provider's (mail/providers.py):
    the badge e-mail attaches the stored credential, baked into the badge image, and keeps its
    fate on the credential too (`emailed_at`, `email_error`)."""
    message_id = message_id_for(notification.notification_id)
    if not await begin_notification(conn, notification, message_id):
        return False
    kind = provider_for(notification.kind)
    bound = log.bind(
        internship_id=notification.internship_id,
        kind=notification.kind,
        role=notification.recipient_role,
    )
    context = await load_context(conn, notification, bound)
    try:
        carried = await kind.carried(conn, mailer.settings, notification)
    except RecordMissing as missing:
        reason = str(missing)
        await mark_notification_failed(conn, notification.notification_id, reason)
        raise ApplicationError(reason, type="MessageNotComposed", non_retryable=True) from None
    try:
        parts = kind.parts(mailer.settings, notification, carried)
        rendered = mailer.render(notification, {**context, **parts.values})
        message = mailer.assemble(
            notification,
            message_id,
            rendered,
            related=parts.related,
            attachments=parts.attachments,
        )
    except TemplateError as broken:
        reason = f"the {notification.kind} template could not be rendered: {broken}"
        await mark_notification_failed(conn, notification.notification_id, reason)
        bound.error("notification not rendered", error=reason)
        raise ApplicationError(reason, type="TemplateError", non_retryable=True) from None
    except Exception as broken:
        # Composing does no I/O: whatever fails here (a value no header can carry, a bug) fails
        # the same way on every retry. The type names the fault; the text could quote a name.
        reason = f"the {notification.kind} e-mail could not be composed ({type(broken).__name__})"
        await mark_notification_failed(conn, notification.notification_id, reason)
        bound.error("notification not composed", error=reason)
        raise ApplicationError(reason, type="MessageNotComposed", non_retryable=True) from None
    try:
        await mailer.send(message)
    except PermanentDeliveryError as refused:
        await mark_notification_failed(conn, notification.notification_id, str(refused))
        bound.warning("notification refused", error=str(refused))
        raise ApplicationError(
            str(refused), type="PermanentDeliveryError", non_retryable=True
        ) from None
    except TransientDeliveryError as failure:
        if last_attempt:
            reason = f"gave up: {failure}"
            await mark_notification_failed(conn, notification.notification_id, reason)
            bound.warning("notification given up", error=reason)
            raise ApplicationError(reason, type="DeliveryGaveUp", non_retryable=True) from None
        await note_notification_deferred(conn, notification.notification_id, str(failure))
        bound.info("notification deferred", error=str(failure))
        raise
    await mark_notification_sent(conn, notification.notification_id)
    await kind.sent(conn, notification)
    bound.info("notification sent")
    return True


class NotifyActivities:
    def __init__(self, pool: asyncpg.Pool, mailer: Mailer) -> None:
        self._pool = pool
        self._mailer = mailer

    @activity.defn(name="send_notification")
    async def send(self, notification: Notification) -> bool:
        """Send one notification unless it was already sent; False for a skipped resend. A
        transient failure is retried by Temporal with backoff until the workflow's give-up time
        (the workflow then records the e-mail failed); a permanent refusal is recorded and ends
        without retry."""
        async with heartbeating(), self._pool.acquire() as conn:
            return await deliver(conn, self._mailer, notification)
