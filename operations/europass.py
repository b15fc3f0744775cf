"""Every badge also as a European Digital Credential (EDC, ELM v3): built on demand from the
records of a certified internship (its plan, its two assessments, its badge), never by the
workflow, in one of three forms:

- `uploadable`: the Europass issuer's "unsigned uploadable" JSON, for the institution to upload
  there and seal with its eIDAS seal;
- `unsigned`: the bare credential (JSON-LD), for whoever wants to read it;
- `sealed`: sealed here with the institution's own seal certificate (JAdES), when it has one
  (`<seal dir>/<institution id>.p12`).

Refused, saying why: an internship without a badge, a revoked or suspended badge, an institution
without a legal identifier (naming the institution and how to set it), a seal asked of an
institution without one, or a seal certificate that is not the institution's."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, TypeAlias, get_args

import asyncpg
import structlog

from issuance.edc import (
    AssessmentRecord,
    CertifiedInternship,
    LegalIdentifierRefused,
    build_edc,
    uploadable,
)
from issuance.seal import SealCertificate, SealRefused, load_seal, seal
from mail.badge import drawn_artwork, template_artwork
from models.evaluation import achieved_levels
from models.plan import InternshipPlan
from models.submissions import Assessment
from operations import credentials as creds
from operations.internships import InternshipNotFound, OperationRejected
from operations.organisations import europass_needs
from records import read
from runtime.settings import Settings

log = structlog.get_logger(__name__)

Form = Literal["uploadable", "unsigned", "sealed"]
FORMS: Final[tuple[Form, ...]] = get_args(Form)
Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool


class EuropassRefused(OperationRejected):
    """No EDC can be made for the internship as it is; the message says why and what to do."""


@dataclass(frozen=True)
class EuropassFile:
    """One EDC, ready to be sent or written: its form, its file name and media type, the
    document itself."""

    internship_id: str
    institution_id: str
    form: Form
    document: dict[str, Any]

    @property
    def file_name(self) -> str:
        suffix = {"uploadable": ".json", "unsigned": ".jsonld", "sealed": "-sealed.json"}
        return f"europass-{self.internship_id}{suffix[self.form]}"

    @property
    def media_type(self) -> str:
        return "application/ld+json" if self.form == "unsigned" else "application/json"

    def text(self) -> str:
        return json.dumps(self.document, ensure_ascii=False, indent=2) + "\n"


def seal_path(settings: Settings, institution_id: str) -> Path:
    """Where the institution's seal is configured: `<seal dir>/<institution id>.p12`."""
    return settings.seals_path / f"{institution_id}.p12"


def institution_seal(settings: Settings, institution_id: str) -> SealCertificate | None:
    """The institution's seal, when it has one configured (its passphrase, if any, in
    `<institution id>.p12.pass`); SealRefused when the file is there but unusable."""
    path = seal_path(settings, institution_id)
    if not path.is_file():
        return None
    secret = path.with_name(path.name + ".pass")
    passphrase = secret.read_bytes().strip() if secret.is_file() else None
    return load_seal(path, passphrase or None)


def _awarded_levels(document: Mapping[str, Any], plan: InternshipPlan) -> dict[str, str]:
    """Per learning outcome, the level the badge awarded (its results, without the intern's
    own self-assessment)."""
    subject = document.get("credentialSubject") or {}
    found: dict[str, str] = {}
    outcome_ids = {o.id for o in plan.learning_outcomes}
    level_ids = {level.id for level in plan.rubric.levels}
    for result in subject.get("result") or []:
        if not isinstance(result, dict):
            continue
        description = str(result.get("resultDescription") or "")
        achieved = str(result.get("achievedLevel") or "")
        outcome_id = description.rpartition(":outcome:")[2]
        level_id = achieved.rpartition(":level:")[2]
        if outcome_id in outcome_ids and level_id in level_ids:
            found[outcome_id] = level_id
    return found


def _moment(value: object, fallback: datetime) -> datetime:
    try:
        return datetime.fromisoformat(str(value)) if value else fallback
    except ValueError:
        return fallback


