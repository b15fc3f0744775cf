"""Sending e-mail over SMTP: a message composed with its deterministic Message-ID (rendered by
its template, with what its kind's provider adds) and sent once, over sessions kept open between
messages. Delivery errors say whether trying again can help."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, cast

import aiosmtplib
import structlog

from mail.mime import Attachment, Mailbox, format_date, write_message
from mail.providers import provider_for
from mail.templates import RenderedMessage, render
from models.activities import Notification
from runtime.links import intern_links
from runtime.settings import Settings

log = structlog.get_logger(__name__)


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


def _address(settings: Settings) -> str:
    return f"{settings.smtp_host}:{settings.smtp_port}"


def _refused_session(settings: Settings, failed: aiosmtplib.SMTPResponseException) -> str:
    """Why the server refused the session (its greeting, EHLO, the login or the sender), in one
    line that says which setting to change where that is clear. Never the server's text."""
    where = _address(settings)
    if isinstance(failed, aiosmtplib.SMTPAuthenticationError):
        return (
            f"the SMTP server at {where} refused the login (SMTP {failed.code}): check "
            "INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD"
        )
    if failed.code == 530 and settings.smtp_security == "none":
        return (
            f"the SMTP server at {where} takes mail only over TLS or after a login (SMTP 530): "
            "set INTERNFLOW_SMTP_SECURITY=starttls (tls for a port that speaks TLS from the "
            "first byte), and INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD if it wants "
            "a login"
        )
    if failed.code == 530 and settings.smtp_username is None:
        return (
            f"the SMTP server at {where} takes mail only after a login (SMTP 530): set "
            "INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD"
        )
    return f"the SMTP server at {where} answered {failed.code} ({type(failed).__name__})"


def _in_chain(error: BaseException, kind: type[BaseException]) -> BaseException | None:
    """`error` or the first exception it was raised from (or during) that is a `kind`."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None or isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _failed_session(settings: Settings, failed: BaseException) -> str:
    """Why no session could be opened or kept (no answer, TLS, a missing extension), in one
    line: a certificate that does not verify and a TLS setting that does not match the port
    name what to change; anything else is `cannot reach the SMTP server at host:port (Type)`."""
    where = _address(settings)
    untrusted = _in_chain(failed, ssl.SSLCertVerificationError)
    if isinstance(untrusted, ssl.SSLCertVerificationError):
        why = str(untrusted.verify_message or "").rstrip(".") or "it does not verify"
        if why.startswith("Hostname mismatch"):
            fix = "set INTERNFLOW_SMTP_HOST to a name the certificate holds"
        else:
            fix = (
                "point SSL_CERT_FILE at a PEM file holding the CA that signed it (and the "
                "system's CAs, if the process needs them too)"
            )
        return (
            f"the SMTP server at {where} presented a certificate that does not verify "
            f"({why}): {fix}"
        )
    broken = _in_chain(failed, ssl.SSLError)
    if isinstance(broken, ssl.SSLError) and broken.reason not in (
        None,
        "UNEXPECTED_EOF_WHILE_READING",
    ):
        return (
            f"TLS with the SMTP server at {where} failed ({broken.reason}): check "
            "INTERNFLOW_SMTP_SECURITY (tls for a port that speaks TLS from the first byte, "
            "usually 465; starttls for one that starts in plain text, usually 587)"
        )
    text = str(failed) if type(failed) is aiosmtplib.SMTPException else ""
    if "STARTTLS extension not supported" in text:
        return (
            f"the SMTP server at {where} does not offer STARTTLS: set INTERNFLOW_SMTP_SECURITY=tls "
            "if the port speaks TLS from the first byte, or none"
        )
    if "AUTH extension is not supported" in text:
        return (
            f"the SMTP server at {where} offers no login on this connection: set "
            "INTERNFLOW_SMTP_SECURITY=starttls (or tls) if it offers one over TLS only, or unset "
            "INTERNFLOW_SMTP_USERNAME if it wants none"
        )
    return f"cannot reach the SMTP server at {where} ({type(failed).__name__})"


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
        """Where a message's button leads unless the notification carries `values["link"]`: its
        kind's provider says (`MailKind.button`), so that every button leads somewhere its reader
        can use: the badge's page to share for the badge, its verification page for its status
        changes; the party's own signed, expiring link for an e-mail that asks something of
        them; the internship's page on the admin dashboard for the institution (the operator);
        else no button (the e-mail says all there is to say)."""
        return provider_for(notification.kind).button(self._settings, notification)

    def render(
        self, notification: Notification, extra: dict[str, Any] | None = None
    ) -> RenderedMessage:
        """The subject, text and HTML in the recipient's language; `extra` is what the records
        say about the internship (`mail.context`) and overrides the workflow's values
        (its dates are worded for the reader), and the kind's fixed values override both.
        Raises jinja2's TemplateError when a value the template needs is missing."""
        values: dict[str, Any] = {
            "name": notification.recipient_name,
            "link": self.default_link(notification) or "",
            **notification.values,
            **(extra or {}),
            **provider_for(notification.kind).fixed_values(self._settings, notification),
        }
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
        `mail.mime.HeaderValueError` for a value no header can carry (a line break in a
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
            raise TransientDeliveryError(_refused_session(s, failed)) from None
        except (aiosmtplib.SMTPException, OSError) as failed:
            raise TransientDeliveryError(_failed_session(s, failed)) from None

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
