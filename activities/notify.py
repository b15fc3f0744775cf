"""E-mail through SMTP: composing messages with deterministic Message-IDs and sending them once."""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formataddr, formatdate

import aiosmtplib
import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.templates import render
from models.activities import Notification
from runtime.settings import Settings

log = structlog.get_logger(__name__)


def message_id_for(notification_id: str) -> str:
    """The same notification always gets the same Message-ID, so a resend is recognisable."""
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:40]
    return f"<{digest}@internflow>"


class PermanentDeliveryError(Exception):
    """The SMTP server refused the message for good (5xx): retrying cannot help."""


class Mailer:
    """Sends messages through the configured SMTP server."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def compose(
        self, notification: Notification, message_id: str, extra: dict[str, str] | None = None
    ) -> EmailMessage:
        values = {"name": notification.recipient_name, **notification.values, **(extra or {})}
        subject, body = render(notification.kind, notification.language, values)
        message = EmailMessage()
        message["From"] = self._settings.mail_from
        message["To"] = formataddr((notification.recipient_name, notification.recipient_email))
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id
        message["Content-Language"] = notification.language
        # Ids only, for filtering and support; never names or addresses.
        message["X-Internflow-Internship"] = notification.internship_id
        message["X-Internflow-Kind"] = notification.kind
        message.set_content(body)
        return message

    async def send(self, message: EmailMessage) -> None:
        """Send, raising PermanentDeliveryError for a 5xx refusal; anything else is transient."""
        s = self._settings
        try:
            await aiosmtplib.send(
                message,
                hostname=s.smtp_host,
                port=s.smtp_port,
                use_tls=s.smtp_security == "tls",
                start_tls=True if s.smtp_security == "starttls" else False,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                timeout=20,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = [r.code for r in refused.recipients]
            if all(code >= 500 for code in codes):
                raise PermanentDeliveryError(f"recipient refused with {codes}") from None
            raise
        except aiosmtplib.SMTPResponseException as refused:
            if refused.code >= 500:
                raise PermanentDeliveryError(f"message refused with {refused.code}") from None
            raise


class NotifyActivities:
    def __init__(self, pool: asyncpg.Pool, mailer: Mailer) -> None:
        self._pool = pool
        self._mailer = mailer

    @activity.defn(name="send_notification")
    async def send(self, notification: Notification) -> bool:
        """Send one notification unless it was already sent. Returns False for a skipped resend.

        The row is marked `sending` before the SMTP call and `sent` after it: a crash between the
        server's acceptance and the second write makes the retry send once more, with the same
        Message-ID, so that a mail client shows it once."""
        message_id = message_id_for(notification.notification_id)
        async with self._pool.acquire() as conn:
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
            if status == "sent":
                return False
            try:
                await self._mailer.send(self._mailer.compose(notification, message_id))
            except PermanentDeliveryError as refused:
                await conn.execute(
                    "UPDATE notifications SET status = 'failed', error = $2 "
                    "WHERE notification_id = $1",
                    notification.notification_id,
                    str(refused),
                )
                raise ApplicationError(
                    str(refused), type="PermanentDeliveryError", non_retryable=True
                ) from None
            await conn.execute(
                "UPDATE notifications SET status = 'sent', sent_at = now(), error = NULL "
                "WHERE notification_id = $1",
                notification.notification_id,
            )
        log.info(
            "notification sent",
            internship_id=notification.internship_id,
            kind=notification.kind,
            role=notification.recipient_role,
        )
        return True
