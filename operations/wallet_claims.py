"""Claiming an issued badge into a wallet (OpenID for Verifiable Credential Issuance 1.0, the
pre-authorized code flow): the offer (by reference: stored, and served once to the wallet that
fetches it), the token exchange and the credential request.

The credential a wallet receives is the issued badge as stored (the same achievement, results,
evidence, issuer, dates and `credentialStatus` entry: revoking the badge revokes it too), with its
own id, `credentialSubject.id` set to the holder's DID (the key the wallet proved it holds), and
a fresh eddsa-rdfc-2022 proof by the issuer's current key. Every step is a row in
`wallet_claims` (migration 0017), refusals too."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
import structlog

from badges.holder_proof import ProofRefused, verify_proof_jwt
from badges.jsonld import ensure_all_terms_defined
from badges.keyring import KeyRing
from badges.oid4vci import CONFIGURATION_ID, PRE_AUTHORIZED_GRANT, offer_qr_svg
from badges.proof import sign
from badges.vcjwt import decode_jwt
from issuance.issuers import signing_ring
from mail.wallet_offer import make_offer, store_offer
from models.ids import credential_id_from_uuid
from operations import credentials as creds
from runtime import wallet_codes as codes
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: Wrong transaction codes for one badge within WRONG_TX_CODE_WINDOW before its offers are
#: refused until the window has passed (six digits must not be guessable by trying).
WRONG_TX_CODE_LIMIT: Final = 5
WRONG_TX_CODE_WINDOW: Final = timedelta(hours=1)
#: The JWT claims a VC-JWT badge's payload carries beside the credential itself.
_JWT_CLAIMS: Final = ("iss", "sub", "jti", "nbf", "exp", "iat", "aud")


class ClaimRefused(Exception):
    """An OAuth 2.0 / OID4VCI error: `error` (the code), `description`, the HTTP status. A 401
    without an error code is RFC 6750's answer to a request with no access token at all."""

    def __init__(self, error: str | None, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status

    def as_dict(self) -> dict[str, str]:
        answer = {"error_description": oauth_text(self.description)}
        if self.error is not None:
            answer = {"error": self.error, **answer}
        return answer


def oauth_text(text: str) -> str:
    """text as an OAuth error_description may carry it (RFC 6749 section 5.2, RFC 6750 section
    3, OID4VCI 1.0 section 8.3.1): printable ASCII without '"' and '\\'."""
    text = text.replace('"', "'")
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c != "\\" else "?" for c in text)


@dataclass(frozen=True)
class PageOffer:
    """The offer a badge's public page shows: its link (the offer by reference) and its QR code
    (an SVG element)."""

    url: str
    qr_svg: str
    minutes: int


