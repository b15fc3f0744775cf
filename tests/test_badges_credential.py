"""Tests for badges.credential and badges.models, and issuance.award: the OpenBadgeCredential
built from a plan."""

from __future__ import annotations

import copy
import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from badges.credential import (
    ACHIEVEMENT_CREDENTIAL_SCHEMA,
    OB_CONTEXT,
    OB_EXTENSIONS_CONTEXT,
    VC_CONTEXT,
    eqf_level_uri,
    hashed_email,
)
from badges.jsonld import UndefinedTermError, ensure_all_terms_defined
from badges.models import (
    LENIENT,
    Alignment,
    Evidence,
    IdentityObject,
    OpenBadgeCredential,
    Profile,
    Result,
    ResultDescription,
)
from badges.proof import sign
from badges.verify import verify_badge
from issuance.award import build_credential, build_credential_model
from models.ids import credential_id_for
from tests.test_badges_support import (
    ACHIEVED,
    AFTER_ISSUE,
    IMAGE_URL,
    ISSUED_AT,
    ISSUER_ID,
    Issuer,
    as_json,
    example_plan,
)

pytestmark = pytest.mark.pure

SHA256_HEX = re.compile(r"^sha256\$[0-9a-f]{64}$")


def build(**options: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "issuer_id": ISSUER_ID,
        "image_url": IMAGE_URL,
        "issued_at": ISSUED_AT,
    }
    values.update(options)
    return build_credential(example_plan(), ACHIEVED, **values)


# --- the recipient's IdentityObject ---------------------------------------------------------


def test_identity_hash_reproduces_the_spec_examples() -> None:
    # Open Badges 3.0, IdentityHash data type: 'a@example.com' salted with 'Kosher'.
    assert hashed_email("a@example.com", "Kosher") == (
        "sha256$b5809d8a92f8858436d7e6b87c12ebc0ae1eac4baecc2c0b913aee2c922ef399"
    )
    # Open Badges 3.0 implementation guide, issuer quickstart example credential.
    assert hashed_email("jjefferson18@example.com", "FleurDeSel") == (
        "sha256$658625b25ab3d75d613ca97d9a5a77f70e2192feca5557f4ad09a4d4f121f5fc"
    )


def test_identity_hash_formula() -> None:
    expected = hashlib.sha256(b"zoe@example.org" + b"s4lt").hexdigest()
    assert hashed_email("zoe@example.org", "s4lt") == "sha256$" + expected


def test_recipient_is_a_salted_hash_never_the_address() -> None:
    plan = example_plan()
    credential = build(salt="fixed-salt")
    assert plan.intern.email not in as_json(credential)
    (identity,) = credential["credentialSubject"]["identifier"]
    assert identity == {
        "type": "IdentityObject",
        "hashed": True,
        "identityHash": hashed_email(plan.intern.email, "fixed-salt"),
        "identityType": "emailAddress",
        "salt": "fixed-salt",
    }


def test_every_credential_gets_its_own_random_salt() -> None:
    salts = {build()["credentialSubject"]["identifier"][0]["salt"] for _ in range(20)}
    assert len(salts) == 20
    assert all(re.fullmatch(r"[0-9a-f]{32}", salt) for salt in salts)
    with pytest.raises(ValueError, match="salt"):
        build(salt="")


def test_identity_object_allows_no_other_properties() -> None:
    with pytest.raises(ValidationError):
        IdentityObject.model_validate(
            {
                "type": "IdentityObject",
                "hashed": True,
                "identityHash": "sha256$" + "0" * 64,
                "identityType": "emailAddress",
                "salt": "x",
                "email": "a@example.com",
            },
            context=LENIENT,
        )
    with pytest.raises(ValidationError, match="sha256"):
        IdentityObject(hashed=True, identity_hash="a@example.com", identity_type="emailAddress")


# --- content --------------------------------------------------------------------------------


