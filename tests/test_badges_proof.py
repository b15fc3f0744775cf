"""Tests for badges.jsonld, badges.keys and badges.proof (eddsa-rdfc-2022 Data Integrity)."""

from __future__ import annotations

import copy
import hashlib
import os
import secrets
import socket
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from badges import jsonld
from badges.jsonld import (
    BUNDLED_CONTEXTS,
    ContextNotBundledError,
    DocumentError,
    RelativeIriError,
    UndefinedTermError,
    canonicalize,
    ensure_all_terms_defined,
    load_document,
)
from badges.keys import (
    SigningKey,
    b58decode,
    b58encode,
    load_or_create_signing_key,
    public_key_from_multibase,
    public_key_to_multibase,
)
from badges.proof import VerificationResult, format_created, resolve_key, sign, verify

pytestmark = pytest.mark.pure

# --- The eddsa-rdfc-2022 example of 1EdTech's Open Badges 3.0 implementation guide -------------

VECTOR_PRIVATE_KEY_HEX = "6241a409e6707bb640a0140a8a32bc3d193c33a661747284d6adfa4ed4180be4"
VECTOR_PUBLIC_KEY_HEX = "4bdeafde2ea8beefadd8c699b5c7e0704cf51154d52e17b20b71337ca04cc5a5"
VECTOR_PUBLIC_KEY_MULTIBASE = "z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi"
VECTOR_VERIFICATION_METHOD = (
    "https://example.edu/issuers/565049#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi"
)
VECTOR_CREATED = datetime(2010, 1, 1, 19, 23, 24, tzinfo=UTC)
VECTOR_DOCUMENT_CANON_SHA256 = "87f65a76d40146205e3b3e06cb0fbd153f97f9ce70372390f52566bb7f9e0773"
VECTOR_PROOF_OPTIONS_CANON_SHA256 = (
    "d34009cea0dbc1ca941e09dc01c8c9d3e3ce3c5b853f67ee44698dcea10f5d19"
)
VECTOR_PROOF_VALUE = (
    "z5x9aCBYovW3CQCbKdNyhEm7ffYSw1YpEdPywQJoNbzDD2gkzQDKJ1sYKJaWvqZtkMtSbz35HcbgXVEDYHxCzgkCr"
)
VECTOR_PROOF_OPTIONS = {
    "type": "DataIntegrityProof",
    "created": "2010-01-01T19:23:24Z",
    "verificationMethod": VECTOR_VERIFICATION_METHOD,
    "cryptosuite": "eddsa-rdfc-2022",
    "proofPurpose": "assertionMethod",
}

VECTOR_UNSIGNED: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ],
    "id": "http://example.com/credentials/3527",
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "issuer": {
        "id": "https://example.edu/issuers/565049",
        "type": ["Profile"],
        "url": "https://www.imsglobal.org",
        "name": "Example Corp",
    },
    "validFrom": "2010-01-01T00:00:00Z",
    "name": "Teamwork Badge",
    "credentialSubject": {
        "id": "did:example:ebfeb1f712ebc6f1c276e12ec21",
        "type": ["AchievementSubject"],
        "achievement": {
            "id": "https://example.com/achievements/21st-century-skills/teamwork",
            "type": ["Achievement"],
            "criteria": {
                "narrative": (
                    "Team members are nominated for this badge by their peers and recognized "
                    "upon review by Example Corp management."
                )
            },
            "description": (
                "This badge recognizes the development of the capacity to collaborate within a "
                "group environment."
            ),
            "name": "Teamwork",
        },
    },
}

VECTOR_SIGNED: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ],
    "id": "http://example.com/credentials/3527",
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "issuer": {
        "id": "https://example.edu/issuers/565049",
        "type": ["Profile"],
        "url": "https://www.imsglobal.org",
        "name": "Example Corp",
    },
    "validFrom": "2010-01-01T00:00:00Z",
    "name": "Teamwork Badge",
    "credentialSubject": {
        "id": "did:example:ebfeb1f712ebc6f1c276e12ec21",
        "type": ["AchievementSubject"],
        "achievement": {
            "id": "https://example.com/achievements/21st-century-skills/teamwork",
            "type": ["Achievement"],
            "criteria": {
                "narrative": (
                    "Team members are nominated for this badge by their peers and recognized "
                    "upon review by Example Corp management."
                )
            },
            "description": (
                "This badge recognizes the development of the capacity to collaborate within a "
                "group environment."
            ),
            "name": "Teamwork",
        },
    },
    "proof": {
        "type": "DataIntegrityProof",
        "created": "2010-01-01T19:23:24Z",
        "verificationMethod": (
            "https://example.edu/issuers/565049#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi"
        ),
        "cryptosuite": "eddsa-rdfc-2022",
        "proofPurpose": "assertionMethod",
        "proofValue": (
            "z5x9aCBYovW3CQCbKdNyhEm7ffYSw1YpEdPywQJoNbzDD2gkzQDKJ1sYKJaWvqZtkMtSbz35HcbgXVEDYHxCzgkCr"
        ),
    },
}

