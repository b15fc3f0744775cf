"""Tests for badges.verify: every input form, every check, recipient e-mail and validity window."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest

from badges.bake import bake_png, bake_svg
from badges.proof import sign
from badges.verify import CHECKS, VerificationReport, verify_badge, verify_credential
from tests.test_badges_support import (
    AFTER_ISSUE,
    ISSUED_AT,
    ISSUER_ID,
    SVG_IMAGE,
    Issuer,
    as_json,
    example_plan,
    png_image,
)

pytestmark = pytest.mark.pure


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    return Issuer.create()


def forms(issuer: Issuer) -> dict[str, bytes | str | dict[str, Any]]:
    signed = issuer.signed()
    token = issuer.jwt()
    return {
        "json text": as_json(signed),
        "json bytes": as_json(signed).encode(),
        "json object": signed,
        "jwt": token,
        "png with json": bake_png(png_image(), as_json(signed)),
        "png with jwt": bake_png(png_image(), token),
        "svg with json": bake_svg(SVG_IMAGE, as_json(signed)),
        "svg with jwt": bake_svg(SVG_IMAGE, token),
        "svg as text": bake_svg(SVG_IMAGE, token).decode(),
    }


def test_every_form_verifies(issuer: Issuer) -> None:
    expected = {
        "json text": ("json", "eddsa-rdfc-2022"),
        "json bytes": ("json", "eddsa-rdfc-2022"),
        "json object": ("json", "eddsa-rdfc-2022"),
        "jwt": ("jwt", "vc-jwt"),
        "png with json": ("png", "eddsa-rdfc-2022"),
        "png with jwt": ("png", "vc-jwt"),
        "svg with json": ("svg", "eddsa-rdfc-2022"),
        "svg with jwt": ("svg", "vc-jwt"),
        "svg as text": ("svg", "vc-jwt"),
    }
    for name, data in forms(issuer).items():
        report = verify_badge(
            data,
            issuer_keys=issuer.ring.public_keys(),
            status_lists=issuer.status_lists().__getitem__,
            email=example_plan().intern.email,
            now=AFTER_ISSUE,
        )
        assert report.verified, (name, report.errors)
        assert (report.container, report.proof_format) == expected[name], name
        assert list(report.checks) == list(CHECKS), name
        assert report.credential_id == issuer.credential()["id"]


def test_badges_signed_before_with_a_single_proof_object_keep_verifying(issuer: Issuer) -> None:
    """Badges are signed with a one-element proof array; those issued before carry the single
    proof object. Both verify in every container (the container is not part of what is signed),
    status lists included, and the old form still fails when tampered with."""
    signed = issuer.signed()
    assert isinstance(signed["proof"], list) and len(signed["proof"]) == 1
    before = {**signed, "proof": signed["proof"][0]}
    tampered = copy.deepcopy(before)
    tampered["credentialSubject"]["achievement"]["name"] += " (with honours)"
    for name, document in (("array", signed), ("single object", before)):
        for data in (
            document,
            bake_png(png_image(), as_json(document)),
            bake_svg(SVG_IMAGE, as_json(document)),
        ):
            report = verify_badge(
                data,
                issuer_keys=issuer.ring.public_keys(),
                status_lists=issuer.status_lists().__getitem__,
                now=AFTER_ISSUE,
            )
            assert report.verified, (name, report.errors)
            assert report.revoked is False, name
    refused = verify_badge(tampered, issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert refused.checks["proof"] is False


def test_report_as_dict(issuer: Issuer) -> None:
    report = verify_badge(
        as_json(issuer.signed()), issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE
    )
    data = report.as_dict()
    assert data["verified"] is True
    assert data["issuer"] == issuer.credential()["issuer"]["id"]
    assert data["checks"]["proof"] is True
    json.dumps(data)
    assert isinstance(report, VerificationReport)


@pytest.mark.parametrize("form", ["json", "jwt"])
def test_recipient_email_check(issuer: Issuer, form: str) -> None:
    badge = as_json(issuer.signed()) if form == "json" else issuer.jwt()
    intern = example_plan().intern.email
    right = verify_badge(
        badge, issuer_keys=issuer.ring.public_keys(), email=intern, now=AFTER_ISSUE
    )
    assert right.verified and right.recipient_matches is True
    shouting = verify_badge(
        badge, issuer_keys=issuer.ring.public_keys(), email=f" {intern.upper()} ", now=AFTER_ISSUE
    )
    assert shouting.recipient_matches is True
    wrong = verify_badge(
        badge,
        issuer_keys=issuer.ring.public_keys(),
        email="someone.else@students.example.org",
        now=AFTER_ISSUE,
    )
    assert not wrong.verified
    assert wrong.recipient_matches is False
    assert wrong.checks["recipient"] is False
    assert all(ok for check, ok in wrong.checks.items() if check != "recipient")


def test_validity_window(issuer: Issuer) -> None:
    credential = issuer.credential(valid_until=ISSUED_AT + timedelta(days=10))
    badge = as_json(issuer.signed(credential))
    keys = issuer.ring.public_keys()
    assert verify_badge(badge, issuer_keys=keys, now=ISSUED_AT).verified
    early = verify_badge(badge, issuer_keys=keys, now=ISSUED_AT - timedelta(seconds=1))
    assert not early.verified and early.checks["validity"] is False
    late = verify_badge(badge, issuer_keys=keys, now=ISSUED_AT + timedelta(days=10))
    assert not late.verified and any("expired" in error for error in late.errors)
    token = issuer.jwt(credential)
    assert not verify_badge(token, issuer_keys=keys, now=ISSUED_AT + timedelta(days=11)).verified


def test_tampering_with_a_signed_field_fails_in_every_container(issuer: Issuer) -> None:
    signed = issuer.signed()
    tampered = copy.deepcopy(signed)
    tampered["credentialSubject"]["result"][0]["achievedLevel"] = tampered["credentialSubject"][
        "result"
    ][0]["achievedLevel"].replace(":good", ":excellent")
    for data in (
        as_json(tampered),
        bake_png(png_image(), as_json(tampered)),
        bake_svg(SVG_IMAGE, as_json(tampered)),
    ):
        report = verify_badge(data, issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
        assert not report.verified
        assert report.checks["proof"] is False
        assert report.checks["terms"] is True


def test_unsigned_extra_term_is_reported_as_a_terms_failure(issuer: Issuer) -> None:
    signed = issuer.signed()
    signed["credentialSubject"]["achievement"]["grade"] = "A"
    report = verify_badge(as_json(signed), issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified
    assert report.checks["terms"] is False
    assert any("'grade'" in error for error in report.errors)


@pytest.mark.schema_exempt(reason="signs a badge as issued before one status entry per badge")
def test_unknown_keys_fail_the_issuer_check(issuer: Issuer) -> None:
    stranger = Issuer.create()
    # A key named by its id: the stranger's key-1 is not the one that signed.
    report = verify_badge(
        as_json(issuer.signed()), issuer_keys=stranger.ring.public_keys(), now=AFTER_ISSUE
    )
    assert not report.verified
    assert report.checks["proof"] is False
    # A key id the verifier does not know, or a key named by a multibase it does not trust.
    unknown = sign(
        issuer.credential(), issuer.ring.signing_key, f"{ISSUER_ID}/keys/key-9", ISSUED_AT
    )
    report = verify_badge(as_json(unknown), issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified and report.checks["issuer"] is False
    report = verify_badge(
        as_json(issuer.legacy_signed()), issuer_keys=stranger.ring.public_keys(), now=AFTER_ISSUE
    )
    assert not report.verified
    assert report.checks["issuer"] is False
    report = verify_badge(issuer.jwt(), issuer_keys=[], now=AFTER_ISSUE)
    assert not report.verified and report.checks["issuer"] is False


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "neither credential JSON nor a compact JWT"),
        ("not a badge", "neither credential JSON nor a compact JWT"),
        ("{not json", "not JSON"),
        ("[1, 2]", "neither credential JSON"),
        ('"text"', "neither credential JSON"),
        (b"\x89PNG\r\n\x1a\n", "truncated"),
        (b"\xff\xfe\x00\x00", "UTF-8"),
        ("<svg xmlns='http://www.w3.org/2000/svg'/>", "no baked credential"),
        ("<html/>", "not an SVG"),
        ("https://example.org/assertions/1", "Open Badges 2.0 hosted assertion"),
        ("a.b.c", "base64url"),
    ],
)
def test_unreadable_input_is_reported(issuer: Issuer, data: Any, message: str) -> None:
    report = verify_badge(data, issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE)
    assert not report.verified
    assert report.checks == {"parse": False}
    assert any(message in error for error in report.errors), report.errors


def test_open_badges_2_assertions_are_recognised(issuer: Issuer) -> None:
    assertion = {
        "@context": "https://w3id.org/openbadges/v2",
        "type": "Assertion",
        "id": "https://example.org/assertions/1",
        "recipient": {"type": "email", "hashed": True, "identity": "sha256$00", "salt": "x"},
        "badge": "https://example.org/badges/1",
        "verification": {"type": "hosted"},
        "issuedOn": "2016-12-31T23:59:59Z",
    }
    report = verify_badge(json.dumps(assertion), issuer_keys=[], now=AFTER_ISSUE)
    assert not report.verified
    assert any("Open Badges 2.0" in error for error in report.errors)


@pytest.mark.schema_exempt(reason="a badge as issued before one status entry per badge")
def test_verify_credential_keeps_its_contract(issuer: Issuer) -> None:
    signed = issuer.signed()
    assert verify_credential(as_json(signed), issuer.ring.public_keys(), AFTER_ISSUE).verified
    # Bare multibase keys are enough for a proof that names its key by the multibase.
    signed = issuer.legacy_signed()
    keys = [issuer.ring.signing_key.public_key_multibase]
    report = verify_credential(as_json(signed), keys, AFTER_ISSUE)
    assert report.verified
    assert report.credential_id == signed["id"]
    assert {"contexts", "type", "proof", "validity"} <= set(report.checks)
    assert verify_credential("{", keys).as_dict()["verified"] is False
    assert not verify_credential(as_json(signed), [], AFTER_ISSUE).verified
