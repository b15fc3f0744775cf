"""Data Integrity proofs with cryptosuite eddsa-rdfc-2022: sign and verify credentials.

A signed document carries its proof as a one-element array (`"proof": [{...}]`): VC Data Model
2.0 allows one proof object or a set of them, and 1EdTech's Open Badges 3.0 JSON Schema, which
verifiers apply through `credentialSchema`, accepts only the array. `verify` reads both forms, so
documents signed before with a single proof object keep verifying (the container is not signed:
the proof options and the document without `proof` are)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badges.jsonld import DocumentError, canonicalize
from badges.keys import SigningKey, b58decode, b58encode, public_key_from_multibase

__all__ = [
    "CRYPTOSUITE",
    "PROOF_PURPOSE",
    "PROOF_TYPE",
    "VerificationResult",
    "format_created",
    "resolve_key",
    "sign",
    "verify",
]

PROOF_TYPE: Final = "DataIntegrityProof"
CRYPTOSUITE: Final = "eddsa-rdfc-2022"
PROOF_PURPOSE: Final = "assertionMethod"


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of verify(): verified is True only if errors is empty."""

    verified: bool
    errors: list[str] = field(default_factory=list)
    verification_method: str | None = None
    safe_json_ld: bool | None = field(default=None, compare=False)
    """Whether the credential and proof options passed the JSON-LD safe-mode check (None: the
    check was not reached, because the proof was unusable before canonicalization)."""


def format_created(created: datetime) -> str:
    """A timezone-aware datetime as the proof's created value, YYYY-MM-DDTHH:MM:SSZ (UTC)."""
    if created.tzinfo is None or created.utcoffset() is None:
        raise ValueError("created must be timezone-aware (e.g. datetime.now(UTC))")
    return created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _signing_input(unsecured: Mapping[str, Any], proof_options: Mapping[str, Any]) -> bytes:
    """sha256(canonical proof options) || sha256(canonical document), both in safe mode."""
    options_hash = hashlib.sha256(canonicalize(proof_options).encode("utf-8")).digest()
    document_hash = hashlib.sha256(canonicalize(unsecured).encode("utf-8")).digest()
    return options_hash + document_hash


def sign(
    credential: Mapping[str, Any],
    key: SigningKey,
    verification_method: str,
    created: datetime,
) -> dict[str, Any]:
    """Return a copy of credential with an eddsa-rdfc-2022 DataIntegrityProof added, as the one
    element of its `proof` array.

    The copy is shallow: nested values are shared with credential. Raises ValueError if the
    credential already has a proof, has no @context, or is not safe to sign (an UndefinedTermError
    or RelativeIriError from badges.jsonld: something in it would not be covered by the signature).
    """
    if "proof" in credential:
        raise ValueError("credential already has a proof; sign the unsecured credential")
    if "@context" not in credential:
        raise ValueError("credential has no @context")
    if not verification_method:
        raise ValueError("verification_method is empty")
    proof: dict[str, Any] = {
        "type": PROOF_TYPE,
        "created": format_created(created),
        "verificationMethod": verification_method,
        "cryptosuite": CRYPTOSUITE,
        "proofPurpose": PROOF_PURPOSE,
    }
    proof_options = {"@context": credential["@context"], **proof}
    signature = key.sign(_signing_input(credential, proof_options))
    proof["proofValue"] = "z" + b58encode(signature)
    return {**credential, "proof": [proof]}


def resolve_key(verification_method: str) -> Ed25519PublicKey:
    """Public key of a verification method written as '<controller>#<publicKeyMultibase>'.

    This only decodes the key that the credential itself names. A real verifier must also check
    that the key is published by the issuer: that the controller document (the issuer profile or
    DID document) lists this verification method under assertionMethod and that its controller
    is the credential's issuer. Without that, anyone can sign with their own key and name it.
    """
    _, separator, fragment = verification_method.partition("#")
    if not separator or not fragment:
        raise ValueError(f"verification method {verification_method!r} has no '#<key>' fragment")
    return public_key_from_multibase(fragment)