# A fuller Open Badges 3.0 credential, to exercise most of the OB context's scoped terms.
RICH_CREDENTIAL: dict[str, Any] = {
    "@context": [
        "https://www.w3.org/ns/credentials/v2",
        "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    ],
    "id": "urn:uuid:2f1d1c7e-7d8a-4c5e-9f0a-3b6f1c2d4e5f",
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "name": "Backend Internship",
    "description": "Completed a twelve-week backend internship.",
    "issuer": {
        "id": "https://issuer.example.org/profile",
        "type": ["Profile"],
        "name": "Example Org",
        "url": "https://issuer.example.org",
        "email": "badges@example.org",
        "image": {"id": "https://issuer.example.org/logo.png", "type": "Image"},
    },
    "validFrom": "2026-03-01T12:00:00Z",
    "validUntil": "2029-03-01T12:00:00Z",
    "awardedDate": "2026-03-01T12:00:00Z",
    "credentialSubject": {
        "type": ["AchievementSubject"],
        "identifier": [
            {
                "type": "IdentityObject",
                "hashed": True,
                "identityType": "emailAddress",
                "identityHash": "sha256$" + "0" * 64,
                "salt": "s4lt",
            }
        ],
        "activityStartDate": "2025-12-01T00:00:00Z",
        "activityEndDate": "2026-02-28T00:00:00Z",
        "narrative": "Built and shipped a service.",
        "result": [
            {
                "type": ["Result"],
                "resultDescription": "urn:uuid:0b0e7a4e-1c55-4a55-8f5e-2f2b9e7c1d11",
                "status": "Completed",
            }
        ],
        "achievement": {
            "id": "https://issuer.example.org/achievements/backend",
            "type": ["Achievement"],
            "achievementType": "Certificate",
            "name": "Backend Internship",
            "description": "Twelve weeks of backend work.",
            "criteria": {
                "id": "https://issuer.example.org/criteria",
                "narrative": "Finish every task.",
            },
            "image": {"id": "https://issuer.example.org/badge.png", "type": "Image"},
            "tag": ["python", "temporal"],
            "inLanguage": "en",
            "alignment": [
                {
                    "type": ["Alignment"],
                    "targetName": "Python (computer programming)",
                    "targetUrl": (
                        "http://data.europa.eu/esco/skill/ccd0a1d9-afda-43d9-b901-96344886e14d"
                    ),
                    "targetFramework": "ESCO",
                }
            ],
            "resultDescription": [
                {
                    "id": "urn:uuid:0b0e7a4e-1c55-4a55-8f5e-2f2b9e7c1d11",
                    "type": ["ResultDescription"],
                    "name": "Status",
                    "resultType": "Status",
                }
            ],
        },
    },
    "evidence": [
        {
            "type": ["Evidence"],
            "id": "https://issuer.example.org/evidence/1",
            "name": "Repository",
            "narrative": "See the repository.",
        }
    ],
    "credentialStatus": {
        "id": "https://issuer.example.org/status/1#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": "https://issuer.example.org/status/1",
    },
}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def vector_key() -> SigningKey:
    return SigningKey.from_private_hex(VECTOR_PRIVATE_KEY_HEX)


# --- test vector ----------------------------------------------------------------------------


def test_vector_key_pair(vector_key: SigningKey) -> None:
    raw = vector_key.public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert raw.hex() == VECTOR_PUBLIC_KEY_HEX
    assert vector_key.public_key_multibase == VECTOR_PUBLIC_KEY_MULTIBASE


def test_vector_document_canonical_hash() -> None:
    assert _sha256(canonicalize(VECTOR_UNSIGNED)) == VECTOR_DOCUMENT_CANON_SHA256


def test_vector_proof_options_canonical_hash() -> None:
    options = {"@context": VECTOR_UNSIGNED["@context"], **VECTOR_PROOF_OPTIONS}
    assert _sha256(canonicalize(options)) == VECTOR_PROOF_OPTIONS_CANON_SHA256


def test_vector_sign_reproduces_proof_value_byte_for_byte(vector_key: SigningKey) -> None:
    before = copy.deepcopy(VECTOR_UNSIGNED)
    signed = sign(VECTOR_UNSIGNED, vector_key, VECTOR_VERIFICATION_METHOD, VECTOR_CREATED)
    # The same proof, byte for byte, written as the one element of a proof array (the vector
    # writes the single object: the container is not signed, so both verify).
    assert signed["proof"][0]["proofValue"] == VECTOR_PROOF_VALUE
    assert signed == {**VECTOR_SIGNED, "proof": [VECTOR_SIGNED["proof"]]}
    assert list(signed["proof"][0]) == list(VECTOR_SIGNED["proof"])
    assert verify(signed, resolve_key).verified
    assert VECTOR_UNSIGNED == before, "sign() must not modify its input"


def test_vector_signed_credential_verifies() -> None:
    result = verify(VECTOR_SIGNED, resolve_key)
    assert result == VerificationResult(
        verified=True, errors=[], verification_method=VECTOR_VERIFICATION_METHOD
    )


def test_verify_with_explicit_resolver() -> None:
    public_key = SigningKey.from_private_hex(VECTOR_PRIVATE_KEY_HEX).public_key
    seen: list[str] = []

    def resolver(method: str) -> Ed25519PublicKey:
        seen.append(method)
        return public_key

    assert verify(VECTOR_SIGNED, resolver).verified
    assert seen == [VECTOR_VERIFICATION_METHOD]


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(document: dict[str, Any]) -> None:
        target: Any = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


TAMPERINGS: dict[str, Callable[[dict[str, Any]], None]] = {
    "name": _set(("name",), "Teamwork Badge!"),
    "id": _set(("id",), "http://example.com/credentials/3528"),
    "issuer id": _set(("issuer", "id"), "https://evil.example/issuers/565049"),
    "issuer name": _set(("issuer", "name"), "Evil Corp"),
    "validFrom": _set(("validFrom",), "2010-01-01T00:00:01Z"),
    "type": _set(("type",), ["VerifiableCredential"]),
    "subject id": _set(("credentialSubject", "id"), "did:example:someone-else"),
    "achievement name": _set(("credentialSubject", "achievement", "name"), "Leadership"),
    "achievement description": _set(
        ("credentialSubject", "achievement", "description"), "Something else."
    ),
    "criteria narrative": _set(
        ("credentialSubject", "achievement", "criteria", "narrative"), "Anyone."
    ),
    "added defined term": _set(("description",), "An added description."),
    "proof created": _set(("proof", "created"), "2010-01-01T19:23:25Z"),
    "proof verificationMethod": _set(
        ("proof", "verificationMethod"),
        "https://evil.example/issuers/1#z6MkjZRZv3aez3r18pB1RBFJR1kwUVJ5jHt92JmQwXbd5hwi",
    ),
    "proofValue": _set(
        ("proof", "proofValue"),
        VECTOR_PROOF_VALUE[:-1] + ("s" if VECTOR_PROOF_VALUE[-1] != "s" else "t"),
    ),
}


@pytest.mark.parametrize("change", TAMPERINGS.values(), ids=TAMPERINGS.keys())
def test_changing_a_signed_field_fails_verification(
    change: Callable[[dict[str, Any]], None],
) -> None:
    tampered = copy.deepcopy(VECTOR_SIGNED)
    change(tampered)
    result = verify(tampered, resolve_key)
    assert not result.verified
    assert result.errors


def test_changes_that_keep_the_rdf_meaning_still_verify() -> None:
    # The signature covers the canonical RDF, not the JSON text: key order, single value vs.
    # one-element array and term aliases (the OB context maps AchievementCredential to
    # OpenBadgeCredential's IRI) do not change it.
    reordered = dict(reversed(list(copy.deepcopy(VECTOR_SIGNED).items())))
    reordered["issuer"]["type"] = "Profile"
    reordered["type"] = ["AchievementCredential", "VerifiableCredential"]
    assert verify(reordered, resolve_key).verified


def test_signature_mismatch_is_reported_as_such() -> None:
    tampered = copy.deepcopy(VECTOR_SIGNED)
    tampered["name"] = "Other"
    result = verify(tampered, resolve_key)
    assert result.verification_method == VECTOR_VERIFICATION_METHOD
    assert any("signature does not match" in error for error in result.errors)


def test_wrong_key_fails() -> None:
    other = SigningKey.generate()
    result = verify(VECTOR_SIGNED, lambda _method: other.public_key)
    assert not result.verified
    assert any("signature does not match" in error for error in result.errors)


def test_unsigned_extra_term_fails_verification() -> None:
    tampered = copy.deepcopy(VECTOR_SIGNED)
    tampered["credentialSubject"]["achievement"]["bonusPoints"] = 100
    result = verify(tampered, resolve_key)
    assert not result.verified
    assert any("bonusPoints" in error for error in result.errors)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("type", "Ed25519Signature2020", "proof type"),
        ("cryptosuite", "eddsa-jcs-2022", "cryptosuite"),
        ("proofPurpose", "authentication", "proofPurpose"),
        ("proofValue", "u" + VECTOR_PROOF_VALUE[1:], "proofValue"),
        ("proofValue", "z0OIl", "base58btc"),
        ("proofValue", "z" + b58encode(b"\1" * 63), "64-byte"),
    ],
)
def test_proof_parameters_are_checked(field: str, value: str, message: str) -> None:
    tampered = copy.deepcopy(VECTOR_SIGNED)
    tampered["proof"][field] = value
    result = verify(tampered, resolve_key)
    assert not result.verified
    assert any(message in error for error in result.errors), result.errors


