"""Tests for badges.vcjwt: VC-JWT (RS256) signing, claims, and rejection of tampered tokens."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from badges.jsonld import UndefinedTermError
from badges.keys import RsaSigningKey, b64url_decode, b64url_encode
from badges.vcjwt import DecodedJwt, decode_jwt, is_compact_jwt, jwt_claims, sign_jwt, verify_jwt
from badges.verify import verify_badge
from tests.test_badges_support import AFTER_ISSUE, ISSUED_AT, ISSUER_ID, Issuer, rsa_key

pytestmark = pytest.mark.pure


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer.create()


def trusted(issuer: Issuer) -> Any:
    def resolve(decoded: DecodedJwt) -> Any:
        assert decoded.header["kid"] == issuer.kid
        return issuer.ring.rsa_key.public_key

    return resolve


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload)), signature


def encode(header: dict[str, Any], payload: dict[str, Any], signature: str) -> str:
    return ".".join(
        [
            b64url_encode(json.dumps(header).encode()),
            b64url_encode(json.dumps(payload).encode()),
            signature,
        ]
    )


def test_header_and_claims(issuer: Issuer) -> None:
    credential = issuer.credential(
        subject_id="did:example:intern", valid_until=ISSUED_AT + timedelta(days=30)
    )
    token = issuer.jwt(credential)
    assert is_compact_jwt(token)
    header, payload, _ = parts(token)
    # OB 3.0 section 8.2.3: typ, if present, MUST be "JWT"; kid dereferences to the JWK.
    assert header == {"alg": "RS256", "typ": "JWT", "kid": f"{ISSUER_ID}/keys/rsa-1"}
    assert payload["iss"] == ISSUER_ID
    assert payload["jti"] == credential["id"]
    assert payload["nbf"] == int(ISSUED_AT.timestamp())
    assert payload["sub"] == "did:example:intern"
    assert payload["exp"] == int((ISSUED_AT + timedelta(days=30)).timestamp())
    # The payload is the credential itself, plus the claims.
    assert {k: v for k, v in payload.items() if k not in {"iss", "jti", "nbf", "sub", "exp"}} == (
        credential
    )
    result = verify_jwt(token, trusted(issuer))
    assert result.verified, result.errors
    assert result.kid == issuer.kid


def test_optional_claims_are_left_out(issuer: Issuer) -> None:
    claims = jwt_claims(issuer.credential())
    assert set(claims) == {"iss", "jti", "nbf"}


def test_signature_is_rs256_over_header_and_payload(issuer: Issuer) -> None:
    token = issuer.jwt()
    header, payload, signature = token.split(".")
    issuer.ring.rsa_key.public_key.verify(
        b64url_decode(signature),
        f"{header}.{payload}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def tampered_payload(token: str, change: Any) -> str:
    header, payload, signature = parts(token)
    change(payload)
    return encode(header, payload, signature)


TAMPERINGS = {
    "name": lambda p: p.__setitem__("name", "Something else"),
    "issuer name": lambda p: p["issuer"].__setitem__("name", "Evil Corp"),
    "achievement": lambda p: p["credentialSubject"]["achievement"].__setitem__("name", "x"),
    "identity hash salt": lambda p: p["credentialSubject"]["identifier"][0].__setitem__(
        "salt", "other"
    ),
    "validFrom": lambda p: p.__setitem__("validFrom", "2020-01-01T00:00:00Z"),
    "nbf": lambda p: p.__setitem__("nbf", p["nbf"] - 1),
    "added term": lambda p: p.__setitem__("description", "added"),
}


@pytest.mark.parametrize("change", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_tampered_payload_fails(issuer: Issuer, change: Any) -> None:
    token = tampered_payload(issuer.jwt(), change)
    result = verify_jwt(token, trusted(issuer))
    assert not result.verified
    assert any("signature does not match" in error for error in result.errors)
    report = verify_badge(token, issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified
    assert report.checks["proof"] is False


def test_tampered_signature_and_header_fail(issuer: Issuer) -> None:
    token = issuer.jwt()
    header, payload, signature = parts(token)
    raw = bytearray(b64url_decode(signature))
    raw[-1] ^= 1
    assert not verify_jwt(
        encode(header, payload, b64url_encode(bytes(raw))), trusted(issuer)
    ).verified
    for bad_header in (
        {**header, "alg": "none"},
        {**header, "alg": "HS256"},
        {**header, "alg": "RS512"},
        {**header, "typ": "JWS+xml"},
        {**header, "crit": ["exp"]},
        {"alg": "RS256", "typ": "JWT"},
    ):
        result = verify_jwt(encode(bad_header, payload, signature), trusted(issuer))
        assert not result.verified, bad_header
    unsigned = encode({"alg": "none"}, payload, "")
    assert not is_compact_jwt(unsigned)
    assert not verify_jwt(unsigned, trusted(issuer)).verified


def test_claims_must_agree_with_the_credential(issuer: Issuer) -> None:
    key = issuer.ring.rsa_key
    credential = issuer.credential()

    def sign_raw(payload: dict[str, Any]) -> str:
        header = {"alg": "RS256", "typ": "JWT", "kid": issuer.kid}
        signing_input = (
            f"{b64url_encode(json.dumps(header).encode())}."
            f"{b64url_encode(json.dumps(payload).encode())}"
        )
        return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"

    good = {**credential, **jwt_claims(credential)}
    assert verify_jwt(sign_raw(good), trusted(issuer)).verified
    for name, value in (("iss", "https://evil.example"), ("jti", "urn:uuid:other"), ("nbf", 1)):
        result = verify_jwt(sign_raw({**good, name: value}), trusted(issuer))
        assert not result.verified
        assert any(f"claim {name!r}" in error for error in result.errors)
    missing = {k: v for k, v in good.items() if k != "jti"}
    assert not verify_jwt(sign_raw(missing), trusted(issuer)).verified
    assert not verify_jwt(sign_raw({**good, "exp": 4102444800}), trusted(issuer)).verified


def test_wrong_key_or_foreign_kid_fails(issuer: Issuer) -> None:
    other = RsaSigningKey.generate("rsa-1", key_size=2048)
    forged = sign_jwt(issuer.credential(), other, issuer.kid)
    result = verify_jwt(forged, trusted(issuer))
    assert not result.verified
    report = verify_badge(forged, issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified and report.checks["proof"] is False

    foreign = sign_jwt(issuer.credential(), issuer.ring.rsa_key, "https://evil.example/i#rsa-1")
    report = verify_badge(foreign, issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified
    assert report.checks["issuer"] is False


def test_sign_jwt_refuses_bad_input(issuer: Issuer) -> None:
    credential = issuer.credential()
    with pytest.raises(ValueError, match="embedded proof"):
        sign_jwt(issuer.signed(credential), issuer.ring.rsa_key, issuer.kid)
    with pytest.raises(UndefinedTermError, match="'grade'"):
        sign_jwt({**credential, "grade": "A"}, issuer.ring.rsa_key, issuer.kid)
    with pytest.raises(ValueError, match="contradicts"):
        sign_jwt({**credential, "iss": "https://other.example"}, issuer.ring.rsa_key, issuer.kid)
    with pytest.raises(ValueError, match="validFrom"):
        sign_jwt({**credential, "validFrom": None}, issuer.ring.rsa_key, issuer.kid)


def test_decode_jwt_rejects_garbage() -> None:
    for token in ("", "a.b", "a.b.c.d", "a.b.c", "e30.e30.!!", "W10.e30.AA"):
        with pytest.raises(ValueError):
            decode_jwt(token)
    assert decode_jwt("e30.e30.AA").header == {}


def test_numeric_dates_follow_the_credential_time_zone() -> None:
    credential = {
        "id": "urn:uuid:1",
        "issuer": "https://issuer.example",
        "validFrom": "2027-01-01T01:00:00+01:00",
    }
    assert jwt_claims(credential)["nbf"] == int(
        datetime.fromisoformat("2027-01-01T00:00:00+00:00").timestamp()
    )
    with pytest.raises(ValueError, match="time zone"):
        jwt_claims({**credential, "validFrom": "2027-01-01T00:00:00"})


def test_shared_rsa_key_helper_is_2048_bits() -> None:
    assert rsa_key().private_key.key_size == 2048


def test_headers_outside_the_jws_rules_are_refused(issuer: Issuer) -> None:
    """Signed by the right key, yet refused: an unencoded payload (RFC 7797 `b64`), a header
    member no JWS registry knows, a critical extension."""
    key = issuer.ring.rsa_key
    credential = issuer.credential()
    payload = {**credential, **jwt_claims(credential)}

    def signed(header: dict[str, Any]) -> str:
        signing_input = (
            f"{b64url_encode(json.dumps(header).encode())}."
            f"{b64url_encode(json.dumps(payload).encode())}"
        )
        return f"{signing_input}.{b64url_encode(key.sign(signing_input.encode()))}"

    base = {"alg": "RS256", "typ": "JWT", "kid": issuer.kid}
    assert verify_jwt(signed(base), trusted(issuer)).verified
    for extra in ({"b64": False}, {"x-made-up": 1}, {"crit": ["b64"], "b64": False}):
        result = verify_jwt(signed({**base, **extra}), trusted(issuer))
        assert not result.verified, extra
        assert any("not" in error for error in result.errors), result.errors
