"""Sharing an Open Badge as people do: LinkedIn's "Add to profile" link for a certification, share
links for LinkedIn, X, Facebook and e-mail, and an HTML snippet for an e-portfolio; and the
badge image as an SVG (wrapping the PNG), ready to be baked."""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, Final
from urllib.parse import quote, urlencode

__all__ = [
    "LINKEDIN_ADD_TO_PROFILE",
    "ShareLinks",
    "credential_facts",
    "credential_number",
    "embed_snippet",
    "linkedin_add_to_profile",
    "png_size",
    "share_links",
    "svg_wrapping_png",
]

LINKEDIN_ADD_TO_PROFILE: Final = "https://www.linkedin.com/profile/add"
LINKEDIN_SHARE: Final = "https://www.linkedin.com/sharing/share-offsite/"
X_SHARE: Final = "https://x.com/intent/tweet"
FACEBOOK_SHARE: Final = "https://www.facebook.com/sharer/sharer.php"


def _query(params: list[tuple[str, str]]) -> str:
    """A query string with spaces as %20 (not +): what LinkedIn's and X's examples use, and
    what every reader decodes alike."""
    return urlencode(params, quote_via=quote, safe="")


@dataclass(frozen=True)
class CredentialFacts:
    """What a share link says about a badge, read from its credential."""

    credential_id: str
    name: str
    description: str
    issuer_name: str
    issuer_url: str | None
    issued: datetime | None
    expires: datetime | None


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def credential_facts(credential: dict[str, Any]) -> CredentialFacts:
    """Name, description, issuer and dates of an OpenBadgeCredential (the document, or a
    VC-JWT's payload)."""
    subject = credential.get("credentialSubject") or {}
    if isinstance(subject, list):
        subject = subject[0] if subject else {}
    achievement = subject.get("achievement") or {}
    issuer = credential.get("issuer") or {}
    if isinstance(issuer, str):
        issuer = {"id": issuer}
    return CredentialFacts(
        credential_id=str(credential.get("id") or ""),
        name=str(achievement.get("name") or ""),
        description=str(achievement.get("description") or ""),
        issuer_name=str(issuer.get("name") or issuer.get("id") or ""),
        issuer_url=issuer.get("url") if isinstance(issuer.get("url"), str) else None,
        issued=_moment(credential.get("validFrom") or credential.get("issuanceDate")),
        expires=_moment(credential.get("validUntil") or credential.get("expirationDate")),
    )


def credential_number(credential_id: str) -> str:
    """A credential id as people are shown it: its UUID for `urn:uuid:<UUID>` (any case), the id
    itself otherwise."""
    if credential_id[:9].lower() == "urn:uuid:" and len(credential_id) > 9:
        return credential_id[9:]
    return credential_id


def linkedin_add_to_profile(
    facts: CredentialFacts, cert_url: str, organization_id: str | None = None
) -> str:
    """LinkedIn's "Add to profile" link for a certification: `startTask=CERTIFICATION_NAME`,
    `name`, the issuing organization (`organizationId` when the institution has a LinkedIn
    page id, else `organizationName`), `issueYear`/`issueMonth`, `expirationYear`/
    `expirationMonth` when the badge expires, `certUrl` (where the badge can be seen and checked)
    and `certId`: the credential's id, its UUID without `urn:uuid:` (the form LinkedIn shows as
    the "Credential ID", and the one the badge's own pages are named by)."""
    params: list[tuple[str, str]] = [("startTask", "CERTIFICATION_NAME"), ("name", facts.name)]
    if organization_id:
        params.append(("organizationId", organization_id))
    else:
        params.append(("organizationName", facts.issuer_name))
    if facts.issued is not None:
        params += [("issueYear", str(facts.issued.year)), ("issueMonth", str(facts.issued.month))]
    if facts.expires is not None:
        params += [
            ("expirationYear", str(facts.expires.year)),
            ("expirationMonth", str(facts.expires.month)),
        ]
    params += [("certUrl", cert_url), ("certId", credential_number(facts.credential_id))]
    return f"{LINKEDIN_ADD_TO_PROFILE}?{_query(params)}"


@dataclass(frozen=True)
class ShareLinks:
    """Where the earner shares their badge page, each link complete."""

    linkedin_add: str
    linkedin: str
    x: str
    facebook: str
    email: str

    def as_dict(self) -> dict[str, str]:
        return {
            "linkedin_add": self.linkedin_add,
            "linkedin": self.linkedin,
            "x": self.x,
            "facebook": self.facebook,
            "email": self.email,
        }


def share_links(
    facts: CredentialFacts,
    page_url: str,
    post_text: str,
    email_subject: str,
    email_body: str,
    organization_id: str | None = None,
) -> ShareLinks:
    """The share links for a badge page: LinkedIn's "Add to profile" (the certification, with
    the page as its URL) and its share dialog, an X post with `post_text`, Facebook's sharer and
    a `mailto:` with `email_subject` and `email_body` (the page's URL is added to the body)."""
    return ShareLinks(
        linkedin_add=linkedin_add_to_profile(facts, page_url, organization_id),
        linkedin=f"{LINKEDIN_SHARE}?{_query([('url', page_url)])}",
        x=f"{X_SHARE}?{_query([('text', post_text), ('url', page_url)])}",
        facebook=f"{FACEBOOK_SHARE}?{_query([('u', page_url)])}",
        email="mailto:?"
        + _query([("subject", email_subject), ("body", f"{email_body}\n\n{page_url}")]),
    )


def embed_snippet(page_url: str, image_url: str, name: str, issuer_name: str) -> str:
    """HTML for an e-portfolio or a web page: the badge image, linking to its page, with its
    name and issuer as text (no script, nothing fetched but the image)."""
    page, image = escape(page_url, quote=True), escape(image_url, quote=True)
    title = escape(name)
    return (
        f'<a href="{page}" rel="noopener" style="display:inline-block;text-align:center;'
        f'text-decoration:none;color:inherit">'
        f'<img src="{image}" alt="{escape(name, quote=True)}" width="160" height="160"><br>'
        f"<strong>{title}</strong><br><small>{escape(issuer_name)}</small></a>"
    )


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG (its IHDR chunk); ValueError if it is not a PNG."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


def svg_wrapping_png(png: bytes, title: str) -> bytes:
    """An SVG document showing the PNG (inline, as a data: URL) at its own size, with a title;
    bake the credential into it with `badges.bake.bake_svg`."""
    width, height = png_size(png)
    data = base64.b64encode(png).decode("ascii")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(title)}</title>"
        f'<image width="{width}" height="{height}" href="data:image/png;base64,{data}"/>'
        "</svg>\n"
    ).encode()