@pytest.mark.parametrize(
    "document",
    [
        [],
        None,
        "not a credential",
        {},
        {"@context": VECTOR_SIGNED["@context"]},
        {**VECTOR_SIGNED, "proof": 5},
        {**VECTOR_SIGNED, "proof": []},
        {**VECTOR_SIGNED, "proof": [VECTOR_SIGNED["proof"], VECTOR_SIGNED["proof"]]},
        {key: value for key, value in VECTOR_SIGNED.items() if key != "@context"},
        {**VECTOR_SIGNED, "@context": ["https://example.org/unknown-context"]},
        {**VECTOR_SIGNED, "proof": {**VECTOR_SIGNED["proof"], "verificationMethod": 7}},
        {**VECTOR_SIGNED, "proof": {**VECTOR_SIGNED["proof"], "@context": ["x"]}},
    ],
)
def test_verify_reports_instead_of_raising(document: Any) -> None:
    result = verify(cast(Any, document), resolve_key)
    assert not result.verified
    assert result.errors


def test_verify_reports_unresolvable_key() -> None:
    def broken(method: str) -> Ed25519PublicKey:
        raise LookupError(f"no such key {method}")

    result = verify(VECTOR_SIGNED, broken)
    assert not result.verified
    assert any("could not resolve verification method" in error for error in result.errors)

    not_a_key = verify(VECTOR_SIGNED, lambda _method: cast(Any, "key"))
    assert not not_a_key.verified


