"""Build the Open Badges 3.0 credential (an OpenBadgeCredential) from an internship's record."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from badges.models import (
    Achievement,
    AchievementSubject,
    Alignment,
    BitstringStatusListEntry,
    CredentialSchema,
    Criteria,
    Evidence,
    IdentityObject,
    Image,
    OpenBadgeCredential,
    Profile,
    Result,
    ResultDescription,
    RubricCriterionLevel,
)
from models.plan import InternshipPlan, LearningOutcome

__all__ = [
    "ACHIEVEMENT_CREDENTIAL_SCHEMA",
    "EQF_FRAMEWORK",
    "OB_CONTEXT",
    "OB_EXTENSIONS_CONTEXT",
    "SCHEMA_VALIDATOR_TYPE",
    "VC_CONTEXT",
    "build_credential",
    "build_credential_model",
    "credential_id_for",
    "eqf_level_uri",
    "hashed_email",
    "issuer_id_for",
    "new_salt",
]

VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT: Final = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
OB_EXTENSIONS_CONTEXT: Final = "https://purl.imsglobal.org/spec/ob/v3p0/extensions.json"
"""Defines 1EdTechJsonSchemaValidator2019, the type of a credentialSchema entry."""
ACHIEVEMENT_CREDENTIAL_SCHEMA: Final = (
    "https://purl.imsglobal.org/spec/ob/v3p0/schema/json/ob_v3p0_achievementcredential_schema.json"
)
SCHEMA_VALIDATOR_TYPE: Final = "1EdTechJsonSchemaValidator2019"
EQF_FRAMEWORK: Final = "European Qualifications Framework"
_ID_NAMESPACE: Final = uuid.UUID("5b0f6c56-7a53-4cf0-9d4e-2f1d3f1c8a10")


def credential_id_for(internship_id: str) -> str:
    """The credential id is derived from the internship, so a retried issuance cannot mint a
    second, different credential."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'credential:' + internship_id)}"


def issuer_id_for(public_base_url: str, institution_id: str) -> str:
    """The issuer's id: the URL of its profile (and controller document) under the public base."""
    return f"{public_base_url.rstrip('/')}/issuers/{institution_id}"


def hashed_email(email: str, salt: str) -> str:
    """The recipient identity as Open Badges hashes it: sha256$hex(sha256(email + salt))."""
    return "sha256$" + hashlib.sha256((email + salt).encode("utf-8")).hexdigest()


def new_salt() -> str:
    """A fresh random salt for one credential's IdentityObject (128 bits, hex)."""
    return secrets.token_hex(16)


def eqf_level_uri(level: int) -> str:
    """The EU's URI of one EQF level (its concept in the European Learning Model vocabularies)."""
    if isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 8:
        raise ValueError(f"an EQF level is 1 to 8, got {level!r}")
    return f"http://data.europa.eu/snb/eqf/{level}"


def _alignments(outcome: LearningOutcome) -> list[Alignment]:
    """The outcome's ESCO skill (if any) and its EQF level. ESCO has no targetType of its own:
    the framework is named and the skill's URI is the targetUrl. The EQF alignment points at the
    level's own URI, with the level as targetCode."""
    alignments: list[Alignment] = []
    if outcome.esco_uri:
        alignments.append(
            Alignment(
                target_name=outcome.title,
                target_url=outcome.esco_uri,
                target_description=outcome.description,
                target_framework="ESCO",
            )
        )
    alignments.append(
        Alignment(
            target_name=f"EQF level {outcome.eqf_level}: {outcome.title}",
            target_url=eqf_level_uri(outcome.eqf_level),
            target_framework=EQF_FRAMEWORK,
            target_code=str(outcome.eqf_level),
        )
    )
    return alignments


def _evidence(items: Iterable[tuple[str, str] | Evidence]) -> list[Evidence]:
    evidence: list[Evidence] = []
    for item in items:
        if isinstance(item, Evidence):
            evidence.append(item)
        else:
            name, narrative = item
            evidence.append(Evidence(name=name, narrative=narrative))
    return evidence


