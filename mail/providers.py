"""What each kind of e-mail carries beyond the workflow's values and what the records say about its
internship (`mail.context`): one provider per notification kind, chosen from
`PROVIDERS` by the kind. Delivering (`activities.notify.deliver`) is the same for every kind; what
differs between kinds is here (but for a failed badge e-mail's reason, which its credential keeps:
`activities.records.mark_notification_failed`, also used when the workflow gives up):

- `badge` (`BadgeMail`): the stored credential baked into the badge image and as a file, the
  wallet offer (stored for the wallet to fetch by reference) with its QR code inline, the page,
  share and wallet values; its button is the badge's page to share; once sent, the credential
  keeps when it was e-mailed;
- `revocation`, `suspension`, `reinstatement` (`StatusNotice`): the button and `verify_url` lead
  to the badge's verification page;
- every other kind (`PlainMail`): nothing more; the button is the party's own link, or the
  internship on the dashboard for the institution.

A provider answers, in the order of a delivery: `carried` (the records the e-mail carries, and
what it stores for the e-mail, such as the badge's wallet offer; I/O, retried when PostgreSQL is
away), `parts` (template values, inline images and attachments made
from them; no I/O, so a failure is the same on every retry), and `sent` (what the records keep
once the SMTP server took the e-mail). `button` and `fixed_values` serve the rendering
(`Mailer.render`) of every message. No provider writes the workflow's records: the read model
(the overdue flag too) is written by the workflow's own records.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import asyncpg

from mail.badge import (
    Artwork,
    badge_attachments,
    badge_mail_values,
    badge_page_url,
    template_artwork,
    verify_page_url,
)
from mail.mime import Attachment
from mail.wallet_offer import stored_mail_offer, wallet_mail_values, wallet_qr_images
from models.activities import Notification, NotificationKind
from models.ids import credential_uuid_for
from models.plan import InternshipPlan
from records.write import mark_badge_emailed
from runtime.links import notification_link
from runtime.settings import Settings

Carried = TypeVar("Carried")


@dataclass(frozen=True)
class MailParts:
    """What a kind adds to its e-mail: template values (over the records' context), the HTML
    part's inline images (`related`) and the attachments."""

    values: Mapping[str, Any] = field(default_factory=dict)
    related: Sequence[Attachment] = ()
    attachments: Sequence[Attachment] = ()


class RecordMissing(Exception):
    """A record the e-mail carries is not there. It is stored before the e-mail is asked for, so
    no retry mends it; the message is the reason the delivery records."""


def dashboard_url_for(public_base_url: str, internship_id: str) -> str:
    """The internship's page on the admin dashboard (sign-in leads back to it)."""
    return f"{public_base_url.rstrip('/')}/admin/internships/{quote(internship_id, safe='')}"


def verify_url_for(public_base_url: str, internship_id: str) -> str:
    """The public verification page of the internship's badge."""
    return verify_page_url(public_base_url, credential_uuid_for(internship_id))


class MailKind(ABC, Generic[Carried]):
    """One kind of e-mail; what is not overridden is the plain e-mail's."""

    def button(self, settings: Settings, notification: Notification) -> str | None:
        """Where the button leads unless the workflow gives `link`, so that every button leads
        somewhere its reader can use: the party's own signed, expiring link for an e-mail that
        asks something of them; the internship's page on the admin dashboard for the
        institution (the operator); else no button (the e-mail says all there is to say)."""
        link = notification_link(settings, notification)
        if link is not None:
            return link
        if notification.recipient_role == "operator":
            return dashboard_url_for(settings.public_base_url, notification.internship_id)
        return None

    def fixed_values(self, settings: Settings, notification: Notification) -> dict[str, Any]:
        """Template values that neither the workflow nor the records can change."""
        return {}

    @abstractmethod
    async def carried(
        self, conn: asyncpg.Connection, settings: Settings, notification: Notification
    ) -> Carried:
        """The records the e-mail carries (and what it stores for the e-mail); RecordMissing
        when one is not there."""

    @abstractmethod
    def parts(self, settings: Settings, notification: Notification, carried: Carried) -> MailParts:
        """Template values, inline images and attachments made from what is carried."""

    async def sent(self, conn: asyncpg.Connection, notification: Notification) -> None:
        """Record, beyond the e-mail's `notifications` row, that the SMTP server accepted it."""


class PlainMail(MailKind[None]):
    """An e-mail of the workflow's values and the records' context, with its default button."""

    async def carried(
        self, conn: asyncpg.Connection, settings: Settings, notification: Notification
    ) -> None:
        return None

    def parts(self, settings: Settings, notification: Notification, carried: None) -> MailParts:
        return MailParts()


class StatusNotice(PlainMail):
    """A change of an issued badge's status: its button and `verify_url` lead to the badge's
    public verification page."""

    def button(self, settings: Settings, notification: Notification) -> str | None:
        return verify_url_for(settings.public_base_url, notification.internship_id)

    def fixed_values(self, settings: Settings, notification: Notification) -> dict[str, Any]:
        return {"verify_url": verify_url_for(settings.public_base_url, notification.internship_id)}


@dataclass(frozen=True)
class StoredBadgeMail:
    """What the badge e-mail carries: the plan in force (its badge image) and the credential as
    stored (`credentials.credential`: a JSON document, or a VC-JWT as a JSON string)."""

    plan: InternshipPlan
    credential: str
    linkedin_organization_id: str | None = None
    """The institution's LinkedIn organization id, if it gave one (its records, now)."""
    artwork: Artwork | None = None
    """The badge template's image (drawn, or the school's own from the records)."""
    wallet_offer_url: str | None = None
    """The offer to a wallet, by reference (stored for this attempt at the e-mail); none, no
    wallet paragraph."""


class BadgeMail(MailKind[StoredBadgeMail]):
    """The badge, to the intern: the stored credential baked into the badge image and as a file
    for wallets, the offer to a wallet (a link, its QR code inline, the transaction code), the
    badge's page to share (the button), share links and the intern's link to their choices
    about the page; `verify_url` is its verification page. Once the SMTP server accepts it, the
    credential keeps when it was e-mailed."""

    def button(self, settings: Settings, notification: Notification) -> str | None:
        # The earner's page to share (it shows the live status and links the checks).
        credential_uuid = credential_uuid_for(notification.internship_id)
        return badge_page_url(settings.public_base_url, credential_uuid)

    def fixed_values(self, settings: Settings, notification: Notification) -> dict[str, Any]:
        return {"verify_url": verify_url_for(settings.public_base_url, notification.internship_id)}

    async def carried(
        self, conn: asyncpg.Connection, settings: Settings, notification: Notification
    ) -> StoredBadgeMail:
        row = await conn.fetchrow(
            """
            SELECT c.credential, v.plan, n.linkedin_organization_id FROM credentials c
            JOIN plan_versions v USING (internship_id)
            LEFT JOIN institutions n ON n.institution_id = v.plan->'institution'->>'id'
            WHERE c.internship_id = $1 ORDER BY v.version DESC LIMIT 1
            """,
            notification.internship_id,
        )
        if row is None:
            raise RecordMissing("the badge e-mail has no stored credential to carry")
        plan = InternshipPlan.model_validate_json(row["plan"])
        # A new offer at each attempt (a retry after a deferral too): what an unsent attempt
        # stored expires unused. Nothing of it enters the workflow's history.
        offer = await stored_mail_offer(
            conn, settings, notification.internship_id, notification.language
        )
        return StoredBadgeMail(
            plan,
            row["credential"],
            row["linkedin_organization_id"],
            await template_artwork(conn, plan),
            offer,
        )

    def parts(
        self, settings: Settings, notification: Notification, carried: StoredBadgeMail
    ) -> MailParts:
        internship_id, language = notification.internship_id, notification.language
        values = badge_mail_values(
            settings,
            internship_id,
            carried.credential,
            language,
            carried.linkedin_organization_id,
        )
        if carried.wallet_offer_url is not None:
            values.update(wallet_mail_values(settings, internship_id, carried.wallet_offer_url))
        if carried.artwork is not None and carried.artwork.png is None:
            # The school's own SVG: it is what the e-mail attaches and the page offers.
            values["badge_image_svg"] = True
            values["badge_image_url"] = values["badge_image_url"].removesuffix(".png") + ".svg"
        return MailParts(
            values=values,
            attachments=badge_attachments(carried.plan, carried.credential, carried.artwork),
            related=wallet_qr_images(values),
        )

    async def sent(self, conn: asyncpg.Connection, notification: Notification) -> None:
        await mark_badge_emailed(conn, notification.internship_id)


PLAIN: Final = PlainMail()
STATUS_NOTICE: Final = StatusNotice()
BADGE: Final = BadgeMail()

#: The provider of each kind of e-mail.
PROVIDERS: Final[Mapping[NotificationKind, MailKind[Any]]] = {
    "approval_request": PLAIN,
    "agreement_reminder": PLAIN,
    "change_request": PLAIN,
    "milestone_request": PLAIN,
    "reminder": PLAIN,
    "escalation": PLAIN,
    "missed": PLAIN,
    "assessment_request": PLAIN,
    "assessment_reminder": PLAIN,
    "validation_request": PLAIN,
    "outcome": PLAIN,
    "withdrawal": PLAIN,
    "cancellation": PLAIN,
    "badge": BADGE,
    "revocation": STATUS_NOTICE,
    "suspension": STATUS_NOTICE,
    "reinstatement": STATUS_NOTICE,
    "delivery_failed": PLAIN,
    "final_review": PLAIN,
}


def provider_for(kind: NotificationKind) -> MailKind[Any]:
    """The provider of a kind of e-mail (a kind without one is a plain e-mail)."""
    return PROVIDERS.get(kind, PLAIN)