def test_verify_accepts_the_proof_array_and_the_single_object_alike() -> None:
    """Badges are signed with a one-element proof array now; those signed before carry the
    single object (as the 1EdTech vector does): both verify, and a change to the proof is caught
    in either form."""
    array = {**VECTOR_SIGNED, "proof": [VECTOR_SIGNED["proof"]]}
    assert verify(array, resolve_key).verified
    assert verify(VECTOR_SIGNED, resolve_key).verified
    changed = {**VECTOR_SIGNED["proof"], "created": "2010-01-01T19:23:25Z"}
    assert not verify({**VECTOR_SIGNED, "proof": [changed]}, resolve_key).verified
    assert not verify({**VECTOR_SIGNED, "proof": changed}, resolve_key).verified


# --- signing --------------------------------------------------------------------------------


def test_sign_and_verify_a_full_open_badge() -> None:
    key = SigningKey.generate()
    method = f"https://issuer.example.org/profile#{key.public_key_multibase}"
    signed = sign(RICH_CREDENTIAL, key, method, datetime.now(UTC))
    assert verify(signed, resolve_key).verified
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["achievement"]["alignment"][0]["targetFramework"] = "O*NET"
    assert not verify(tampered, resolve_key).verified
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["identifier"][0]["salt"] = "other"
    assert not verify(tampered, resolve_key).verified


