"""What the badge e-mail carries: the stored credential baked into the badge image, and as a file
for wallets."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import asyncpg
from temporalio.exceptions import ApplicationError

from badges.artwork import default_colour, draw_png, draw_svg
from badges.bake import bake
from badges.share import ShareLinks, credential_facts, share_links, svg_wrapping_png
from badges.vcjwt import decode_jwt
from i18n import gettext
from mail.mime import Attachment
from models.ids import credential_uuid_for
from models.plan import STORED_IMAGE, InternshipPlan
from records.images import keep_image, kept_image
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


@dataclass(frozen=True)
class Artwork:
    """A badge template's image, in the forms it has: a PNG (drawn, shipped, or the school's), an
    SVG (drawn, or the school's). A school's SVG has no PNG: nothing here renders an SVG."""

    png: bytes | None
    svg: bytes | None

    def svg_or_wrapped(self, title: str) -> bytes:
        """The SVG, else the PNG inside an SVG: what `badge.svg` bakes."""
        if self.svg is not None:
            return self.svg
        assert self.png is not None
        return svg_wrapping_png(self.png, title)

    def preferred(self) -> tuple[bytes, str, str]:
        """The image to bake into the e-mail: (content, media type, file name), the PNG when
        there is one."""
        if self.png is not None:
            return self.png, "image/png", "badge.png"
        assert self.svg is not None
        return self.svg, "image/svg+xml", "badge.svg"


def drawn_artwork(plan: InternshipPlan) -> Artwork:
    """The image internflow draws for a template that names none."""
    return _drawn(
        plan.institution.name,
        plan.badge.name,
        plan.eqf_level(),
        plan.badge.colour or default_colour(plan.institution.id),
    )


@functools.lru_cache(maxsize=64)
def _drawn(institution: str, title: str, eqf_level: int | None, colour: str) -> Artwork:
    """Drawn once per worker for each badge it issues again and again (a cohort's interns of one
    programme get the same image): drawing and encoding the PNG takes some 70 ms of CPU."""
    return Artwork(
        png=draw_png(institution, title, eqf_level, colour),
        svg=draw_svg(institution, title, eqf_level, colour),
    )


def local_artwork(plan: InternshipPlan) -> Artwork:
    """The plan's badge image when it needs no records: drawn or shipped (a school's own image
    is read with template_artwork)."""
    name = plan.badge.image
    if name is None:
        return drawn_artwork(plan)
    if STORED_IMAGE.match(name):
        raise ValueError(f"badge image {name!r} is kept in the records: read it from there")
    return Artwork(png=badge_image(name), svg=None)


async def template_artwork(
    conn: asyncpg.Connection | asyncpg.Pool, plan: InternshipPlan
) -> Artwork:
    """The plan's badge image: drawn, kept (the school's own, from `badge_images`) or shipped."""
    name = plan.badge.image
    found = STORED_IMAGE.match(name or "")
    if name is None or found is None:
        return local_artwork(plan)
    kept = await kept_image(conn, found["digest"])
    if kept is None:
        raise ApplicationError(
            f"badge image {name!r} is not among the kept images: fix badge.image in the plan",
            type="BadImage",
            non_retryable=True,
        )
    media_type, content = kept
    if media_type == "image/png":
        return Artwork(png=content, svg=None)
    return Artwork(png=None, svg=content)


async def published_image(conn: asyncpg.Connection, plan: InternshipPlan) -> str:
    """The name under `/images/` of the plan's badge image, what the credential's achievement
    points at: a drawn image is kept (once) as a school's image is, by its content's hash."""
    if plan.badge.image is not None:
        return plan.badge.image
    png = drawn_artwork(plan).png
    assert png is not None
    return f"sha256-{await keep_image(conn, 'image/png', png)}.png"


def drawn_image_name(plan: InternshipPlan) -> str:
    """The name under `/images/` the drawn image is kept under (published_image keeps it)."""
    png = drawn_artwork(plan).png
    assert png is not None
    return f"sha256-{hashlib.sha256(png).hexdigest()}.png"


def badge_attachments(
    plan: InternshipPlan, stored: str, artwork: Artwork | None = None
) -> list[Attachment]:
    """The stored credential (`credentials.credential`: a JSON document, or a VC-JWT as a JSON
    string) baked into the plan's badge image (the PNG; a school's SVG when it gave one), and as
    a file for wallets."""
    value = json.loads(stored)
    image, media_type, image_name = (artwork or local_artwork(plan)).preferred()
    if isinstance(value, str):  # a VC-JWT: the image and the file carry the compact JWT
        baked = bake(image, value)
        attachment, content_type, filename = value.encode(), "application/jwt", "credential.jwt"
    else:
        baked = bake(image, stored)
        attachment, content_type, filename = stored.encode(), "application/json", "credential.json"
    return [
        Attachment(baked, media_type, image_name),
        Attachment(attachment, content_type, filename),
    ]
