"""A loopback SMTP sink (aiosmtpd) that stores every message it receives as an .eml file: in a
thread of the caller (`MailSink`, for tests), or as a child process of the embedded stack
(`MailSinkProcess`, `python -m embedded.mail_sink`), which `internflow up` restarts if it dies."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import structlog

from embedded import child_process
from embedded.ports import answers
from embedded.service import Service
from runtime.errors import StackError, ensure_directory, ensure_port_free
from runtime.settings import Settings

log = structlog.get_logger(__name__)


class OutboxWriter:
    """Writes messages into a directory as `<UTC timestamp>-<counter>.eml`, atomically: a
    reader listing `*.eml` never sees a half-written file, and names sort by arrival."""

    def __init__(self, outbox_dir: Path) -> None:
        self.outbox_dir = outbox_dir
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def write(self, message: bytes) -> Path:
        with self._lock:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
            while True:
                final = self.outbox_dir / f"{stamp}-{next(self._counter):06d}.eml"
                if not final.exists():
                    break
            temp = self.outbox_dir / f".{final.name}.tmp"
            with temp.open("wb") as out:
                out.write(message)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
            return final


class _Handler:
    """aiosmtpd handler: accept any sender, recipient and credentials; store the message.

    While `open` is clear, each session waits after MAIL FROM, as behind a slow server: the fault
    drill holds deliveries so that e-mails are in flight when it kills the worker. A client that
    disconnects while held has sent nothing, so nothing is stored for it."""

    def __init__(self, writer: OutboxWriter, *, login_required: bool = False) -> None:
        self.writer = writer
        self.login_required = login_required
        self.open = asyncio.Event()
        self.open.set()
        self.held = 0

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.login_required and not session.authenticated:
            return "530 5.7.0 Authentication required"
        if not self.open.is_set():
            self.held += 1
            try:
                await self.open.wait()
            finally:
                self.held -= 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        # Delivery headers, as a final MTA adds them: the envelope is otherwise lost (Bcc).
        trace = f"Return-Path: <{envelope.mail_from}>\r\n"
        trace += "".join(f"Delivered-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        content: bytes = envelope.original_content or envelope.content
        path = self.writer.write(trace.encode("utf-8") + content)
        log.debug("mail_sink.stored", file=path.name, recipients=len(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class _WithoutLoginDataWarning(logging.Filter):
    """aiosmtpd warns on every successful AUTH that a legacy attribute is deprecated."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_aiosmtpd_log = logging.getLogger("mail.log")
if not any(isinstance(f, _WithoutLoginDataWarning) for f in _aiosmtpd_log.filters):
    _aiosmtpd_log.addFilter(_WithoutLoginDataWarning())


def _accept_any_login(*_args: Any) -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)


