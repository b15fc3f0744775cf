"""E-mail as written by mail.mime: every kind of message in every language reads, through
the standard library's parser, exactly as the `email` package composed it before (headers,
both bodies, every inline image and attachment); header values can never break out of their
header; the wire format keeps its limits (CRLF, line lengths, encodings)."""

from __future__ import annotations

import email
import email.header
import email.policy
import email.utils
import json
import re
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any, get_args

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import given, settings
from hypothesis import strategies as st

from badges.bake import bake_png
from badges.oid4vci import offer_qr_png
from mail import mime
from mail.badge import badge_attachments, badge_image, badge_mail_values
from mail.mime import Attachment, HeaderValueError, Mailbox, write_message
from mail.sending import Mailer, OutgoingMail
from mail.templates import RenderedMessage
from mail.wallet_offer import make_offer, wallet_mail_values, wallet_qr_images
from models.activities import Notification, NotificationKind
from models.ids import credential_uuid_for, message_id_for
from runtime.settings import Settings
from runtime.wallet_codes import EMAIL_OFFER_VALIDITY
from tests.conftest import make_settings
from tests.helpers import sample_plan

pytestmark = pytest.mark.pure

LANGUAGES = ("en", "it", "de", "fr", "es")
KINDS: tuple[str, ...] = get_args(NotificationKind)
#: What each kind's template needs from the workflow, besides `internship`.
KIND_VALUES: dict[str, dict[str, str]] = {
    "agreement_reminder": {"version": "2", "deadline": "2027-02-15 18:00 CET"},
    "change_request": {"party": "mentor", "version": "1"},
    "milestone_request": {"milestone": "Zwischenbericht «März»"},
    "reminder": {"milestone": "Mid-term review"},
    "escalation": {"milestone": "Mid-term review"},
    "missed": {"milestone": "Mid-term review"},
    "final_review": {"placement_url": "https://internflow.example/p/t-2?x=y"},
    "assessment_reminder": {"deadline": "2027-06-11 17:00 CEST"},
    "outcome": {"reason": "no assessment from mentor in time"},
    "withdrawal": {"reason": "moved abroad."},
    "cancellation": {"reason": "the agreement was not approved"},
    "badge": {"badge": "Sviluppo web: è fatta", "verify_url": "https://school.example/verify/1"},
    "revocation": {"badge": "Web development", "reason": "issued by mistake"},
    "suspension": {"badge": "Web development", "reason": "under review"},
    "reinstatement": {"badge": "Web development", "reason": "review closed"},
    "delivery_failed": {
        "failed_kind": "reminder",
        "failed_role": "intern",
        "error": "recipient refused with SMTP [550]",
    },
    "approval_request": {"version": "1"},
}
#: Recipients' names: atoms, specials, quotes, other scripts, one long enough to fold.
NAMES = (
    "Giulia Esposito",
    'Giulia <Esposito> & Co, "GE"',
    "Jürgen Müller-Lüdenscheidt",
    "Zoë Ünal",
    "Ελένη Παπαδοπούλου",
    "O'Brien, Seán",
    "Maria Aurora Benedetta Carlotta Domenica Eleonora Francesca Giovanna Ilaria Lucrezia",
)
CREDENTIAL = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "id": "urn:uuid:7df75bb7-7d94-5f3c-a315-8ff118ac372a",
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "name": "Sviluppo web: è fatta",
    "issuer": {"id": "https://school.example/issuers/1", "name": "Istituto «Bassano»"},
    "credentialSubject": {"achievement": {"name": "Sviluppo web: è fatta"}},
}
#: A VC-JWT as stored: a JSON string holding the compact JWT (not verified here).
JWT = json.dumps("eyJhbGciOiJFZERTQSJ9.eyJ2YyI6e319.c2lnbmF0dXJl")


@pytest.fixture(scope="module")
def mail_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("mime"))


def _notification(kind: str, language: str, name: str = NAMES[1]) -> Notification:
    return Notification.model_validate(
        {
            "notification_id": f"internship-t-1/{kind}/k/intern",
            "internship_id": "t-1",
            "kind": kind,
            "recipient_role": "intern",
            "recipient_email": "giulia.esposito@students.example.org",
            "recipient_name": name,
            "language": language,
            "planned_at": datetime(2027, 3, 1, 9, tzinfo=UTC),
            "values": {"internship": "t-1", **KIND_VALUES.get(kind, {})},
        }
    )


