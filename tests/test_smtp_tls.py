"""SMTP over TLS, on servers that require it: the mail sink with a certificate signed by a CA
made for the test, requiring STARTTLS before anything else and a login (username and password)
before mail, or speaking TLS from the first byte (implicit TLS). The Mailer delivers with
INTERNFLOW_SMTP_SECURITY=starttls or tls, verifying the server's certificate against the CA that
SSL_CERT_FILE names; a wrong login, a client in plain text and a certificate it cannot trust
are each refused with one line saying what to change. (The badge e-mail of one internship goes
through such a server in tests/test_postgres_tls.py.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from embedded.mail_sink import MailSink
from mail.sending import Mailer, OutgoingMail, TransientDeliveryError
from models.activities import Notification
from models.ids import message_id_for
from runtime.settings import Settings
from tests.certificates import ServerCertificates, make_ca, make_server_certificates
from tests.conftest import free_port, make_settings
from tests.helpers import load_outbox

LOGIN = ("internflow-relay", "correct horse battery staple")


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificates:
    return make_server_certificates(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ca_file, _ = make_ca(tmp_path_factory.mktemp("other-ca"), "another CA")
    return ca_file


def sink(
    outbox: Path, certificates: ServerCertificates, security: Any, port: int | None = None
) -> MailSink:
    return MailSink(
        outbox,
        "127.0.0.1",
        port or free_port(),
        tls=certificates.server_context(),
        security=security,
        login=LOGIN,
    )


@pytest.fixture
def starttls_relay(tmp_path: Path, certificates: ServerCertificates) -> Iterator[MailSink]:
    """A relay as most are on port 587: STARTTLS first, then a login, then mail."""
    with sink(tmp_path / "outbox", certificates, "starttls") as relay:
        yield relay


def mail(to: str) -> Notification:
    return Notification(
        notification_id=f"internship-t-1/outcome/{uuid.uuid4().hex[:8]}/intern",
        internship_id="t-1",
        kind="outcome",
        recipient_role="intern",
        recipient_email=to,
        recipient_name="Giulia Esposito",
        language="en",
        planned_at=datetime(2027, 6, 1, 9, tzinfo=UTC),
        values={"internship": "t-1", "reason": "validated"},
    )


async def send(settings: Settings, to: str) -> None:
    """Compose and send one message with a Mailer of `settings` (its own sessions)."""
    mailer = Mailer(settings)
    notification = mail(to)
    message: OutgoingMail = mailer.write(notification, message_id_for(notification.notification_id))
    try:
        await mailer.send(message)
    finally:
        await mailer.close()


async def refusal(settings: Settings) -> str:
    """The one line a send with `settings` fails with (nothing is delivered)."""
    with pytest.raises(TransientDeliveryError) as failed:
        await send(settings, "refused@example.org")
    message = str(failed.value)
    assert "\n" not in message
    if settings.smtp_password is not None:
        assert settings.smtp_password.get_secret_value() not in message
    return message


def received(settings: Settings) -> list[str]:
    return [str(m["To"].addresses[0].addr_spec) for m in load_outbox(settings)]


async def test_starttls_with_a_login_delivers_and_every_other_way_in_is_refused(
    tmp_path: Path,
    starttls_relay: MailSink,
    certificates: ServerCertificates,
    other_ca: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    where = starttls_relay.address
    good = make_settings(
        tmp_path,
        smtp_port=starttls_relay.port,
        smtp_security="starttls",
        smtp_username=LOGIN[0],
        smtp_password=LOGIN[1],
        mail_from="Istituto Tecnico Volta <tirocini@volta.school.example>",
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    await send(good, "giulia@students.example.org")
    assert received(good) == ["giulia@students.example.org"]
    # The relay sees the configured sender, in the header and in the envelope.
    (delivered,) = load_outbox(good)
    assert delivered["From"] == "Istituto Tecnico Volta <tirocini@volta.school.example>"
    assert delivered["Return-Path"] == "<tirocini@volta.school.example>"

    def but(**changes: Any) -> Settings:
        return Settings(**{**good.model_dump(), **changes})

    assert await refusal(but(smtp_password="not the password")) == (
        f"the SMTP server at {where} refused the login (SMTP 535): check "
        "INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD"
    )
    assert await refusal(but(smtp_username=None, smtp_password=None)) == (
        f"the SMTP server at {where} takes mail only after a login (SMTP 530): set "
        "INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD"
    )
    # A client in plain text: refused before any mail; with a login configured, the password is
    # never sent (the server offers no AUTH before STARTTLS).
    assert await refusal(but(smtp_security="none", smtp_username=None, smtp_password=None)) == (
        f"the SMTP server at {where} takes mail only over TLS or after a login (SMTP 530): set "
        "INTERNFLOW_SMTP_SECURITY=starttls (tls for a port that speaks TLS from the first "
        "byte), and INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD if it wants a login"
    )
    assert await refusal(but(smtp_security="none")) == (
        f"the SMTP server at {where} offers no login on this connection: set "
        "INTERNFLOW_SMTP_SECURITY=starttls (or tls) if it offers one over TLS only, or unset "
        "INTERNFLOW_SMTP_USERNAME if it wants none"
    )
    assert await refusal(but(smtp_security="tls")) == (
        f"TLS with the SMTP server at {where} failed (WRONG_VERSION_NUMBER): check "
        "INTERNFLOW_SMTP_SECURITY (tls for a port that speaks TLS from the first byte, usually "
        "465; starttls for one that starts in plain text, usually 587)"
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
    assert await refusal(good) == (
        f"the SMTP server at {where} presented a certificate that does not verify (unable to "
        "get local issuer certificate): point SSL_CERT_FILE at a PEM file holding the CA that "
        "signed it (and the system's CAs, if the process needs them too)"
    )
    assert received(good) == ["giulia@students.example.org"], "nothing else got through"


async def test_implicit_tls_delivers_to_a_name_the_certificate_holds(
    tmp_path: Path,
    certificates: ServerCertificates,
    other_ca: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Port 465's way: TLS from the first byte, then the login. The host name the Mailer
    connects to (`localhost`, a name in the certificate) is checked as well as the CA."""
    with sink(tmp_path / "outbox", certificates, "tls") as relay:
        settings = make_settings(
            tmp_path,
            smtp_host="localhost",
            smtp_port=relay.port,
            smtp_security="tls",
            smtp_username=LOGIN[0],
            smtp_password=LOGIN[1],
        )
        monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
        await send(settings, "marco@students.example.org")
        assert received(settings) == ["marco@students.example.org"]

        wrong_login = Settings(**{**settings.model_dump(), "smtp_password": "guess"})
        assert await refusal(wrong_login) == (
            f"the SMTP server at localhost:{relay.port} refused the login (SMTP 535): check "
            "INTERNFLOW_SMTP_USERNAME and INTERNFLOW_SMTP_PASSWORD"
        )
        monkeypatch.setenv("SSL_CERT_FILE", str(other_ca))
        assert "(unable to get local issuer certificate): point SSL_CERT_FILE" in (
            await refusal(settings)
        )

    # A certificate from a trusted CA, but for another name.
    elsewhere = make_server_certificates(tmp_path / "elsewhere", names=("mail.school.example",))
    monkeypatch.setenv("SSL_CERT_FILE", str(elsewhere.ca_file))
    with sink(tmp_path / "outbox", elsewhere, "tls") as relay:
        named = Settings(**{**settings.model_dump(), "smtp_port": relay.port})
        assert await refusal(named) == (
            f"the SMTP server at localhost:{relay.port} presented a certificate that does not "
            "verify (Hostname mismatch, certificate is not valid for 'localhost'): set "
            "INTERNFLOW_SMTP_HOST to a name the certificate holds"
        )
    assert received(settings) == ["marco@students.example.org"]