class _OneLogin:
    """aiosmtpd authenticator that accepts one username and password (LOGIN or PLAIN) and
    refuses anything else with 535, as a relay with accounts does."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode("utf-8")
        self._password = password.encode("utf-8")

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword):
            right = hmac.compare_digest(auth_data.login, self._username)
            right &= hmac.compare_digest(auth_data.password, self._password)
            if right:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


SinkSecurity = Literal["none", "starttls", "tls"]
"""How a client reaches the sink, as INTERNFLOW_SMTP_SECURITY names it: in plain text (with
STARTTLS offered when the sink has a certificate), STARTTLS required before anything else, or
TLS from the first byte (implicit TLS)."""


class MailSink:
    """An SMTP server on `host:port` (its own thread) that writes each message to `outbox_dir`.

    Use `with MailSink(outbox, "127.0.0.1", port) as sink:` in tests, or `start()`/`stop()`.

    By default it speaks plain SMTP and accepts any login, as the embedded stack's sink does. With
    `tls` (a server context holding its certificate) and `security`, it behaves like a relay that
    requires TLS: `starttls` refuses every command but EHLO, NOOP, QUIT and STARTTLS (530) until
    the client has started TLS, and offers AUTH only after it; `tls` speaks TLS from the first
    byte. With `login` (a username and password) it refuses mail from a client that has not
    logged in (530) and refuses other credentials (535)."""

    def __init__(
        self,
        outbox_dir: Path,
        host: str = "127.0.0.1",
        port: int = 8025,
        *,
        tls: ssl.SSLContext | None = None,
        security: SinkSecurity = "none",
        login: tuple[str, str] | None = None,
    ) -> None:
        if security != "none" and tls is None:
            raise ValueError(f"a mail sink with security {security!r} needs a TLS context")
        self.outbox_dir = outbox_dir
        self.host = host
        self.port = port
        self.tls = tls
        self.security = security
        self.login = login
        self._controller: Any = None  # aiosmtpd's Controller while running
        self._handler: _Handler | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> MailSink:
        return cls(settings.outbox_path, settings.smtp_host, settings.smtp_port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._controller is not None

    def messages(self) -> list[Path]:
        """The stored messages, oldest first."""
        return sorted(self.outbox_dir.glob("*.eml"))

    def start(self) -> None:
        if self._controller is not None:
            return
        self.outbox_dir = ensure_directory(self.outbox_dir)
        ensure_port_free(self.host, self.port, "INTERNFLOW_SMTP_PORT")
        # aiosmtpd comes with the `embedded` extra: imported here, so that a production install
        # without it can still read a stack's stack.json (embedded.stack imports this module).
        from aiosmtpd.controller import Controller

        self._handler = _Handler(OutboxWriter(self.outbox_dir), login_required=bool(self.login))
        controller = Controller(
            self._handler,
            hostname=self.host,
            port=self.port,
            server_hostname="internflow-mail-sink",
            ready_timeout=10.0,
            **self._security_options(),
        )
        try:
            controller.start()
        except Exception as exc:
            raise StackError(
                f"the mail sink could not listen on {self.address} ({exc}): "
                "set INTERNFLOW_SMTP_PORT to a free port"
            ) from None
        self._controller = controller
        log.info("mail_sink.started", address=self.address, outbox=str(self.outbox_dir))

    def _security_options(self) -> dict[str, Any]:
        """aiosmtpd's options for the sink's TLS and login (none of them by default)."""
        options: dict[str, Any] = {
            # A login, when the sink wants one, is required before MAIL by the handler: aiosmtpd's
            # own `auth_required` warns on every connection under implicit TLS.
            "authenticator": _OneLogin(*self.login) if self.login else _accept_any_login,
            # With a certificate, a login is taken only once STARTTLS protects it (aiosmtpd counts
            # STARTTLS only: under implicit TLS every byte is protected already). Without one,
            # the development sink takes any login in clear, as it always has.
            "auth_require_tls": self.tls is not None and self.security != "tls",
        }
        if self.security == "tls":
            options["ssl_context"] = self.tls
        elif self.tls is not None:
            options["tls_context"] = self.tls
            options["require_starttls"] = self.security == "starttls"
        return options

    @property
    def held(self) -> int:
        """Sessions waiting while deliveries are held."""
        return self._handler.held if self._handler is not None else 0

    def hold(self) -> None:
        """Hold every delivery after MAIL FROM until release(), as a slow server would."""
        self._set_open(False)

    def release(self) -> None:
        self._set_open(True)

    def _set_open(self, value: bool) -> None:
        if self._controller is None or self._handler is None:
            raise StackError("the mail sink is not running")
        event = self._handler.open
        self._controller.loop.call_soon_threadsafe(event.set if value else event.clear)

    def stop(self) -> None:
        if self._controller is None:
            return
        if self._handler is not None:
            self.release()  # a held session would keep the server from stopping
        self._controller.stop()
        self._controller = None
        log.info("mail_sink.stopped")

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


#: The child's signals: hold deliveries, release them (`MailSink.hold`/`release` across processes).
HOLD_SIGNAL, RELEASE_SIGNAL = signal.SIGUSR1, signal.SIGUSR2


class MailSinkProcess(Service):
    """The mail sink as a child process on the settings' SMTP host and port (the embedded stack's
    own), started and stopped like its other parts."""

    def __init__(
        self, settings: Settings, *, env: Mapping[str, str] | None = None, ready_timeout: float = 10
    ) -> None:
        self.settings = settings
        self.host, self.port = settings.smtp_host, settings.smtp_port
        self.env = env
        self.ready_timeout = ready_timeout
        self.log_path = settings.state_dir / "logs" / "mail-sink.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def exit_code(self) -> int | None:
        """The child's exit code once it has exited on its own (None while it runs)."""
        return self._proc.poll() if self._proc is not None else None

    async def start(self) -> None:
        if self.pid is not None:
            return
        ensure_directory(self.settings.outbox_path)
        ensure_port_free(self.host, self.port, "INTERNFLOW_SMTP_PORT")
        self._proc = child_process.spawn(
            [sys.executable, "-m", "embedded.mail_sink"], log_path=self.log_path, env=self.env
        )
        deadline = time.monotonic() + self.ready_timeout
        while not answers(self.host, self.port):
            code = self._proc.poll()
            if code is not None or time.monotonic() > deadline:
                await self.stop()
                raise StackError(
                    f"the mail sink did not start on {self.address} (exit code {code}); its log "
                    f"({self.log_path}) ends with:\n{child_process.log_tail(self.log_path)}"
                )
            await asyncio.sleep(0.05)
        log.info("mail_sink.started", address=self.address, pid=self._proc.pid)

    async def stop(self) -> None:
        if self._proc is None:
            return
        code = await child_process.stop(self._proc, name="mail", grace_seconds=5.0)
        self._proc = None
        log.info("mail_sink.stopped", exit_code=code)

    def hold(self) -> None:
        """Hold every delivery after MAIL FROM until release() (see MailSink.hold)."""
        self._signal(HOLD_SIGNAL)

    def release(self) -> None:
        self._signal(RELEASE_SIGNAL)

    def _signal(self, sig: int) -> None:
        if self.pid is None:
            raise StackError("the mail sink is not running")
        os.kill(self.pid, sig)


def main() -> None:
    """`python -m embedded.mail_sink`: serve the settings' sink until SIGTERM or SIGINT; SIGUSR1
    holds deliveries, SIGUSR2 releases them."""
    from runtime.logging import configure_logging

    settings = Settings()
    configure_logging(settings)
    # Blocked before the server's thread starts (threads inherit the mask): only this thread
    # takes them, one at a time, with sigwait.
    wanted = {signal.SIGTERM, signal.SIGINT, HOLD_SIGNAL, RELEASE_SIGNAL}
    signal.pthread_sigmask(signal.SIG_BLOCK, wanted)
    sink = MailSink.from_settings(settings)
    try:
        sink.start()
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        while (received := signal.sigwait(wanted)) not in (signal.SIGTERM, signal.SIGINT):
            if received == HOLD_SIGNAL:
                sink.hold()
            else:
                sink.release()
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
