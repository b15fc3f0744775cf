"""The internship plan: parties, period, learning outcomes, milestones, deadlines and badge."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated, Final, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from models.base import Email, Identifier, Name, StrictModel, Text, Url

Language = Literal["en", "it", "de", "fr", "es"]
"""The languages e-mails and pages are written in (`i18n/locale/<language>`); English is the
source text."""
Party = Literal["intern", "tutor", "mentor"]
"""The three parties of the learning agreement: the intern, the institution tutor and the company
mentor (who speaks for the host company)."""

PARTIES: tuple[Party, ...] = ("intern", "tutor", "mentor")

SignerRole = Literal[
    "guardian", "company_representative", "sending_coordinator", "receiving_coordinator"
]
"""Who else may sign the learning agreement, when the plan names them: the intern's guardian
(when the intern is a minor), the host company's legal representative (beside the mentor), and
the coordinators of the sending and the receiving institution."""
SIGNER_ROLES: tuple[SignerRole, ...] = get_args(SignerRole)

Signatory = Literal[Party, SignerRole]
"""Anyone whose approval the learning agreement may need: the three parties always, the optional
signers when the plan names them."""
SIGNATORIES: tuple[Signatory, ...] = (*PARTIES, *SIGNER_ROLES)


class Problems:
    """The broken cross-field rules of one model, raised together as one ValidationError whose
    errors carry each field's location (pydantic prefixes the enclosing fields')."""

    def __init__(self) -> None:
        self.found: list[InitErrorDetails] = []

    def add(self, loc: tuple[str | int, ...], message: str, value: object) -> None:
        self.found.append(
            InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=value)
        )

    def unique(self, loc: tuple[str | int, ...], ids: list[str]) -> None:
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            listed = ", ".join(repr(i) for i in duplicates)
            self.add(
                loc,
                f"has duplicate ids: {listed} (each id once: rename or remove the repeats)",
                duplicates,
            )

    def raise_any(self, model: BaseModel) -> None:
        if self.found:
            raise ValidationError.from_exception_data(type(model).__name__, self.found)


class Person(StrictModel):
    id: Identifier
    name: Name
    email: Email
    language: Language = "en"


class Signer(Person):
    """An optional signer of the learning agreement, with their own contact and language: asked,
    reminded and bound by the deadline like the three parties."""

    role: SignerRole


class Institution(StrictModel):
    id: Identifier
    name: Name
    url: Url
    email: Email


class Company(StrictModel):
    id: Identifier
    name: Name
    contact_email: Email


class Period(StrictModel):
    start: AwareDatetime
    end: AwareDatetime
    time_zone: str = Field("Europe/Rome", pattern=r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$")


class LearningOutcome(StrictModel):
    id: Identifier
    title: Name
    description: Text
    eqf_level: int = Field(ge=1, le=8)
    esco_uri: Url | None = None
    required_level: Identifier
    """The lowest rubric level that counts as achieved."""


class Milestone(StrictModel):
    id: Identifier
    kind: Literal["check-in", "progress-report", "mid-term-review", "final-report"]
    title: Name
    due: AwareDatetime
    submitted_by: tuple[Literal["intern", "mentor"], ...] = Field(min_length=1)
    """Who must submit: the intern a report, the mentor the company's feedback."""
    self_assessment: bool = False
    """The intern also assesses themself on the plan's rubric at this milestone (asked with the
    report, so the milestone must ask the intern for one). Never part of the pass rule."""


class ReminderPolicy(StrictModel):
    """When parties are asked, reminded and escalated: milestone steps are relative to the due
    date, agreement reminders to the agreement deadline, the assessment reminder to the end of
    the assessment window."""

    request_before: timedelta = timedelta(days=7)
    remind_after: timedelta = timedelta(days=0)
    escalate_after: timedelta = timedelta(days=3)
    missed_after: timedelta = timedelta(days=7)
    agreement_reminders: tuple[timedelta, ...] = (timedelta(days=3),)
    """How long before the agreement deadline to remind parties who have not approved yet."""
    assessment_reminder: timedelta = timedelta(days=3)
    """How long before the assessment window closes to remind an assessor who has not assessed."""

    @model_validator(mode="after")
    def _ordered(self) -> ReminderPolicy:
        problems = Problems()
        if self.request_before < timedelta(0):
            problems.add(("request_before",), "must not be negative", self.request_before)
        if not timedelta(0) <= self.remind_after < self.escalate_after < self.missed_after:
            problems.add((), "needs 0 <= remind_after < escalate_after < missed_after", None)
        problems.raise_any(self)
        return self


