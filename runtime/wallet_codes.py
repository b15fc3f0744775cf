"""The short-lived secrets of a wallet claim (OpenID for Verifiable Credential Issuance 1.0, the
pre-authorized code flow), signed with the deployment's secret key like the party links, each
under a domain of its own so that none can stand for another:

- the pre-authorized code: names one badge (its credential UUID) and when it expires; it is
  redeemed once (the claims table refuses a second redemption of the same code);
- the transaction code: six digits derived from the badge, the same for every offer of it; the
  badge e-mail gives it in its own paragraph, the public page never shows it;
- the access token: what the token endpoint answers, bound to the code it was given for;
- the c_nonce: what the nonce endpoint answers, that a wallet's proof of possession must carry;
- the offer's reference: a random name in the address a wallet fetches an offer from (the
  offer by reference, `credential_offer_uri`).

Nothing here is stored: each token carries its payload and an HMAC-SHA256 over it. An offer by
reference is stored (`wallet_offers`, migration 0027) under a hash of its reference, never the
reference itself."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from runtime.sealed import seal, unseal
from runtime.secret import load_or_create_secret
from runtime.settings import Settings

#: How long the offer in the badge e-mail can be redeemed: long enough to read the e-mail and
#: install a wallet. The public page makes a fresh offer at every view, for a short while.
EMAIL_OFFER_VALIDITY: Final = timedelta(days=30)
PAGE_OFFER_VALIDITY: Final = timedelta(minutes=15)
ACCESS_TOKEN_VALIDITY: Final = timedelta(minutes=5)
NONCE_VALIDITY: Final = timedelta(minutes=5)
TX_CODE_LENGTH: Final = 6

_CODE: Final = b"internflow/oid4vci-pre-authorized-code/v1\x00"
_TX: Final = b"internflow/oid4vci-transaction-code/v1\x00"
_ACCESS: Final = b"internflow/oid4vci-access-token/v1\x00"
_NONCE: Final = b"internflow/oid4vci-nonce/v1\x00"
_OFFER: Final = b"internflow/oid4vci-offer-reference/v1\x00"
#: An offer's reference: what secrets.token_urlsafe(12) makes (16 characters, 96 bits: unguessable
#: for an offer that is served once, expires and is fetched under the rate limit; six characters
#: fewer than 128 bits keep a typical host's code at version 7).
OFFER_REFERENCE: Final = re.compile(r"^[A-Za-z0-9_-]{16}$")
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class TokenInvalid(Exception):
    """Not a token this deployment signed for this purpose (or malformed)."""


class TokenExpired(Exception):
    """A genuine token whose time is up; `credential_uuid` says for which badge, if it names one."""

    def __init__(self, message: str, credential_uuid: str | None = None) -> None:
        super().__init__(message)
        self.credential_uuid = credential_uuid


@dataclass(frozen=True)
class CodeGrant:
    """A genuine pre-authorized code: the badge it is for, its id (a hash: the code itself is
    never stored) and its expiry."""

    credential_uuid: str
    code_id: str
    expires_at: datetime


@dataclass(frozen=True)
class AccessGrant:
    credential_uuid: str
    code_id: str
    expires_at: datetime


def _open(secret: bytes, domain: bytes, token: str, what: str) -> dict[str, Any]:
    payload = unseal(secret, domain, token, max_length=1024)
    if payload is None or not isinstance(payload.get("e"), int):
        raise TokenInvalid(f"this is not a {what} of this issuer")
    return payload


def _expiry(payload: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(payload["e"]), UTC)


def code_id_of(code: str) -> str:
    """The id under which a code's redemption is recorded (never the code itself)."""
    return hashlib.sha256(_CODE + code.encode()).hexdigest()[:32]


def make_offer_reference() -> str:
    """A fresh, unguessable reference for an offer by reference (96 random bits)."""
    return secrets.token_urlsafe(12)


def offer_id_of(reference: str) -> str:
    """The id under which an offer by reference is stored (never the reference itself)."""
    return hashlib.sha256(_OFFER + reference.encode()).hexdigest()[:32]


def make_code(
    secret: bytes, credential_uuid: str, valid_for: timedelta, now: datetime | None = None
) -> str:
    """A pre-authorized code for the badge `credential_uuid`; each call makes a new one."""
    if not _UUID.match(credential_uuid):
        raise ValueError("a pre-authorized code names its badge by the credential's UUID")
    expires = (now or datetime.now(UTC)) + valid_for
    payload = {"c": credential_uuid, "e": int(expires.timestamp()), "r": secrets.token_hex(8)}
    return seal(secret, _CODE, payload)


def read_code(secret: bytes, code: str, now: datetime | None = None) -> CodeGrant:
    payload = _open(secret, _CODE, code, "pre-authorized code")
    uuid = payload.get("c")
    if not isinstance(uuid, str) or not _UUID.match(uuid):
        raise TokenInvalid("this is not a pre-authorized code of this issuer")
    grant = CodeGrant(credential_uuid=uuid, code_id=code_id_of(code), expires_at=_expiry(payload))
    if (now or datetime.now(UTC)) >= grant.expires_at:
        raise TokenExpired(
            "this pre-authorized code has expired: open the badge's page for a new offer",
            credential_uuid=uuid,
        )
    return grant


def transaction_code(secret: bytes, credential_uuid: str) -> str:
    """The badge's transaction code: six digits, derived, so nothing needs storing."""
    digest = hmac.new(secret, _TX + credential_uuid.encode(), hashlib.sha256).digest()
    return str(int.from_bytes(digest[:8], "big") % 10**TX_CODE_LENGTH).zfill(TX_CODE_LENGTH)


def make_access_token(secret: bytes, grant: CodeGrant, now: datetime | None = None) -> str:
    expires = (now or datetime.now(UTC)) + ACCESS_TOKEN_VALIDITY
    payload = {"c": grant.credential_uuid, "k": grant.code_id, "e": int(expires.timestamp())}
    return seal(secret, _ACCESS, payload)


def read_access_token(secret: bytes, token: str, now: datetime | None = None) -> AccessGrant:
    payload = _open(secret, _ACCESS, token, "access token")
    uuid, code_id = payload.get("c"), payload.get("k")
    if not isinstance(uuid, str) or not isinstance(code_id, str):
        raise TokenInvalid("this is not an access token of this issuer")
    grant = AccessGrant(credential_uuid=uuid, code_id=code_id, expires_at=_expiry(payload))
    if (now or datetime.now(UTC)) >= grant.expires_at:
        raise TokenExpired("the access token has expired: redeem the offer again", uuid)
    return grant


def make_nonce(secret: bytes, now: datetime | None = None) -> str:
    expires = (now or datetime.now(UTC)) + NONCE_VALIDITY
    return seal(secret, _NONCE, {"e": int(expires.timestamp()), "r": secrets.token_hex(8)})


def read_nonce(secret: bytes, nonce: str, now: datetime | None = None) -> str:
    """The nonce's id (recorded with the credential it was used for, so it serves once)."""
    payload = _open(secret, _NONCE, nonce, "c_nonce")
    if (now or datetime.now(UTC)) >= _expiry(payload):
        raise TokenExpired("the c_nonce has expired: ask the nonce endpoint for a fresh one")
    return hashlib.sha256(_NONCE + nonce.encode()).hexdigest()[:32]


def claim_secret(settings: Settings) -> bytes:
    """The deployment's secret key (the one that signs party links)."""
    return load_or_create_secret(settings)