def test_credential_content_from_the_plan() -> None:
    plan = example_plan()
    credential = build()
    assert credential["@context"] == [VC_CONTEXT, OB_CONTEXT, OB_EXTENSIONS_CONTEXT]
    assert credential["id"] == credential_id_for(plan.internship_id)
    assert credential["type"] == ["VerifiableCredential", "OpenBadgeCredential"]
    assert credential["validFrom"] == "2027-06-10T09:00:00Z"
    assert "validUntil" not in credential
    assert credential["credentialSchema"] == [
        {"id": ACHIEVEMENT_CREDENTIAL_SCHEMA, "type": "1EdTechJsonSchemaValidator2019"}
    ]
    assert credential["issuer"] == {
        "id": ISSUER_ID,
        "type": ["Profile"],
        "name": plan.institution.name,
        "url": plan.institution.url,
        "email": plan.institution.email,
    }
    subject = credential["credentialSubject"]
    assert subject["type"] == ["AchievementSubject"]
    assert subject["activityStartDate"] == "2027-03-01T08:00:00Z"
    assert subject["activityEndDate"] == "2027-05-28T15:00:00Z"
    achievement = subject["achievement"]
    assert achievement["type"] == ["Achievement"]
    assert achievement["achievementType"] == "Badge"
    assert achievement["name"] == plan.badge.name
    assert achievement["description"] == plan.badge.description
    assert achievement["criteria"]["narrative"].startswith(plan.badge.criteria)
    assert achievement["image"] == {"id": IMAGE_URL, "type": "Image"}
    assert plan.intern.language == "it"  # the intern reads Italian; the badge text is English
    assert achievement["inLanguage"] == plan.badge.language == "en"
    assert achievement["tag"] == list(plan.badge.tags)


def test_in_language_is_the_badge_templates_language() -> None:
    plan = example_plan()
    italian = plan.model_copy(update={"badge": plan.badge.model_copy(update={"language": "it"})})
    credential = build_credential(
        italian, ACHIEVED, issuer_id=ISSUER_ID, image_url=IMAGE_URL, issued_at=ISSUED_AT
    )
    assert credential["credentialSubject"]["achievement"]["inLanguage"] == "it"
    # A plan written before the field existed (no badge.language) reads as English.
    data = plan.model_dump(mode="json")
    del data["badge"]["language"]
    assert type(plan).model_validate(data).badge.language == "en"


def test_outcomes_align_to_esco_and_eqf_without_an_esco_target_type() -> None:
    plan = example_plan()
    achievement = build()["credentialSubject"]["achievement"]
    esco = [a for a in achievement["alignment"] if a.get("targetFramework") == "ESCO"]
    assert [a["targetUrl"] for a in esco] == [plan.learning_outcomes[0].esco_uri]
    eqf = [a for a in achievement["alignment"] if a["targetFramework"].startswith("European")]
    assert [(a["targetCode"], a["targetUrl"]) for a in eqf] == [
        ("4", "http://data.europa.eu/snb/eqf/4"),
        ("4", "http://data.europa.eu/snb/eqf/4"),
    ]
    # Named after their outcome, so that two outcomes at one level stay two alignments.
    assert [a["targetName"] for a in eqf] == [
        f"EQF level 4: {outcome.title}" for outcome in plan.learning_outcomes
    ]
    assert [eqf_level_uri(level) for level in (1, 8)] == [
        "http://data.europa.eu/snb/eqf/1",
        "http://data.europa.eu/snb/eqf/8",
    ]
    with pytest.raises(ValueError, match="1 to 8"):
        eqf_level_uri(9)
    assert all("targetType" not in a for a in achievement["alignment"])
    # Each outcome's ResultDescription carries its own alignments too.
    first, second = achievement["resultDescription"]
    assert [a["targetFramework"] for a in first["alignment"]] == [
        "ESCO",
        "European Qualifications Framework",
    ]
    assert [a["targetFramework"] for a in second["alignment"]] == [
        "European Qualifications Framework"
    ]


def test_alignment_target_type_is_restricted_to_the_spec_values() -> None:
    for allowed in ("CFItem", "ceasn:Competency", "CTDL", "ext:EscoSkill"):
        Alignment(target_name="x", target_url="https://example.org/x", target_type=allowed)
    for refused in ("ESCO", "esco:Skill", "ext:"):
        with pytest.raises(ValidationError, match="targetType"):
            Alignment(target_name="x", target_url="https://example.org/x", target_type=refused)


