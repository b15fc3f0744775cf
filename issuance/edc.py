"""The certified internship as a European Digital Credential (EDC): the European Learning Model
(ELM v3) in the EDC application profile's JSON-LD, the Commission's format for learning
achievements in Europass.

Built on demand from what the records keep of a certified internship (the plan, the two
assessments, the badge that was issued), never by the workflow: the same records give the same
document, ids included. What goes where, and what is left out because ELM has no place for it,
is in docs/badges/europass.md; `uploadable()` wraps it as the Europass issuer takes it for
sealing, and issuance/seal.py seals it with the institution's own certificate."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from i18n import gettext
from models.plan import InternshipPlan, Language, LearningOutcome

__all__ = [
    "EDC_CONTEXT",
    "EDC_SCHEMA",
    "AssessmentRecord",
    "CertifiedInternship",
    "LegalIdentifierRefused",
    "build_edc",
    "edc_credential_id_for",
    "legal_identifier_country",
    "uploadable",
    "workload_hours",
]


def _(message: str) -> str:
    """Marks a message for the catalogues; translated, in the credential's language, where it is
    used."""
    return message


#: The JSON-LD contexts of an EDC, as the Commission's samples name them: the W3C Verifiable
#: Credentials v1 context and the EDC application profile's (tests/europass/SOURCES.md).
VC_V1_CONTEXT: Final = "https://www.w3.org/2018/credentials/v1"
EDC_CONTEXT: Final = "http://data.europa.eu/snb/model/context/edc-ap"
#: The profile the credential says it follows (`credentialSchema`): the generic EDC profile.
EDC_SCHEMA: Final = "http://data.europa.eu/snb/model/ap/edc-generic-full"

#: The EU vocabularies' concepts used here. Each URI is as the Commission's sealed sample or
#: the EDC shapes give it; nothing is guessed (docs/badges/europass.md).
_GENERIC_PROFILE: Final = "http://data.europa.eu/snb/credential/e34929035b"
_CREDENTIAL_SCHEME: Final = "http://data.europa.eu/snb/credential/25831c2"
_LANGUAGE_SCHEME: Final = "http://publications.europa.eu/resource/authority/language"
_COUNTRY_SCHEME: Final = "http://publications.europa.eu/resource/authority/country"
_FILE_TYPE_SCHEME: Final = "http://publications.europa.eu/resource/authority/file-type"
_ENCODING_SCHEME: Final = "http://data.europa.eu/snb/encoding/25831c2"
_BASE64: Final = "http://data.europa.eu/snb/encoding/6146cde7dd"
_EQF_SCHEME: Final = "http://data.europa.eu/snb/eqf/25831c2"
_ESCO_SKILLS: Final = "http://data.europa.eu/esco/concept-scheme/skills"
#: An ESCO skill's own URI (the concept, not a page of the ESCO portal about it): only such a URI
#: is the outcome's `relatedESCOSkill`.
ESCO_SKILL_URI: Final = re.compile(r"^http://data\.europa\.eu/esco/skill/[A-Za-z0-9-]+$")

#: The plan's languages as the EU's language authority names them.
_LANGUAGES: Final[dict[Language, tuple[str, str]]] = {
    "en": ("ENG", "English"),
    "it": ("ITA", "Italian"),
    "de": ("DEU", "German"),
    "fr": ("FRA", "French"),
    "es": ("SPA", "Spanish"),
}

#: Country codes of a legal identifier (ETSI EN 319 412-1: ISO 3166-1 alpha-2, and EL for Greece
#: as VAT numbers write it) -> the EU country authority's code and English name. The EU and the
#: EEA, Switzerland, the United Kingdom and the countries that take part in Erasmus+ or are
#: candidates; another country is refused, naming these.
COUNTRIES: Final[dict[str, tuple[str, str]]] = {
    "AT": ("AUT", "Austria"),
    "BE": ("BEL", "Belgium"),
    "BG": ("BGR", "Bulgaria"),
    "HR": ("HRV", "Croatia"),
    "CY": ("CYP", "Cyprus"),
    "CZ": ("CZE", "Czechia"),
    "DK": ("DNK", "Denmark"),
    "EE": ("EST", "Estonia"),
    "FI": ("FIN", "Finland"),
    "FR": ("FRA", "France"),
    "DE": ("DEU", "Germany"),
    "EL": ("GRC", "Greece"),
    "GR": ("GRC", "Greece"),
    "HU": ("HUN", "Hungary"),
    "IE": ("IRL", "Ireland"),
    "IT": ("ITA", "Italy"),
    "LV": ("LVA", "Latvia"),
    "LT": ("LTU", "Lithuania"),
    "LU": ("LUX", "Luxembourg"),
    "MT": ("MLT", "Malta"),
    "NL": ("NLD", "Netherlands"),
    "PL": ("POL", "Poland"),
    "PT": ("PRT", "Portugal"),
    "RO": ("ROU", "Romania"),
    "SK": ("SVK", "Slovakia"),
    "SI": ("SVN", "Slovenia"),
    "ES": ("ESP", "Spain"),
    "SE": ("SWE", "Sweden"),
    "IS": ("ISL", "Iceland"),
    "LI": ("LIE", "Liechtenstein"),
    "NO": ("NOR", "Norway"),
    "CH": ("CHE", "Switzerland"),
    "GB": ("GBR", "United Kingdom"),
    "TR": ("TUR", "Türkiye"),
    "RS": ("SRB", "Serbia"),
    "MK": ("MKD", "North Macedonia"),
    "AL": ("ALB", "Albania"),
    "ME": ("MNE", "Montenegro"),
    "BA": ("BIH", "Bosnia and Herzegovina"),
    "UA": ("UKR", "Ukraine"),
    "MD": ("MDA", "Moldova"),
}

#: ETSI EN 319 412-1's legal person semantics identifier, as an eIDAS seal certificate carries it
#: in its subject's organizationIdentifier: VAT (a VAT number), NTR (a national trade register)
#: or PSD (a payment service provider), the country, a hyphen, the number. LEI's "XG" names no
#: country, and ELM needs one: refused, asking for the VAT or trade register form.
LEGAL_IDENTIFIER_PATTERN: Final = re.compile(
    r"^(VAT|NTR|PSD)([A-Z]{2})-[A-Za-z0-9][A-Za-z0-9./:+-]{0,62}$"
)


class LegalIdentifierRefused(ValueError):
    """Not an organisation identifier of the form an eIDAS seal certificate carries."""


def legal_identifier_country(legal_identifier: str) -> tuple[str, str]:
    """The EU country authority's code and English name of the identifier's country;
    LegalIdentifierRefused with what is expected."""
    found = LEGAL_IDENTIFIER_PATTERN.match(legal_identifier)
    if found is None:
        raise LegalIdentifierRefused(
            f"{legal_identifier!r} is not an organisation identifier as an eIDAS seal certificate "
            "gives it (ETSI EN 319 412-1): VAT, NTR or PSD, the country's two letters, a hyphen "
            "and the number, e.g. VATIT-01234567890 (LEI identifiers name no country: give the "
            "VAT or trade register one)"
        )
    country = COUNTRIES.get(found[2])
    if country is None:
        raise LegalIdentifierRefused(
            f"{legal_identifier!r}: country {found[2]!r} is not one internflow names in a "
            f"European Digital Credential (one of {', '.join(sorted(COUNTRIES))})"
        )
    return country


@dataclass(frozen=True)
class AssessmentRecord:
    """One assessor's levels as recorded (`submissions`), and when they were accepted."""

    assessor: Literal["mentor", "tutor"]
    levels: Mapping[str, str]
    assessed_at: datetime


