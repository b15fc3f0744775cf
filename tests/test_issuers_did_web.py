"""did:web per institution: each institution on did:web has a DID of its own and keys of its own
(decision 0042); its badges, status lists and the deployment's own verifier follow from that,
and badges issued before under the deployment's one DID keep verifying."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from badges.keyring import KeyRing
from badges.proof import sign
from badges.vcjwt import sign_jwt
from badges.verify import verify_badge
from embedded.ports import throwaway_settings
from issuance.issuers import (
    did_web_id,
    institution_did,
    institution_key_dir,
    institution_of_did,
    institution_ring,
    institutions_with_keys,
    issuer_id,
    issuer_of_status_list,
    public_keys,
    signing_ring,
    status_list_url,
)
from runtime.settings import Settings
from tests.test_badges_support import AFTER_ISSUE, ISSUED_AT, Issuer

pytestmark = pytest.mark.pure

BASE = "https://badges.example.org"


@pytest.fixture
def school(tmp_path: Path) -> Settings:
    return throwaway_settings(tmp_path, public_base_url=BASE, did_web_institutions="school-a")


@pytest.mark.parametrize(
    ("base", "did", "document"),
    [
        (BASE, "did:web:badges.example.org:issuers:school-a", f"{BASE}/issuers/school-a/did.json"),
        (
            "https://example.org:8443/internflow",
            "did:web:example.org%3A8443:internflow:issuers:school-a",
            "https://example.org:8443/internflow/issuers/school-a/did.json",
        ),
    ],
)
def test_an_institutions_did_resolves_to_its_document(base: str, did: str, document: str) -> None:
    assert institution_did(base, "school-a") == did
    # did:web's own rule: the segments after the host are the path, then /did.json.
    host, *path = did.removeprefix("did:web:").split(":")
    assert f"https://{host.replace('%3A', ':')}/{'/'.join(path)}/did.json" == document
    settings = throwaway_settings(Path("unused"), public_base_url=base)
    assert institution_of_did(settings, did) == "school-a"
    assert institution_of_did(settings, did_web_id(base)) is None
    for other in (f"{did}:x", did.replace("school-a", ""), "did:web:evil.example:issuers:a"):
        assert institution_of_did(settings, other) is None, other


def test_issuer_ids_and_status_lists(school: Settings) -> None:
    """An institution on did:web issues under its own DID, its list under its own path (a list
    is signed by its badges' issuer); the others keep their HTTPS profile."""
    did = "did:web:badges.example.org:issuers:school-a"
    assert issuer_id(school, "school-a") == did
    assert issuer_id(school, "school-b") == f"{BASE}/issuers/school-b"
    own = status_list_url(school, "school-a", "revocation")
    assert own == f"{BASE}/issuers/school-a/did/status/revocation"
    profile = status_list_url(school, "school-b", "revocation")
    assert profile == f"{BASE}/issuers/school-b/status/revocation"
    assert issuer_of_status_list(school, own) == did
    assert issuer_of_status_list(school, profile) == f"{BASE}/issuers/school-b"
    # The list the institutions on did:web shared before is still the deployment DID's.
    assert issuer_of_status_list(school, f"{BASE}/status/revocation") == did_web_id(BASE)
    for foreign in (
        "https://evil.example/status/revocation",
        f"{BASE}/issuers/a/b/status/revocation",
        f"{BASE}/nothing",
    ):
        with pytest.raises(ValueError):
            issuer_of_status_list(school, foreign)


def test_each_institution_has_its_own_keys_created_on_first_use(school: Settings) -> None:
    deployment = KeyRing.load_or_create(school.keys_path, rsa=False)
    assert institutions_with_keys(school) == []
    ring = institution_ring(school, "school-a")
    directory = institution_key_dir(school, "school-a")
    assert directory == school.keys_path / "issuers" / "school-a"
    assert [key.key_id for key in ring.ed25519_keys] == ["key-1"] and ring.rsa_keys == []
    for private in (school.keys_path, directory.parent, directory):
        assert stat.S_IMODE(os.stat(private).st_mode) == 0o700, private
    assert stat.S_IMODE(os.stat(directory / "key-1.pem").st_mode) == 0o600
    assert ring.signing_key.public_key_multibase != deployment.signing_key.public_key_multibase
    # The same ring again, not a new key; the deployment's own ring does not see it.
    assert institution_ring(school, "school-a").signing_key.public_key_multibase == (
        ring.signing_key.public_key_multibase
    )
    assert [key.key_id for key in KeyRing.load(school.keys_path).ed25519_keys] == ["key-1"]
    assert institutions_with_keys(school) == ["school-a"]
    did = institution_did(BASE, "school-a")
    assert signing_ring(school, did).signing_key.public_key_multibase == (
        ring.signing_key.public_key_multibase
    )
    assert signing_ring(school, f"{BASE}/issuers/school-a").signing_key.public_key_multibase == (
        deployment.signing_key.public_key_multibase
    )
    for bad in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ValueError):
            institution_key_dir(school, bad)