# ----------------------------------------------------------------- the former composition


def _set_language(message: EmailMessage, language: str) -> None:
    for part in [message, *message.walk()]:
        if part is message or part.get_content_maintype() == "text":
            del part["Content-Language"]
            part["Content-Language"] = language


def _reference(
    settings_: Settings,
    notification: Notification,
    message_id: str,
    rendered: RenderedMessage,
    badge: tuple[str, str] | None,
    context: dict[str, Any],
) -> bytes:
    """The message as internflow composed it with the `email` package until it wrote MIME
    itself, flattened as aiosmtplib flattened it for the wire (the reference, kept here only)."""
    message = EmailMessage()
    message["From"] = settings_.mail_from
    message["To"] = Address(
        display_name=notification.recipient_name, addr_spec=notification.recipient_email
    )
    message["Subject"] = rendered.subject
    message["Date"] = email.utils.formatdate(localtime=False)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"
    message["X-Internflow-Internship"] = notification.internship_id
    message["X-Internflow-Kind"] = notification.kind
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    _set_language(message, notification.language)
    if badge is not None:
        image, stored = badge
        value = json.loads(stored)
        if isinstance(value, str):
            baked = bake_png(badge_image(image), value)
            attachment, subtype, filename = value.encode(), "jwt", "credential.jwt"
        else:
            baked = bake_png(badge_image(image), stored)
            attachment, subtype, filename = stored.encode(), "json", "credential.json"
        message.add_attachment(baked, maintype="image", subtype="png", filename="badge.png")
        message.add_attachment(
            attachment, maintype="application", subtype=subtype, filename=filename
        )
        html = message.get_body(preferencelist=("html",))
        assert isinstance(html, EmailMessage)
        html.add_related(
            offer_qr_png(context["wallet_offer_url"]),
            maintype="image",
            subtype="png",
            cid=f"<{context['wallet_qr_cid']}>",
            filename="wallet-offer.png",
            disposition="inline",
        )
    return flatten_message(message, utf8=False, cte_type="8bit")


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _headers(message: EmailMessage) -> dict[str, Any]:
    """The top-level headers as a reader's program decodes them (Date apart)."""
    to = message["To"].addresses
    sender = message["From"].addresses
    return {
        "From": [(a.display_name, a.addr_spec) for a in sender],
        "To": [(a.display_name, a.addr_spec) for a in to],
        **{
            name: str(message[name])
            for name in (
                "Subject",
                "Message-ID",
                "Auto-Submitted",
                "X-Internflow-Internship",
                "X-Internflow-Kind",
                "MIME-Version",
            )
        },
        "defects": [type(d).__name__ for d in [*message.defects, *message["To"].defects]],
    }


def _tree(message: EmailMessage) -> list[tuple[Any, ...]]:
    """Every part: its type, where it sits, its file name, disposition, Content-ID, charset,
    language (text parts) and content (decoded: str for text, bytes otherwise)."""
    parts = []
    for depth, part in _walk(message, 0):
        content = None if part.is_multipart() else part.get_content()
        language = part["Content-Language"] if part.get_content_maintype() == "text" else None
        parts.append(
            (
                depth,
                part.get_content_type(),
                part.get_filename(),
                part.get_content_disposition(),
                part["Content-ID"],
                part.get_content_charset(),
                language,
                content,
                [type(d).__name__ for d in part.defects],
            )
        )
    return parts


def _walk(part: EmailMessage, depth: int) -> list[tuple[int, EmailMessage]]:
    found = [(depth, part)]
    if part.is_multipart():
        for child in part.iter_parts():
            assert isinstance(child, EmailMessage)
            found += _walk(child, depth + 1)
    return found


def _offer_by_reference(mail_settings: Settings) -> str:
    """The badge e-mail's offer as the provider stores it (by reference; not stored here)."""
    return make_offer(mail_settings, credential_uuid_for("t-1"), EMAIL_OFFER_VALIDITY).uri_url


