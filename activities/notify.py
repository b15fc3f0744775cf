"""E-mail through SMTP: composing messages with deterministic Message-IDs and sending each once."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import quote

import aiosmtplib
import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.badge_mail import (
    badge_attachments,
    badge_mail_values,
    badge_page_url,
    verify_page_url,
)
from activities.liveness import heartbeating
from activities.mail_context import mail_values
from activities.mime import Attachment, Mailbox, format_date, write_message
from activities.records import mark_notification_failed, refresh_overdue
from activities.templates import RenderedMessage, TemplateError, render
from activities.wallet_offer import wallet_mail_values, wallet_qr_images
from models.activities import Notification, NotificationKind
from models.ids import credential_uuid_for, message_id_for
from models.plan import InternshipPlan
from runtime.links import intern_links, notification_link
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: Milestone ladder steps: each is sent when a deadline passes with something still owed, so each
#: brings the internship's `overdue` flag up to date.
OVERDUE_STEPS: frozenset[NotificationKind] = frozenset({"reminder", "escalation", "missed"})
#: E-mails about an issued badge: their button leads to its public verification page.
BADGE_KINDS: frozenset[NotificationKind] = frozenset(
    {"badge", "revocation", "suspension", "reinstatement"}
)


def dashboard_url_for(public_base_url: str, internship_id: str) -> str:
    """The internship's page on the admin dashboard (sign-in leads back to it)."""
    return f"{public_base_url.rstrip('/')}/admin/internships/{quote(internship_id, safe='')}"


def verify_url_for(public_base_url: str, internship_id: str) -> str:
    """The public verification page of the internship's badge."""
    return verify_page_url(public_base_url, credential_uuid_for(internship_id))


class PermanentDeliveryError(Exception):
    """The SMTP server refused this message or its recipient for good (5xx): retrying cannot
    help. The message names SMTP codes only, never an address."""


class TransientDeliveryError(Exception):
    """The message could not be handed over now (server unreachable, 4xx, authentication or
    configuration trouble): a later attempt may succeed. Names no address."""


@dataclass(frozen=True)
class OutgoingMail:
    """A composed message as SMTP carries it (CRLF lines), with its envelope."""

    sender: str
    recipient: str
    data: bytes
    #: The recipient's address is internationalised (RFC 6531): sent with SMTPUTF8.
    smtputf8: bool = False


def sender_mailbox(mail_from: str) -> Mailbox:
    """The configured From (`Name <address>` or an address), read once per mailer."""
    header = email.policy.default.header_factory("From", mail_from)
    addresses: Sequence[Any] = getattr(header, "addresses", ())
    if len(addresses) != 1:
        return Mailbox("", mail_from)  # refused when a message is composed: names the header
    return Mailbox(addresses[0].display_name, addresses[0].addr_spec)


#: An SMTP session idle this long is closed rather than reused: well inside the idle timeouts
#: servers apply (RFC 5321 asks them to wait at least 5 minutes).
SESSION_IDLE_SECONDS = 30.0
#: Sessions kept open between messages; more concurrent sends open more, then close them.
SESSIONS_KEPT = 8
#: Messages sent in one session before it is closed: some servers cap messages per connection.
MESSAGES_PER_SESSION = 100


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    loop: asyncio.AbstractEventLoop
    sent: int = 0
    idle_since: float = 0.0


