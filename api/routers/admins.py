"""Admins: an internship's whole history, its workflow, statistics, badge status, API keys."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.auth import Admin, Operator, actor_of
from api.services import RecordsDep, ServicesDep, SettingsDep, TemporalDep
from models.base import Identifier, Name, Text
from models.records import CohortStats, TimelineRow
from operations import companies as host_companies
from operations import credentials as creds
from operations import organisations as orgs
from operations.access import (
    AccessError,
    ApiKey,
    Role,
    create_key_as_asked,
    list_api_keys,
)
from operations.access import revoke_api_key as revoke_key
from operations.history import EventPage, WorkflowDescription, describe, event_page
from records import read

router = APIRouter(prefix="/api/admin", tags=["admins"])

CredentialUuid = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="The credential's UUID (its id without `urn:uuid:`)",
    ),
]


class History(BaseModel):
    """The domain timeline from the audit trail (always there, also without Temporal). Each entry
    has its `detail` as the workflow recorded it and the same as `fields`: labelled, readable
    values (every text people wrote, in full, line breaks kept)."""

    internship_id: str
    entries: list[TimelineRow]


class Statistics(BaseModel):
    cohort: CohortStats
    badges: read.BadgeCounts


@router.get(
    "/internships/{internship_id}/history",
    response_model=History,
    summary="Domain timeline from the audit trail",
)
async def history(internship_id: Identifier, key: Admin, pool: RecordsDep) -> History:
    entries = await read.internship_timeline(pool, internship_id)
    if not entries and await read.get_internship(pool, internship_id) is None:
        raise HTTPException(404, f"no internship {internship_id!r}: check the id")
    return History(internship_id=internship_id, entries=entries)


@router.get(
    "/internships/{internship_id}/events",
    response_model=EventPage,
    summary="Raw Temporal event history, a page at a time",
)
async def events(
    internship_id: Identifier,
    key: Admin,
    client: TemporalDep,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 100,
    next_page_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> EventPage:
    try:
        return await event_page(client, internship_id, page_size, next_page_token)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@router.get(
    "/internships/{internship_id}/describe",
    response_model=WorkflowDescription,
    summary="The workflow as Temporal describes it",
)
async def describe_workflow(
    internship_id: Identifier, key: Admin, client: TemporalDep, settings: SettingsDep
) -> WorkflowDescription:
    return await describe(client, internship_id, settings.temporal_ui_url)


@router.get("/statistics", response_model=Statistics, summary="Figures across internships")
async def statistics(
    key: Admin,
    pool: RecordsDep,
    institution: Identifier | None = None,
    start_from: Annotated[AwareDatetime | None, Query(description="start on or after")] = None,
    start_to: Annotated[AwareDatetime | None, Query(description="start before")] = None,
) -> Statistics:
    """Internships per phase, on-time rate of milestone submissions, pass rate, badges issued,
    revoked and suspended, overdue internships; for one institution and a start-date range."""
    cohort = await read.cohort_statistics(pool, institution, start_from, start_to)
    return Statistics(cohort=cohort, badges=await read.badge_counts(pool, institution))


@router.get(
    "/companies",
    response_model=list[host_companies.CompanySummary],
    summary="Host companies: internships by phase and outcome, completion, missed milestones, "
    "placement rating",
)
async def companies(key: Operator, pool: RecordsDep) -> list[host_companies.CompanySummary]:
    """Every company that hosted an internship the key sees (an operator key: its institutions'
    only, so the figures are its own). The interns' rating of a placement is given only once at
    least three of them rated it (`placement` is null before), so that no intern's answers can
    be told; one intern's evaluation is never given here."""
    return await host_companies.companies(pool, key.institution_scope)


@router.get(
    "/companies/{company_id}",
    response_model=host_companies.CompanyDetail,
    summary="One host company: its figures and its internships",
)
async def company(
    company_id: Identifier, key: Operator, pool: RecordsDep
) -> host_companies.CompanyDetail:
    found = await host_companies.company(pool, company_id, key.institution_scope)
    if found is None:
        raise HTTPException(404, f"no internship at company {company_id!r}: check the id")
    return found


class Rename(BaseModel):
    name: Name = Field(description="The new name, as plans from now on must give it")
    reason: Text = Field(description="Why: kept in the name's history with who and when")


@router.post(
    "/companies/{company_id}/rename",
    response_model=orgs.Organisation,
    summary="Rename a host company (its one recorded name), with a reason",
)
async def rename_company(
    company_id: Identifier, rename: Rename, key: Operator, pool: RecordsDep
) -> orgs.Organisation:
    """The company's recorded name becomes `name`: the school's view of its companies shows it,
    and plans from now on must give it (running internships keep the name their plan was
    written with; an amendment gives the new one). Kept in the company's `name_history` with the
    key, the time, the old name and `reason`. An operator key renames the companies that host
    its institutions' internships (404 for others, as for an unknown id); an admin key any."""
    if (
        not key.is_global
        and await host_companies.company(pool, company_id, key.institution_scope) is None
    ):
        raise orgs.not_recorded("company", company_id)
    return await orgs.rename(pool, "company", company_id, rename.name, rename.reason, actor_of(key))