@dataclass(frozen=True)
class CertifiedInternship:
    """What the records keep of a certified internship, as an EDC needs it."""

    plan: InternshipPlan
    """The plan in force at the end (the latest version)."""
    achieved_levels: Mapping[str, str]
    """Per learning outcome, the level the badge awarded (the lower of the two assessments)."""
    assessments: Sequence[AssessmentRecord]
    issued_at: datetime
    """When the institution's badge was issued: the EDC's issue and award date."""
    activity_start: datetime
    activity_end: datetime
    """The internship's dates in force, as its badge gives them."""
    institution_name: str
    """The institution's recorded name."""
    legal_identifier: str
    valid_until: datetime | None = None
    badge_credential_id: str | None = None
    paused: Sequence[tuple[datetime, datetime]] = ()
    """When the internship was paused: (paused at, resumed at) each."""


_UUID_NAMESPACE: Final = uuid.UUID("8d3b2a5e-51c4-4e0b-9a57-0c3b1f6e4a21")


def edc_credential_id_for(internship_id: str) -> str:
    """The internship's EDC: derived from the internship, so every download is the same
    credential (`urn:credential:<uuid>`, as the Europass issuer names credentials)."""
    return f"urn:credential:{uuid.uuid5(_UUID_NAMESPACE, 'edc:' + internship_id)}"