class Mailer:
    """Composes messages from the templates and sends them through the configured SMTP server.

    SMTP sessions are kept open between messages (up to SESSIONS_KEPT idle ones): connecting,
    the greeting, EHLO, STARTTLS and AUTH cost more round trips and CPU than the message itself.
    A session is reused only after a NOOP shows it alive, and closed after any error, so a
    failed transaction never leaves its state to the next message."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.public_base_url = settings.public_base_url.rstrip("/")
        self._sender = sender_mailbox(settings.mail_from)
        # The name given in EHLO, looked up once: left to aiosmtplib, every message would make a
        # blocking DNS lookup (socket.getfqdn) on the event loop.
        self._local_hostname = socket.getfqdn()
        self._idle: list[_Session] = []

    @property
    def settings(self) -> Settings:
        return self._settings

    def default_link(self, notification: Notification) -> str | None:
        """Where a message's button leads unless the notification carries `values["link"]`, so
        that every button leads somewhere its reader can use: the badge's page to share for the
        badge, its verification page for its status changes; the party's own signed, expiring
        link for an e-mail that asks something of them; the internship's page on the admin
        dashboard for the institution (the operator); else no button (the e-mail says all there
        is to say)."""
        if notification.kind == "badge":
            # The earner's page to share (it shows the live status and links the checks).
            credential_uuid = credential_uuid_for(notification.internship_id)
            return badge_page_url(self.public_base_url, credential_uuid)
        if notification.kind in BADGE_KINDS:
            return verify_url_for(self.public_base_url, notification.internship_id)
        link = notification_link(self._settings, notification)
        if link is not None:
            return link
        if notification.recipient_role == "operator":
            return dashboard_url_for(self.public_base_url, notification.internship_id)
        return None

    def render(
        self, notification: Notification, extra: dict[str, Any] | None = None
    ) -> RenderedMessage:
        """The subject, text and HTML in the recipient's language; `extra` is what the records
        say about the internship (`activities.mail_context`) and overrides the workflow's values
        (its dates are worded for the reader). Raises jinja2's TemplateError when a value the
        template needs is missing."""
        values: dict[str, Any] = {
            "name": notification.recipient_name,
            "link": self.default_link(notification) or "",
            **notification.values,
            **(extra or {}),
        }
        if notification.kind in BADGE_KINDS:
            values["verify_url"] = verify_url_for(self.public_base_url, notification.internship_id)
        values.update(intern_links(self._settings, notification))
        return render(notification.kind, notification.language, values)

    def write(
        self,
        notification: Notification,
        message_id: str,
        extra: dict[str, Any] | None = None,
        *,
        related: Sequence[Attachment] = (),
        attachments: Sequence[Attachment] = (),
    ) -> OutgoingMail:
        """The message, rendered (`render`) and assembled (`assemble`)."""
        rendered = self.render(notification, extra)
        return self.assemble(
            notification, message_id, rendered, related=related, attachments=attachments
        )

    def assemble(
        self,
        notification: Notification,
        message_id: str,
        rendered: RenderedMessage,
        *,
        related: Sequence[Attachment] = (),
        attachments: Sequence[Attachment] = (),
    ) -> OutgoingMail:
        """The message as SMTP carries it: a text and an HTML part (the HTML part with its
        `related` inline images), the `attachments`, and the headers. Raises
        `activities.mime.HeaderValueError` for a value no header can carry (a line break in a
        name)."""
        # A structured address: a display name with <, >, quotes, commas or any script stays
        # one display name (written as atoms, a quoted string or encoded-words, never re-parsed).
        recipient = Mailbox(notification.recipient_name, notification.recipient_email)
        data = write_message(
            [
                ("From", self._sender),
                ("To", recipient),
                ("Subject", rendered.subject),
                ("Date", format_date()),
                ("Message-ID", message_id),
                ("Auto-Submitted", "auto-generated"),
                # Ids only, for filtering and support; never names or addresses.
                ("X-Internflow-Internship", notification.internship_id),
                ("X-Internflow-Kind", notification.kind),
            ],
            rendered.text,
            rendered.html,
            language=notification.language,
            related=related,
            attachments=attachments,
        )
        return OutgoingMail(
            sender=self._sender.addr_spec,
            recipient=recipient.addr_spec,
            data=data,
            smtputf8=recipient.needs_smtputf8 or self._sender.needs_smtputf8,
        )

    def compose(
        self, notification: Notification, message_id: str, extra: dict[str, Any] | None = None
    ) -> EmailMessage:
        """The message `write` gives, as a mail program reads it (the standard library's parser):
        for looking at a message, not for sending it."""
        data = self.write(notification, message_id, extra).data
        return cast(EmailMessage, email.message_from_bytes(data, policy=email.policy.default))

    async def send(self, message: OutgoingMail) -> None:
        """Hand the message to the SMTP server. Raises PermanentDeliveryError when the server
        refuses the recipient or the message with a 5xx code, TransientDeliveryError for
        anything that may pass later. Neither carries the server's text, which can quote the
        address."""
        s = self._settings
        try:
            session = await self._session()
            try:
                await session.client.sendmail(
                    message.sender,
                    [message.recipient],
                    message.data,
                    mail_options=["SMTPUTF8"] if message.smtputf8 else None,
                )
            except BaseException:
                session.client.close()
                raise
            self._release(session)
        except aiosmtplib.SMTPRecipientsRefused as refused:
            codes = sorted({r.code for r in refused.recipients})
            if codes and all(code >= 500 for code in codes):
                raise PermanentDeliveryError(f"recipient refused with SMTP {codes}") from None
            raise TransientDeliveryError(f"recipient deferred with SMTP {codes}") from None
        except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as refused:
            is_recipient = isinstance(refused, aiosmtplib.SMTPRecipientRefused)
            what = "recipient" if is_recipient else "message"
            if refused.code >= 500:
                raise PermanentDeliveryError(f"{what} refused with SMTP {refused.code}") from None
            raise TransientDeliveryError(f"{what} deferred with SMTP {refused.code}") from None
        except aiosmtplib.SMTPResponseException as failed:
            # Greeting, HELO, AUTH or the sender refused: the server or our settings, for every
            # message alike; it passes once they are fixed.
            raise TransientDeliveryError(
                f"the SMTP server at {s.smtp_host}:{s.smtp_port} answered "
                f"{failed.code} ({type(failed).__name__})"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as failed:
            raise TransientDeliveryError(
                f"cannot reach the SMTP server at {s.smtp_host}:{s.smtp_port} "
                f"({type(failed).__name__})"
            ) from None

    async def _session(self) -> _Session:
        """An open SMTP session: the most recently used idle one that answers a NOOP, else a new
        one (connected, EHLO, STARTTLS and AUTH as configured)."""
        now, loop = time.monotonic(), asyncio.get_running_loop()
        while self._idle:
            session = self._idle.pop()
            if session.loop is not loop:  # a transport belongs to the loop that opened it
                continue
            if session.client.is_connected and now - session.idle_since < SESSION_IDLE_SECONDS:
                try:
                    await session.client.noop()
                    return session
                except (aiosmtplib.SMTPException, OSError):
                    pass
            session.client.close()
        s = self._settings
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_security == "tls",
            start_tls=True if s.smtp_security == "starttls" else False,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            local_hostname=self._local_hostname,
            timeout=20,
        )
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return _Session(client, loop)

    def _release(self, session: _Session) -> None:
        """After a message the server accepted: keep the session for the next one, or close it."""
        session.sent += 1
        if session.sent >= MESSAGES_PER_SESSION or len(self._idle) >= SESSIONS_KEPT:
            session.client.close()
            return
        session.idle_since = time.monotonic()
        self._idle.append(session)

    async def close(self) -> None:
        """Ends the idle sessions politely (QUIT); for a worker that stops."""
        idle, self._idle = self._idle, []
        for session in idle:
            try:
                await session.client.quit()
            except (aiosmtplib.SMTPException, OSError):
                session.client.close()


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

    The badge e-mail attaches the stored credential, baked into the badge image, and keeps its
    fate on the credential too (`emailed_at`, `email_error`)."""
    message_id = message_id_for(notification.notification_id)
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
    if notification.kind in OVERDUE_STEPS:
        async with conn.transaction():
            await refresh_overdue(conn, notification.internship_id, notification.planned_at)
    bound = log.bind(
        internship_id=notification.internship_id,
        kind=notification.kind,
        role=notification.recipient_role,
    )
    context = await _context(conn, notification, bound)
    badge = await _stored_badge(conn, notification) if notification.kind == "badge" else None
    try:
        if badge is not None:
            context = {
                **context,
                **badge_mail_values(
                    mailer.settings, notification.internship_id, badge[1], notification.language
                ),
            }
        if badge is not None:
            # The offer to a wallet: a link, its QR code and the transaction code.
            context = {
                **context,
                **wallet_mail_values(
                    mailer.settings, notification.internship_id, notification.language
                ),
            }
        related: list[Attachment] = []
        attachments: list[Attachment] = []
        if badge is not None:
            attachments = badge_attachments(*badge)
            related = wallet_qr_images(context)
        message = mailer.write(
            notification, message_id, context, related=related, attachments=attachments
        )
    except TemplateError as broken:
        reason = f"the {notification.kind} template could not be rendered: {broken}"
        await _mark_failed(conn, notification, reason)
        bound.error("notification not rendered", error=reason)
        raise ApplicationError(reason, type="TemplateError", non_retryable=True) from None
    except Exception as broken:
        # Composing does no I/O: whatever fails here (a value no header can carry, a bug) fails
        # the same way on every retry. The type names the fault; the text could quote a name.
        reason = f"the {notification.kind} e-mail could not be composed ({type(broken).__name__})"
        await _mark_failed(conn, notification, reason)
        bound.error("notification not composed", error=reason)
        raise ApplicationError(reason, type="MessageNotComposed", non_retryable=True) from None
    try:
        await mailer.send(message)
    except PermanentDeliveryError as refused:
        await _mark_failed(conn, notification, str(refused))
        bound.warning("notification refused", error=str(refused))
        raise ApplicationError(
            str(refused), type="PermanentDeliveryError", non_retryable=True
        ) from None
    except TransientDeliveryError as failure:
        if last_attempt:
            reason = f"gave up: {failure}"
            await _mark_failed(conn, notification, reason)
            bound.warning("notification given up", error=reason)
            raise ApplicationError(reason, type="DeliveryGaveUp", non_retryable=True) from None
        await conn.execute(
            "UPDATE notifications SET error = $2 WHERE notification_id = $1",
            notification.notification_id,
            str(failure),
        )
        bound.info("notification deferred", error=str(failure))
        raise
    await conn.execute(
        "UPDATE notifications SET status = 'sent', sent_at = now(), error = NULL "
        "WHERE notification_id = $1",
        notification.notification_id,
    )
    if notification.kind == "badge":
        await conn.execute(
            "UPDATE credentials SET emailed_at = now(), email_error = NULL "
            "WHERE internship_id = $1 AND emailed_at IS NULL",
            notification.internship_id,
        )
    bound.info("notification sent")
    return True


async def _stored_badge(
    conn: asyncpg.Connection, notification: Notification
) -> tuple[InternshipPlan, str]:
    """The plan (its badge image) and the stored credential the badge e-mail carries. Stored
    before the e-mail is asked for; missing, it is a fault no retry mends."""
    row = await conn.fetchrow(
        """
        SELECT c.credential, v.plan FROM credentials c
        JOIN plan_versions v USING (internship_id)
        WHERE c.internship_id = $1 ORDER BY v.version DESC LIMIT 1
        """,
        notification.internship_id,
    )
    if row is None:
        reason = "the badge e-mail has no stored credential to carry"
        await _mark_failed(conn, notification, reason)
        raise ApplicationError(reason, type="MessageNotComposed", non_retryable=True)
    return InternshipPlan.model_validate_json(row["plan"]), row["credential"]


async def _context(
    conn: asyncpg.Connection, notification: Notification, bound: Any
) -> dict[str, Any]:
    """What the records say about the internship for this e-mail. PostgreSQL being away is
    retried like the rest of the delivery; anything else (records that cannot be read as the
    model expects) sends the e-mail naming the internship by its id alone, and is logged."""
    try:
        return await mail_values(conn, notification)
    except (
        OSError,
        asyncpg.PostgresConnectionError,
        asyncpg.CannotConnectNowError,
        asyncpg.InterfaceError,
    ):
        raise
    except Exception as unreadable:
        bound.error("notification context not read", error=type(unreadable).__name__)
        return {}


async def _mark_failed(conn: asyncpg.Connection, notification: Notification, reason: str) -> None:
    await mark_notification_failed(conn, notification.notification_id, reason)


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
