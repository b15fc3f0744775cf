"""Verify an Open Badges 3.0 credential: shape, JSON-LD terms, proof, issuer key and validity."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badges.credential import OB_CONTEXT, VC_CONTEXT
from badges.keys import load_or_create_signing_key, public_key_from_multibase
from badges.proof import verify


@dataclass
class VerificationReport:
    credential_id: str | None = None
    issuer_id: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(self.checks.values()) and not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "credential_id": self.credential_id,
            "issuer": self.issuer_id,
            "checks": self.checks,
            "errors": self.errors,
        }


def local_issuer_keys(key_dir: Path) -> list[str]:
    """The public keys (multibase) of the signing keys kept in `key_dir`: the offline key store."""
    return [
        load_or_create_signing_key(key_dir, path.stem).public_key_multibase
        for path in sorted(Path(key_dir).glob("*.pem"))
    ]


def verify_credential(
    text: str, issuer_keys: Iterable[str], now: datetime | None = None
) -> VerificationReport:
    """Check a credential given as JSON text. `issuer_keys` are the issuer's published public keys
    (multibase); a proof by any other key, or by a key whose controller is not the issuer, fails."""
    report = VerificationReport()
    try:
        credential = json.loads(text)
    except json.JSONDecodeError as error:
        report.errors.append(f"not JSON: {error}")
        return report
    if not isinstance(credential, dict):
        report.errors.append("not a JSON object")
        return report
    report.credential_id = credential.get("id")
    issuer = credential.get("issuer")
    report.issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    contexts = credential.get("@context")
    report.checks["contexts"] = isinstance(contexts, list) and contexts[:2] == [
        VC_CONTEXT,
        OB_CONTEXT,
    ]
    types = credential.get("type", [])
    report.checks["type"] = "VerifiableCredential" in types and "OpenBadgeCredential" in types
    trusted = set(issuer_keys)

    def resolve(method: str) -> Ed25519PublicKey:
        controller, _, key = method.partition("#")
        if controller != report.issuer_id:
            raise ValueError(f"the key's controller {controller!r} is not the issuer")
        if key not in trusted:
            raise ValueError("the signing key is not one of the issuer's published keys")
        return public_key_from_multibase(key)

    result = verify(credential, resolve)
    report.checks["proof"] = result.verified
    report.errors += result.errors
    report.checks["validity"] = _within_validity(credential, now or datetime.now(UTC), report)
    return report


def _within_validity(credential: dict[str, Any], now: datetime, report: VerificationReport) -> bool:
    try:
        valid_from = datetime.fromisoformat(credential["validFrom"])
        valid_until = credential.get("validUntil")
        until = datetime.fromisoformat(valid_until) if valid_until else None
    except (KeyError, TypeError, ValueError):
        report.errors.append("validFrom/validUntil missing or not a date-time")
        return False
    if now < valid_from:
        report.errors.append(f"not valid before {credential['validFrom']}")
        return False
    if until is not None and now >= until:
        report.errors.append(f"expired at {valid_until}")
        return False
    return True
