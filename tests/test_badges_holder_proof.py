"""A wallet's proof of possession (OID4VCI 1.0 `jwt` proof type), verified through joserfc:
what is accepted, and each refusal with the OID4VCI error code it is answered with. The tokens
are made here with `cryptography` alone, not with the library under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from badges.holder_proof import PROOF_TYP, ProofRefused, holder_did_of_jwk, verify_proof_jwt
from badges.keys import b58encode
from operations.wallet_claims import ClaimRefused, oauth_text

pytestmark = pytest.mark.pure

ISSUER = "https://badges.example.org"
NOW = datetime(2027, 6, 1, 12, 0, tzinfo=UTC)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def part(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


class Holder:
    """A wallet key, Ed25519 or P-256, that signs compact JWS with `cryptography` directly."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        if alg == "EdDSA":
            self.ed = Ed25519PrivateKey.generate()
            raw = self.ed.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
            self.did_key = "did:key:z" + b58encode(b"\xed\x01" + raw)
        else:
            self.ec = ec.generate_private_key(ec.SECP256R1())
            numbers = self.ec.public_key().public_numbers()
            self.jwk = {
                "kty": "EC",
                "crv": "P-256",
                "x": b64(numbers.x.to_bytes(32, "big")),
                "y": b64(numbers.y.to_bytes(32, "big")),
            }
            compressed = self.ec.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
            )
            self.did_key = "did:key:z" + b58encode(b"\x80\x24" + compressed)

    def sign(self, data: bytes) -> bytes:
        if self.alg == "EdDSA":
            return self.ed.sign(data)
        r, s = decode_dss_signature(self.ec.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def proof(
        self,
        header: dict[str, Any] | None = None,
        payload: dict[str, Any] | None = None,
        *,
        key: str = "jwk",
        raw_payload: str | None = None,
    ) -> str:
        head: dict[str, Any] = {"typ": PROOF_TYP, "alg": self.alg}
        if key == "jwk":
            head["jwk"] = self.jwk
        elif key == "did:key":
            head["kid"] = f"{self.did_key}#{self.did_key.removeprefix('did:key:')}"
        elif key == "did:jwk":
            head["kid"] = holder_did_of_jwk(self.jwk) + "#0"
        head.update(header or {})
        head = {name: value for name, value in head.items() if value is not None}
        claims = {"aud": ISSUER, "iat": int(NOW.timestamp()), "nonce": "a-c-nonce"}
        claims.update(payload or {})
        body = raw_payload if raw_payload is not None else part(claims)
        signing_input = f"{part(head)}.{body}"
        return f"{signing_input}.{b64(self.sign(signing_input.encode()))}"


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
@pytest.mark.parametrize("key", ["jwk", "did:key", "did:jwk"])
def test_a_proof_by_the_holders_key_is_accepted(alg: str, key: str) -> None:
    holder = Holder(alg)
    proof = verify_proof_jwt(holder.proof(key=key), ISSUER, now=NOW)
    expected = holder.did_key if key == "did:key" else holder_did_of_jwk(holder.jwk)
    assert proof.holder == expected
    assert proof.nonce == "a-c-nonce"
    assert proof.issued_at == NOW
    # The audience may be one of a list; a proof a few minutes old is still fresh.
    assert verify_proof_jwt(holder.proof(payload={"aud": ["x", ISSUER]}), ISSUER, now=NOW)
    later = NOW + timedelta(minutes=9)
    assert verify_proof_jwt(holder.proof(key=key), ISSUER, now=later).holder == expected


def test_a_proof_without_nonce_is_verified_and_says_so() -> None:
    """The nonce is the caller's to check: without one it is None (answered invalid_proof)."""
    holder = Holder("EdDSA")
    assert verify_proof_jwt(holder.proof(payload={"nonce": None}), ISSUER, now=NOW).nonce is None


def _unsigned(holder: Holder) -> str:
    return f"{part({'typ': PROOF_TYP, 'alg': 'none', 'jwk': holder.jwk})}.{part({'aud': ISSUER})}."


def _hmac_with_public_key(holder: Holder) -> str:
    """Algorithm confusion: HS256 keyed with the public key's bytes."""
    head = part({"typ": PROOF_TYP, "alg": "HS256", "jwk": holder.jwk})
    signing_input = f"{head}.{part({'aud': ISSUER, 'iat': int(NOW.timestamp())})}"
    mac = hmac.new(json.dumps(holder.jwk).encode(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64(mac.digest())}"


def _signed_by_another_key(holder: Holder) -> str:
    other = Holder(holder.alg)
    token = other.proof()
    _, payload, signature = token.split(".")
    head = part({"typ": PROOF_TYP, "alg": holder.alg, "jwk": holder.jwk})
    return f"{head}.{payload}.{signature}"


REFUSED: dict[str, Callable[[Holder], str]] = {
    "wrong typ": lambda h: h.proof({"typ": "JWT"}),
    "no typ": lambda h: h.proof({"typ": None}),
    "alg none, unsigned": _unsigned,
    "alg HS256 keyed with the public key": _hmac_with_public_key,
    "both jwk and kid": lambda h: h.proof({"kid": h.did_key}),
    "no key at all": lambda h: h.proof(key="none"),
    "x5c beside the jwk": lambda h: h.proof({"x5c": ["MIIB"]}),
    "crit extension": lambda h: h.proof({"crit": ["exp"], "exp": 1}),
    "unencoded payload (b64 false)": lambda h: h.proof({"b64": False, "crit": ["b64"]}),
    "a kid that is no did:key or did:jwk": lambda h: h.proof({"kid": "did:web:evil.example#k"}),
    "a did:key URL whose fragment names another key": lambda h: h.proof(
        {"kid": f"{h.did_key}#z6MkOther"}, key="kid"
    ),
    "a private key in the jwk": lambda h: h.proof({"jwk": {**h.jwk, "d": "AAAA"}}),
    "an RSA jwk": lambda h: h.proof({"jwk": {"kty": "RSA", "n": "AQAB", "e": "AQAB"}}),
    "signed by another key": _signed_by_another_key,
    "wrong audience": lambda h: h.proof(payload={"aud": "https://evil.example"}),
    "no audience": lambda h: h.proof(payload={"aud": None}),
    "iat in the future": lambda h: h.proof(payload={"iat": int(NOW.timestamp()) + 3600}),
    "iat too old": lambda h: h.proof(payload={"iat": int(NOW.timestamp()) - 3600}),
    "no iat": lambda h: h.proof(payload={"iat": None}),
    "iat not a number": lambda h: h.proof(payload={"iat": "now"}),
    "nonce not a string": lambda h: h.proof(payload={"nonce": 7}),
    "payload not JSON": lambda h: h.proof(raw_payload=b64(b"not json")),
    "payload a JSON array": lambda h: h.proof(raw_payload=part([1, 2])),
    "two parts only": lambda h: ".".join(h.proof().split(".")[:2]),
    "empty signature": lambda h: h.proof().rpartition(".")[0] + ".",
    "padded base64": lambda h: h.proof().replace(".", "=.", 1),
}


@pytest.mark.parametrize("alg", ["EdDSA", "ES256"])
@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_proofs(alg: str, case: str) -> None:
    holder = Holder(alg)
    token = REFUSED[case](holder)
    with pytest.raises(ProofRefused) as refused:
        verify_proof_jwt(token, ISSUER, now=NOW)
    # Every refusal of the proof itself is invalid_proof (OID4VCI 1.0 section 8.3.1); the
    # nonce's own refusals (unknown, expired, used) are the caller's, invalid_nonce.
    assert refused.value.error == "invalid_proof", refused.value.description


def test_the_algorithm_must_fit_the_key() -> None:
    ed, p256 = Holder("EdDSA"), Holder("ES256")
    # An ES256 header over an Ed25519 key (and the other way round), each signed by its key.
    for holder, alg in ((ed, "ES256"), (p256, "EdDSA")):
        head = part({"typ": PROOF_TYP, "alg": alg, "jwk": holder.jwk})
        signing_input = f"{head}.{part({'aud': ISSUER, 'iat': int(NOW.timestamp())})}"
        token = f"{signing_input}.{b64(holder.sign(signing_input.encode()))}"
        with pytest.raises(ProofRefused, match="does not fit"):
            verify_proof_jwt(token, ISSUER, now=NOW)


def test_a_p256_did_key_off_the_curve_is_refused() -> None:
    holder = Holder("ES256")
    bad = "did:key:z" + b58encode(b"\x80\x24\x02" + b"\xff" * 32)
    token = holder.proof({"kid": bad}, key="kid")
    with pytest.raises(ProofRefused) as refused:
        verify_proof_jwt(token, ISSUER, now=NOW)
    assert refused.value.error == "invalid_proof"


def test_oauth_error_descriptions_are_ascii_without_quotes() -> None:
    """OID4VCI 1.0 and RFC 6750: error_description is %x20-21 / %x23-5B / %x5D-7E."""
    text = oauth_text('the "proof" is \\ wrong: ünïcode\n')
    assert all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text), text
    assert text.startswith("the 'proof' is ? wrong")
    assert ClaimRefused(None, "no token", 401).as_dict() == {"error_description": "no token"}
    assert ClaimRefused("invalid_token", 'a "spent" token', 401).as_dict() == {
        "error": "invalid_token",
        "error_description": "a 'spent' token",
    }