def test_rubric_result_descriptions_and_results() -> None:
    plan = example_plan()
    achievement = build()["credentialSubject"]["achievement"]
    descriptions = achievement["resultDescription"]
    assert [d["name"] for d in descriptions] == [o.title for o in plan.learning_outcomes]
    for description, outcome in zip(descriptions, plan.learning_outcomes, strict=True):
        assert description["type"] == ["ResultDescription"]
        assert description["resultType"] == "RubricCriterionLevel"
        levels = description["rubricCriterionLevel"]
        assert [level["name"] for level in levels] == [lv.name for lv in plan.rubric.levels]
        assert all(level["type"] == ["RubricCriterionLevel"] for level in levels)
        assert description["requiredLevel"] == f"{description['id']}:level:{outcome.required_level}"
    results = build()["credentialSubject"]["result"]
    assert [r["achievedLevel"].rsplit(":", 1)[1] for r in results] == ["good", "excellent"]
    assert [r["resultDescription"] for r in results] == [d["id"] for d in descriptions]
    assert all(r["status"] == "Completed" for r in results)


def test_unknown_outcomes_or_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown learning outcome"):
        build_credential(
            example_plan(), {"lo-x": "good"}, issuer_id=ISSUER_ID, image_url=IMAGE_URL,
            issued_at=ISSUED_AT,
        )  # fmt: skip
    with pytest.raises(ValueError, match="not a rubric level"):
        build_credential(
            example_plan(), {"lo-web": "superb"}, issuer_id=ISSUER_ID, image_url=IMAGE_URL,
            issued_at=ISSUED_AT,
        )  # fmt: skip


def test_validity_from_the_template_or_given() -> None:
    plan = example_plan()
    template = plan.badge.model_copy(update={"valid_for": timedelta(days=365)})
    with_validity = plan.model_copy(update={"badge": template})
    credential = build_credential(
        with_validity, ACHIEVED, issuer_id=ISSUER_ID, image_url=IMAGE_URL, issued_at=ISSUED_AT
    )
    assert credential["validUntil"] == "2028-06-09T09:00:00Z"
    assert build(valid_until=ISSUED_AT + timedelta(days=2))["validUntil"] == "2027-06-12T09:00:00Z"
    with pytest.raises(ValidationError, match="validUntil"):
        build(valid_until=ISSUED_AT)


def test_evidence_is_only_what_is_passed() -> None:
    assert "evidence" not in build()
    credential = build(
        evidence=[
            ("Mid-term review", "Summary the intern agreed to share."),
            Evidence(name="Final report", narrative="Built the booking pages.", genre="Report"),
        ]
    )
    assert credential["evidence"] == [
        {
            "type": ["Evidence"],
            "name": "Mid-term review",
            "narrative": "Summary the intern agreed to share.",
        },
        {
            "type": ["Evidence"],
            "name": "Final report",
            "narrative": "Built the booking pages.",
            "genre": "Report",
        },
    ]


def test_credential_schema_can_be_left_out() -> None:
    credential = build(credential_schema=False)
    assert credential["@context"] == [VC_CONTEXT, OB_CONTEXT]
    assert "credentialSchema" not in credential
    ensure_all_terms_defined(credential)


# --- models ---------------------------------------------------------------------------------


def test_models_require_the_required_fields() -> None:
    with pytest.raises(ValidationError):
        Profile.model_validate({"type": ["Profile"], "name": "no id"})
    with pytest.raises(ValidationError, match="Profile"):
        Profile.model_validate({"id": "https://x.example", "type": ["Organization"]})
    with pytest.raises(ValidationError):
        ResultDescription.model_validate({"id": "urn:x:1", "type": ["ResultDescription"]})
    with pytest.raises(ValidationError, match="resultType"):
        ResultDescription(id="urn:x:1", name="n", result_type="Grade")
    with pytest.raises(ValidationError, match="status"):
        Result(status="Done")