def test_created_is_formatted_in_utc_without_fraction(vector_key: SigningKey) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2010, 1, 1, 21, 23, 24, 987654, tzinfo=plus_two)
    assert format_created(created) == "2010-01-01T19:23:24Z"
    signed = sign(VECTOR_UNSIGNED, vector_key, VECTOR_VERIFICATION_METHOD, created)
    assert signed["proof"][0]["proofValue"] == VECTOR_PROOF_VALUE
    with pytest.raises(ValueError, match="timezone-aware"):
        sign(VECTOR_UNSIGNED, vector_key, VECTOR_VERIFICATION_METHOD, datetime(2010, 1, 1))


def test_sign_refuses_a_credential_with_a_proof(vector_key: SigningKey) -> None:
    with pytest.raises(ValueError, match="already has a proof"):
        sign(VECTOR_SIGNED, vector_key, VECTOR_VERIFICATION_METHOD, VECTOR_CREATED)


def test_sign_rejects_undefined_top_level_term(vector_key: SigningKey) -> None:
    credential = {**VECTOR_UNSIGNED, "grade": "A"}
    with pytest.raises(UndefinedTermError, match="'grade'") as info:
        sign(credential, vector_key, VECTOR_VERIFICATION_METHOD, VECTOR_CREATED)
    assert info.value.terms == ["grade"]


def test_sign_rejects_undefined_nested_term(vector_key: SigningKey) -> None:
    credential = copy.deepcopy(VECTOR_UNSIGNED)
    credential["credentialSubject"]["achievement"]["criteria"]["narative"] = "typo"
    with pytest.raises(UndefinedTermError, match="'narative'") as info:
        sign(credential, vector_key, VECTOR_VERIFICATION_METHOD, VECTOR_CREATED)
    assert info.value.locations == ["credentialSubject.achievement.criteria.narative"]


def test_sign_rejects_relative_verification_method(vector_key: SigningKey) -> None:
    with pytest.raises(RelativeIriError):
        sign(VECTOR_UNSIGNED, vector_key, "key-1", VECTOR_CREATED)


def test_sign_needs_data_integrity_terms_in_the_context(vector_key: SigningKey) -> None:
    # The VC 1.1 context does not define DataIntegrityProof's terms: the proof options would
    # canonicalize to almost nothing, so signing must refuse.
    credential = {
        "@context": ["https://www.w3.org/2018/credentials/v1"],
        "id": "urn:uuid:6a7c3a5e-0000-4000-8000-000000000001",
        "type": ["VerifiableCredential"],
        "issuer": "https://example.edu/issuers/565049",
        "issuanceDate": "2010-01-01T00:00:00Z",
        "credentialSubject": {"id": "did:example:subject"},
    }
    with pytest.raises(UndefinedTermError, match="cryptosuite"):
        sign(credential, vector_key, VECTOR_VERIFICATION_METHOD, VECTOR_CREATED)
    with_di = {**credential, "@context": [*credential["@context"], BUNDLED_DI_V2]}
    signed = sign(with_di, vector_key, VECTOR_VERIFICATION_METHOD, VECTOR_CREATED)
    assert verify(signed, resolve_key).verified


BUNDLED_DI_V2 = "https://w3id.org/security/data-integrity/v2"


# --- JSON-LD safe mode and the document loader ----------------------------------------------


def test_safe_mode_accepts_valid_credentials() -> None:
    ensure_all_terms_defined(VECTOR_UNSIGNED)
    ensure_all_terms_defined(VECTOR_SIGNED)
    ensure_all_terms_defined(RICH_CREDENTIAL)


def test_safe_mode_rejects_undefined_terms_at_any_depth() -> None:
    top = {**VECTOR_UNSIGNED, "colour": "blue"}
    with pytest.raises(UndefinedTermError, match="'colour'"):
        ensure_all_terms_defined(top)

    nested = copy.deepcopy(VECTOR_UNSIGNED)
    nested["credentialSubject"]["achievement"]["extra"] = {"deeper": 1}
    with pytest.raises(UndefinedTermError, match="'extra'"):
        ensure_all_terms_defined(nested)

    deep = copy.deepcopy(RICH_CREDENTIAL)
    deep["credentialSubject"]["achievement"]["alignment"][0]["targetLevel"] = "B2"
    with pytest.raises(UndefinedTermError) as info:
        ensure_all_terms_defined(deep)
    assert info.value.terms == ["targetLevel"]
    assert info.value.locations == ["credentialSubject.achievement.alignment[0].targetLevel"]
    assert isinstance(info.value, ValueError)