def _both(
    mail_settings: Settings, kind: str, language: str, name: str, stored: str | None = None
) -> tuple[OutgoingMail, bytes]:
    mailer = Mailer(mail_settings)
    notification = _notification(kind, language, name)
    message_id = message_id_for(notification.notification_id)
    context: dict[str, Any] = {}
    badge = None
    related: list[Attachment] = []
    attachments: list[Attachment] = []
    if kind == "badge":
        stored = stored or json.dumps(CREDENTIAL)
        context = {
            **badge_mail_values(mail_settings, "t-1", stored, language),
            **wallet_mail_values(mail_settings, "t-1", _offer_by_reference(mail_settings)),
        }
        plan = sample_plan(datetime(2027, 2, 15, 18, tzinfo=UTC))
        # The image the former composition baked: the shipped one.
        plan = plan.model_copy(
            update={"badge": plan.badge.model_copy(update={"image": "badge.png"})}
        )
        badge = ("badge.png", stored)
        attachments = badge_attachments(plan, stored)
        related = wallet_qr_images(context)
    rendered = mailer.render(notification, context)
    new = mailer.assemble(
        notification, message_id, rendered, related=related, attachments=attachments
    )
    old = _reference(mail_settings, notification, message_id, rendered, badge, context)
    return new, old


def _assert_same(new: OutgoingMail, old: bytes, language: str, kind: str) -> None:
    ours, theirs = _parse(new.data), _parse(old)
    assert _headers(ours) == _headers(theirs)
    assert _headers(ours)["defects"] == []
    when = email.utils.parsedate_to_datetime(str(ours["Date"]))
    before = email.utils.parsedate_to_datetime(str(theirs["Date"]))
    # Both "-0000" (UTC, no local zone implied): read as naive datetimes.
    assert when.tzinfo is None and before.tzinfo is None
    assert abs((when - before).total_seconds()) < 5
    # Content-Language names the message's language on the message itself. The former
    # composition lost it from a message with attachments (it moved into the alternative part
    # when the message became multipart/mixed): the one intended difference.
    assert ours["Content-Language"] == language
    if kind != "badge":
        assert theirs["Content-Language"] == language
    assert _tree(ours) == _tree(theirs)
    # The envelope is what aiosmtplib took from the headers.
    assert new.sender == "noreply@internflow.localhost"
    assert new.recipient == "giulia.esposito@students.example.org"
    assert not new.smtputf8


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_in_every_language_reads_as_the_former_composition(
    mail_settings: Settings, kind: str, language: str
) -> None:
    for name in NAMES:
        new, old = _both(mail_settings, kind, language, name)
        _assert_same(new, old, language, kind)
        _assert_wire_limits(new.data)


def test_the_badge_e_mail_carries_the_same_parts_as_before(mail_settings: Settings) -> None:
    """multipart/mixed: the alternative (text, and HTML related to the wallet offer's QR code),
    the baked badge and the credential; the same for a VC-JWT credential."""
    for stored, filename, content_type in (
        (json.dumps(CREDENTIAL), "credential.json", "application/json"),
        (JWT, "credential.jwt", "application/jwt"),
    ):
        new, old = _both(mail_settings, "badge", "it", NAMES[2], stored)
        _assert_same(new, old, "it", "badge")
        shape = [(depth, kind, filename_) for depth, kind, filename_, *_ in _tree(_parse(new.data))]
        assert shape == [
            (0, "multipart/mixed", None),
            (1, "multipart/alternative", None),
            (2, "text/plain", None),
            (2, "multipart/related", None),
            (3, "text/html", None),
            (3, "image/png", "wallet-offer.png"),
            (1, "image/png", "badge.png"),
            (1, content_type, filename),
        ]
        parsed = _parse(new.data)
        html = parsed.get_body(("html",))
        qr = [p for p in parsed.walk() if p.get_filename() == "wallet-offer.png"]
        assert html is not None and len(qr) == 1
        assert f'src="cid:{qr[0]["Content-ID"].strip("<>")}"' in html.get_content()
        assert qr[0].get_content_disposition() == "inline"
        _assert_wire_limits(new.data)


# ----------------------------------------------------------------- header values


