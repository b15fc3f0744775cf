"""Pydantic models of the Open Badges 3.0 data model that internflow emits and reads back."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "ACHIEVEMENT_TYPES",
    "ALIGNMENT_TARGET_TYPES",
    "LENIENT",
    "RESULT_STATUSES",
    "RESULT_TYPES",
    "Achievement",
    "AchievementSubject",
    "Alignment",
    "BitstringStatusList",
    "BitstringStatusListCredential",
    "BitstringStatusListEntry",
    "CredentialSchema",
    "Criteria",
    "DataIntegrityProof",
    "DateTime",
    "Evidence",
    "IdentityObject",
    "Image",
    "OpenBadgeCredential",
    "Profile",
    "Result",
    "ResultDescription",
    "RubricCriterionLevel",
    "format_datetime",
]

# Enumerations of the OB 3.0 data model; each also accepts an extension value 'ext:...'.
ACHIEVEMENT_TYPES: Final = frozenset(
    {
        "Achievement",
        "ApprenticeshipCertificate",
        "Assessment",
        "Assignment",
        "AssociateDegree",
        "Award",
        "Badge",
        "BachelorDegree",
        "Certificate",
        "CertificateOfCompletion",
        "Certification",
        "CommunityService",
        "Competency",
        "Course",
        "CoCurricular",
        "Degree",
        "Diploma",
        "DoctoralDegree",
        "Fieldwork",
        "GeneralEducationDevelopment",
        "JourneymanCertificate",
        "LearningProgram",
        "License",
        "Membership",
        "ProfessionalDoctorate",
        "QualityAssuranceCredential",
        "MasterCertificate",
        "MasterDegree",
        "MicroCredential",
        "ResearchDoctorate",
        "SecondarySchoolDiploma",
    }
)
ALIGNMENT_TARGET_TYPES: Final = frozenset(
    {
        "ceasn:Competency",
        "ceterms:Credential",
        "CFItem",
        "CFRubric",
        "CFRubricCriterion",
        "CFRubricCriterionLevel",
        "CTDL",
    }
)
RESULT_TYPES: Final = frozenset(
    {
        "GradePointAverage",
        "LetterGrade",
        "Percent",
        "PerformanceLevel",
        "PredictedScore",
        "RawScore",
        "Result",
        "RubricCriterion",
        "RubricCriterionLevel",
        "RubricScore",
        "ScaledScore",
        "Status",
    }
)
RESULT_STATUSES: Final = frozenset(
    {"Completed", "Enrolled", "Failed", "InProgress", "OnHold", "Provisional", "Withdrew"}
)

LENIENT: Final = {"lenient": True}
"""Validation context for reading a credential someone else issued: properties the models do not
know are ignored (JSON-LD safe mode, not these models, decides whether they are defined)."""

_IDENTITY_HASH = re.compile(r"^(sha256\$[0-9a-fA-F]{64}|md5\$[0-9a-fA-F]{32})$")


def format_datetime(moment: datetime) -> str:
    """An XML Schema dateTime in UTC to the second, as credentials carry it (...Z)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a credential date-time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


DateTime = Annotated[AwareDatetime, PlainSerializer(format_datetime, return_type=str)]


def _one_of(value: str, allowed: frozenset[str], what: str) -> str:
    if value in allowed or (value.startswith("ext:") and len(value) > 4):
        return value
    raise ValueError(f"{value!r} is not an Open Badges {what} (nor an 'ext:' extension value)")


class OBModel(BaseModel):
    """Base: JSON-LD names as aliases, unknown properties refused when the project builds."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )
    # Types the 'type' list must contain: one name out of each set.
    required_types: ClassVar[tuple[frozenset[str], ...]] = ()
    # Whether reading with the LENIENT context may ignore unknown properties.
    lenient_extras: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _drop_unknown_when_lenient(cls, data: Any, info: ValidationInfo) -> Any:
        if not (isinstance(data, dict) and info.context and info.context.get("lenient")):
            return data
        if not cls.lenient_extras:
            return data
        known = _known_names(cls)
        return {key: value for key, value in data.items() if key in known}

    @field_validator("type", mode="before", check_fields=False)
    @classmethod
    def _type_list(cls, value: Any) -> Any:
        if isinstance(value, str) and cls.required_types:
            value = [value]
        if isinstance(value, list):
            for alternatives in cls.required_types:
                if not alternatives.intersection(value):
                    names = " or ".join(sorted(alternatives))
                    raise ValueError(f"type must include {names}")
        return value

    def to_json_ld(self) -> dict[str, Any]:
        """The JSON-LD object: JSON-LD property names, no null values."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