async def page_offer(
    pool: asyncpg.Pool, settings: Settings, credential_uuid: str, language: str
) -> PageOffer:
    """A fresh offer of the badge for its public page, stored for a wallet to fetch once by
    reference, redeemable once, for a short while, with the transaction code from the badge
    e-mail (which the page never shows)."""
    offer = make_offer(settings, credential_uuid.lower(), codes.PAGE_OFFER_VALIDITY, language)
    await store_offer(pool, offer)
    return PageOffer(
        url=offer.uri_url,
        qr_svg=offer_qr_svg(offer.uri_url, scale=3),
        minutes=int(codes.PAGE_OFFER_VALIDITY.total_seconds() // 60),
    )


#: What a wallet is told for an offer it cannot have: the same for one already fetched, one
#: expired and one never made (the answer says nothing about which offers exist).
OFFER_GONE: Final = (
    "this credential offer is unknown, expired or already fetched (each offer is fetched once): "
    "open the badge's page for a new offer"
)


async def served_offer(pool: asyncpg.Pool, reference: str) -> dict[str, Any]:
    """The offer stored under `reference`, for the wallet that fetches it: once, before its
    code expires. Serving it marks it served and clears it in one statement (the row is locked
    first, so two fetches at once get it once); ClaimRefused (404) otherwise."""
    if not codes.OFFER_REFERENCE.match(reference):
        raise ClaimRefused("invalid_request", OFFER_GONE, 404)
    offer = await pool.fetchval(
        """
        UPDATE wallet_offers w SET offer = NULL, served_at = now()
        FROM (SELECT offer_id, offer FROM wallet_offers
              WHERE offer_id = $1 AND served_at IS NULL AND expires_at > now()
              FOR UPDATE) AS stored
        WHERE w.offer_id = stored.offer_id AND w.served_at IS NULL
        RETURNING stored.offer
        """,
        codes.offer_id_of(reference),
    )
    if offer is None:
        raise ClaimRefused("invalid_request", OFFER_GONE, 404)
    answer: dict[str, Any] = json.loads(offer)
    return answer


@asynccontextmanager
async def _keeping_refusals(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """A transaction that is committed when the block ends with a ClaimRefused too: the refusal
    is answered, and what the block recorded of it stays (any other error rolls it back)."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        yield
    except ClaimRefused:
        await transaction.commit()
        raise
    except BaseException:
        await transaction.rollback()
        raise
    await transaction.commit()


async def _record(
    conn: asyncpg.Connection | asyncpg.Pool,
    credential_id: str,
    event: str,
    *,
    code_id: str | None = None,
    reason: str | None = None,
) -> None:
    await conn.execute(
        "INSERT INTO wallet_claims (credential_id, event, code_id, reason) VALUES ($1, $2, $3, $4)",
        credential_id,
        event,
        code_id,
        reason,
    )


async def redeem_code(
    pool: asyncpg.Pool,
    settings: Settings,
    grant_type: str | None,
    code: str | None,
    tx_code: str | None,
) -> dict[str, Any]:
    """The token endpoint: a pre-authorized code (and the badge's transaction code) for an
    access token. Each code is redeemed once."""
    if grant_type != PRE_AUTHORIZED_GRANT:
        raise ClaimRefused(
            "unsupported_grant_type", f"this token endpoint supports only {PRE_AUTHORIZED_GRANT}"
        )
    if not code:
        raise ClaimRefused("invalid_request", "pre-authorized_code is missing")
    secret = codes.claim_secret(settings)
    try:
        grant = codes.read_code(secret, code)
    except codes.TokenInvalid as refused:
        raise ClaimRefused("invalid_grant", str(refused)) from None
    except codes.TokenExpired as expired:
        if expired.credential_uuid is not None:
            await _known_refusal(pool, expired.credential_uuid, codes.code_id_of(code), "expired")
        raise ClaimRefused("invalid_grant", str(expired)) from None
    credential_id = credential_id_from_uuid(grant.credential_uuid)
    async with pool.acquire() as conn, _keeping_refusals(conn):
        try:
            record = await creds.get_credential(conn, credential_id)
        except creds.CredentialNotFound:
            raise ClaimRefused("invalid_grant", "this offer's badge was not issued here") from None
        # One redemption of a badge's codes at a time: the wrong-code count below is exact.
        await conn.execute(
            "SELECT 1 FROM credentials WHERE credential_id = $1 FOR UPDATE", credential_id
        )
        wrong = await conn.fetchval(
            "SELECT count(*) FROM wallet_claims WHERE credential_id = $1 "
            "AND event = 'code_refused' AND reason = 'wrong transaction code' "
            "AND occurred_at > now() - $2::interval",
            credential_id,
            WRONG_TX_CODE_WINDOW,
        )
        if wrong >= WRONG_TX_CODE_LIMIT:
            await _record(conn, credential_id, "code_refused", code_id=grant.code_id,
                          reason="too many wrong transaction codes")  # fmt: skip
            raise ClaimRefused(
                "invalid_grant",
                f"{WRONG_TX_CODE_LIMIT} wrong transaction codes were given for this badge within "
                "the hour: try again later",
            )
        if not tx_code:
            raise ClaimRefused(
                "invalid_request",
                "tx_code is missing: give the transaction code from the badge e-mail",
            )
        if tx_code != codes.transaction_code(secret, grant.credential_uuid):
            await _record(conn, credential_id, "code_refused", code_id=grant.code_id,
                          reason="wrong transaction code")  # fmt: skip
            raise ClaimRefused(
                "invalid_grant",
                "the transaction code is wrong: it is the code in the badge e-mail",
            )
        if record.revoked_at is not None:
            await _record(conn, credential_id, "code_refused", code_id=grant.code_id,
                          reason="revoked")  # fmt: skip
            raise ClaimRefused("invalid_grant", "this badge has been revoked by its issuer")
        redeemed = await conn.fetchval(
            "INSERT INTO wallet_claims (credential_id, event, code_id) "
            "VALUES ($1, 'code_redeemed', $2) ON CONFLICT DO NOTHING RETURNING seq",
            credential_id,
            grant.code_id,
        )
        if redeemed is None:
            await _record(conn, credential_id, "code_refused", code_id=grant.code_id,
                          reason="already redeemed")  # fmt: skip
            raise ClaimRefused(
                "invalid_grant",
                "this pre-authorized code has already been redeemed: each offer is used once; "
                "open the badge's page for a new one",
            )
    log.info("wallet_claim.code_redeemed", internship_id=record.internship_id)
    return {
        "access_token": codes.make_access_token(secret, grant),
        "token_type": "Bearer",
        "expires_in": int(codes.ACCESS_TOKEN_VALIDITY.total_seconds()),
    }


async def _known_refusal(
    pool: asyncpg.Pool, credential_uuid: str, code_id: str, reason: str
) -> None:
    """Record a refusal of a genuine code for a badge that exists (nothing otherwise)."""
    credential_id = credential_id_from_uuid(credential_uuid)
    exists = await pool.fetchval(
        "SELECT true FROM credentials WHERE credential_id = $1", credential_id
    )
    if exists:
        await _record(pool, credential_id, "code_refused", code_id=code_id, reason=reason)


def new_nonce(settings: Settings) -> dict[str, Any]:
    """The nonce endpoint's answer."""
    return {
        "c_nonce": codes.make_nonce(codes.claim_secret(settings)),
        "c_nonce_expires_in": int(codes.NONCE_VALIDITY.total_seconds()),
    }


def _proof_jwt(body: dict[str, Any]) -> str:
    """The one `jwt` proof of a credential request (`proofs.jwt[0]`, or the older `proof`)."""
    if "proofs" in body and "proof" in body:
        raise ClaimRefused("invalid_proof", "send proofs or proof, not both")
    proofs = body.get("proofs")
    if isinstance(proofs, dict):
        if set(proofs) != {"jwt"}:
            raise ClaimRefused("invalid_proof", "only the jwt proof type is supported")
        jwts = proofs["jwt"]
        if not isinstance(jwts, list) or len(jwts) != 1 or not isinstance(jwts[0], str):
            raise ClaimRefused("invalid_proof", "send exactly one jwt proof (no batch issuance)")
        return jwts[0]
    proof = body.get("proof")
    if isinstance(proof, dict) and proof.get("proof_type") == "jwt":
        jwt = proof.get("jwt")
        if isinstance(jwt, str):
            return jwt
    raise ClaimRefused("invalid_proof", "the request carries no jwt proof of possession")


def _claimed_document(stored: dict[str, Any] | str, holder: str, claim_id: str) -> dict[str, Any]:
    """The badge as the wallet gets it, before signing: the stored credential (a VC-JWT's
    payload without its JWT claims) with its own id and the holder as subject."""
    if isinstance(stored, str):
        document = {k: v for k, v in decode_jwt(stored).payload.items() if k not in _JWT_CLAIMS}
    else:
        document = {k: v for k, v in stored.items() if k != "proof"}
    subject = dict(document["credentialSubject"])
    subject["id"] = holder
    document["credentialSubject"] = subject
    document["id"] = claim_id
    return document


async def issue_to_wallet(
    pool: asyncpg.Pool,
    settings: Settings,
    authorization: str | None,
    body: Any,
) -> dict[str, Any]:
    """The credential endpoint: the badge, bound to the holder's key, for a valid access token
    and a proof of possession carrying a fresh c_nonce; once per redeemed code."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # RFC 6750 section 3.1: a request with no access token gets no error code.
        raise ClaimRefused(None, "send the access token from the token endpoint as a Bearer token",
                           401)  # fmt: skip
    secret = codes.claim_secret(settings)
    try:
        access = codes.read_access_token(secret, token.strip())
    except (codes.TokenInvalid, codes.TokenExpired) as refused:
        raise ClaimRefused("invalid_token", str(refused), 401) from None
    credential_id = credential_id_from_uuid(access.credential_uuid)
    if await _token_spent(pool, access.code_id):
        await _record(pool, credential_id, "proof_refused", code_id=access.code_id,
                      reason="invalid_token: access token used before")  # fmt: skip
        raise ClaimRefused("invalid_token", _SPENT, 401)
    if not isinstance(body, dict):
        raise ClaimRefused("invalid_credential_request", "the request body is a JSON object")
    if "credential_identifier" in body:
        raise ClaimRefused(
            "invalid_credential_request", "this issuer gives no credential_identifiers"
        )
    if "credential_configuration_id" not in body:
        raise ClaimRefused("invalid_credential_request", "credential_configuration_id is missing")
    if body.get("credential_configuration_id") != CONFIGURATION_ID:
        raise ClaimRefused(
            "unknown_credential_configuration",
            f"the only credential configuration is {CONFIGURATION_ID}",
        )
    audience = settings.public_base_url.rstrip("/")
    try:
        proof = verify_proof_jwt(_proof_jwt(body), audience)
        if not proof.nonce:
            # OID4VCI 1.0 section 8.3.1: a key proof without a c_nonce is invalid_proof.
            raise ProofRefused("the proof carries no nonce: ask the nonce endpoint for a c_nonce")
        try:
            nonce_id = codes.read_nonce(secret, proof.nonce)
        except (codes.TokenInvalid, codes.TokenExpired) as stale:
            raise ProofRefused(f"{stale}; ask the nonce endpoint for a fresh one",
                               "invalid_nonce") from None  # fmt: skip
    except (ProofRefused, ClaimRefused) as refused:
        error = refused.error or "invalid_proof"
        description = refused.description
        await _record(pool, credential_id, "proof_refused", code_id=access.code_id,
                      reason=f"{error}: {description}"[:500])  # fmt: skip
        raise ClaimRefused(error, description) from None
    async with pool.acquire() as conn, _keeping_refusals(conn):
        record = await creds.get_credential(conn, credential_id)
        if record.revoked_at is not None:
            await _record(conn, credential_id, "proof_refused", code_id=access.code_id,
                          reason="credential_request_denied: revoked")  # fmt: skip
            raise ClaimRefused("credential_request_denied", "this badge has been revoked")
        # One credential request of a badge at a time: the checks below are exact.
        await conn.execute(
            "SELECT 1 FROM credentials WHERE credential_id = $1 FOR UPDATE", credential_id
        )
        if await _token_spent(conn, access.code_id):
            await _record(conn, credential_id, "proof_refused", code_id=access.code_id,
                          reason="invalid_token: access token used before")  # fmt: skip
            raise ClaimRefused("invalid_token", _SPENT, 401)
        nonce_used = await conn.fetchval(
            "SELECT true FROM wallet_claims WHERE event = 'credential_issued' AND nonce_id = $1",
            nonce_id,
        )
        if nonce_used:
            await _record(conn, credential_id, "proof_refused", code_id=access.code_id,
                          reason="invalid_nonce: c_nonce used before")  # fmt: skip
            raise ClaimRefused(
                "invalid_nonce",
                "this c_nonce was already used for a credential: ask the nonce endpoint for a "
                "fresh one",
            )
        # The stored badge: a document, or (a VC-JWT badge) the compact JWT as a string.
        stored: dict[str, Any] | str = record.credential
        claim_id = credential_id_from_uuid(str(uuid.uuid4()))
        document = _claimed_document(stored, proof.holder, claim_id)
        issuer = document["issuer"]
        issuer_id = issuer["id"] if isinstance(issuer, dict) else str(issuer)
        ensure_all_terms_defined(document)
        # Signed by the badge's issuer as it is now: an institution's own key for its DID.
        key = signing_ring(settings, issuer_id).signing_key
        signed = sign(
            document,
            key,
            verification_method=KeyRing.verification_method(issuer_id, key),
            created=datetime.now(UTC).replace(microsecond=0),
        )
        await conn.execute(
            """
            INSERT INTO wallet_claims (credential_id, event, code_id, nonce_id, holder,
                                       claimed_credential_id, credential)
            VALUES ($1, 'credential_issued', $2, $3, $4, $5, $6)
            """,
            credential_id,
            access.code_id,
            nonce_id,
            proof.holder,
            claim_id,
            json.dumps(signed),
        )
    log.info("wallet_claim.credential_issued", internship_id=record.internship_id)
    return {"credentials": [{"credential": signed}]}


_SPENT: Final = (
    "this access token was already used for a credential: each is good for one; redeem a new "
    "offer (open the badge's page for one)"
)


async def _token_spent(conn: asyncpg.Connection | asyncpg.Pool, code_id: str) -> bool:
    """Whether the access token of this code has already been given a credential."""
    spent = await conn.fetchval(
        "SELECT true FROM wallet_claims WHERE event = 'credential_issued' AND code_id = $1",
        code_id,
    )
    return bool(spent)


async def claims_of(pool: asyncpg.Pool, credential_id: str) -> list[dict[str, Any]]:
    """Every recorded step of the badge's wallet claims, oldest first."""
    rows = await pool.fetch(
        "SELECT event, holder, claimed_credential_id, reason, occurred_at FROM wallet_claims "
        "WHERE credential_id = $1 ORDER BY seq",
        creds.credential_id_of(credential_id),
    )
    return [dict(row) for row in rows]
