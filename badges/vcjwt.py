"""VC-JWT: a credential as the payload of a compact JWS signed with RS256, and its verification.
Signing and the signature check go through joserfc (badges/jws.py); which claims a VC-JWT carries
and how its key is found are Open Badges 3.0's rules, kept here."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from badges.jsonld import ensure_all_terms_defined
from badges.jws import JwsError, JwsRules, decode_compact, rsa_key, sign_compact, verify_compact
from badges.keys import RsaSigningKey, b64url_decode

__all__ = [
    "JWT_ALG",
    "JWT_CLAIMS",
    "DecodedJwt",
    "JwtVerificationResult",
    "decode_jwt",
    "is_compact_jwt",
    "jwt_claims",
    "sign_jwt",
    "subject_id_for",
    "verify_jwt",
]

JWT_ALG: Final = "RS256"
JWT_CLAIMS: Final = ("iss", "jti", "nbf", "sub", "exp")
_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_MAX_TOKEN_LENGTH: Final = 4 * 1024 * 1024
_SUBJECT_NAMESPACE: Final = uuid.UUID("0b7c2e36-5d0f-4a57-9a8e-51c1f1b6f3d4")
#: RS256 only; a badge with its evidence can be large, its header is not.
_RULES: Final = JwsRules((JWT_ALG,), max_payload=_MAX_TOKEN_LENGTH, max_header=4096)


def subject_id_for(subject: Mapping[str, Any]) -> str | None:
    """A pseudonymous id for a credential subject known only by a hashed identifier:
    'urn:uuid:' + a UUID derived from its (salted) identityHash, or None if it has none.

    A VC-JWT's `sub` must be present (OB 3.0 section 8.2.6.1: verifiers require it) and must
    equal credentialSubject.id (and decoders turn `sub` back into that id, so it must be a URI).
    An intern is identified by a salted e-mail hash only; this id names that same recipient
    without revealing more: it is derived from the hash, whose salt is random per credential, so
    two badges of one intern do not share it, and the address stays checkable through the
    identifier as before."""
    identifiers = subject.get("identifier")
    if isinstance(identifiers, Mapping):
        identifiers = [identifiers]
    for identity in identifiers if isinstance(identifiers, list) else []:
        if isinstance(identity, Mapping) and identity.get("hashed") is True:
            identity_hash = identity.get("identityHash")
            if isinstance(identity_hash, str) and identity_hash:
                return f"urn:uuid:{uuid.uuid5(_SUBJECT_NAMESPACE, identity_hash)}"
    return None


def is_compact_jwt(text: str) -> bool:
    """Whether text has the shape of a compact JWS: three base64url parts joined by dots."""
    return len(text) <= _MAX_TOKEN_LENGTH and _COMPACT.match(text) is not None


def _numeric_date(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise ValueError(f"{name} is missing or not a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError(f"{name} has no time zone")
    return int(moment.timestamp())


def _issuer_id(credential: Mapping[str, Any]) -> Any:
    issuer = credential.get("issuer")
    return issuer.get("id") if isinstance(issuer, Mapping) else issuer


def _subject_id(credential: Mapping[str, Any]) -> Any:
    subject = credential.get("credentialSubject")
    return subject.get("id") if isinstance(subject, Mapping) else None


def jwt_claims(credential: Mapping[str, Any]) -> dict[str, Any]:
    """The registered claims a VC-JWT carries for credential: iss (issuer id), jti (credential
    id), nbf (validFrom), sub (credentialSubject id, if any), exp (validUntil, if any)."""
    issuer_id = _issuer_id(credential)
    if not isinstance(issuer_id, str) or not issuer_id:
        raise ValueError("the credential has no issuer id")
    credential_id = credential.get("id")
    if not isinstance(credential_id, str) or not credential_id:
        raise ValueError("the credential has no id")
    claims: dict[str, Any] = {
        "iss": issuer_id,
        "jti": credential_id,
        "nbf": _numeric_date(credential.get("validFrom"), "validFrom"),
    }
    subject_id = _subject_id(credential)
    if isinstance(subject_id, str) and subject_id:
        claims["sub"] = subject_id
    if credential.get("validUntil") is not None:
        claims["exp"] = _numeric_date(credential.get("validUntil"), "validUntil")
    return claims


def sign_jwt(credential: Mapping[str, Any], key: RsaSigningKey, kid: str) -> str:
    """The credential as a compact VC-JWT (OB 3.0 section 8.2): header {alg: RS256, typ: JWT,
    kid} (OB 3.0: typ, if present, MUST be "JWT"), payload = the credential with the claims of
    jwt_claims(), RSASSA-PKCS1-v1_5 SHA-256 signature.

    kid must dereference to the key's JWK: the issuer publishes it there (KeyRing.kid:
    '<issuer id>/keys/<key id>', or '<DID>#<key id>'). `sub` is always present: a subject
    without an id gets the pseudonymous one of subject_id_for() in the payload. The credential's
    contexts must define the claims (the VC 2.0 context defines iss, nbf, sub and exp; the OB 3.0
    context defines jti). Raises ValueError if the credential has an embedded proof or lacks
    what the claims need, and UndefinedTermError (a ValueError) if a term is not defined by its
    contexts.
    """
    if "proof" in credential:
        raise ValueError("a VC-JWT carries the unsecured credential; remove the embedded proof")
    if not kid:
        raise ValueError("kid is empty")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, Mapping):
        raise ValueError("a VC-JWT needs one credentialSubject object (its id becomes sub)")
    if not subject.get("id"):
        derived = subject_id_for(subject)
        if derived is None:
            raise ValueError("the credential subject has neither an id nor a hashed identifier")
        credential = {**credential, "credentialSubject": {"id": derived, **subject}}
    claims = jwt_claims(credential)
    for name, value in claims.items():
        if name in credential and credential[name] != value:
            raise ValueError(f"the credential's {name!r} ({credential[name]!r}) contradicts it")
    payload = {**credential, **claims}
    ensure_all_terms_defined(payload)
    header = {"alg": JWT_ALG, "typ": "JWT", "kid": kid}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return sign_compact(header, text.encode("utf-8"), rsa_key(key.private_key), _RULES)


@dataclass(frozen=True)
class DecodedJwt:
    """The parts of a compact JWS, decoded but not verified."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes = field(repr=False)
    signature: bytes = field(repr=False)


