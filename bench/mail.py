"""Benchmark e-mail composition: CPU per message to write each kind of e-mail, through the
`email` package as internflow did until mail/mime.py, and as it does now.

Every kind is measured in the five languages with recipients' names that need quoting and
encoding. Rendering the templates is timed apart (both paths share it), and so are the badge
e-mail's baked image and wallet QR code (made once per badge e-mail on both paths). Before it is
timed, each kind's new message must read, through the standard library's parser, as the former
one did (bodies and parts). Run: `python -m bench.mail [--count N] [--json FILE]`.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import email.utils
import json
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any, get_args

from aiosmtplib.email import flatten_message

from mail.badge import badge_attachments
from mail.mime import Attachment
from mail.providers import BADGE, MailParts, StoredBadgeMail
from mail.sending import Mailer
from mail.templates import RenderedMessage
from mail.wallet_offer import make_offer, wallet_qr_images
from models.activities import Notification, NotificationKind
from models.ids import credential_uuid_for, message_id_for
from models.plan import InternshipPlan
from runtime.settings import Settings
from runtime.wallet_codes import EMAIL_OFFER_VALIDITY

EXAMPLE_PLAN = Path(__file__).resolve().parent.parent / "examples" / "plan.json"
LANGUAGES = ("en", "it", "de", "fr", "es")
NAMES = ("Giulia Esposito", 'Giulia <Esposito> & Co, "GE"', "Jürgen Müller", "Ελένη Παπαδοπούλου")
VALUES: dict[str, dict[str, str]] = {
    "agreement_reminder": {"version": "2", "deadline": "2027-02-15 18:00 CET"},
    "approval_request": {"version": "1"},
    "change_request": {"party": "mentor", "version": "1"},
    "milestone_request": {"milestone": "Mid-term review"},
    "reminder": {"milestone": "Mid-term review"},
    "escalation": {"milestone": "Mid-term review"},
    "missed": {"milestone": "Mid-term review"},
    "final_review": {"placement_url": "https://internflow.example/p/t-2?x=y"},
    "assessment_reminder": {"deadline": "2027-06-11 17:00 CEST"},
    "outcome": {"reason": "no assessment from mentor in time"},
    "withdrawal": {"reason": "moved abroad."},
    "cancellation": {"reason": "the agreement was not approved"},
    "badge": {"badge": "Web development"},
    "revocation": {"badge": "Web development", "reason": "issued by mistake"},
    "suspension": {"badge": "Web development", "reason": "under review"},
    "reinstatement": {"badge": "Web development", "reason": "review closed"},
    "delivery_failed": {"failed_kind": "reminder", "failed_role": "intern", "error": "SMTP [550]"},
}
CREDENTIAL = json.dumps(
    {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "id": "urn:uuid:7df75bb7-7d94-5f3c-a315-8ff118ac372a",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Web development",
        "issuer": {"id": "https://school.example/issuers/1", "name": "Istituto Bassano"},
        "credentialSubject": {"achievement": {"name": "Web development"}},
    }
)


def former_assemble(
    settings: Settings,
    notification: Notification,
    message_id: str,
    rendered: RenderedMessage,
    related: list[Attachment],
    attachments: list[Attachment],
) -> bytes:
    """The former composition (EmailMessage, then attachments and the related QR code), and
    aiosmtplib's flattening of it for the wire."""
    message = EmailMessage()
    message["From"] = settings.mail_from
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
    for part in [message, *message.walk()]:
        if part is message or part.get_content_maintype() == "text":
            del part["Content-Language"]
            part["Content-Language"] = notification.language
    for attachment in attachments:
        maintype, subtype = attachment.content_type.split("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    html = message.get_body(preferencelist=("html",))
    for image in related:
        assert isinstance(html, EmailMessage)
        html.add_related(
            image.data,
            maintype="image",
            subtype="png",
            cid=f"<{image.content_id}>",
            filename=image.filename,
            disposition="inline",
        )
    return flatten_message(message, utf8=False, cte_type="8bit")


def _notification(kind: str, language: str, name: str) -> Notification:
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
            "values": {"internship": "t-1", **VALUES.get(kind, {})},
        }
    )


def _reads(data: bytes) -> list[Any]:
    """What a reader's program sees of a message: each part's type, file name, Content-ID and
    content, and the decoded headers that differ by message."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    parts = [
        (p.get_content_type(), p.get_filename(), p["Content-ID"], p.get_content())
        for p in message.walk()
        if not p.is_multipart()
    ]
    return [str(message["Subject"]), str(message["To"]), parts]


def _per_message_us(work: Callable[[int], object], count: int) -> float:
    """Microseconds of this process's CPU per call, over `count` calls."""
    start = time.process_time()
    for i in range(count):
        work(i)
    return (time.process_time() - start) / count * 1e6


