"""Tests for badges.status: Bitstring Status Lists, entries, list credentials, revocation checks."""

from __future__ import annotations

import base64
import copy
import gzip
from typing import Any

import pytest

from badges.jsonld import ensure_all_terms_defined
from badges.models import BitstringStatusListEntry
from badges.proof import verify
from badges.status import (
    MIN_STATUS_LIST_SIZE,
    StatusList,
    StatusPurpose,
    allocate_index,
    build_status_list_credential,
    credential_status,
    status_entry,
)
from badges.verify import verify_badge
from tests.test_badges_support import (
    AFTER_ISSUE,
    ISSUED_AT,
    ISSUER_ID,
    REVOCATION_LIST,
    SUSPENSION_LIST,
    Issuer,
    as_json,
)

pytestmark = pytest.mark.pure

# --- the bitstring --------------------------------------------------------------------------


def test_bit_zero_is_the_leftmost_bit_of_byte_zero() -> None:
    bits = StatusList()
    assert bits.size == len(bits) == MIN_STATUS_LIST_SIZE
    bits.set(0)
    bits.set(9)
    bits.set(MIN_STATUS_LIST_SIZE - 1)
    raw = bits.to_bytes()
    assert raw[0] == 0b1000_0000
    assert raw[1] == 0b0100_0000
    assert raw[-1] == 0b0000_0001
    assert bits.get(0) and bits[9] and not bits.get(1)
    assert bits.set_indexes() == [0, 9, MIN_STATUS_LIST_SIZE - 1]
    bits.clear(9)
    assert not bits.get(9)
    assert bits.to_bytes()[1] == 0


def test_encoding_is_multibase_base64url_of_gzip() -> None:
    bits = StatusList()
    bits.set(94567)
    encoded = bits.encode()
    assert encoded.startswith("u")
    assert "=" not in encoded and "+" not in encoded and "/" not in encoded
    body = encoded[1:]
    raw = gzip.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert raw == bits.to_bytes()
    assert len(raw) == MIN_STATUS_LIST_SIZE // 8
    again = StatusList.decode(encoded)
    assert again.set_indexes() == [94567]
    assert encoded == bits.encode(), "the encoding is deterministic (no gzip timestamp)"


def test_decoding_refuses_bad_lists() -> None:
    with pytest.raises(ValueError, match="'u'"):
        StatusList.decode("z123")
    with pytest.raises(ValueError, match="GZIP"):
        StatusList.decode("u" + base64.urlsafe_b64encode(b"not gzip").decode().rstrip("="))
    small = "u" + base64.urlsafe_b64encode(gzip.compress(bytes(100))).decode().rstrip("=")
    with pytest.raises(ValueError, match="at least"):
        StatusList.decode(small)
    bomb = gzip.compress(bytes(32 * 1024 * 1024))
    with pytest.raises(ValueError, match="16 MiB"):
        StatusList.decode("u" + base64.urlsafe_b64encode(bomb).decode().rstrip("="))


def test_size_and_index_bounds() -> None:
    with pytest.raises(ValueError):
        StatusList(1024)
    bits = StatusList(MIN_STATUS_LIST_SIZE * 2)
    bits.set(MIN_STATUS_LIST_SIZE * 2 - 1)
    with pytest.raises(IndexError):
        bits.set(MIN_STATUS_LIST_SIZE * 2)
    with pytest.raises(IndexError):
        bits.get(-1)


def test_indexes_are_allocated_at_random_and_never_reused() -> None:
    drawn = [allocate_index(set()) for _ in range(50)]
    assert len(set(drawn)) > 45, "not random"
    assert drawn != sorted(drawn)
    assert all(0 <= index < MIN_STATUS_LIST_SIZE for index in drawn)
    used = set(range(MIN_STATUS_LIST_SIZE)) - {4242}
    assert allocate_index(used) == 4242
    with pytest.raises(LookupError, match="full"):
        allocate_index(set(range(MIN_STATUS_LIST_SIZE)))


# --- entries and list credentials --------------------------------------------------------------


def test_status_entries() -> None:
    entry = status_entry(REVOCATION_LIST, 94567, "revocation").to_json_ld()
    assert entry == {
        "id": f"{REVOCATION_LIST}#94567",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "94567",
        "statusListCredential": REVOCATION_LIST,
    }
    # A new credential carries ONE entry (an object): its revocation.
    assert credential_status((REVOCATION_LIST, 5)) == {
        "id": f"{REVOCATION_LIST}#5",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "5",
        "statusListCredential": REVOCATION_LIST,
    }
    assert status_entry(SUSPENSION_LIST, 6, "suspension").id == f"{SUSPENSION_LIST}#6"
    with pytest.raises(ValueError):
        status_entry(REVOCATION_LIST, -1, "revocation")
    with pytest.raises(ValueError):
        BitstringStatusListEntry.model_validate({**entry, "statusListIndex": "01"})


def test_credential_with_status_entries_passes_safe_mode() -> None:
    issuer = Issuer.create()
    credential = issuer.credential()
    assert credential["credentialStatus"]["statusPurpose"] == "revocation"
    ensure_all_terms_defined(credential)
    ensure_all_terms_defined(issuer.legacy_credential())