@functools.cache
def _known_names(model: type[OBModel]) -> frozenset[str]:
    """The property names a model reads (its aliases), computed once per model class."""
    return frozenset(field.alias or name for name, field in model.model_fields.items())


class Image(OBModel):
    id: str
    type: Literal["Image"] = "Image"
    caption: str | None = None


class Criteria(OBModel):
    id: str | None = None
    narrative: str | None = None

    @model_validator(mode="after")
    def _id_or_narrative(self) -> Criteria:
        if self.id is None and self.narrative is None:
            raise ValueError("criteria needs an id or a narrative")
        return self


class Alignment(OBModel):
    required_types = (frozenset({"Alignment"}),)

    type: list[str] = Field(default_factory=lambda: ["Alignment"])
    target_name: str
    target_url: str
    target_description: str | None = None
    target_framework: str | None = None
    target_code: str | None = None
    target_type: str | None = None

    @field_validator("target_type")
    @classmethod
    def _target_type(cls, value: str | None) -> str | None:
        return None if value is None else _one_of(value, ALIGNMENT_TARGET_TYPES, "targetType")


class RubricCriterionLevel(OBModel):
    required_types = (frozenset({"RubricCriterionLevel"}),)

    id: str
    type: list[str] = Field(default_factory=lambda: ["RubricCriterionLevel"])
    name: str
    description: str | None = None
    level: str | None = None
    points: str | None = None
    alignment: list[Alignment] | None = None


class ResultDescription(OBModel):
    required_types = (frozenset({"ResultDescription"}),)

    id: str
    type: list[str] = Field(default_factory=lambda: ["ResultDescription"])
    name: str
    result_type: str
    required_level: str | None = None
    rubric_criterion_level: list[RubricCriterionLevel] | None = None
    alignment: list[Alignment] | None = None

    @field_validator("result_type")
    @classmethod
    def _result_type(cls, value: str) -> str:
        return _one_of(value, RESULT_TYPES, "resultType")


class Result(OBModel):
    required_types = (frozenset({"Result"}),)

    type: list[str] = Field(default_factory=lambda: ["Result"])
    result_description: str | None = None
    achieved_level: str | None = None
    status: str | None = None
    value: str | None = None

    @field_validator("status")
    @classmethod
    def _status(cls, value: str | None) -> str | None:
        if value is not None and value not in RESULT_STATUSES:
            raise ValueError(f"{value!r} is not an Open Badges result status")
        return value


class Achievement(OBModel):
    required_types = (frozenset({"Achievement"}),)

    id: str
    type: list[str] = Field(default_factory=lambda: ["Achievement"])
    name: str
    description: str
    criteria: Criteria
    achievement_type: str | None = None
    image: Image | None = None
    in_language: str | None = None
    tag: list[str] | None = None
    alignment: list[Alignment] | None = None
    result_description: list[ResultDescription] | None = None
    human_code: str | None = None
    field_of_study: str | None = None

    @field_validator("achievement_type")
    @classmethod
    def _achievement_type(cls, value: str | None) -> str | None:
        return None if value is None else _one_of(value, ACHIEVEMENT_TYPES, "achievementType")


class IdentityObject(OBModel):
    """A recipient identifier; salted and hashed for e-mail addresses. No other properties."""

    lenient_extras = False

    type: Literal["IdentityObject"] = "IdentityObject"
    hashed: bool
    identity_hash: str
    identity_type: str
    salt: str | None = None

    @model_validator(mode="after")
    def _hash_form(self) -> IdentityObject:
        if self.hashed and not _IDENTITY_HASH.match(self.identity_hash):
            raise ValueError("a hashed identityHash is 'sha256$' + 64 hex digits (or 'md5$' + 32)")
        return self