def build_credential_model(
    plan: InternshipPlan,
    achieved_levels: Mapping[str, str],
    *,
    issuer_id: str,
    image_url: str,
    issued_at: datetime,
    salt: str | None = None,
    issuer_image_url: str | None = None,
    evidence: Iterable[tuple[str, str] | Evidence] = (),
    credential_status: BitstringStatusListEntry | Mapping[str, Any] | None = None,
    valid_until: datetime | None = None,
    subject_id: str | None = None,
    credential_schema: bool = True,
) -> OpenBadgeCredential:
    """The unsigned credential as a model; see build_credential()."""
    level_ids = {level.id for level in plan.rubric.levels}
    outcome_ids = {outcome.id for outcome in plan.learning_outcomes}
    for outcome_id, level_id in achieved_levels.items():
        if outcome_id not in outcome_ids:
            raise ValueError(f"achieved level for unknown learning outcome {outcome_id!r}")
        if level_id not in level_ids:
            raise ValueError(f"outcome {outcome_id!r}: {level_id!r} is not a rubric level")

    achievement_id = f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, issuer_id + '/' + plan.badge.name)}"
    result_descriptions: list[ResultDescription] = []
    results: list[Result] = []
    alignments: list[Alignment] = []
    for outcome in plan.learning_outcomes:
        description_id = f"{achievement_id}:outcome:{outcome.id}"
        outcome_alignments = _alignments(outcome)
        alignments.extend(outcome_alignments)
        result_descriptions.append(
            ResultDescription(
                id=description_id,
                name=outcome.title,
                result_type="RubricCriterionLevel",
                required_level=f"{description_id}:level:{outcome.required_level}",
                rubric_criterion_level=[
                    RubricCriterionLevel(
                        id=f"{description_id}:level:{level.id}",
                        name=level.name,
                        description=level.description,
                    )
                    for level in plan.rubric.levels
                ],
                alignment=outcome_alignments,
            )
        )
        if outcome.id in achieved_levels:
            results.append(
                Result(
                    result_description=description_id,
                    achieved_level=f"{description_id}:level:{achieved_levels[outcome.id]}",
                    status="Completed",
                )
            )
    outcome_list = "; ".join(o.title for o in plan.learning_outcomes)
    achievement = Achievement(
        id=achievement_id,
        achievement_type=plan.badge.achievement_type,
        name=plan.badge.name,
        description=plan.badge.description,
        criteria=Criteria(
            narrative=(
                f"{plan.badge.criteria} Learning outcomes: {outcome_list}. Each was assessed on "
                "the rubric by the company mentor and the institution tutor, and the result was "
                "validated by the institution."
            )
        ),
        image=Image(id=image_url),
        in_language=plan.badge.language,
        tag=list(plan.badge.tags) or None,
        alignment=alignments,
        result_description=result_descriptions,
    )
    salt = new_salt() if salt is None else salt
    if not salt:
        raise ValueError("the IdentityObject salt must not be empty")
    if valid_until is None and plan.badge.valid_for is not None:
        valid_until = issued_at + plan.badge.valid_for
    status = (
        BitstringStatusListEntry.model_validate(dict(credential_status))
        if isinstance(credential_status, Mapping)
        else credential_status
    )
    contexts = [VC_CONTEXT, OB_CONTEXT]
    if credential_schema:
        contexts.append(OB_EXTENSIONS_CONTEXT)
    return OpenBadgeCredential(
        context=contexts,
        id=credential_id_for(plan.internship_id),
        name=plan.badge.name,
        description=plan.badge.description,
        issuer=Profile(
            id=issuer_id,
            name=plan.institution.name,
            url=plan.institution.url,
            email=plan.institution.email,
            image=Image(id=issuer_image_url) if issuer_image_url else None,
        ),
        valid_from=issued_at,
        valid_until=valid_until,
        awarded_date=issued_at,
        credential_subject=AchievementSubject(
            id=subject_id,
            identifier=[
                IdentityObject(
                    hashed=True,
                    identity_hash=hashed_email(plan.intern.email, salt),
                    identity_type="emailAddress",
                    salt=salt,
                )
            ],
            activity_start_date=plan.period.start,
            activity_end_date=plan.period.end,
            achievement=achievement,
            result=results or None,
        ),
        evidence=_evidence(evidence) or None,
        credential_schema=(
            [CredentialSchema(id=ACHIEVEMENT_CREDENTIAL_SCHEMA, type=SCHEMA_VALIDATOR_TYPE)]
            if credential_schema
            else None
        ),
        credential_status=status,
    )


def build_credential(
    plan: InternshipPlan,
    achieved_levels: Mapping[str, str],
    *,
    issuer_id: str,
    image_url: str,
    issued_at: datetime,
    salt: str | None = None,
    issuer_image_url: str | None = None,
    evidence: Iterable[tuple[str, str] | Evidence] = (),
    credential_status: BitstringStatusListEntry | Mapping[str, Any] | None = None,
    valid_until: datetime | None = None,
    subject_id: str | None = None,
    credential_schema: bool = True,
) -> dict[str, Any]:
    """The unsigned credential as a JSON-LD dict, ready for proof.sign() or vcjwt.sign_jwt().

    Issuer profile (name, url, e-mail, optional image); the achievement from the plan's badge
    template with each learning outcome aligned to its ESCO skill and EQF level, a rubric
    ResultDescription per outcome and a Result per achieved outcome; the intern as a salted
    e-mail hash (never the address; salt=None draws a random one, as every credential should
    have its own); activity dates; evidence as (name, narrative) pairs or Evidence models (pass
    only what the intern agreed to share); the one credentialStatus entry (see
    badges.status.credential_status());
    credentialSchema (1EdTech's achievement credential JSON schema); validFrom = issued_at and
    validUntil = valid_until, else issued_at + the template's valid_for.

    Building does not run JSON-LD: signing does, and refuses any term the contexts do not define
    (call badges.jsonld.ensure_all_terms_defined() to check earlier).
    """
    return build_credential_model(
        plan,
        achieved_levels,
        issuer_id=issuer_id,
        image_url=image_url,
        issued_at=issued_at,
        salt=salt,
        issuer_image_url=issuer_image_url,
        evidence=evidence,
        credential_status=credential_status,
        valid_until=valid_until,
        subject_id=subject_id,
        credential_schema=credential_schema,
    ).to_json_ld()
