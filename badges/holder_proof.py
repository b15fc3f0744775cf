"""A wallet's proof of possession in OpenID for Verifiable Credential Issuance 1.0: the `jwt`
proof type (a compact JWS with `typ: openid4vci-proof+jwt`), signed with ES256 (P-256) or EdDSA
(Ed25519) by the key the credential will be bound to. The key is named by exactly one of the
header's `jwk` (a public JWK) or `kid` (a `did:key` or `did:jwk` DID URL); the holder's DID is
the `did:key`/`did:jwk` DID, or for a bare `jwk` the `did:jwk` of it.

`verify_proof_jwt` checks the form, the signature, `aud` (the credential issuer) and `iat`; the
caller checks the `nonce` it returns against the c_nonces it gave out."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric import ec

from badges.jws import JwsError, JwsRules, decode_compact, public_jwk_key, verify_compact
from badges.keys import b58decode

__all__ = [
    "PROOF_ALGORITHMS",
    "PROOF_TYP",
    "HolderProof",
    "ProofRefused",
    "holder_did_of_jwk",
    "verify_proof_jwt",
]

PROOF_TYP: Final = "openid4vci-proof+jwt"
PROOF_ALGORITHMS: Final = ("ES256", "EdDSA")
#: How far a proof's `iat` may be from the issuer's clock (the nonce bounds its age as well).
CLOCK_SKEW: Final = timedelta(minutes=5)
#: How old a proof may be (`iat`), beside the clock skew.
MAX_AGE: Final = timedelta(minutes=10)
_ED25519_CODEC: Final = b"\xed\x01"
_P256_CODEC: Final = b"\x80\x24"
#: A proof is small: a header naming one key, a payload of a few claims. Header members joserfc
#: does not know (OID4VCI's `key_attestation`, say) are not refused for that alone.
_RULES: Final = JwsRules(PROOF_ALGORITHMS, max_payload=8192, max_header=4096, strict_header=False)


class ProofRefused(Exception):
    """The proof is not acceptable; `error` is the OID4VCI error code to answer with."""

    def __init__(
        self, description: str, error: Literal["invalid_proof", "invalid_nonce"] = "invalid_proof"
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class HolderProof:
    """A verified proof: the holder's DID (the credential subject's id), and the nonce it
    carries (None if it carries none: OID4VCI answers that with invalid_proof)."""

    holder: str
    nonce: str | None
    issued_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if "=" in text:
        raise ValueError("padded")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_jwk(jwk: Any) -> dict[str, str]:
    """The public members of an EC P-256 or OKP Ed25519 JWK; refuses private keys and others."""
    if not isinstance(jwk, dict):
        raise ProofRefused("the proof's jwk is not a JSON object")
    if "d" in jwk:
        raise ProofRefused("the proof's jwk carries a private key: send the public key only")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519" and isinstance(jwk.get("x"), str):
        return {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}
    if kty == "EC" and crv == "P-256" and all(isinstance(jwk.get(k), str) for k in ("x", "y")):
        return {"kty": "EC", "crv": "P-256", "x": jwk["x"], "y": jwk["y"]}
    raise ProofRefused("the proof's key is neither an Ed25519 (OKP) nor a P-256 (EC) key")


def holder_did_of_jwk(jwk: dict[str, str]) -> str:
    """did:jwk of a public JWK (its members in lexicographic order, as JSON without spaces)."""
    text = json.dumps(_public_jwk(jwk), separators=(",", ":"), sort_keys=True)
    return "did:jwk:" + _b64(text.encode())


def _did_key_jwk(did: str) -> dict[str, str]:
    identifier = did.removeprefix("did:key:")
    if not identifier.startswith("z"):
        raise ProofRefused("a did:key must be base58btc multibase (z...)")
    try:
        raw = b58decode(identifier[1:])
    except (ValueError, KeyError):
        raise ProofRefused("the did:key is not valid base58btc") from None
    if raw.startswith(_ED25519_CODEC) and len(raw) == 34:
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw[2:])}
    if raw.startswith(_P256_CODEC) and len(raw) == 35:
        try:
            point = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw[2:])
        except ValueError:
            raise ProofRefused("the did:key is not a valid P-256 key") from None
        numbers = point.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }
    raise ProofRefused("the did:key is neither an Ed25519 nor a P-256 key")


def _did_jwk_jwk(did: str) -> dict[str, str]:
    try:
        value = json.loads(_unb64(did.removeprefix("did:jwk:")))
    except (ValueError, UnicodeDecodeError):
        raise ProofRefused("the did:jwk is not base64url-encoded JSON") from None
    return _public_jwk(value)


def _resolve_kid(kid: Any) -> tuple[str, dict[str, str]]:
    """(holder DID, public JWK) for a did:key or did:jwk DID URL."""
    if not isinstance(kid, str):
        raise ProofRefused("the proof's kid is not a string")
    did, _, fragment = kid.partition("#")
    if did.startswith("did:key:"):
        jwk = _did_key_jwk(did)
        if fragment and fragment != did.removeprefix("did:key:"):
            raise ProofRefused("the did:key URL's fragment does not name its key")
        return did, jwk
    if did.startswith("did:jwk:"):
        if fragment not in ("", "0"):
            raise ProofRefused("a did:jwk URL names its key as #0")
        return did, _did_jwk_jwk(did)
    raise ProofRefused(
        "the proof's kid must be a did:key or did:jwk DID URL (or send the key as jwk)"
    )


def verify_proof_jwt(proof: Any, audience: str, now: datetime | None = None) -> HolderProof:
    """Check a `jwt` proof for the credential issuer `audience`: its form (joserfc parses it,
    with ES256 and EdDSA the only algorithms), `typ`, the one key it names, the signature by
    that key (joserfc), `aud` and `iat`. ProofRefused says why not (always invalid_proof: the
    caller checks the nonce it returns against the c_nonces it gave out)."""
    try:
        token = decode_compact(proof, _RULES)
    except JwsError as error:
        raise ProofRefused(f"the proof is not acceptable: {error}") from None
    header = token.header
    if header.get("typ") != PROOF_TYP:
        raise ProofRefused(f"the proof's typ must be {PROOF_TYP!r}")
    alg = header["alg"]
    if ("jwk" in header) == ("kid" in header) or "x5c" in header or "trust_chain" in header:
        raise ProofRefused("the proof's header names its key by exactly one of jwk or kid")
    if "jwk" in header:
        jwk = _public_jwk(header["jwk"])
        holder = holder_did_of_jwk(jwk)
    else:
        holder, jwk = _resolve_kid(header["kid"])
    if (alg == "EdDSA") != (jwk["kty"] == "OKP"):
        raise ProofRefused(f"alg {alg} does not fit the proof's {jwk['kty']} key")
    try:
        verified = verify_compact(token, public_jwk_key(jwk), _RULES)
    except JwsError as error:
        raise ProofRefused(f"the proof's key is not acceptable: {error}") from None
    if not verified:
        raise ProofRefused("the proof's signature does not verify with its key")
    try:
        payload = token.payload_json()
    except JwsError as error:
        raise ProofRefused(f"the proof's payload: {error}") from None
    aud = payload.get("aud")
    if not (aud == audience or (isinstance(aud, list) and audience in aud)):
        raise ProofRefused(f"the proof's aud must be the credential issuer, {audience}")
    iat = payload.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise ProofRefused("the proof has no iat (issued at, in seconds)")
    try:
        issued_at = datetime.fromtimestamp(iat, UTC)
    except (OverflowError, OSError, ValueError):
        raise ProofRefused("the proof's iat is not a time") from None
    current = now or datetime.now(UTC)
    if issued_at > current + CLOCK_SKEW:
        raise ProofRefused("the proof's iat is in the future")
    if issued_at < current - MAX_AGE - CLOCK_SKEW:
        raise ProofRefused("the proof is too old (iat): make a fresh one")
    nonce = payload.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise ProofRefused("the proof's nonce is not a string")
    return HolderProof(holder=holder, nonce=nonce, issued_at=issued_at)