@pytest.mark.parametrize(
    "broken",
    [
        "Eve Example\r\nBcc: someone@example.org",
        "Eve\nBcc: someone@example.org",
        "Eve\rExample",
        "Eve\x00Example",
    ],
)
def test_a_line_break_in_any_header_value_is_refused(broken: str) -> None:
    def message(**changes: Any) -> bytes:
        headers: list[tuple[str, str | Mailbox]] = [
            ("To", changes.get("to", Mailbox("Eve", "eve@example.org"))),
            ("Subject", changes.get("subject", "Hello")),
            ("X-Internflow-Internship", changes.get("internship", "t-1")),
        ]
        return write_message(
            headers,
            "text",
            "<p>html</p>",
            language="en",
            attachments=changes.get("attachments", ()),
        )

    assert message()  # the message without the broken value is fine
    with pytest.raises(HeaderValueError) as refused:
        message(to=Mailbox(broken, "eve@example.org"))
    assert "Bcc" not in str(refused.value) and "Eve" not in str(refused.value)
    with pytest.raises(HeaderValueError):
        message(to=Mailbox("Eve", f"eve@example.org{broken[3:]}"))
    with pytest.raises(HeaderValueError):
        message(subject=broken)
    with pytest.raises(HeaderValueError):
        message(internship=broken)
    with pytest.raises(HeaderValueError):
        message(attachments=[Attachment(b"x", "image/png", broken)])
    with pytest.raises(HeaderValueError):
        message(attachments=[Attachment(b"x", "image/png", "a.png", True, f"a{broken}@b")])


def test_a_notification_with_a_line_break_in_the_name_is_not_composed(
    mail_settings: Settings,
) -> None:
    """The plan refuses such a name at the door; should one reach the mailer all the same, the
    message is refused (delivery records it as not composable) instead of carrying a header
    of the name's making."""
    notification = _notification("reminder", "en", "Eve\r\nBcc: someone@example.org")
    with pytest.raises(HeaderValueError):
        Mailer(mail_settings).write(notification, "<x@internflow>")


@pytest.mark.parametrize(
    "address",
    ["eve", "eve@", "@example.org", "e ve@example.org", "jürgen@example.org", "a..b@example.org"],
)
def test_an_address_that_is_not_one_is_refused(address: str) -> None:
    with pytest.raises(HeaderValueError):
        write_message([("To", Mailbox("Eve", address))], "t", "h")


def test_an_internationalised_domain_is_written_in_utf8_for_smtputf8() -> None:
    mailbox = Mailbox("Jürgen", "juergen@bücher.example")
    assert mailbox.needs_smtputf8 and not Mailbox("J", "j@example.org").needs_smtputf8
    data = write_message([("To", mailbox)], "t", "h")
    assert "To: Jürgen <juergen@bücher.example>\r\n".encode() not in data  # the name encoded
    # An RFC 6532 reader takes the header as UTF-8.
    parsed = email.message_from_string(data.decode(), policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == "juergen@bücher.example"
    assert parsed["To"].addresses[0].display_name == "Jürgen"


_HEADER_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=300
)
#: What a plan lets through as a name (models.base.Name): one line without control characters,
#: no surrounding white space, at most 200 characters.
_NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=200).filter(
    lambda name: name == name.strip()
)


@settings(max_examples=300, deadline=None)
@given(display_name=_NAME, subject=_HEADER_TEXT)
def test_any_name_and_subject_read_back_as_written(display_name: str, subject: str) -> None:
    data = write_message(
        [("To", Mailbox(display_name, "eve@example.org")), ("Subject", subject)], "t", "h"
    )
    parsed = _parse(data)
    addresses = parsed["To"].addresses
    assert len(addresses) == 1
    assert addresses[0].addr_spec == "eve@example.org"
    raw_to = _unfolded(data, "To")
    if "=?" in raw_to and "  " in display_name:
        # The standard library reads a run of spaces inside an encoded-word as one space (its
        # parser's WhiteSpaceTerminal); RFC 2047 keeps the decoded text as it is. The words
        # themselves, decoded as RFC 2047 says, are the name exactly; the parser's reading of
        # them differs only in those runs.
        decoded = "".join(
            part.decode(charset or "ascii") if isinstance(part, bytes) else part
            for part, charset in email.header.decode_header(raw_to)
        )
        assert decoded == f"{display_name} <eve@example.org>"
        assert addresses[0].display_name == re.sub(" +", " ", display_name)
    else:
        assert addresses[0].display_name == display_name
    assert str(parsed["Subject"]) == subject
    _assert_wire_limits(data)