def test_safe_mode_rejects_undefined_types_keywords_and_relative_ids() -> None:
    typo_type = copy.deepcopy(VECTOR_UNSIGNED)
    typo_type["credentialSubject"]["achievement"]["type"] = ["Achievment"]
    with pytest.raises(UndefinedTermError, match="'Achievment'"):
        ensure_all_terms_defined(typo_type)

    # 1EdTech's validator reports the same: this type needs the OB extensions context.
    schema = {
        **VECTOR_UNSIGNED,
        "credentialSchema": [
            {
                "id": "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/"
                "ob_v3p0_achievementcredential_schema.json",
                "type": "1EdTechJsonSchemaValidator2019",
            }
        ],
    }
    with pytest.raises(UndefinedTermError, match="1EdTechJsonSchemaValidator2019"):
        ensure_all_terms_defined(schema)

    with pytest.raises(UndefinedTermError, match="'@colour'"):
        ensure_all_terms_defined({**VECTOR_UNSIGNED, "@colour": "blue"})

    with pytest.raises(RelativeIriError, match="'credentials/3527'"):
        ensure_all_terms_defined({**VECTOR_UNSIGNED, "id": "credentials/3527"})


def test_safe_mode_allows_explicit_iris_as_properties() -> None:
    document = {**VECTOR_UNSIGNED, "https://example.org/vocab#colour": "blue"}
    ensure_all_terms_defined(document)
    assert "<https://example.org/vocab#colour>" in canonicalize(document)


def test_unsafe_canonicalize_drops_silently() -> None:
    document = {**VECTOR_UNSIGNED, "colour": "blue"}
    assert canonicalize(document, safe=False) == canonicalize(VECTOR_UNSIGNED)


def test_protected_terms_cannot_be_redefined() -> None:
    document = {
        **VECTOR_UNSIGNED,
        "@context": [*VECTOR_UNSIGNED["@context"], {"name": "https://example.org/name"}],
    }
    with pytest.raises(DocumentError, match="protected term"):
        canonicalize(document)


def test_every_bundled_context_loads() -> None:
    for url in BUNDLED_CONTEXTS:
        remote = load_document(url)
        assert remote["documentUrl"] == url
        assert "@context" in remote["document"]


def test_unbundled_context_url_is_refused_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)

    for url in [
        "https://example.org/context.jsonld",
        "https://purl.imsglobal.org/spec/ob/v3p0/context.json",
        "http://www.w3.org/ns/credentials/v2",
    ]:
        with pytest.raises(ContextNotBundledError, match="not bundled"):
            load_document(url)

    document = {**VECTOR_UNSIGNED, "@context": ["https://example.org/context.jsonld"]}
    with pytest.raises(ContextNotBundledError, match=r"https://example\.org/context\.jsonld"):
        canonicalize(document)
    with pytest.raises(ContextNotBundledError):
        ensure_all_terms_defined(document)


def test_sources_md_matches_bundled_files() -> None:
    contexts = resources.files("badges").joinpath("contexts")
    sources = contexts.joinpath("SOURCES.md").read_text(encoding="utf-8")
    files = {entry.name for entry in contexts.iterdir()} - {"SOURCES.md", "__pycache__"}
    assert files == {filename for filename, _ in BUNDLED_CONTEXTS.values()}
    for url, (filename, sha256) in BUNDLED_CONTEXTS.items():
        data = contexts.joinpath(filename).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256
        row = next(line for line in sources.splitlines() if f"`{filename}`" in line)
        assert f"`{url}`" in row
        assert f"`{sha256}`" in row


def test_context_memoization_does_not_change_output() -> None:
    documents: list[dict[str, Any]] = [
        VECTOR_UNSIGNED,
        RICH_CREDENTIAL,
        {"@context": VECTOR_UNSIGNED["@context"], **VECTOR_PROOF_OPTIONS},
    ]
    for document in documents:
        plain = jsonld._Processor(safe=True, memoize=False).normalize(
            copy.deepcopy(document), jsonld._options()
        )
        assert canonicalize(document) == plain
        assert canonicalize(document) == plain


