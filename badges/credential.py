"""Build the Open Badges 3.0 credential (an OpenBadgeCredential) from an internship's record."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from models.plan import InternshipPlan

VC_CONTEXT = "https://www.w3.org/ns/credentials/v2"
OB_CONTEXT = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
EQF_LEVELS_URL = "https://europa.eu/europass/en/description-eight-eqf-levels"
_ID_NAMESPACE = uuid.UUID("5b0f6c56-7a53-4cf0-9d4e-2f1d3f1c8a10")


def credential_id_for(internship_id: str) -> str:
    """The credential id is derived from the internship, so a retried issuance cannot mint a
    second, different credential."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'credential:' + internship_id)}"


def issuer_id_for(public_base_url: str, institution_id: str) -> str:
    return f"{public_base_url.rstrip('/')}/issuers/{institution_id}"


def hashed_email(email: str, salt: str) -> str:
    """The recipient identity as Open Badges hashes it: sha256$hex(sha256(email + salt))."""
    return "sha256$" + hashlib.sha256((email + salt).encode()).hexdigest()


def _timestamp(moment: datetime) -> str:
    """An XML Schema dateTime in UTC, to the second (`2026-05-04T09:00:00Z`)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_credential(
    plan: InternshipPlan,
    achieved_levels: dict[str, str],
    *,
    issuer_id: str,
    image_url: str,
    issued_at: datetime,
    salt: str,
) -> dict[str, Any]:
    """The unsigned credential: issuer profile, achievement with alignments and rubric, one result
    per learning outcome, and the intern as a salted e-mail hash (never the address itself)."""
    achievement_id = f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, issuer_id + '/' + plan.badge.name)}"
    levels = plan.rubric.levels
    result_descriptions = []
    results = []
    alignments: list[dict[str, Any]] = []
    for outcome in plan.learning_outcomes:
        description_id = f"{achievement_id}:outcome:{outcome.id}"
        result_descriptions.append(
            {
                "id": description_id,
                "type": ["ResultDescription"],
                "name": outcome.title,
                "resultType": "RubricCriterionLevel",
                "requiredLevel": f"{description_id}:level:{outcome.required_level}",
                "rubricCriterionLevel": [
                    {
                        "id": f"{description_id}:level:{level.id}",
                        "type": ["RubricCriterionLevel"],
                        "name": level.name,
                        "description": level.description,
                    }
                    for level in levels
                ],
            }
        )
        if outcome.id in achieved_levels:
            results.append(
                {
                    "type": ["Result"],
                    "resultDescription": description_id,
                    "achievedLevel": f"{description_id}:level:{achieved_levels[outcome.id]}",
                    "status": "Completed",
                }
            )
        if outcome.esco_uri:
            alignments.append(
                {
                    "type": ["Alignment"],
                    "targetName": outcome.title,
                    "targetUrl": outcome.esco_uri,
                    "targetDescription": outcome.description,
                    "targetFramework": "ESCO",
                }
            )
        alignments.append(
            {
                "type": ["Alignment"],
                "targetName": f"EQF level {outcome.eqf_level}: {outcome.title}",
                "targetUrl": EQF_LEVELS_URL,
                "targetFramework": "European Qualifications Framework",
                "targetCode": str(outcome.eqf_level),
            }
        )
    outcome_list = "; ".join(o.title for o in plan.learning_outcomes)
    achievement: dict[str, Any] = {
        "id": achievement_id,
        "type": ["Achievement"],
        "achievementType": plan.badge.achievement_type,
        "name": plan.badge.name,
        "description": plan.badge.description,
        "criteria": {
            "narrative": (
                f"{plan.badge.criteria} Learning outcomes: {outcome_list}. Each was assessed on "
                "the rubric by the company mentor and the institution tutor, and the result was "
                "validated by the institution."
            )
        },
        "image": {"id": image_url, "type": "Image"},
        "inLanguage": plan.intern.language,
        "alignment": alignments,
        "resultDescription": result_descriptions,
    }
    if plan.badge.tags:
        achievement["tag"] = list(plan.badge.tags)
    credential: dict[str, Any] = {
        "@context": [VC_CONTEXT, OB_CONTEXT],
        "id": credential_id_for(plan.internship_id),
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": plan.badge.name,
        "issuer": {
            "id": issuer_id,
            "type": ["Profile"],
            "name": plan.institution.name,
            "url": plan.institution.url,
            "email": plan.institution.email,
        },
        "validFrom": _timestamp(issued_at),
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "identifier": [
                {
                    "type": "IdentityObject",
                    "hashed": True,
                    "identityHash": hashed_email(plan.intern.email, salt),
                    "identityType": "emailAddress",
                    "salt": salt,
                }
            ],
            "activityStartDate": _timestamp(plan.period.start),
            "activityEndDate": _timestamp(plan.period.end),
            "achievement": achievement,
            "result": results,
        },
    }
    if plan.badge.valid_for is not None:
        credential["validUntil"] = _timestamp(issued_at + plan.badge.valid_for)
    return credential
