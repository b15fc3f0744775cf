"""1EdTech's official AchievementCredential JSON Schema: bundled as published, and the badges
internflow issues (the demo's, in both proof formats and both issuer forms) pass it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, cast

import pytest

from activities.badge import BadgeActivities
from badges.conformance import SCHEMA_FILE, SCHEMA_SHA256, schema_errors
from badges.credential import ACHIEVEMENT_CREDENTIAL_SCHEMA
from badges.keyring import KeyRing
from badges.status import credential_status
from badges.vcjwt import decode_jwt
from badges.verify import local_public_keys, verify_badge
from embedded.ports import throwaway_settings
from issuance.issuers import institution_did, public_keys
from mail.sending import Mailer
from models.activities import BadgeRequest
from runtime.settings import Settings
from tests.conformance import assert_conforms
from tests.test_badges_support import Issuer, example_plan

pytestmark = pytest.mark.pure


def test_the_bundled_schema_is_1edtechs_as_recorded() -> None:
    folder = resources.files("badges").joinpath("schema")
    data = folder.joinpath(SCHEMA_FILE).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SCHEMA_SHA256
    sources = folder.joinpath("SOURCES.md").read_text(encoding="utf-8")
    assert f"`{SCHEMA_FILE}`" in sources and f"`{SCHEMA_SHA256}`" in sources
    schema = json.loads(data)
    assert schema["$schema"].startswith("https://json-schema.org/draft/2019-09/")
    assert "ob_v3p0_achievementcredential" in schema["$id"]
    # The credential names the schema it conforms to.
    assert ACHIEVEMENT_CREDENTIAL_SCHEMA.endswith("/ob_v3p0_achievementcredential_schema.json")


def demo_badge(settings: Settings, proof_format: str = "data-integrity") -> dict[str, Any] | str:
    """The badge the demo issues (examples/plan.json), signed exactly as the badge activity signs
    it: issuer id, key names, status entry and image from the deployment's settings."""
    plan = example_plan()
    if proof_format != "data-integrity":
        badge = plan.badge.model_copy(update={"proof_format": proof_format})
        plan = plan.model_copy(update={"badge": badge})
    issued_at = datetime.now(UTC) - timedelta(hours=1)
    request = BadgeRequest(
        plan=plan,
        achieved_levels={"lo-web": "good", "lo-team": "excellent"},
        issued_at=issued_at,
        workflow_id=f"internship-{plan.internship_id}",
        evidence=(("Mid-term review", "Delivered the booking pages on schedule."),),
    )
    ring = KeyRing.load_or_create(settings.keys_path)
    activities = BadgeActivities(cast(Any, None), Mailer(settings), ring, settings)
    status = credential_status((f"{settings.public_base_url}/issuers/x/status/revocation", 4242))
    return activities._sign(request, status)


@pytest.mark.parametrize("proof_format", ["data-integrity", "vc-jwt"])
@pytest.mark.parametrize("issuer_form", ["https-profile", "did:web"])
def test_the_demos_badge_passes_the_official_schema(
    tmp_path: Path, proof_format: str, issuer_form: str
) -> None:
    options: dict[str, Any] = {}
    if issuer_form == "did:web":
        options = {"public_base_url": "https://badges.example.org", "did_web_institutions": "*"}
    settings = throwaway_settings(tmp_path, **options)
    badge = demo_badge(settings, proof_format)
    assert_conforms(badge)
    document = decode_jwt(badge).payload if isinstance(badge, str) else badge
    assert isinstance(document["credentialStatus"], dict)
    issuer = document["issuer"]["id"]
    institution = example_plan().institution.id
    text = badge if isinstance(badge, str) else json.dumps(badge)
    if issuer_form == "did:web":
        # The institution's own DID, signed by its own key, not the deployment's.
        did = f"did:web:badges.example.org:issuers:{institution}"
        assert issuer == institution_did(settings.public_base_url, institution) == did
        deployment_only = local_public_keys(settings.keys_path)
        assert not verify_badge(text, issuer_keys=deployment_only).verified
    else:
        assert issuer == f"{settings.public_base_url}/issuers/{institution}"
    report = verify_badge(text, issuer_keys=public_keys(settings))
    assert report.verified, report.errors


def test_the_schema_refuses_what_the_audit_found() -> None:
    """Two status entries (an array) do not conform; one entry does."""
    issuer = Issuer.create()
    assert schema_errors(issuer.signed()) == []
    errors = schema_errors(issuer.legacy_credential())
    assert errors and all(error.startswith("credentialStatus") for error in errors), errors
    # Applied strictly: the proof array is what conforms; a single proof object (how badges
    # were written before) does not, and nothing normalises it.
    signed = issuer.signed()
    assert isinstance(signed["proof"], list) and len(signed["proof"]) == 1
    assert schema_errors({**signed, "proof": signed["proof"][0]}) == [
        "proof: " + repr(signed["proof"][0]) + " is not of type 'array'"
    ]
    broken = issuer.credential()
    broken["credentialSubject"]["identifier"][0]["email"] = "a@example.org"
    assert any("identifier/0" in error for error in schema_errors(broken))