def verify(
    signed: Mapping[str, Any],
    resolve_key: Callable[[str], Ed25519PublicKey],
) -> VerificationResult:
    """Check the eddsa-rdfc-2022 proof of signed; never raises on a bad credential.

    Checks the proof's type, cryptosuite and purpose, that resolve_key(verificationMethod)
    gives an Ed25519 key, that the credential passes the JSON-LD safe-mode check, and the
    signature. It does not check validity dates, status or the issuer/key binding.
    """
    errors: list[str] = []
    method: str | None = None
    safe: list[bool] = []
    try:
        method = _verify(signed, resolve_key, errors, safe)
    except Exception as error:  # a bad credential must produce a report, not an exception
        errors.append(f"unexpected error while verifying: {type(error).__name__}: {error}")
    return VerificationResult(
        verified=not errors,
        errors=errors,
        verification_method=method,
        safe_json_ld=safe[0] if safe else None,
    )


def _verify(
    signed: Mapping[str, Any],
    resolve_key: Callable[[str], Ed25519PublicKey],
    errors: list[str],
    safe: list[bool],
) -> str | None:
    if not isinstance(signed, Mapping):
        errors.append("credential is not a JSON object")
        return None
    proof = signed.get("proof")
    if isinstance(proof, list):
        if len(proof) != 1:
            errors.append(f"expected exactly one proof, found {len(proof)}")
            return None
        proof = proof[0]
    if proof is None:
        errors.append("credential has no proof")
        return None
    if not isinstance(proof, Mapping):
        errors.append("proof is not a JSON object")
        return None

    method = proof.get("verificationMethod")
    if not isinstance(method, str) or not method:
        errors.append("proof has no verificationMethod")
        method = None
    if proof.get("type") != PROOF_TYPE:
        errors.append(f"proof type is {proof.get('type')!r}, expected {PROOF_TYPE!r}")
    if proof.get("cryptosuite") != CRYPTOSUITE:
        errors.append(f"cryptosuite is {proof.get('cryptosuite')!r}, expected {CRYPTOSUITE!r}")
    if proof.get("proofPurpose") != PROOF_PURPOSE:
        errors.append(f"proofPurpose is {proof.get('proofPurpose')!r}, expected {PROOF_PURPOSE!r}")
    if "@context" not in signed:
        errors.append("credential has no @context")
    elif "@context" in proof and proof["@context"] != signed["@context"]:
        errors.append("proof @context differs from the credential's @context")
    signature = _decode_proof_value(proof.get("proofValue"), errors)
    if errors or signature is None or method is None:
        return method

    unsecured = {name: value for name, value in signed.items() if name != "proof"}
    proof_options = {name: value for name, value in proof.items() if name != "proofValue"}
    proof_options["@context"] = signed["@context"]
    try:
        data = _signing_input(unsecured, proof_options)
    except DocumentError as error:
        safe.append(False)
        errors.append(f"credential cannot be canonicalized safely: {error}")
        return method
    safe.append(True)

    try:
        public_key = resolve_key(method)
    except Exception as error:
        errors.append(f"could not resolve verification method {method!r}: {error}")
        return method
    if not isinstance(public_key, Ed25519PublicKey):
        errors.append(f"verification method {method!r} did not resolve to an Ed25519 public key")
        return method

    try:
        public_key.verify(signature, data)
    except InvalidSignature:
        errors.append(
            "signature does not match: the credential or its proof was changed after signing, "
            "or it was signed with a different key"
        )
    return method


def _decode_proof_value(value: Any, errors: list[str]) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("z"):
        errors.append("proofValue is missing or not a base58btc multibase string ('z...')")
        return None
    try:
        signature = b58decode(value[1:])
    except ValueError as error:
        errors.append(f"proofValue is not valid base58btc: {error}")
        return None
    if len(signature) != 64:
        errors.append(f"proofValue decodes to {len(signature)} bytes, expected a 64-byte signature")
        return None
    return signature
