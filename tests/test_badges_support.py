"""Shared pieces for the badges tests: the example plan, an issuer with keys, signed badges."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from badges.keyring import KeyRing
from badges.keys import RsaSigningKey, SigningKey
from badges.proof import sign
from badges.status import (
    StatusList,
    StatusPurpose,
    build_status_list_credential,
    credential_status,
    status_entry,
)
from badges.vcjwt import sign_jwt
from issuance.award import build_credential
from models.plan import InternshipPlan

pytestmark = pytest.mark.pure

EXAMPLE_PLAN = Path(__file__).parent.parent / "examples" / "plan.json"
ISSUER_ID = "https://badges.example.org/issuers/ipsia-bassano"
IMAGE_URL = "https://badges.example.org/images/badge.png"
ISSUED_AT = datetime(2027, 6, 10, 9, 0, tzinfo=UTC)
AFTER_ISSUE = ISSUED_AT + timedelta(days=1)
REVOCATION_LIST = "https://badges.example.org/status/revocation/1"
SUSPENSION_LIST = "https://badges.example.org/status/suspension/1"
ACHIEVED = {"lo-web": "good", "lo-team": "excellent"}

# One RSA key for the whole run: generating one takes a noticeable fraction of a second.
_RSA_KEYS: list[RsaSigningKey] = []


def example_plan() -> InternshipPlan:
    return InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text(encoding="utf-8"))


def rsa_key(key_id: str = "rsa-1") -> RsaSigningKey:
    if not _RSA_KEYS:
        _RSA_KEYS.append(RsaSigningKey.generate("rsa-1", key_size=2048))
    return RsaSigningKey(key_id, _RSA_KEYS[0].private_key)


def png_image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (4, 4), (200, 30, 30, 255)).save(buffer, format="PNG")
    return buffer.getvalue()


SVG_IMAGE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
    b'<circle cx="5" cy="5" r="4" fill="#1e78c8"/></svg>\n'
)


@dataclass
class Issuer:
    """An issuer with one Ed25519 and one RSA key, and status lists it publishes."""

    ring: KeyRing
    revocations: StatusList = field(default_factory=StatusList)
    suspensions: StatusList = field(default_factory=StatusList)

    @classmethod
    def create(cls) -> Issuer:
        return cls(KeyRing([SigningKey.generate("key-1")], [rsa_key()]))

    @property
    def method(self) -> str:
        return KeyRing.verification_method(ISSUER_ID, self.ring.signing_key)

    @property
    def kid(self) -> str:
        return KeyRing.kid(ISSUER_ID, self.ring.rsa_key)

    def credential(self, index: int = 1234, **options: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "issuer_id": ISSUER_ID,
            "image_url": IMAGE_URL,
            "issued_at": ISSUED_AT,
            "credential_status": credential_status((REVOCATION_LIST, index)),
        }
        values.update(options)
        return build_credential(example_plan(), ACHIEVED, **values)

    def legacy_credential(self, index: int = 1234) -> dict[str, Any]:
        """A badge as issued before one status entry per badge: credentialStatus an array of a
        revocation and a suspension entry (1EdTech's schema refuses it; verifiers still read
        it)."""
        credential = self.credential(index)
        credential["credentialStatus"] = [
            status_entry(REVOCATION_LIST, index, "revocation").to_json_ld(),
            status_entry(SUSPENSION_LIST, index, "suspension").to_json_ld(),
        ]
        return credential

    @property
    def legacy_method(self) -> str:
        """'<issuer>#<multibase>': how badges issued before keys had their own URL name it."""
        return KeyRing.legacy_verification_method(ISSUER_ID, self.ring.signing_key)

    def legacy_signed(self, index: int = 1234) -> dict[str, Any]:
        return sign(
            self.legacy_credential(index), self.ring.signing_key, self.legacy_method, ISSUED_AT
        )

    def signed(self, credential: dict[str, Any] | None = None) -> dict[str, Any]:
        return sign(credential or self.credential(), self.ring.signing_key, self.method, ISSUED_AT)

    def jwt(self, credential: dict[str, Any] | None = None) -> str:
        return sign_jwt(credential or self.credential(), self.ring.rsa_key, self.kid)

    def status_lists(self) -> dict[str, dict[str, Any]]:
        """The two signed status list credentials, by URL (a resolver is their __getitem__)."""
        lists = {}
        places: list[tuple[str, StatusPurpose, StatusList]] = [
            (REVOCATION_LIST, "revocation", self.revocations),
            (SUSPENSION_LIST, "suspension", self.suspensions),
        ]
        for url, purpose, bits in places:
            unsigned = build_status_list_credential(
                url, ISSUER_ID, purpose, bits, valid_from=ISSUED_AT
            )
            lists[url] = sign(unsigned, self.ring.signing_key, self.method, ISSUED_AT)
        return lists


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False)


def test_example_plan_and_issuer_are_usable() -> None:
    plan = example_plan()
    assert plan.internship_id == "it-2027-web-001"
    issuer = Issuer.create()
    assert issuer.method == ISSUER_ID + "/keys/key-1"
    assert issuer.legacy_method.startswith(ISSUER_ID + "#z6Mk")
    assert issuer.kid == ISSUER_ID + "/keys/rsa-1"