class AchievementSubject(OBModel):
    required_types = (frozenset({"AchievementSubject"}),)

    id: str | None = None
    type: list[str] = Field(default_factory=lambda: ["AchievementSubject"])
    identifier: list[IdentityObject] | None = None
    achievement: Achievement
    activity_start_date: DateTime | None = None
    activity_end_date: DateTime | None = None
    result: list[Result] | None = None
    narrative: str | None = None

    @field_validator("identifier", mode="before")
    @classmethod
    def _identifier_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _identified(self) -> AchievementSubject:
        if self.id is None and not self.identifier:
            raise ValueError("credentialSubject needs an id or an identifier")
        return self


class Profile(OBModel):
    required_types = (frozenset({"Profile"}),)

    id: str
    type: list[str] = Field(default_factory=lambda: ["Profile"])
    name: str | None = None
    url: str | None = None
    email: str | None = None
    image: Image | None = None
    description: str | None = None


class Evidence(OBModel):
    required_types = (frozenset({"Evidence"}),)

    id: str | None = None
    type: list[str] = Field(default_factory=lambda: ["Evidence"])
    name: str | None = None
    narrative: str | None = None
    description: str | None = None
    genre: str | None = None
    audience: str | None = None


class CredentialSchema(OBModel):
    id: str
    type: str


class BitstringStatusListEntry(OBModel):
    id: str | None = None
    type: Literal["BitstringStatusListEntry"] = "BitstringStatusListEntry"
    status_purpose: str
    status_list_index: str
    status_list_credential: str

    @field_validator("status_list_index")
    @classmethod
    def _index(cls, value: str) -> str:
        if not value.isdigit() or (len(value) > 1 and value.startswith("0")):
            raise ValueError("statusListIndex is a non-negative integer written as a string")
        return value


class DataIntegrityProof(OBModel):
    type: str
    cryptosuite: str | None = None
    created: str | None = None
    verification_method: str
    proof_purpose: str
    proof_value: str | None = None


class OpenBadgeCredential(OBModel):
    required_types = (
        frozenset({"VerifiableCredential"}),
        frozenset({"OpenBadgeCredential", "AchievementCredential"}),
    )

    context: list[str] = Field(alias="@context", min_length=2)
    id: str
    type: list[str] = Field(default_factory=lambda: ["VerifiableCredential", "OpenBadgeCredential"])
    name: str | None = None
    description: str | None = None
    image: Image | None = None
    issuer: Profile
    valid_from: DateTime
    valid_until: DateTime | None = None
    awarded_date: DateTime | None = None
    credential_subject: AchievementSubject
    evidence: list[Evidence] | None = None
    credential_schema: list[CredentialSchema] | None = None
    credential_status: BitstringStatusListEntry | list[BitstringStatusListEntry] | None = None
    proof: DataIntegrityProof | list[DataIntegrityProof] | None = None

    @model_validator(mode="after")
    def _window(self) -> OpenBadgeCredential:
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("validUntil must be later than validFrom")
        return self


class BitstringStatusList(OBModel):
    id: str | None = None
    type: Literal["BitstringStatusList"] = "BitstringStatusList"
    status_purpose: str
    encoded_list: str
    ttl: int | None = Field(default=None, ge=0)
    """How long a verifier may keep the list before fetching it again, in milliseconds."""


class BitstringStatusListCredential(OBModel):
    required_types = (
        frozenset({"VerifiableCredential"}),
        frozenset({"BitstringStatusListCredential"}),
    )

    context: list[str] = Field(alias="@context", min_length=1)
    id: str
    type: list[str] = Field(
        default_factory=lambda: ["VerifiableCredential", "BitstringStatusListCredential"]
    )
    issuer: str | Profile
    valid_from: DateTime
    valid_until: DateTime | None = None
    credential_subject: BitstringStatusList
    proof: DataIntegrityProof | list[DataIntegrityProof] | None = None
