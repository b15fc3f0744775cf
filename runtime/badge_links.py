"""The intern's badge link: a signed, long-lived token that lets the earner of one badge decide
about its public page (show or hide their name, take the page down or bring it back). Signed
like the party links, under a domain of its own, so neither can stand for the other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from runtime.links import LinkExpired, LinkInvalid
from runtime.sealed import seal, unseal
from runtime.secret import load_or_create_secret
from runtime.settings import Settings

#: The link comes once, with the badge; the page lives as long as the badge, so the link does
#: too, for long. After it the intern asks the institution.
BADGE_LINK_VALIDITY: Final = timedelta(days=5 * 366)
_DOMAIN: Final = b"internflow/badge-choices/v1\x00"
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_REFUSED: Final = "this link is not valid: open the link in your badge e-mail"


@dataclass(frozen=True)
class BadgeGrant:
    """What a valid badge token allows: deciding about the page of this one credential."""

    credential_uuid: str
    expires_at: datetime


def make_badge_token(
    secret: bytes,
    credential_uuid: str,
    valid_for: timedelta = BADGE_LINK_VALIDITY,
    now: datetime | None = None,
) -> str:
    """`<payload>.<HMAC-SHA256>`, both base64url: the payload names the credential and the
    expiry (Unix seconds)."""
    if not _UUID.match(credential_uuid):
        raise ValueError("a badge link names its credential by its UUID")
    expires = (now or datetime.now(UTC)) + valid_for
    payload = {"c": credential_uuid, "e": int(expires.timestamp())}
    return seal(secret, _DOMAIN, payload)


def read_badge_token(secret: bytes, token: str, now: datetime | None = None) -> BadgeGrant:
    """The grant a badge token carries; LinkInvalid if this deployment did not sign it (or it
    is malformed), LinkExpired once its time is up."""
    payload = unseal(secret, _DOMAIN, token, max_length=512)
    if payload is None:
        raise LinkInvalid(_REFUSED)
    try:
        grant = BadgeGrant(
            credential_uuid=str(payload["c"]),
            expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError):
        raise LinkInvalid(_REFUSED) from None
    if not _UUID.match(grant.credential_uuid):
        raise LinkInvalid(_REFUSED)
    if (now or datetime.now(UTC)) >= grant.expires_at:
        raise LinkExpired("this link has expired: ask the institution to change your badge page")
    return grant


def badge_choices_link(
    settings: Settings,
    credential_uuid: str,
    valid_for: timedelta = BADGE_LINK_VALIDITY,
    now: datetime | None = None,
) -> str:
    """The URL of the intern's page about their badge page (`/b/<token>`)."""
    token = make_badge_token(
        load_or_create_secret(settings), credential_uuid, valid_for=valid_for, now=now
    )
    return f"{settings.public_base_url.rstrip('/')}/b/{token}"
