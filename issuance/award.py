"""What the badge says about an internship: the plan mapped onto Open Badges parts (the
achievement with its learning outcomes as rubric result descriptions aligned to ESCO and EQF, the
results achieved, the issuer, the intern), built by badges/credential.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from badges.credential import (
    EQF_FRAMEWORK,
    achievement_id_for,
    build_achievement_credential,
    eqf_level_uri,
)
from badges.models import (
    Achievement,
    Alignment,
    BitstringStatusListEntry,
    Criteria,
    Evidence,
    Image,
    OpenBadgeCredential,
    Profile,
    Result,
    ResultDescription,
    RubricCriterionLevel,
)
from i18n import gettext
from models.ids import credential_id_for
from models.plan import InternshipPlan, LearningOutcome

__all__ = ["build_credential", "build_credential_model"]


def _(message: str) -> str:
    """Marks a message for the catalogues; translated where it is used."""
    return message


#: The name of the result description that carries the intern's own level for an outcome, in
#: the badge's language.
SELF_ASSESSMENT_NAME = _("%(outcome)s: the learner's own self-assessment (not the assessed level)")


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


def _achievement(
    plan: InternshipPlan,
    achieved_levels: Mapping[str, str],
    issuer_id: str,
    image_url: str,
    self_assessed_levels: Mapping[str, str] | None = None,
) -> tuple[Achievement, list[Result]]:
    """The plan's badge template as an Achievement (a rubric ResultDescription per learning
    outcome), and a Result per achieved outcome. With the intern's agreement, their final
    self-assessment follows each assessed result as its own Result, on a ResultDescription of its
    own named as the learner's self-assessment (on the same rubric), so that no reader can take
    it for the assessed level."""
    self_assessed = dict(self_assessed_levels or {})
    level_ids = {level.id for level in plan.rubric.levels}
    outcome_ids = {outcome.id for outcome in plan.learning_outcomes}
    for outcome_id, level_id in [*achieved_levels.items(), *self_assessed.items()]:
        if outcome_id not in outcome_ids:
            raise ValueError(f"achieved level for unknown learning outcome {outcome_id!r}")
        if level_id not in level_ids:
            raise ValueError(f"outcome {outcome_id!r}: {level_id!r} is not a rubric level")

    achievement_id = achievement_id_for(issuer_id, plan.badge.name)
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
        if outcome.id in self_assessed:
            own_id = f"{description_id}:self-assessment"
            result_descriptions.append(
                ResultDescription(
                    id=own_id,
                    name=gettext(
                        plan.badge.language,
                        SELF_ASSESSMENT_NAME,
                        outcome=outcome.title,
                    ),
                    result_type="RubricCriterionLevel",
                    rubric_criterion_level=[
                        RubricCriterionLevel(
                            id=f"{own_id}:level:{level.id}",
                            name=level.name,
                            description=level.description,
                        )
                        for level in plan.rubric.levels
                    ],
                )
            )
            results.append(
                Result(
                    result_description=own_id,
                    achieved_level=f"{own_id}:level:{self_assessed[outcome.id]}",
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
    return achievement, results


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
    self_assessed_levels: Mapping[str, str] | None = None,
) -> OpenBadgeCredential:
    """The unsigned credential as a model; see build_credential()."""
    achievement, results = _achievement(
        plan, achieved_levels, issuer_id, image_url, self_assessed_levels
    )
    if valid_until is None and plan.badge.valid_for is not None:
        valid_until = issued_at + plan.badge.valid_for
    return build_achievement_credential(
        achievement,
        results,
        credential_id=credential_id_for(plan.internship_id),
        issuer=Profile(
            id=issuer_id,
            name=plan.institution.name,
            url=plan.institution.url,
            email=plan.institution.email,
            image=Image(id=issuer_image_url) if issuer_image_url else None,
        ),
        recipient_email=plan.intern.email,
        issued_at=issued_at,
        activity_start=plan.period.start,
        activity_end=plan.period.end,
        salt=salt,
        evidence=evidence,
        credential_status=credential_status,
        valid_until=valid_until,
        subject_id=subject_id,
        credential_schema=credential_schema,
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
    self_assessed_levels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The unsigned credential as a JSON-LD dict, ready for proof.sign() or vcjwt.sign_jwt().

    Issuer profile (name, url, e-mail, optional image); the achievement from the plan's badge
    template with each learning outcome aligned to its ESCO skill and EQF level, a rubric
    ResultDescription per outcome and a Result per achieved outcome; the intern as a salted
    e-mail hash (never the address; salt=None draws a random one, as every credential should
    have its own); activity dates; evidence as (name, narrative) pairs or Evidence models (pass
    only what the intern agreed to share); the one credentialStatus entry (see
    badges.status.credential_status()); credentialSchema (1EdTech's achievement credential JSON
    schema); validFrom = issued_at and validUntil = valid_until, else issued_at + the template's
    valid_for. See badges.credential.build_achievement_credential().
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
        self_assessed_levels=self_assessed_levels,
    ).to_json_ld()