class RubricLevel(StrictModel):
    id: Identifier
    name: Name
    description: Text


class Rubric(StrictModel):
    """The levels on which every learning outcome is rated, from lowest to highest."""

    levels: tuple[RubricLevel, ...] = Field(min_length=2)

    def rank(self, level_id: str) -> int:
        return [level.id for level in self.levels].index(level_id)


STORED_IMAGE: Final = re.compile(r"^sha256-(?P<digest>[0-9a-f]{64})\.(?P<extension>png|svg)$")
"""A school's own image once stored: named by the SHA-256 of its content."""

BadgeImage = Annotated[
    str,
    StringConstraints(
        pattern=r"^(data:.*|sha256-[0-9a-f]{64}\.(png|svg)|[a-z0-9][a-z0-9._-]{0,62}\.png)$",
        max_length=800_000,
    ),
]
"""A school's image as a data: URI, a stored image's name, or a shipped image's file name."""

HexColour = Annotated[
    str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$", to_lower=True, strip_whitespace=True)
]


class BadgeTemplate(StrictModel):
    name: Name
    description: Text
    criteria: Text
    image: BadgeImage | None = None
    """The badge image: none, and internflow draws one from the institution's name, the badge's
    name, the highest EQF level of the learning outcomes and `colour`; a school's own PNG or SVG
    as a `data:` URI (the CLI reads a file named here from disk, beside the plan), stored where
    the plan comes in and named from then on by its content's hash (`sha256-<hex>.png`); or the
    name of an image shipped with internflow (`badge.png`, what plans before drawn images named).
    """
    colour: HexColour | None = None
    """The drawn image's colour (`#rrggbb`); none: one of the institution's own, derived from its
    id."""
    achievement_type: Literal["Badge", "Certificate", "MicroCredential", "Competency"] = "Badge"
    tags: tuple[Name, ...] = ()
    language: Language = "en"
    """The language the name, description and criteria are written in (the achievement's
    inLanguage); the default keeps plans written before this field loading as they were."""
    valid_for: timedelta | None = None
    """If set, the credential's validUntil is this long after it is issued."""
    proof_format: Literal["data-integrity", "vc-jwt"] = "data-integrity"
    """How the badge is secured: an embedded Data Integrity proof (eddsa-rdfc-2022, the default
    1EdTech certifies) or a VC-JWT signed with the issuer's RSA key (RS256)."""


