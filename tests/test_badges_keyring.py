"""Tests for RSA keys, the key ring, key rotation, the controller document and the JWKS."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from badges.jsonld import ensure_all_terms_defined
from badges.keyring import CONTROLLER_DOCUMENT_CONTEXT, KeyRing, PublicKeySet
from badges.keys import (
    RsaSigningKey,
    SigningKey,
    load_or_create_rsa_key,
    load_or_create_signing_key,
    public_key_from_multibase,
    rsa_public_key_from_jwk,
    rsa_public_key_to_jwk,
)
from badges.proof import sign
from badges.vcjwt import sign_jwt
from badges.verify import local_issuer_keys, local_public_keys, verify_badge, verify_credential
from tests.test_badges_support import AFTER_ISSUE, ISSUED_AT, ISSUER_ID, Issuer, as_json, rsa_key

pytestmark = pytest.mark.pure


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    """A key directory with key-1 (Ed25519) and rsa-1 (a pre-generated 2048-bit RSA key)."""
    directory = tmp_path / "keys"
    load_or_create_signing_key(directory, "key-1")
    pem = rsa_key().private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (directory / "rsa-1.pem").write_bytes(pem)
    os.chmod(directory / "rsa-1.pem", 0o600)
    return directory


def test_rsa_key_file_is_private_and_reread(tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    first = load_or_create_rsa_key(key_dir, "rsa-1")
    path = key_dir / "rsa-1.pem"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(key_dir).st_mode) == 0o700
    assert first.private_key.key_size == 3072
    again = load_or_create_rsa_key(key_dir, "rsa-1")
    assert again.public_jwk() == first.public_jwk()
    assert sorted(p.name for p in key_dir.iterdir()) == ["rsa-1.pem"]
    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_signing_key(key_dir, "rsa-1")
    load_or_create_signing_key(key_dir, "key-1")
    with pytest.raises(ValueError, match="RSA"):
        load_or_create_rsa_key(key_dir, "key-1")


def test_jwk_round_trip_and_refusals() -> None:
    key = rsa_key()
    jwk = key.public_jwk("https://issuer.example#rsa-1")
    assert jwk["kty"] == "RSA" and jwk["alg"] == "RS256" and jwk["use"] == "sig"
    assert jwk["kid"] == "https://issuer.example#rsa-1"
    assert jwk["e"] == "AQAB"
    parsed = rsa_public_key_from_jwk(jwk)
    assert parsed.public_numbers() == key.public_key.public_numbers()
    assert rsa_public_key_to_jwk(parsed) == {k: v for k, v in jwk.items() if k != "kid"}
    with pytest.raises(ValueError, match="private"):
        rsa_public_key_from_jwk({**jwk, "d": "AQAB"})
    with pytest.raises(ValueError, match="RSA"):
        rsa_public_key_from_jwk({**jwk, "kty": "EC"})
    small = RsaSigningKey.generate("small", key_size=2048).public_jwk()
    rsa_public_key_from_jwk(small)
    with pytest.raises(ValueError):
        RsaSigningKey.generate("tiny", key_size=1024)


def test_key_ring_loads_both_kinds(key_dir: Path) -> None:
    ring = KeyRing.load(key_dir)
    assert [key.key_id for key in ring.ed25519_keys] == ["key-1"]
    assert [key.key_id for key in ring.rsa_keys] == ["rsa-1"]
    assert ring.signing_key.key_id == "key-1"
    assert ring.rsa_key.key_id == "rsa-1"
    # The offline verifier's key list holds the Ed25519 keys only, and skips the RSA file.
    offline = local_issuer_keys(key_dir)
    assert offline.multikeys == {ring.signing_key.public_key_multibase}
    assert offline.ed25519_key_ids == {"key-1": ring.signing_key.public_key_multibase}
    assert not offline.rsa and not offline.rsa_key_ids
    assert KeyRing.load(key_dir / "missing").ed25519_keys == []
    with pytest.raises(LookupError):
        _ = KeyRing.load(key_dir / "missing").signing_key


def test_load_or_create_makes_one_key_of_each_kind(tmp_path: Path) -> None:
    ring = KeyRing.load_or_create(tmp_path / "keys", rsa=False)
    assert [key.key_id for key in ring.ed25519_keys] == ["key-1"]
    assert ring.rsa_keys == []


def test_rotation_keeps_earlier_badges_verifiable(key_dir: Path) -> None:
    issuer = Issuer.create()
    credential = issuer.credential()
    ring = KeyRing.load(key_dir)
    old_key = ring.signing_key
    old_badge = sign(credential, old_key, ring.verification_method(ISSUER_ID, old_key), ISSUED_AT)
    old_jwt = sign_jwt(credential, ring.rsa_key, ring.kid(ISSUER_ID, ring.rsa_key))

    rotated = ring.rotate(key_dir)
    assert rotated.signing_key.key_id == "key-2"
    assert rotated.signing_key.public_key_multibase != old_key.public_key_multibase
    assert [key.key_id for key in rotated.ed25519_keys] == ["key-1", "key-2"]
    assert KeyRing.load(key_dir).signing_key.key_id == "key-2"  # highest number is active
    new_key = rotated.signing_key
    new_badge = sign(
        credential, new_key, rotated.verification_method(ISSUER_ID, new_key), ISSUED_AT
    )
    assert new_badge["proof"][0]["proofValue"] != old_badge["proof"][0]["proofValue"]

    keys = local_public_keys(key_dir)
    for badge in (old_badge, new_badge):
        report = verify_badge(as_json(badge), issuer_keys=keys, now=AFTER_ISSUE)
        assert report.verified, report.errors
        assert verify_credential(as_json(badge), local_issuer_keys(key_dir), AFTER_ISSUE).verified

    rotated_rsa = rotated.rotate(key_dir, "rsa")
    assert rotated_rsa.rsa_key.key_id == "rsa-2"
    assert rotated_rsa.signing_key.key_id == "key-2"
    new_jwt = sign_jwt(
        credential, rotated_rsa.rsa_key, rotated_rsa.kid(ISSUER_ID, rotated_rsa.rsa_key)
    )
    for token in (old_jwt, new_jwt):
        report = verify_badge(token, issuer_keys=local_public_keys(key_dir), now=AFTER_ISSUE)
        assert report.verified, report.errors

    # A verifier that only knows the new key rejects the old badge.
    only_new = PublicKeySet(multikeys=frozenset({new_key.public_key_multibase}))
    assert not verify_badge(as_json(old_badge), issuer_keys=only_new, now=AFTER_ISSUE).verified


def test_controller_document_lists_every_key(key_dir: Path) -> None:
    ring = KeyRing.load(key_dir).rotate(key_dir)
    document = ring.controller_document(
        ISSUER_ID,
        name="Istituto Professionale Bassano",
        url="https://www.ipsia-bassano.example.org",
        email="tirocini@ipsia-bassano.example.org",
        image="https://badges.example.org/images/institution.png",
    )
    assert document["@context"] == list(CONTROLLER_DOCUMENT_CONTEXT)
    assert document["id"] == ISSUER_ID
    assert document["type"] == ["Profile"]
    assert document["image"] == {
        "id": "https://badges.example.org/images/institution.png",
        "type": "Image",
    }
    assert document["@context"][0] == "https://www.w3.org/ns/did/v1"
    methods = document["verificationMethod"]
    # Each key under its own URL, and under the id badges issued before that form gave it.
    assert [(m["type"], m["id"]) for m in methods] == [
        ("Multikey", f"{ISSUER_ID}/keys/key-1"),
        ("Multikey", f"{ISSUER_ID}#{ring.ed25519_keys[0].public_key_multibase}"),
        ("Multikey", f"{ISSUER_ID}/keys/key-2"),
        ("Multikey", f"{ISSUER_ID}#{ring.ed25519_keys[1].public_key_multibase}"),
        ("JsonWebKey", f"{ISSUER_ID}/keys/rsa-1"),
        ("JsonWebKey", f"{ISSUER_ID}#rsa-1"),
    ]
    assert all(m["controller"] == ISSUER_ID for m in methods)
    assert document["assertionMethod"] == [m["id"] for m in methods]
    for method in methods[:4]:
        assert public_key_from_multibase(method["publicKeyMultibase"])
    assert methods[4]["publicKeyJwk"]["kid"] == f"{ISSUER_ID}/keys/rsa-1"
    json.dumps(document)  # serves as JSON
    # The document is sound JSON-LD: every term is defined by its contexts.
    ensure_all_terms_defined(document)

    # Each key's own URL answers with the key itself.
    assert ring.key_document(ISSUER_ID, "key-2") == {
        "@context": ["https://w3id.org/security/multikey/v1"],
        "id": f"{ISSUER_ID}/keys/key-2",
        "type": "Multikey",
        "controller": ISSUER_ID,
        "publicKeyMultibase": ring.ed25519_keys[1].public_key_multibase,
    }
    jwk = ring.key_document(ISSUER_ID, "rsa-1")
    assert jwk is not None and jwk["kid"] == f"{ISSUER_ID}/keys/rsa-1" and "d" not in jwk
    assert ring.key_document(ISSUER_ID, "key-9") is None

    # A verifier that reads the controller document trusts exactly those keys, for that issuer.
    keys = PublicKeySet.from_controller_document(document)
    assert keys.controller == ISSUER_ID
    issuer = Issuer.create()
    credential = issuer.credential()
    for key in ring.ed25519_keys:
        badge = sign(credential, key, ring.verification_method(ISSUER_ID, key), ISSUED_AT)
        assert verify_badge(as_json(badge), issuer_keys=keys, now=AFTER_ISSUE).verified
    token = sign_jwt(credential, ring.rsa_key, ring.kid(ISSUER_ID, ring.rsa_key))
    assert verify_badge(token, issuer_keys=keys, now=AFTER_ISSUE).verified


def test_controller_document_keys_need_assertion_method_and_controller(key_dir: Path) -> None:
    ring = KeyRing.load(key_dir)
    document = ring.controller_document(ISSUER_ID, name="X")
    not_asserted = {**document, "assertionMethod": []}
    assert PublicKeySet.from_controller_document(not_asserted).methods == {}
    other_controller = json.loads(json.dumps(document))
    for method in other_controller["verificationMethod"]:
        method["controller"] = "https://evil.example/i"
    assert PublicKeySet.from_controller_document(other_controller).methods == {}


def test_jwks(key_dir: Path) -> None:
    ring = KeyRing.load(key_dir)
    did = "did:web:badges.example.org"
    jwks = ring.jwks([ISSUER_ID, did])
    kids = [jwk["kid"] for jwk in jwks["keys"]]
    # The kid each VC-JWT carries (the key's URL, or the DID URL), and the pre-URL form.
    assert kids == [f"{ISSUER_ID}/keys/rsa-1", f"{ISSUER_ID}#rsa-1", f"{did}#rsa-1"]
    assert all(set(jwk) == {"kty", "n", "e", "kid", "alg", "use"} for jwk in jwks["keys"])
    keys = PublicKeySet.from_jwks(jwks)
    token = sign_jwt(Issuer.create().credential(), ring.rsa_key, ring.kid(ISSUER_ID, ring.rsa_key))
    assert verify_badge(token, issuer_keys=keys, now=AFTER_ISSUE).verified


def test_a_key_is_only_good_for_its_issuer() -> None:
    issuer = Issuer.create()
    badge = issuer.signed()
    bound = issuer.ring.public_keys(ISSUER_ID)
    assert verify_badge(as_json(badge), issuer_keys=bound, now=AFTER_ISSUE).verified
    other = issuer.ring.public_keys("https://badges.example.org/issuers/other")
    report = verify_badge(as_json(badge), issuer_keys=other, now=AFTER_ISSUE)
    assert not report.verified and report.checks["issuer"] is False
    # A proof whose verification method names another controller fails even with the right key.
    foreign = sign(
        issuer.credential(),
        issuer.ring.signing_key,
        f"https://evil.example/i#{issuer.ring.signing_key.public_key_multibase}",
        ISSUED_AT,
    )
    report = verify_badge(as_json(foreign), issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified and report.checks["issuer"] is False
    assert report.checks["proof"] is True  # the signature itself holds, the binding does not


def test_key_ring_rejects_inconsistent_setup() -> None:
    key = SigningKey.generate("key-1")
    with pytest.raises(ValueError, match="share an id"):
        KeyRing([key], [rsa_key("key-1")])
    with pytest.raises(ValueError, match="no key"):
        KeyRing([key], active_ed25519="key-9")