def test_the_deployments_verifier_binds_each_institutions_keys_to_its_did(
    school: Settings,
) -> None:
    """A badge of school A's DID verifies with school A's keys only: not with school B's, not
    with the deployment's; a badge under the deployment's DID (issued before) still verifies."""
    issuer = Issuer.create()
    deployment = KeyRing.load_or_create(school.keys_path, rsa=False)
    ring_a = institution_ring(school, "school-a", rsa=True)
    ring_b = institution_ring(school, "school-b")
    did_a, did_b = institution_did(BASE, "school-a"), institution_did(BASE, "school-b")
    old_did = did_web_id(BASE)

    def badge(did: str, ring: KeyRing) -> str:
        credential = issuer.credential()
        credential["issuer"] = {**credential["issuer"], "id": did}
        key = ring.signing_key
        return json.dumps(sign(credential, key, KeyRing.verification_method(did, key), ISSUED_AT))

    keys = public_keys(school)

    def verified(text: str) -> bool:
        return verify_badge(text, issuer_keys=keys, now=AFTER_ISSUE).verified

    assert verified(badge(did_a, ring_a))
    assert verified(badge(did_b, ring_b))
    assert verified(badge(old_did, deployment))
    assert not verified(badge(did_a, ring_b))
    assert not verified(badge(did_a, deployment))
    report = verify_badge(badge(did_a, deployment), issuer_keys=keys, now=AFTER_ISSUE)
    assert report.checks["proof"] is False
    # VC-JWT too: school A's RSA key under its DID; school A's key under B's DID is refused.
    credential = issuer.credential()
    jwt_a = sign_jwt(
        {**credential, "issuer": {**credential["issuer"], "id": did_a}},
        ring_a.rsa_key,
        KeyRing.kid(did_a, ring_a.rsa_key),
    )
    assert verify_badge(jwt_a, issuer_keys=keys, now=AFTER_ISSUE).verified
    jwt_b = sign_jwt(
        {**credential, "issuer": {**credential["issuer"], "id": did_b}},
        ring_a.rsa_key,
        KeyRing.kid(did_b, ring_a.rsa_key),
    )
    assert not verify_badge(jwt_b, issuer_keys=keys, now=AFTER_ISSUE).verified


def test_rotation_keeps_an_institutions_old_badges_verifying(school: Settings) -> None:
    issuer = Issuer.create()
    did = institution_did(BASE, "school-a")
    credential = issuer.credential()
    credential["issuer"] = {**credential["issuer"], "id": did}
    ring = institution_ring(school, "school-a")
    old_key = ring.signing_key
    old = sign(credential, old_key, KeyRing.verification_method(did, old_key), ISSUED_AT)
    rotated = ring.rotate(institution_key_dir(school, "school-a"))
    assert signing_ring(school, did).signing_key.key_id == "key-2"
    new_key = rotated.signing_key
    new = sign(credential, new_key, KeyRing.verification_method(did, new_key), ISSUED_AT)
    assert old["proof"][0]["verificationMethod"] == f"{did}#key-1"
    assert new["proof"][0]["verificationMethod"] == f"{did}#key-2"
    document = rotated.did_document(did)
    assert document["assertionMethod"] == [f"{did}#key-1", f"{did}#key-2"]
    keys = public_keys(school)
    for badge in (old, new):
        assert verify_badge(json.dumps(badge), issuer_keys=keys, now=AFTER_ISSUE).verified