def test_models_refuse_unknown_fields_when_building() -> None:
    with pytest.raises(ValidationError, match="colour"):
        Profile.model_validate({"id": "https://x.example", "colour": "blue"})
    # Reading someone else's credential ignores what the models do not know.
    profile = Profile.model_validate({"id": "https://x.example", "colour": "blue"}, context=LENIENT)
    assert profile.id == "https://x.example"


def test_model_round_trip_uses_json_ld_names() -> None:
    model = build_credential_model(
        example_plan(), ACHIEVED, issuer_id=ISSUER_ID, image_url=IMAGE_URL, issued_at=ISSUED_AT
    )
    document = model.to_json_ld()
    assert "validFrom" in document and "valid_from" not in document
    again = OpenBadgeCredential.model_validate(document)
    assert again.to_json_ld() == document


def test_subject_needs_an_id_or_identifier() -> None:
    document = build()
    del document["credentialSubject"]["identifier"]
    with pytest.raises(ValidationError, match="identifier"):
        OpenBadgeCredential.model_validate(document)
    document["credentialSubject"]["id"] = "did:example:intern"
    OpenBadgeCredential.model_validate(document)


# --- JSON-LD safe mode at build and sign time -------------------------------------------------


def test_built_credentials_pass_the_safe_mode_check() -> None:
    ensure_all_terms_defined(build())
    ensure_all_terms_defined(Issuer.create().credential(subject_id="did:example:intern"))


def test_unknown_term_fails_at_build_time_check_and_at_signing() -> None:
    issuer = Issuer.create()
    credential = issuer.credential()
    credential["credentialSubject"]["achievement"]["level"] = "B2"
    with pytest.raises(UndefinedTermError, match="'level'"):
        ensure_all_terms_defined(credential)
    with pytest.raises(UndefinedTermError, match="'level'"):
        issuer.signed(credential)


def test_credential_schema_needs_the_extensions_context() -> None:
    credential = build()
    credential["@context"] = [VC_CONTEXT, OB_CONTEXT]
    with pytest.raises(UndefinedTermError, match="1EdTechJsonSchemaValidator2019"):
        ensure_all_terms_defined(credential)


def test_credential_with_every_optional_part_builds_signs_and_verifies() -> None:
    issuer = Issuer.create()
    credential = issuer.credential(
        index=77,
        issuer_image_url="https://badges.example.org/images/institution.png",
        evidence=[("Final report", "Built and tested the booking pages.")],
        valid_until=ISSUED_AT + timedelta(days=3650),
        subject_id="did:example:intern-1042",
        salt="0123456789abcdef0123456789abcdef",
    )
    for key in (
        "credentialSchema",
        "credentialStatus",
        "evidence",
        "validUntil",
        "awardedDate",
        "description",
    ):
        assert key in credential, key
    assert credential["issuer"]["image"]["type"] == "Image"
    assert credential["credentialSubject"]["id"] == "did:example:intern-1042"
    assert credential["credentialStatus"] == {
        "id": "https://badges.example.org/status/revocation/1#77",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": "77",
        "statusListCredential": "https://badges.example.org/status/revocation/1",
    }
    OpenBadgeCredential.model_validate(credential)
    signed = issuer.signed(credential)
    report = verify_badge(
        as_json(signed),
        issuer_keys=issuer.ring.public_keys(),
        status_lists=issuer.status_lists().__getitem__,
        email=example_plan().intern.email,
        now=AFTER_ISSUE,
    )
    assert report.verified, report.errors
    assert set(report.checks) == {
        "parse", "contexts", "type", "schema", "terms", "issuer", "proof", "validity", "status",
        "recipient",
    }  # fmt: skip
    jwt_report = verify_badge(
        issuer.jwt(credential),
        issuer_keys=issuer.ring.public_keys(),
        status_lists=issuer.status_lists().__getitem__,
        email=example_plan().intern.email,
        now=AFTER_ISSUE,
    )
    assert jwt_report.verified, jwt_report.errors


def test_signing_does_not_change_the_built_credential() -> None:
    issuer = Issuer.create()
    credential = issuer.credential()
    before = copy.deepcopy(credential)
    sign(credential, issuer.ring.signing_key, issuer.method, ISSUED_AT)
    assert credential == before