def measure_kind(
    settings: Settings, mailer: Mailer, plan: InternshipPlan, kind: str, count: int
) -> dict[str, float]:
    cases = []
    for i, (language, name) in enumerate((lang, n) for n in NAMES for lang in LANGUAGES):
        notification = _notification(kind, language, name)
        parts = MailParts()
        if kind == "badge":  # what the badge e-mail's provider gives a delivery
            # The offer by reference, as the provider stores it for each e-mail.
            uuid = credential_uuid_for(notification.internship_id)
            offer = make_offer(settings, uuid, EMAIL_OFFER_VALIDITY, language)
            carried = StoredBadgeMail(plan, CREDENTIAL, wallet_offer_url=offer.uri_url)
            parts = BADGE.parts(settings, notification, carried)
        context: dict[str, Any] = dict(parts.values)
        related, attachments = list(parts.related), list(parts.attachments)
        message_id = message_id_for(f"{notification.notification_id}/{i}")
        rendered = mailer.render(notification, context)
        cases.append((notification, message_id, context, rendered, related, attachments))
        new = mailer.assemble(
            notification, message_id, rendered, related=related, attachments=attachments
        ).data
        old = former_assemble(settings, notification, message_id, rendered, related, attachments)
        if _reads(new) != _reads(old):
            raise AssertionError(f"{kind} in {language} reads differently from the former one")

    def render(i: int) -> object:
        notification, _, context, *_ = cases[i % len(cases)]
        return mailer.render(notification, context)

    def former(i: int) -> object:
        notification, message_id, _, rendered, related, attachments = cases[i % len(cases)]
        return former_assemble(settings, notification, message_id, rendered, related, attachments)

    def written(i: int) -> object:
        notification, message_id, _, rendered, related, attachments = cases[i % len(cases)]
        return mailer.assemble(
            notification, message_id, rendered, related=related, attachments=attachments
        )

    figures = {
        "render_us": _per_message_us(render, count),
        "email_package_us": _per_message_us(former, count),
        "mime_writer_us": _per_message_us(written, count),
    }
    if kind == "badge":
        context = cases[0][2]
        figures["bake_badge_us"] = _per_message_us(
            lambda _: badge_attachments(plan, CREDENTIAL), max(count // 10, 5)
        )
        figures["wallet_qr_us"] = _per_message_us(
            lambda _: wallet_qr_images(context), max(count // 10, 5)
        )
    figures["speedup"] = figures["email_package_us"] / figures["mime_writer_us"]
    return {k: round(v, 1) for k, v in figures.items()}


def run(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        settings = Settings(state_dir=Path(home))
        mailer = Mailer(settings)
        plan = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text(encoding="utf-8"))
        kinds: dict[str, dict[str, float]] = {}
        for kind in get_args(NotificationKind):
            kinds[kind] = measure_kind(
                settings, mailer, plan, kind, count // 10 if kind == "badge" else count
            )
    plain = [f for k, f in kinds.items() if k != "badge"]

    def mean(figure: str) -> float:
        return round(sum(f[figure] for f in plain) / len(plain), 1)

    summary = {
        "other_kinds_render_us": mean("render_us"),
        "other_kinds_email_package_us": mean("email_package_us"),
        "other_kinds_mime_writer_us": mean("mime_writer_us"),
        "badge_render_us": kinds["badge"]["render_us"],
        "badge_email_package_us": kinds["badge"]["email_package_us"],
        "badge_mime_writer_us": kinds["badge"]["mime_writer_us"],
        "badge_wallet_qr_us": kinds["badge"]["wallet_qr_us"],
        "badge_bake_us": kinds["badge"]["bake_badge_us"],
    }
    return {"unit": "microseconds of CPU per message", "summary": summary, "kinds": kinds}


def print_table(figures: dict[str, Any]) -> None:
    print(f"{'kind':22} {'render':>9} {'email pkg':>10} {'mime.py':>9} {'speed-up':>9}  (µs CPU)")
    for kind, f in figures["kinds"].items():
        print(
            f"{kind:22} {f['render_us']:9.0f} {f['email_package_us']:10.0f} "
            f"{f['mime_writer_us']:9.0f} {f['speedup']:8.1f}x"
        )
    badge = figures["kinds"]["badge"]
    print(
        f"badge e-mail also: bake {badge['bake_badge_us']:.0f} µs, "
        f"wallet QR code {badge['wallet_qr_us']:.0f} µs (the same on both paths)"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument(
        "--count", type=int, default=2000, help="messages per kind (badge: a tenth)"
    )
    args = parser.parse_args(argv)
    figures = run(args.count)
    figures["environment"] = {"python": platform.python_version(), "machine": platform.machine()}
    print_table(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