def decode_jwt(token: str) -> DecodedJwt:
    """Split and decode a compact JWS, to read it (nothing is checked or trusted: verify_jwt
    does that); ValueError if it is not one with JSON object parts."""
    token = token.strip()
    if not is_compact_jwt(token):
        raise ValueError("not a compact JWS (three base64url parts separated by '.')")
    header_part, payload_part, signature_part = token.split(".")
    parts: list[dict[str, Any]] = []
    for name, part in (("header", header_part), ("payload", payload_part)):
        try:
            value = json.loads(b64url_decode(part).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"JWT {name} is not base64url-encoded JSON: {error}") from None
        if not isinstance(value, dict):
            raise ValueError(f"JWT {name} is not a JSON object")
        parts.append(value)
    return DecodedJwt(
        header=parts[0],
        payload=parts[1],
        signing_input=f"{header_part}.{payload_part}".encode("ascii"),
        signature=b64url_decode(signature_part),
    )


@dataclass(frozen=True)
class JwtVerificationResult:
    """Outcome of verify_jwt(): verified is True only if errors is empty."""

    verified: bool
    errors: list[str] = field(default_factory=list)
    kid: str | None = None
    payload: dict[str, Any] | None = None


def verify_jwt(
    token: str, resolve_key: Callable[[DecodedJwt], RSAPublicKey]
) -> JwtVerificationResult:
    """Check a VC-JWT's header, signature and claims; never raises on a bad token.

    resolve_key gets the decoded token and returns the issuer's key the header names (kid or an
    embedded jwk), raising if the key is not trusted. The claims must agree with the credential
    in the payload (iss, jti, nbf, sub, exp). Validity dates, JSON-LD terms and status are the
    caller's checks (badges.verify).
    """
    errors: list[str] = []
    try:
        decoded = decode_jwt(token)
    except ValueError as error:
        return JwtVerificationResult(verified=False, errors=[str(error)])
    header, payload = decoded.header, decoded.payload
    kid = header.get("kid") if isinstance(header.get("kid"), str) else None
    if header.get("alg") != JWT_ALG:
        errors.append(f"JWT alg is {header.get('alg')!r}; only {JWT_ALG!r} is accepted")
    if "typ" in header and str(header["typ"]).upper() != "JWT":
        errors.append(f"JWT typ is {header['typ']!r}, expected 'JWT'")
    if "crit" in header:
        errors.append("JWT header has 'crit' extensions, which are not supported")
    if kid is None and not isinstance(header.get("jwk"), Mapping):
        errors.append("JWT header names no key (kid or jwk)")
    if errors:
        return JwtVerificationResult(False, errors, kid, payload)
    try:
        public_key = resolve_key(decoded)
    except Exception as error:
        errors.append(f"could not resolve the JWT's key: {error}")
        return JwtVerificationResult(False, errors, kid, payload)
    if not isinstance(public_key, RSAPublicKey):
        errors.append("the JWT's key is not an RSA public key")
        return JwtVerificationResult(False, errors, kid, payload)
    try:
        verified = verify_compact(
            decode_compact(token.strip(), _RULES), rsa_key(public_key), _RULES
        )
    except JwsError as error:
        errors.append(f"JWT not acceptable: {error}")
        return JwtVerificationResult(False, errors, kid, payload)
    if not verified:
        errors.append(
            "JWT signature does not match: the token was changed after signing, or it was "
            "signed with a different key"
        )
    _check_claims(payload, errors)
    return JwtVerificationResult(not errors, errors, kid, payload)


def _check_claims(payload: dict[str, Any], errors: list[str]) -> None:
    try:
        expected = jwt_claims(payload)
    except ValueError as error:
        errors.append(f"JWT payload is not a credential the claims can describe: {error}")
        return
    for name in JWT_CLAIMS:
        if name not in expected:
            if name in payload:
                errors.append(f"JWT claim {name!r} has no counterpart in the credential")
            continue
        if name not in payload:
            errors.append(f"JWT claim {name!r} is missing")
        elif payload[name] != expected[name]:
            errors.append(
                f"JWT claim {name!r} is {payload[name]!r} but the credential says "
                f"{expected[name]!r}"
            )