def _unfolded(data: bytes, name: str) -> str:
    """Header `name`'s value as written on the wire, its folds undone."""
    head = data.split(b"\r\n\r\n", 1)[0].decode()
    found = re.search(rf"^{name}: (.*?)\r\n(?![ \t])", head + "\r\n", re.M | re.S)
    assert found is not None, name
    return re.sub(r"\r\n[ \t]", " ", found.group(1))


def test_header_lines_fold_within_78_columns() -> None:
    subject = "Promemoria: la relazione di metà tirocinio " * 6
    data = write_message(
        [("To", Mailbox(NAMES[-1], "m@example.org")), ("Subject", subject.strip())], "t", "h"
    )
    head = data.split(b"\r\n\r\n", 1)[0]
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert re.search(rb"\r\n =\?utf-8\?b\?", head)  # folded between encoded-words
    assert str(_parse(data)["Subject"]) == subject.strip()


# ----------------------------------------------------------------- bodies and the wire


def _assert_wire_limits(data: bytes) -> None:
    """CRLF only; no line over 998 octets; encoded body lines of at most 76."""
    assert b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b"")
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    body = data.split(b"\r\n\r\n", 1)[1]
    assert body.isascii()
    assert max(len(line) for line in body.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "text",
    [
        "plain ASCII, short lines\n",
        "no newline at the end",
        "è" * 500 + "\n" + "x" * 2000 + "\n",
        "trailing space \nand a tab\t\n=?utf-8?q?not a header?= and = signs\n",
        "Windows\r\nline ends\r\n and a lone\rcarriage return\n",
        ".\n.. a line with only a dot, and From the start\nFrom here\n",
        "\u2028 line separator and \x85 next line stay in their line\n",
    ],
)
def test_text_bodies_read_back_as_written(text: str) -> None:
    data = write_message([("Subject", "x")], text, f"<p>{text}</p>")
    parsed = _parse(data)
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None and html is not None
    expected = re.sub(r"\r\n|\r", "\n", text)
    expected += "" if expected.endswith("\n") else "\n"
    assert plain.get_content().replace("\r\n", "\n") == expected
    _assert_wire_limits(data)


def test_binary_parts_are_base64_in_lines_of_76(mail_settings: Settings) -> None:
    blob = bytes(range(256)) * 40
    data = write_message(
        [("Subject", "x")],
        "t",
        "h",
        related=[Attachment(blob, "image/png", "qr.png", True, "qr-1@internflow.invalid")],
        attachments=[Attachment(blob[::-1], "application/json", "crédential.json")],
    )
    parts = {p.get_filename(): p for p in _parse(data).walk() if p.get_filename()}
    assert parts["qr.png"].get_content() == blob
    assert parts["crédential.json"].get_content() == blob[::-1]
    assert parts["qr.png"]["Content-ID"] == "<qr-1@internflow.invalid>"
    encoded = [line for line in data.split(b"\r\n") if re.fullmatch(rb"[A-Za-z0-9+/=]{60,}", line)]
    assert encoded and {len(line) for line in encoded[:-1]} == {76}
    _assert_wire_limits(data)


def test_a_boundary_never_occurs_in_a_part(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = iter(["a" * 32, "b" * 32, "c" * 32, "d" * 32])
    monkeypatch.setattr(mime.secrets, "token_hex", lambda _: next(tokens))
    text = f"--=_{'a' * 32}\nlooks like a boundary\n"
    data = write_message([("Subject", "x")], text, "<p>h</p>")
    assert f'boundary="=_{"b" * 32}"'.encode() in data
    plain = _parse(data).get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n") == text


def test_the_date_is_written_as_the_standard_library_writes_it() -> None:
    for moment in (0.0, 1_800_000_000.5, 1_798_880_822.0):
        assert mime.format_date(moment) == email.utils.formatdate(moment, localtime=False)


def test_compose_reads_back_what_is_sent(tmp_path: Path) -> None:
    """Mailer.compose is the wire message as a mail program reads it."""
    mailer = Mailer(make_settings(tmp_path))
    notification = _notification("reminder", "de", NAMES[2])
    sent = mailer.write(notification, "<r@internflow>")
    read = mailer.compose(notification, "<r@internflow>")
    assert read["To"].addresses == _parse(sent.data)["To"].addresses
    assert read["Content-Language"] == "de"
    assert read.get_content_type() == "multipart/alternative"