class InternshipPlan(StrictModel):
    """Everything agreed for one internship; every deadline is data here, never code."""

    internship_id: Identifier
    version: int = Field(1, ge=1)
    intern: Person
    institution: Institution
    tutor: Person
    company: Company
    mentor: Person
    period: Period
    mode: Literal["on-site", "remote", "hybrid"]
    weekly_hours: int = Field(ge=1, le=60)
    agreement_deadline: AwareDatetime
    learning_outcomes: tuple[LearningOutcome, ...] = Field(min_length=1)
    milestones: tuple[Milestone, ...] = Field(min_length=1)
    reminder_policy: ReminderPolicy = ReminderPolicy()
    rubric: Rubric
    assessment_window: timedelta = timedelta(days=14)
    """After the end date: how long the mentor and the tutor have to assess."""
    validation_window: timedelta = timedelta(days=7)
    """After both assessments: how long the institution has to validate the result."""
    badge: BadgeTemplate
    signers: tuple[Signer, ...] = ()
    """Who signs the learning agreement besides the intern, the tutor and the mentor (each role
    at most once); plans written before this field have none."""

    @model_validator(mode="after")
    def _consistent(self) -> InternshipPlan:
        """Every rule that spans fields, each broken one reported with its field (not only the
        first)."""
        problems = Problems()
        start, end = self.period.start, self.period.end
        if self.agreement_deadline > start:
            problems.add(
                ("agreement_deadline",),
                "must not be after period.start (agreement_deadline <= period.start < period.end)",
                self.agreement_deadline,
            )
        if start >= end:
            problems.add(
                ("period", "end"),
                "must be after period.start (agreement_deadline <= period.start < period.end)",
                end,
            )
        for name in ("assessment_window", "validation_window"):
            if getattr(self, name) <= timedelta(0):
                problems.add((name,), "must be positive", getattr(self, name))
        roles = [signer.role for signer in self.signers]
        for role in sorted({role for role in roles if roles.count(role) > 1}):
            twice = [signer.id for signer in self.signers if signer.role == role]
            problems.add(
                ("signers",),
                f"names {len(twice)} signers with the role {role!r} "
                f"({', '.join(repr(i) for i in twice)}): each role signs at most once, so keep "
                f"one {role} and remove the others",
                twice,
            )
        problems.unique(("learning_outcomes",), [o.id for o in self.learning_outcomes])
        problems.unique(("milestones",), [m.id for m in self.milestones])
        problems.unique(("rubric", "levels"), [level.id for level in self.rubric.levels])
        level_ids = {level.id for level in self.rubric.levels}
        for n, outcome in enumerate(self.learning_outcomes):
            if outcome.required_level not in level_ids:
                problems.add(
                    ("learning_outcomes", n, "required_level"),
                    f"learning outcome {outcome.id!r}: {outcome.required_level!r} is not a "
                    f"rubric level (choose one of {sorted(level_ids)})",
                    outcome.required_level,
                )
        for n, milestone in enumerate(self.milestones):
            if milestone.self_assessment and "intern" not in milestone.submitted_by:
                problems.add(
                    ("milestones", n, "self_assessment"),
                    f"milestone {milestone.id!r} asks for a self-assessment, so its "
                    "submitted_by must name the intern",
                    milestone.self_assessment,
                )
            if start < end and not start <= milestone.due <= end:
                problems.add(
                    ("milestones", n, "due"),
                    f"milestone {milestone.id!r} is due outside the internship period "
                    f"({start.isoformat()} to {end.isoformat()})",
                    milestone.due,
                )
        problems.raise_any(self)
        return self

    def retimed(
        self, internship_id: str, agreement_deadline: datetime, factor: float = 1.0
    ) -> InternshipPlan:
        """The same plan under another id, moved so that its agreement deadline falls on
        `agreement_deadline`, with every later date and every duration scaled by `factor` (a demo
        compresses months into a minute; tests move a plan to the present)."""

        def moment(value: datetime) -> datetime:
            return agreement_deadline + (value - self.agreement_deadline) * factor

        data = self.model_dump()
        data["internship_id"] = internship_id
        data["agreement_deadline"] = agreement_deadline
        data["period"]["start"] = moment(self.period.start)
        data["period"]["end"] = moment(self.period.end)
        for milestone in data["milestones"]:
            milestone["due"] = moment(milestone["due"])
        for key, value in data["reminder_policy"].items():
            if isinstance(value, tuple):
                data["reminder_policy"][key] = tuple(item * factor for item in value)
            else:
                data["reminder_policy"][key] = value * factor
        data["assessment_window"] = self.assessment_window * factor
        data["validation_window"] = self.validation_window * factor
        return InternshipPlan.model_validate(data)

    def changed_sections(self, other: InternshipPlan) -> set[str]:
        """The top-level sections in which `other` differs from this plan (version aside)."""
        mine, theirs = self.model_dump(), other.model_dump()
        return {key for key in mine if key != "version" and mine[key] != theirs[key]}

    def signatories(self) -> tuple[Signatory, ...]:
        """Everyone whose approval this version of the learning agreement needs, in a fixed order:
        the three parties, then the plan's signers."""
        named = {signer.role for signer in self.signers}
        return (*PARTIES, *(role for role in SIGNER_ROLES if role in named))

    def person(self, party: Signatory) -> Person:
        """The person in a role the plan names (a party, or one of its signers)."""
        found = {"intern": self.intern, "tutor": self.tutor, "mentor": self.mentor}.get(party)
        if found is None:
            found = next((s for s in self.signers if s.role == party), None)
        if found is None:
            raise ValueError(f"this plan has no {party}")
        return found

    def eqf_level(self) -> int:
        """The highest EQF level among the learning outcomes (what the drawn badge image shows)."""
        return max(outcome.eqf_level for outcome in self.learning_outcomes)

    def milestone(self, milestone_id: str) -> Milestone | None:
        return next((m for m in self.milestones if m.id == milestone_id), None)