# --- keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", ""),
        (b"\0", "1"),
        (b"\0\0\1", "112"),
        (b"hello world", "StV1DL6CwTryKyV"),
        (bytes.fromhex("00000000000000000000"), "1111111111"),
        (b"\xff" * 4, "7YXq9G"),
    ],
)
def test_base58_known_values(raw: bytes, encoded: str) -> None:
    assert b58encode(raw) == encoded
    assert b58decode(encoded) == raw


def test_base58_round_trip() -> None:
    for length in range(0, 70):
        for prefix in (b"", b"\0", b"\0\0\0"):
            data = prefix + secrets.token_bytes(length)
            assert b58decode(b58encode(data)) == data


@pytest.mark.parametrize("bad", ["0", "O", "I", "l", "abc!", "z6Mk "])
def test_base58_rejects_characters_outside_the_alphabet(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid base58btc character"):
        b58decode(bad)


def test_multibase_public_key_round_trip() -> None:
    key = SigningKey.generate()
    encoded = key.public_key_multibase
    assert encoded.startswith("z6Mk")
    assert public_key_to_multibase(public_key_from_multibase(encoded)) == encoded
    vector = public_key_from_multibase(VECTOR_PUBLIC_KEY_MULTIBASE)
    raw = vector.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert raw.hex() == VECTOR_PUBLIC_KEY_HEX


@pytest.mark.parametrize(
    "bad",
    [
        "",
        VECTOR_PUBLIC_KEY_MULTIBASE[1:],  # no 'z'
        "z" + b58encode(b"\xec\x01" + bytes(32)),  # X25519 multicodec, not Ed25519
        "z" + b58encode(b"\xed\x01" + bytes(31)),  # too short
        "z0000",
    ],
)
def test_public_key_from_multibase_rejects_other_values(bad: str) -> None:
    with pytest.raises(ValueError):
        public_key_from_multibase(bad)


def test_resolve_key_needs_a_fragment() -> None:
    assert isinstance(resolve_key(VECTOR_VERIFICATION_METHOD), Ed25519PublicKey)
    for method in ["https://example.edu/issuers/565049", "https://example.edu/issuers/565049#"]:
        with pytest.raises(ValueError):
            resolve_key(method)


def test_private_key_constructors() -> None:
    key = SigningKey.from_private_bytes(bytes.fromhex(VECTOR_PRIVATE_KEY_HEX), key_id="k")
    assert key.key_id == "k"
    assert key.public_key_multibase == VECTOR_PUBLIC_KEY_MULTIBASE
    assert VECTOR_PRIVATE_KEY_HEX not in repr(key)
    with pytest.raises(ValueError):
        SigningKey.from_private_bytes(b"short")


def test_key_file_is_created_private_and_reread(tmp_path: Path) -> None:
    key_dir = tmp_path / "state" / "keys"
    first = load_or_create_signing_key(key_dir)
    assert first.key_id == "key-1"
    key_file = key_dir / "key-1.pem"
    assert stat.S_IMODE(os.stat(key_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    contents = key_file.read_bytes()
    assert contents.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert list(key_dir.iterdir()) == [key_file], "no temporary files left behind"

    second = load_or_create_signing_key(key_dir)
    assert second.public_key_multibase == first.public_key_multibase
    assert key_file.read_bytes() == contents
    message = b"same key"
    first.public_key.verify(second.sign(message), message)

    other = load_or_create_signing_key(key_dir, key_id="key-2")
    assert other.public_key_multibase != first.public_key_multibase
    assert stat.S_IMODE(os.stat(key_dir / "key-2.pem").st_mode) == 0o600


@pytest.mark.parametrize("key_id", ["", "../key", "a/b", ".hidden", "x" * 65])
def test_key_id_must_be_a_plain_file_name(tmp_path: Path, key_id: str) -> None:
    with pytest.raises(ValueError, match="invalid key id"):
        load_or_create_signing_key(tmp_path, key_id)


def test_key_file_must_hold_an_ed25519_key(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "key-1.pem").write_bytes(pem)
    with pytest.raises(ValueError, match="Ed25519"):
        load_or_create_signing_key(tmp_path)