def test_status_list_credential_is_signable() -> None:
    issuer = Issuer.create()
    bits = StatusList()
    bits.set(7)
    unsigned = build_status_list_credential(
        REVOCATION_LIST, ISSUER_ID, "revocation", bits, valid_from=ISSUED_AT
    )
    assert unsigned["@context"] == ["https://www.w3.org/ns/credentials/v2"]
    assert unsigned["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert unsigned["id"] == REVOCATION_LIST
    assert unsigned["issuer"] == ISSUER_ID
    subject = unsigned["credentialSubject"]
    assert subject["type"] == "BitstringStatusList"
    assert subject["statusPurpose"] == "revocation"
    assert StatusList.decode(subject["encodedList"]).set_indexes() == [7]
    ensure_all_terms_defined(unsigned)
    signed = issuer.status_lists()[REVOCATION_LIST]
    keys = issuer.ring.public_keys()
    assert verify(signed, lambda method: keys.ed25519_for(method, ISSUER_ID)).verified


# --- revocation and suspension in verification ------------------------------------------------


def check(issuer: Issuer, badge: str, lists: Any = None) -> Any:
    resolver = (lists or issuer.status_lists()).__getitem__
    return verify_badge(
        badge, issuer_keys=issuer.ring.public_keys(), status_lists=resolver, now=AFTER_ISSUE
    )


@pytest.mark.parametrize("form", ["json", "jwt"])
def test_revoked_credentials_are_reported(form: str) -> None:
    issuer = Issuer.create()
    credential = issuer.credential(index=31337)
    badge = as_json(issuer.signed(credential)) if form == "json" else issuer.jwt(credential)

    report = check(issuer, badge)
    assert report.verified, report.errors
    # One status entry: the revocation list says; suspension is not on any list.
    assert (report.revoked, report.suspended) == (False, None)
    issuer.suspensions.set(31337)
    assert check(issuer, badge).verified

    issuer.revocations.set(31337)
    report = check(issuer, badge)
    assert not report.verified
    assert report.revoked is True
    assert report.checks["status"] is False
    assert any("revoked" in error for error in report.errors)
    assert report.as_dict()["revoked"] is True

    # Other credentials on the same list are unaffected.
    other = issuer.credential(index=31338)
    other_badge = as_json(issuer.signed(other)) if form == "json" else issuer.jwt(other)
    assert check(issuer, other_badge).verified


@pytest.mark.schema_exempt(reason="a badge as issued before one status entry per badge")
def test_badges_with_two_status_entries_keep_verifying() -> None:
    """Badges issued before a credential carried one status entry name a revocation and a
    suspension list (an array, which 1EdTech's schema refuses): they keep verifying, and both
    lists are still read."""
    issuer = Issuer.create()
    badge = as_json(issuer.legacy_signed(31337))

    report = check(issuer, badge)
    assert report.verified, report.errors
    assert (report.revoked, report.suspended) == (False, False)

    issuer.suspensions.set(31337)
    report = check(issuer, badge)
    assert not report.verified
    assert (report.revoked, report.suspended) == (False, True)
    assert report.checks["status"] is False
    assert any("suspended" in error for error in report.errors)

    issuer.suspensions.clear(31337)
    assert check(issuer, badge).verified  # a suspension can be lifted

    issuer.revocations.set(31337)
    report = check(issuer, badge)
    assert not report.verified
    assert report.revoked is True
    assert any("revoked" in error for error in report.errors)
    assert report.as_dict()["revoked"] is True

    # Other credentials on the same lists are unaffected.
    assert check(issuer, as_json(issuer.legacy_signed(31338))).verified


def test_status_is_not_checked_without_a_resolver() -> None:
    issuer = Issuer.create()
    issuer.revocations.set(1234)
    report = verify_badge(
        as_json(issuer.signed()), issuer_keys=issuer.ring.public_keys(), now=AFTER_ISSUE
    )
    assert report.verified
    assert "status" not in report.checks
    assert any("status not checked" in warning for warning in report.warnings)


def test_status_lists_must_be_authentic() -> None:
    issuer = Issuer.create()
    badge = as_json(issuer.signed())
    lists = issuer.status_lists()

    tampered = copy.deepcopy(lists)
    flipped = StatusList()
    flipped.set(99)
    tampered[REVOCATION_LIST]["credentialSubject"]["encodedList"] = flipped.encode()
    report = check(issuer, badge, tampered)
    assert not report.verified
    assert any("signature does not match" in error for error in report.errors)

    impostor = Issuer.create()
    forged = {**lists, REVOCATION_LIST: impostor.status_lists()[REVOCATION_LIST]}
    assert not check(issuer, badge, forged).verified

    swapped = {REVOCATION_LIST: lists[SUSPENSION_LIST], SUSPENSION_LIST: lists[REVOCATION_LIST]}
    report = check(issuer, badge, swapped)
    assert not report.verified

    def unavailable(url: str) -> dict[str, Any]:
        raise ConnectionError(f"{url} is down")

    report = verify_badge(
        badge, issuer_keys=issuer.ring.public_keys(), status_lists=unavailable, now=AFTER_ISSUE
    )
    assert not report.verified
    assert any("is down" in error for error in report.errors)


def test_status_list_may_be_served_as_text_or_jwt() -> None:
    issuer = Issuer.create()
    badge = as_json(issuer.signed())
    lists = issuer.status_lists()
    as_text = {url: as_json(document) for url, document in lists.items()}
    assert check(issuer, badge, as_text).verified
    as_jwt = {}
    places: list[tuple[str, StatusPurpose, StatusList]] = [
        (REVOCATION_LIST, "revocation", issuer.revocations),
        (SUSPENSION_LIST, "suspension", issuer.suspensions),
    ]
    for url, purpose, bits in places:
        # As a Profile the issuer brings in the OB context, which defines the JWT's jti claim.
        profile = {"id": ISSUER_ID, "type": ["Profile"], "name": "Istituto Professionale Bassano"}
        unsigned = build_status_list_credential(url, profile, purpose, bits, valid_from=ISSUED_AT)
        as_jwt[url] = issuer.jwt(unsigned)
    assert check(issuer, badge, as_jwt).verified