def _local_day(moment: datetime, time_zone: str) -> date:
    try:
        return moment.astimezone(ZoneInfo(time_zone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return moment.astimezone(UTC).date()


def _weekdays(first: date, last: date) -> set[date]:
    """The days from Monday to Friday from `first` to `last`, both included."""
    days = set()
    day = first
    while day <= last:
        if day.weekday() < 5:
            days.add(day)
        day += timedelta(days=1)
    return days


def workload_hours(
    weekly_hours: int,
    start: datetime,
    end: datetime,
    time_zone: str = "UTC",
    paused: Sequence[tuple[datetime, datetime]] = (),
) -> int:
    """The agreed workload in hours: the plan's weekly hours spread over Monday to Friday, for
    each such day of the period in force (in the plan's time zone) that the internship was not
    paused, rounded to the hour. internflow keeps no timesheets: public holidays and absences
    are not known to it, so this is the agreed figure, not a counted one."""
    days = _weekdays(_local_day(start, time_zone), _local_day(end, time_zone))
    for paused_at, resumed_at in paused:
        first = _local_day(paused_at, time_zone)
        last = _local_day(resumed_at, time_zone) - timedelta(days=1)
        days -= _weekdays(first, last)
    return max(1, round(weekly_hours * len(days) / 5))


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Builder:
    """The document's nodes, with ids derived from the credential (`urn:uuid:`), so that a
    rebuilt credential is the same document."""

    def __init__(self, certified: CertifiedInternship, credential_id: str) -> None:
        self.certified = certified
        self.plan = certified.plan
        self.language: Language = certified.plan.badge.language
        self._credential_uuid = uuid.UUID(credential_id.rsplit(":", 1)[1])

    def node_id(self, *names: str) -> str:
        return f"urn:uuid:{uuid.uuid5(self._credential_uuid, '/'.join(names))}"

    def text(self, value: str) -> dict[str, str]:
        """A language-tagged string in the credential's language (the plan's badge language:
        the language its texts are written in)."""
        return {self.language: value}

    def say(self, message: str, **values: object) -> dict[str, str]:
        return self.text(gettext(self.language, message, **values))

    @staticmethod
    def concept(
        concept_id: str, scheme: str, label: str | None = None, notation: str | None = None
    ) -> dict[str, Any]:
        node: dict[str, Any] = {
            "id": concept_id,
            "type": "Concept",
            "inScheme": {"id": scheme, "type": "ConceptScheme"},
        }
        if notation is not None:
            node["notation"] = notation
        if label is not None:
            node["prefLabel"] = {"en": label}
        return node

    def language_concept(self) -> dict[str, Any]:
        code, name = _LANGUAGES[self.language]
        return self.concept(f"{_LANGUAGE_SCHEME}/{code}", _LANGUAGE_SCHEME, name, "language")

    def country(self) -> dict[str, Any]:
        code, name = legal_identifier_country(self.certified.legal_identifier)
        return self.concept(f"{_COUNTRY_SCHEME}/{code}", _COUNTRY_SCHEME, name, "country")

    def institution(self) -> dict[str, Any]:
        """The institution as an ELM Organisation: its recorded name as legal name, its eIDAS
        legal identifier, the country that identifier names as its location's, its web site and
        its e-mail address."""
        plan = self.plan
        return {
            "id": self.node_id("organisation", "institution"),
            "type": "Organisation",
            "eIDASIdentifier": {
                "id": self.node_id("legal-identifier", "institution"),
                "type": "LegalIdentifier",
                "notation": self.certified.legal_identifier,
                "spatial": self.country(),
            },
            "legalName": self.text(self.certified.institution_name),
            "location": {
                "id": self.node_id("location", "institution"),
                "type": "Location",
                "address": {
                    "id": self.node_id("address", "institution"),
                    "type": "Address",
                    "countryCode": self.country(),
                },
            },
            "homepage": {
                "id": self.node_id("web-resource", "institution"),
                "type": "WebResource",
                "contentURL": plan.institution.url,
            },
            "contactPoint": {
                "id": self.node_id("contact-point", "institution"),
                "type": "ContactPoint",
                "emailAddress": {
                    "id": f"mailto:{plan.institution.email}",
                    "type": "Mailbox",
                },
            },
        }

    def host_company(self) -> dict[str, Any]:
        """The host company as an ELM Agent named by its name: an Organisation needs a location
        with a country, which internflow does not record for companies (docs/badges/europass.md)."""
        return {
            "id": self.node_id("agent", "host-company"),
            "type": "Agent",
            "prefLabel": self.text(self.plan.company.name),
        }

    def awarding_process(self) -> dict[str, Any]:
        """The institution awards every claim, on the day the badge was issued."""
        return {
            "id": self.node_id("awarding-process"),
            "type": "AwardingProcess",
            "awardingBody": self.institution(),
            "awardingDate": _moment(self.certified.issued_at),
        }

    def rubric_specification(self) -> dict[str, Any]:
        """How every outcome was assessed: on the plan's rubric, its levels from lowest to
        highest, each with its description."""
        levels = "; ".join(
            f"{level.name} ({level.description})" for level in self.plan.rubric.levels
        )
        return {
            "id": self.node_id("assessment-specification", "rubric"),
            "type": "LearningAssessmentSpecification",
            "title": self.say(_("Assessment on the internship's rubric")),
            "gradingScheme": {
                "id": self.node_id("grading-scheme", "rubric"),
                "type": "GradingScheme",
                "title": self.say(_("Rubric")),
                "description": self.say(
                    _("Levels from lowest to highest: %(levels)s"), levels=levels
                ),
            },
        }

    def level_name(self, level_id: str) -> str:
        return next(level.name for level in self.plan.rubric.levels if level.id == level_id)

    def assessments(self, outcome: LearningOutcome, achievement_id: str) -> dict[str, Any]:
        """The outcome's result as the institution validated it (the level the badge awarded),
        made of the company mentor's and the institution tutor's assessments, each with its level,
        who gave it (the host company, the institution) and when."""
        achieved = self.certified.achieved_levels[outcome.id]
        parts = []
        for record in sorted(self.certified.assessments, key=lambda r: r.assessor):
            level = record.levels.get(outcome.id)
            if level is None:
                continue
            if record.assessor == "mentor":
                title = _("%(outcome)s: assessment by the company mentor")
                assessor = self.host_company()
            else:
                title = _("%(outcome)s: assessment by the institution tutor")
                assessor = self.institution()
            parts.append(
                {
                    "id": self.node_id("assessment", outcome.id, record.assessor),
                    "type": "LearningAssessment",
                    "title": self.say(title, outcome=outcome.title),
                    "grade": self.grade(outcome.id, record.assessor, level),
                    "dateIssued": _moment(record.assessed_at),
                    "assessedBy": assessor,
                    "specifiedBy": self.rubric_specification(),
                    "awardedBy": self.awarding_process(),
                }
            )
        return {
            "id": self.node_id("assessment", outcome.id),
            "type": "LearningAssessment",
            "title": self.say(_("%(outcome)s: result"), outcome=outcome.title),
            "description": self.say(
                _(
                    "The lower of the levels the company mentor and the institution tutor gave, "
                    "validated by the institution. Required: %(required)s."
                ),
                required=self.level_name(outcome.required_level),
            ),
            "grade": self.grade(outcome.id, "result", achieved),
            "dateIssued": _moment(self.certified.issued_at),
            "assessedBy": self.institution(),
            "specifiedBy": self.rubric_specification(),
            "proves": {"id": achievement_id},
            "hasPart": parts,
            "awardedBy": self.awarding_process(),
        }

    def grade(self, outcome_id: str, who: str, level_id: str) -> dict[str, Any]:
        return {
            "id": self.node_id("grade", outcome_id, who),
            "type": "Note",
            "noteLiteral": self.text(self.level_name(level_id)),
        }

    def outcome_achievement(self, outcome: LearningOutcome, activity_id: str) -> dict[str, Any]:
        """A learning outcome as a LearningAchievement: its specification names the outcome (with
        its ESCO skill, when the plan gives one) and its EQF level; the assessments prove it;
        the internship influenced it."""
        achievement_id = self.node_id("achievement", outcome.id)
        learning_outcome: dict[str, Any] = {
            "id": self.node_id("learning-outcome", outcome.id),
            "type": "LearningOutcome",
            "title": self.text(outcome.title),
        }
        if outcome.esco_uri and ESCO_SKILL_URI.match(outcome.esco_uri):
            learning_outcome["relatedESCOSkill"] = self.concept(outcome.esco_uri, _ESCO_SKILLS)
        return {
            "id": achievement_id,
            "type": "LearningAchievement",
            "title": self.text(outcome.title),
            "description": self.text(outcome.description),
            "specifiedBy": {
                "id": self.node_id("achievement-specification", outcome.id),
                "type": "LearningAchievementSpecification",
                "title": self.text(outcome.title),
                "description": self.text(outcome.description),
                "learningOutcome": learning_outcome,
                "educationLevel": self.concept(
                    f"http://data.europa.eu/snb/eqf/{outcome.eqf_level}",
                    _EQF_SCHEME,
                    f"Level {outcome.eqf_level}",
                ),
            },
            "provenBy": self.assessments(outcome, achievement_id),
            "influencedBy": {"id": activity_id},
            "awardedBy": self.awarding_process(),
        }

    def activity(self, achievement_ids: list[str]) -> dict[str, Any]:
        """The internship as a LearningActivity: at the host company, its dates in force, its
        planned workload in hours, its id at the institution."""
        certified = self.certified
        hours = workload_hours(
            self.plan.weekly_hours,
            certified.activity_start,
            certified.activity_end,
            self.plan.period.time_zone,
            certified.paused,
        )
        return {
            "id": self.node_id("activity", "internship"),
            "type": "LearningActivity",
            "title": self.say(_("Internship at %(company)s"), company=self.plan.company.name),
            "identifier": {
                "id": self.node_id("identifier", "internship"),
                "type": "Identifier",
                "notation": self.plan.internship_id,
                "schemeName": "internflow internship id",
            },
            "temporal": {
                "id": self.node_id("period", "internship"),
                "type": "PeriodOfTime",
                "startDate": _moment(certified.activity_start),
                "endDate": _moment(certified.activity_end),
            },
            "workload": f"PT{hours}H",
            "directedBy": self.host_company(),
            "influences": [{"id": i} for i in achievement_ids],
            "awardedBy": self.awarding_process(),
        }

    def display(self, image_png: bytes) -> dict[str, Any]:
        """How Europass shows the credential: the badge's name and description, in the badge's
        language, and the badge image as its one page."""
        badge = self.plan.badge
        return {
            "id": self.node_id("display-parameter"),
            "type": "DisplayParameter",
            "title": self.text(badge.name),
            "description": self.text(badge.description),
            "language": self.language_concept(),
            "primaryLanguage": self.language_concept(),
            "individualDisplay": {
                "id": self.node_id("individual-display"),
                "type": "IndividualDisplay",
                "language": self.language_concept(),
                "displayDetail": {
                    "id": self.node_id("display-detail"),
                    "type": "DisplayDetail",
                    "page": 1,
                    "image": {
                        "id": self.node_id("media-object", "badge-image"),
                        "type": "MediaObject",
                        "content": base64.b64encode(image_png).decode("ascii"),
                        "contentEncoding": self.concept(_BASE64, _ENCODING_SCHEME, "base64"),
                        "contentType": self.concept(
                            f"{_FILE_TYPE_SCHEME}/PNG", _FILE_TYPE_SCHEME, "PNG", "file-type"
                        ),
                    },
                },
            },
        }


def build_edc(certified: CertifiedInternship, *, image_png: bytes) -> dict[str, Any]:
    """The unsigned EDC of a certified internship (see the module's docstring), as a JSON-LD
    document. ValueError when the records do not fit the plan (an outcome without an awarded
    level, a level that is not the rubric's); LegalIdentifierRefused for a legal identifier
    that is not one."""
    plan = certified.plan
    legal_identifier_country(certified.legal_identifier)
    level_ids = {level.id for level in plan.rubric.levels}
    for outcome in plan.learning_outcomes:
        if certified.achieved_levels.get(outcome.id) not in level_ids:
            raise ValueError(f"learning outcome {outcome.id!r} has no awarded rubric level")
    for record in certified.assessments:
        unknown = set(record.levels.values()) - level_ids
        if unknown:
            raise ValueError(f"the {record.assessor}'s assessment gives unknown levels {unknown}")
    credential_id = edc_credential_id_for(plan.internship_id)
    build = _Builder(certified, credential_id)
    activity_id = build.node_id("activity", "internship")
    outcomes = [build.outcome_achievement(o, activity_id) for o in plan.learning_outcomes]
    badge = plan.badge
    achievement_id = build.node_id("achievement", "badge")
    specification: dict[str, Any] = {
        "id": build.node_id("achievement-specification", "badge"),
        "type": "LearningAchievementSpecification",
        "title": build.text(badge.name),
        "description": build.text(badge.description),
        "additionalNote": {
            "id": build.node_id("note", "criteria"),
            "type": "Note",
            "noteLiteral": build.text(badge.criteria),
        },
        "learningOutcome": [o["specifiedBy"]["learningOutcome"] for o in outcomes],
    }
    achievement: dict[str, Any] = {
        "id": achievement_id,
        "type": "LearningAchievement",
        "title": build.text(badge.name),
        "description": build.text(badge.description),
        "specifiedBy": specification,
        "hasPart": outcomes,
        "influencedBy": {"id": activity_id},
        "awardedBy": build.awarding_process(),
    }
    credential: dict[str, Any] = {
        "@context": [VC_V1_CONTEXT, EDC_CONTEXT],
        "id": credential_id,
        "type": ["VerifiableCredential", "EuropeanDigitalCredential"],
        "credentialProfiles": build.concept(_GENERIC_PROFILE, _CREDENTIAL_SCHEME, "Generic"),
        "credentialSchema": {"id": EDC_SCHEMA, "type": "ShaclValidator2017"},
        "displayParameter": build.display(image_png),
        "issuer": build.institution(),
        "issued": _moment(certified.issued_at),
        "issuanceDate": _moment(certified.issued_at),
        "validFrom": _moment(certified.issued_at),
        "credentialSubject": {
            "id": build.node_id("person", "intern"),
            "type": "Person",
            "fullName": build.text(plan.intern.name),
            "contactPoint": {
                "id": build.node_id("contact-point", "intern"),
                "type": "ContactPoint",
                "emailAddress": {"id": f"mailto:{plan.intern.email}", "type": "Mailbox"},
            },
            "hasClaim": [
                achievement,
                build.activity([achievement_id, *(o["id"] for o in outcomes)]),
            ],
        },
    }
    if certified.valid_until is not None:
        credential["validUntil"] = _moment(certified.valid_until)
        credential["expirationDate"] = _moment(certified.valid_until)
    return credential


def uploadable(credential: Mapping[str, Any]) -> dict[str, Any]:
    """The Europass issuer's "unsigned uploadable" form of an unsigned EDC: the credential under
    `credential`, as the Commission's sample gives it, for the institution to upload and seal
    with its eIDAS seal there."""
    return {"credential": dict(credential)}