class InstitutionView(orgs.Organisation):
    name_history: list[orgs.NameEvent]


_LEGAL_IDENTIFIER = (
    "The organisation identifier of its eIDAS seal certificate (ETSI EN 319 412-1: VAT, NTR or "
    "PSD, the country, a hyphen, the number; e.g. VATIT-01234567890): European Digital "
    "Credentials name their issuer by it"
)


class NewInstitution(BaseModel):
    institution_id: Identifier = Field(description="Its id, as plans give it in institution.id")
    name: Name = Field(description="Its name, as plans must give it in institution.name")
    legal_identifier: str | None = Field(None, max_length=70, description=_LEGAL_IDENTIFIER)


class LegalIdentifier(BaseModel):
    legal_identifier: str = Field(max_length=70, description=_LEGAL_IDENTIFIER)
    reason: Text | None = Field(
        None, description="Why it replaces the one recorded (needed then; kept in its history)"
    )


@router.get(
    "/institutions",
    response_model=list[orgs.Organisation],
    summary="The recorded institutions, each with its one name",
)
async def institutions(key: Operator, pool: RecordsDep) -> list[orgs.Organisation]:
    """Every recorded institution (an operator key: its own)."""
    return await orgs.organisations(pool, "institution", key.institution_scope)


@router.post(
    "/institutions",
    response_model=orgs.Organisation,
    status_code=201,
    summary="Record an institution before its first internship",
)
async def add_institution(new: NewInstitution, key: Admin, pool: RecordsDep) -> orgs.Organisation:
    """Record an institution with its name, e.g. to give it an operator key before its first
    internship (a start records a new institution by itself), and its legal identifier if given
    (without one it cannot issue European Digital Credentials: `europass_needs` says so). 409
    when the id is recorded."""
    return await orgs.add_institution(
        pool, new.institution_id, new.name, actor_of(key), legal_identifier=new.legal_identifier
    )


@router.get(
    "/institutions/{institution_id}",
    response_model=InstitutionView,
    summary="One institution: its recorded name and the name's history",
)
async def institution(
    institution_id: Identifier, key: Operator, pool: RecordsDep
) -> InstitutionView:
    found = await orgs.organisation(pool, "institution", institution_id)
    if found is None or not key.sees(institution_id):
        raise orgs.not_recorded("institution", institution_id)
    history = await orgs.name_history(pool, "institution", institution_id)
    return InstitutionView(**found.model_dump(), name_history=history)


@router.post(
    "/institutions/{institution_id}/rename",
    response_model=orgs.Organisation,
    summary="Rename an institution (its one recorded name), with a reason",
)
async def rename_institution(
    institution_id: Identifier, rename: Rename, key: Operator, pool: RecordsDep
) -> orgs.Organisation:
    """The institution's recorded name becomes `name`; plans from now on must give it. Kept in
    its `name_history` with the key, the time, the old name and `reason`. An operator key
    renames its own institutions (404 for others, as for an unknown id); an admin key any."""
    if not key.sees(institution_id):
        raise orgs.not_recorded("institution", institution_id)
    return await orgs.rename(
        pool, "institution", institution_id, rename.name, rename.reason, actor_of(key)
    )


@router.post(
    "/institutions/{institution_id}/legal-identifier",
    response_model=orgs.Organisation,
    summary="Set an institution's legal identifier (for European Digital Credentials)",
)
async def identify_institution(
    institution_id: Identifier, given: LegalIdentifier, key: Operator, pool: RecordsDep
) -> orgs.Organisation:
    """The institution's legal identifier becomes `legal_identifier` (the organisation
    identifier its eIDAS seal certificate carries); European Digital Credentials made from now on
    name their issuer by it. Kept in its `name_history` with the key and the time; replacing one
    needs a `reason` (422 otherwise). An operator key sets its own institutions' (404 for
    others, as for an unknown id); an admin key any."""
    if not key.sees(institution_id):
        raise orgs.not_recorded("institution", institution_id)
    return await orgs.identify_institution(
        pool,
        institution_id,
        given.legal_identifier,
        actor_of(key),
        given.reason,
        field="legal_identifier",
        reason_field="reason",
    )


class LinkedInOrganization(BaseModel):
    organization_id: str | None = Field(
        description="The number in the address of the institution's LinkedIn page as its admins "
        "see it (linkedin.com/company/<number>/admin/); null forgets it",
        examples=["2414183"],
    )