async def certified_internship(conn: Connection, internship_id: str) -> CertifiedInternship:
    """What the records keep of the certified internship, as an EDC needs it; EuropassRefused
    (or InternshipNotFound) when there is none to make."""
    record = await creds.credential_for_internship(conn, internship_id)
    plan = await read.latest_plan(conn, internship_id)
    if plan is None:
        raise InternshipNotFound(f"no internship {internship_id!r}: check the id")
    if record is None:
        raise EuropassRefused(
            f"internship {internship_id!r} has no badge: a European Digital Credential is "
            "issued for a certified internship, with its badge"
        )
    if record.status != "active":
        raise EuropassRefused(
            f"the badge of internship {internship_id!r} is {record.status}: no European Digital "
            "Credential is issued for it"
        )
    institution = await conn.fetchrow(
        "SELECT name, legal_identifier FROM institutions WHERE institution_id = $1",
        plan.institution.id,
    )
    if institution is None or institution["legal_identifier"] is None:
        raise EuropassRefused(europass_needs(plan.institution.id))
    rows = await conn.fetch(
        """
        SELECT kind, actor, payload, accepted_at FROM submissions
        WHERE internship_id = $1 AND kind IN ('assessment', 'pause', 'resume')
        ORDER BY accepted_at, submission_id
        """,
        internship_id,
    )
    assessments: dict[str, AssessmentRecord] = {}
    paused: list[tuple[datetime, datetime]] = []
    paused_at: datetime | None = None
    for row in rows:
        if row["kind"] == "pause":
            paused_at = paused_at or row["accepted_at"]
            continue
        if row["kind"] == "resume":
            if paused_at is not None:
                paused.append((paused_at, row["accepted_at"]))
            paused_at = None
            continue
        payload = row["payload"]
        data = json.loads(payload) if isinstance(payload, str) else dict(payload)
        assessor = data.get("assessor") or row["actor"]
        if assessor in ("mentor", "tutor"):
            assessments[assessor] = AssessmentRecord(
                assessor=assessor,
                levels=dict(data.get("levels") or {}),
                assessed_at=row["accepted_at"],
            )
    document = record.document
    subject = document.get("credentialSubject") or {}
    awarded = _awarded_levels(document, plan)
    if set(awarded) != {o.id for o in plan.learning_outcomes}:
        # A badge without results for every outcome: the pass rule over the assessments, as
        # the workflow applied it.
        awarded = achieved_levels(
            plan,
            [
                Assessment(submission_id="recorded", assessor=a.assessor, levels=dict(a.levels))
                for a in assessments.values()
            ],
        )
    valid_until = document.get("validUntil")
    return CertifiedInternship(
        plan=plan,
        achieved_levels=awarded,
        assessments=tuple(assessments.values()),
        issued_at=record.issued_at,
        activity_start=_moment(subject.get("activityStartDate"), plan.period.start),
        activity_end=_moment(subject.get("activityEndDate"), plan.period.end),
        institution_name=institution["name"],
        legal_identifier=institution["legal_identifier"],
        valid_until=_moment(valid_until, record.issued_at) if valid_until else None,
        badge_credential_id=record.credential_id,
        paused=tuple(paused),
    )


async def europass_file(
    conn: Connection,
    settings: Settings,
    internship_id: str,
    form: Form,
    *,
    now: datetime | None = None,
) -> EuropassFile:
    """The internship's EDC in `form` (see the module). EuropassRefused saying why when it
    cannot be made."""
    if form not in FORMS:
        raise EuropassRefused(f"form {form!r}: choose one of {', '.join(FORMS)}")
    certified = await certified_internship(conn, internship_id)
    institution_id = certified.plan.institution.id
    try:
        artwork = await template_artwork(conn, certified.plan)
        # Europass shows a PNG: a school's SVG is drawn instead (nothing here renders an SVG).
        png = artwork.png or drawn_artwork(certified.plan).png
        assert png is not None
        credential = build_edc(certified, image_png=png)
    except (LegalIdentifierRefused, ValueError) as error:
        raise EuropassRefused(f"internship {internship_id!r}: {error}") from None
    if form == "uploadable":
        document = uploadable(credential)
    elif form == "unsigned":
        document = credential
    else:
        moment = now or datetime.now(UTC)
        try:
            certificate = institution_seal(settings, institution_id)
            if certificate is None:
                raise EuropassRefused(
                    f"institution {institution_id!r} has no seal certificate configured: put its "
                    f"PKCS#12 file at {seal_path(settings, institution_id).name} in the seal "
                    "directory (INTERNFLOW_SEAL_DIR), or take the `uploadable` form and seal it "
                    "through the Europass issuer"
                )
            certificate.check(certified.legal_identifier, moment)
            document = seal(credential, certificate, moment)
        except SealRefused as error:
            raise EuropassRefused(f"institution {institution_id!r}: {error}") from None
    log.info("europass.made", internship_id=internship_id, institution=institution_id, form=form)
    return EuropassFile(internship_id, institution_id, form, document)


def interns_form(settings: Settings, institution_id: str) -> Form:
    """What the intern downloads: sealed when the institution has a seal configured, else the
    unsigned credential (the institution seals it through the Europass issuer)."""
    return "sealed" if seal_path(settings, institution_id).is_file() else "unsigned"


@dataclass(frozen=True)
class Batch:
    """A batch's EDCs and, for each internship that has none, why."""

    files: list[EuropassFile]
    refused: dict[str, str]


async def europass_files(
    conn: Connection,
    settings: Settings,
    internship_ids: Sequence[str],
    form: Form,
    *,
    visible: set[str] | None = None,
) -> Batch:
    """Each internship's EDC in `form`; an internship that has none is refused with the reason,
    and the others go on. `visible`: the institutions whose internships the caller may see (an
    operator key's); another's internship is refused exactly as an unknown id."""
    files: list[EuropassFile] = []
    refused: dict[str, str] = {}
    for internship_id in dict.fromkeys(internship_ids):
        try:
            if visible is not None:
                institution = await read.institution_of(conn, internship_id)
                if institution not in visible:
                    raise InternshipNotFound(f"no internship {internship_id!r}: check the id")
            files.append(await europass_file(conn, settings, internship_id, form))
        except OperationRejected as error:
            refused[internship_id] = str(error)
    return Batch(files, refused)
