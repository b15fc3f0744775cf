"""LinkedIn's "Add to profile" link for a badge (badges.share): certId is the credential's UUID
without `urn:uuid:`, and an institution's LinkedIn organization id replaces organizationName."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from badges.share import credential_facts, credential_number, linkedin_add_to_profile
from tests.test_badges_support import Issuer

pytestmark = pytest.mark.pure

UUID = "7df75bb7-7d94-5f3c-a315-8ff118ac372a"
PAGE = f"https://badges.example.org/badges/{UUID}"


def _query(link: str) -> list[tuple[str, str]]:
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://www.linkedin.com/profile/add"
    return parse_qsl(parts.query, strict_parsing=True)


def test_cert_id_is_the_uuid_and_the_issuer_is_named_by_default() -> None:
    credential = Issuer.create().credential()
    credential["id"] = f"urn:uuid:{UUID}"
    facts = credential_facts(credential)
    params = _query(linkedin_add_to_profile(facts, PAGE))
    assert [name for name, _ in params] == [
        "startTask", "name", "organizationName", "issueYear", "issueMonth", "certUrl", "certId",
    ]  # fmt: skip
    values = dict(params)
    assert values["certId"] == UUID
    assert values["organizationName"] == credential["issuer"]["name"]
    assert values["certUrl"] == PAGE


def test_an_organization_id_replaces_the_organization_name() -> None:
    credential = Issuer.create().credential()
    credential["id"] = f"urn:uuid:{UUID}"
    link = linkedin_add_to_profile(credential_facts(credential), PAGE, "2414183")
    values = dict(_query(link))
    assert values["organizationId"] == "2414183"
    assert "organizationName" not in values
    assert values["certId"] == UUID
    assert "&organizationId=2414183&" in link


@pytest.mark.parametrize(
    ("credential_id", "shown"),
    [
        (f"urn:uuid:{UUID}", UUID),
        (f"URN:UUID:{UUID}", UUID),
        ("https://badges.example.org/credentials/42", "https://badges.example.org/credentials/42"),
        ("urn:uuid:", "urn:uuid:"),
    ],
)
def test_credential_number(credential_id: str, shown: str) -> None:
    assert credential_number(credential_id) == shown