@router.put(
    "/institutions/{institution_id}/linkedin",
    response_model=orgs.Organisation,
    summary="Set (or clear) the institution's LinkedIn organization id",
)
async def set_linkedin_organization(
    institution_id: Identifier, given: LinkedInOrganization, key: Operator, pool: RecordsDep
) -> orgs.Organisation:
    """The "Add to LinkedIn profile" link of the institution's badges names it by
    `organizationId` from now on (earlier badges included: it is in no signed document), or by
    its name again once cleared. An operator key sets its own institutions' (404 for others, as
    for an unknown id); an admin key any. 422 for anything but digits."""
    if not key.sees(institution_id):
        raise orgs.not_recorded("institution", institution_id)
    return await orgs.set_linkedin_organization(
        pool, institution_id, given.organization_id, actor_of(key)
    )


class CredentialState(BaseModel):
    credential_id: str
    internship_id: str
    issued_at: str
    status: Literal["active", "suspended", "revoked"]
    revoked_at: str | None
    suspended_at: str | None
    reason: str | None
    on_status_lists: bool


class ChangedCredential(CredentialState):
    notice: Literal["started", "pending", "none"] = Field(
        description="The intern's e-mail about the change: `started` (it follows, retried for a "
        "day, and the institution is told if it is given up), `pending` (Temporal is not "
        "reachable: a worker starts it once it is), `none` (no plan recorded: nobody to tell)"
    )


class StatusChange(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="Kept in the audit trail")


@router.get(
    "/credentials/{credential_uuid}",
    response_model=CredentialState,
    summary="An issued badge and its status",
)
async def credential(
    credential_uuid: CredentialUuid, key: Admin, pool: RecordsDep
) -> CredentialState:
    return CredentialState(**(await creds.get_credential(pool, credential_uuid)).as_dict())


@router.post(
    "/credentials/{credential_uuid}/{action}",
    response_model=ChangedCredential,
    summary="Revoke (for good), suspend or reinstate a badge, with a reason",
    description="Answers once the change is committed; the intern's e-mail about it follows "
    "(`notice`), also when Temporal is not reachable at that moment.",
)
async def change_credential_status(
    credential_uuid: CredentialUuid,
    action: creds.StatusAction,
    change: StatusChange,
    key: Admin,
    pool: RecordsDep,
    services: ServicesDep,
) -> ChangedCredential:
    try:
        changed = await creds.change_status(
            pool,
            services.settings,
            credential_uuid,
            action,
            change.reason,
            actor=f"admin:{key.key_id}",
            temporal=services.temporal,
        )
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return ChangedCredential(**changed.record.as_dict(), notice=changed.notice)


class KeyView(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None
    all_institutions: bool = Field(
        description="Whether the key sees every institution (always, for an admin key)"
    )
    institutions: list[str] = Field(
        description="The institutions an operator key belongs to (empty when it sees all)"
    )

    @classmethod
    def of(cls, key: ApiKey) -> KeyView:
        return cls(
            key_id=key.key_id,
            name=key.name,
            role=key.role,
            created_at=key.created_at.isoformat(),
            revoked_at=key.revoked_at.isoformat() if key.revoked_at else None,
            all_institutions=key.is_global,
            institutions=list(key.institutions),
        )


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    role: Role
    institutions: list[Identifier] = Field(
        default_factory=list,
        max_length=100,
        description="An operator key's institutions (their ids, as in plans): it sees, lists, "
        "starts and changes only their internships. Leave empty for an admin key.",
    )
    all_institutions: bool = Field(
        False,
        description="An operator key for every institution, instead of institutions. Admin "
        "keys always see every institution.",
    )


class CreatedKey(KeyView):
    key: str = Field(description="The key itself: shown this once, stored only as a hash")


@router.get("/keys", response_model=list[KeyView], summary="API keys (never the keys themselves)")
async def keys(key: Admin, pool: RecordsDep) -> list[KeyView]:
    return [KeyView.of(k) for k in await list_api_keys(pool)]


@router.post("/keys", response_model=CreatedKey, status_code=201, summary="Create an API key")
async def create_key(new: NewKey, key: Admin, pool: RecordsDep) -> CreatedKey:
    """An operator key names its `institutions` or says `all_institutions` (422 otherwise); an
    admin key is global. Each institution must be recorded (422 naming `body.institutions`
    otherwise): record a new one first with `POST /api/admin/institutions`."""
    try:
        created, secret = await create_key_as_asked(
            pool, new.name, new.role, new.institutions, new.all_institutions
        )
    except AccessError as error:
        raise HTTPException(422, str(error)) from None
    return CreatedKey(**KeyView.of(created).model_dump(), key=secret)


@router.delete("/keys/{key_id}", response_model=KeyView, summary="Revoke an API key")
async def revoke_api_key(
    key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")], key: Admin, pool: RecordsDep
) -> KeyView:
    try:
        return KeyView.of(await revoke_key(pool, key_id))
    except AccessError as error:
        status = 409 if "already revoked" in str(error) else 404
        raise HTTPException(status, str(error)) from None
