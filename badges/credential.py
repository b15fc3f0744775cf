"""Build an Open Badges 3.0 credential (an OpenBadgeCredential) from Open Badges parts: the
achievement (with its alignments and rubric result descriptions), the results achieved, the issuer
profile and the recipient. What a credential says about an internship is decided by the caller
(issuance/award.py maps a plan onto these parts)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from badges.models import (
    Achievement,
    AchievementSubject,
    BitstringStatusListEntry,
    CredentialSchema,
    Evidence,
    IdentityObject,
    OpenBadgeCredential,
    Profile,
    Result,
)

__all__ = [
    "ACHIEVEMENT_CREDENTIAL_SCHEMA",
    "EQF_FRAMEWORK",
    "OB_CONTEXT",
    "OB_EXTENSIONS_CONTEXT",
    "SCHEMA_VALIDATOR_TYPE",
    "VC_CONTEXT",
    "achievement_id_for",
    "build_achievement_credential",
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


def achievement_id_for(issuer_id: str, name: str) -> str:
    """The achievement's id: the same for every credential an issuer awards under one name."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, issuer_id + '/' + name)}"


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


def _evidence(items: Iterable[tuple[str, str] | Evidence]) -> list[Evidence]:
    evidence: list[Evidence] = []
    for item in items:
        if isinstance(item, Evidence):
            evidence.append(item)
        else:
            name, narrative = item
            evidence.append(Evidence(name=name, narrative=narrative))
    return evidence


def build_achievement_credential(
    achievement: Achievement,
    results: Sequence[Result] = (),
    *,
    credential_id: str,
    issuer: Profile,
    recipient_email: str,
    issued_at: datetime,
    activity_start: datetime | None = None,
    activity_end: datetime | None = None,
    salt: str | None = None,
    evidence: Iterable[tuple[str, str] | Evidence] = (),
    credential_status: BitstringStatusListEntry | Mapping[str, Any] | None = None,
    valid_until: datetime | None = None,
    subject_id: str | None = None,
    credential_schema: bool = True,
) -> OpenBadgeCredential:
    """The unsigned OpenBadgeCredential awarding `achievement` (its name and description name the
    credential too) with `results` (each refers to one of the achievement's result descriptions).

    The recipient is a salted e-mail hash (never the address; salt=None draws a random one, as
    every credential should have its own); activity dates; evidence as (name, narrative) pairs or
    Evidence models (pass only what the recipient agreed to share); the one credentialStatus entry
    (see badges.status.credential_status()); credentialSchema (1EdTech's achievement credential
    JSON schema); validFrom = awardedDate = issued_at and validUntil = valid_until.
    `.to_json_ld()` gives the dict for proof.sign() or vcjwt.sign_jwt().

    Building does not run JSON-LD: signing does, and refuses any term the contexts do not define
    (call badges.jsonld.ensure_all_terms_defined() to check earlier).
    """
    known = {description.id for description in achievement.result_description or []}
    for result in results:
        if result.result_description is not None and result.result_description not in known:
            raise ValueError(
                f"result for {result.result_description!r}, not a result description of the "
                "achievement"
            )
    salt = new_salt() if salt is None else salt
    if not salt:
        raise ValueError("the IdentityObject salt must not be empty")
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
        id=credential_id,
        name=achievement.name,
        description=achievement.description,
        issuer=issuer,
        valid_from=issued_at,
        valid_until=valid_until,
        awarded_date=issued_at,
        credential_subject=AchievementSubject(
            id=subject_id,
            identifier=[
                IdentityObject(
                    hashed=True,
                    identity_hash=hashed_email(recipient_email, salt),
                    identity_type="emailAddress",
                    salt=salt,
                )
            ],
            activity_start_date=activity_start,
            activity_end_date=activity_end,
            achievement=achievement,
            result=list(results) or None,
        ),
        evidence=_evidence(evidence) or None,
        credential_schema=(
            [CredentialSchema(id=ACHIEVEMENT_CREDENTIAL_SCHEMA, type=SCHEMA_VALIDATOR_TYPE)]
            if credential_schema
            else None
        ),
        credential_status=status,
    )
