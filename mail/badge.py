"""What the badge e-mail carries: the stored credential baked into the badge image, and as a file
for wallets."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from temporalio.exceptions import ApplicationError

from badges.bake import bake_png
from badges.share import ShareLinks, credential_facts, share_links
from badges.vcjwt import decode_jwt
from i18n import gettext
from mail.mime import Attachment
from models.ids import credential_uuid_for
from models.plan import InternshipPlan
from runtime.badge_links import badge_choices_link
from runtime.settings import Settings


def N_(message: str) -> str:
    """Marks a message for the catalogues; it is translated where it is used."""
    return message


#: What a share says, in the earner's words (the badge page and the badge e-mail).
SHARE_POST = N_("I earned the Open Badge “%(badge)s” from %(issuer)s.")
SHARE_SUBJECT = N_("My Open Badge: %(badge)s")
SHARE_BODY = N_("I earned the Open Badge “%(badge)s” from %(issuer)s. See it and check it here:")


def badge_page_url(public_base_url: str, credential_uuid: str) -> str:
    """The badge's public page, the one to share."""
    return f"{public_base_url.rstrip('/')}/badges/{credential_uuid.lower()}"


def verify_page_url(public_base_url: str, credential_uuid: str) -> str:
    """The badge's public verification page, the issuer's check of the credential."""
    return f"{public_base_url.rstrip('/')}/verify/{credential_uuid}"


def document_of(stored: Any) -> dict[str, Any]:
    """The credential as a document: the stored JSON, or a VC-JWT's payload (not verified)."""
    value = json.loads(stored) if isinstance(stored, str | bytes) else stored
    if isinstance(value, str):
        return decode_jwt(value).payload
    return dict(value)


def sharing(
    document: dict[str, Any],
    page_url: str,
    language: str,
    linkedin_organization_id: str | None = None,
) -> ShareLinks:
    """The share links of a badge page, their words in `language`; LinkedIn's "Add to profile"
    names the issuer by its LinkedIn organization id when the institution gave one."""
    facts = credential_facts(document)
    words = {"badge": facts.name, "issuer": facts.issuer_name}
    return share_links(
        facts,
        page_url,
        post_text=gettext(language, SHARE_POST, **words),
        email_subject=gettext(language, SHARE_SUBJECT, badge=facts.name),
        email_body=gettext(language, SHARE_BODY, **words),
        organization_id=linkedin_organization_id,
    )


def badge_mail_values(
    settings: Settings,
    internship_id: str,
    stored: str,
    language: str,
    linkedin_organization_id: str | None = None,
) -> dict[str, Any]:
    """What the badge e-mail says beyond the workflow's values: the badge page and its image
    to download (the PNG with the credential baked in), the intern's link to their choices about
    the page, and the share links."""
    credential_uuid = credential_uuid_for(internship_id)
    page = badge_page_url(settings.public_base_url, credential_uuid)
    links = sharing(document_of(stored), page, language, linkedin_organization_id)
    return {
        "badge_page_url": page,
        "badge_image_url": f"{page}/badge.png",
        "choices_url": badge_choices_link(settings, credential_uuid),
        **{f"share_{name}": url for name, url in links.as_dict().items()},
    }


def shipped_badge_images() -> list[str]:
    """The badge images internflow ships, by file name (what a plan's badge.image may name)."""
    folder = resources.files("badges") / "images"
    return sorted(entry.name for entry in folder.iterdir() if entry.name.endswith(".png"))


def badge_image(name: str) -> bytes:
    image = resources.files("badges") / "images" / name
    if not image.is_file():
        raise ApplicationError(
            f"badge image {name!r} is not among the shipped images: fix badge.image in the plan",
            type="BadImage",
            non_retryable=True,
        )
    return image.read_bytes()


def badge_attachments(plan: InternshipPlan, stored: str) -> list[Attachment]:
    """The stored credential (`credentials.credential`: a JSON document, or a VC-JWT as a JSON
    string) baked into the plan's badge image, and as a file for wallets."""
    value = json.loads(stored)
    if isinstance(value, str):  # a VC-JWT: the image and the file carry the compact JWT
        baked = bake_png(badge_image(plan.badge.image), value)
        attachment, content_type, filename = value.encode(), "application/jwt", "credential.jwt"
    else:
        baked = bake_png(badge_image(plan.badge.image), stored)
        attachment, content_type, filename = stored.encode(), "application/json", "credential.json"
    return [
        Attachment(baked, "image/png", "badge.png"),
        Attachment(attachment, content_type, filename),
    ]
