"""Operators: start internships (one or a batch), find them, and change them while they run.

An operator key belongs to institutions: another institution's internship is to it exactly as
an unknown id (404), its lists leave them out, and it cannot start a plan for another
institution (403; a batch row is refused). Admin keys and keys made for all institutions see
every internship."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile
from temporalio.client import Client

from api.auth import Operator, actor_of
from api.services import ReceiverDep, RecordsDep, Services, ServicesDep, SettingsDep, TemporalDep
from models.base import Identifier
from models.plan import InternshipPlan
from models.records import InternshipRow
from models.status import Phase
from models.submissions import (
    Amendment,
    Extension,
    PaperSignatureRequest,
    Pause,
    Receipt,
    Resume,
    Withdrawal,
)
from operations import europass
from operations import internships as ops
from operations.access import ApiKey
from operations.batch import BatchError, BatchResult, rows_from_csv, rows_from_json, start_batch
from operations.organisations import NameBook
from records import read
from records.read import RecordedStatus
from runtime.settings import Settings

router = APIRouter(prefix="/api/internships", tags=["operators"])


class InternshipPage(BaseModel):
    items: list[InternshipRow]
    limit: int
    offset: int


class Started(BaseModel):
    internship_id: str
    workflow_id: str
    created: bool
    """False when the same plan was already running: starting is idempotent on its id."""


def recorded_plans(services: Services) -> ops.RecordedPlans:
    """The plan versions in the records, read only when a start needs them (the database is
    connected on first use)."""

    async def read(internship_id: str) -> list[InternshipPlan]:
        return await ops.recorded_plan_versions(await services.records(), internship_id)

    return read


async def names_for(key: ApiKey, services: Services) -> NameBook:
    """The records of institutions and companies a start or an amendment is checked against
    (and records new ids in), as `key`."""
    return NameBook(await services.records(), actor_of(key))


def not_found(internship_id: str) -> ops.InternshipNotFound:
    """What an unknown id gets, word for word."""
    return ops.InternshipNotFound(f"no internship {internship_id!r}: check the id")


async def visible_to(key: ApiKey, internship_id: str, services: Services) -> bool:
    """Whether the key may see the internship: its institution is one of the key's (from the
    records, or from Temporal for one started a moment ago). An unknown id is not visible."""
    if key.is_global:
        return True
    institution = await read.institution_of(await services.records(), internship_id)
    if institution is None:
        institution = await ops.workflow_institution(await services.temporal(), internship_id)
    return institution is not None and key.sees(institution)


async def require_visible(key: ApiKey, internship_id: str, services: Services) -> None:
    """404, exactly as for an unknown id, unless the key sees the internship."""
    if not await visible_to(key, internship_id, services):
        raise not_found(internship_id)


def starter_for(
    key: ApiKey, client: Client, settings: Settings, services: Services
) -> Callable[[InternshipPlan], Awaitable[ops.Started]]:
    """Start a plan as `key` may: only for its institutions; and a refusal that concerns
    another institution's internship under the same id tells nothing about that internship."""

    async def start(plan: InternshipPlan) -> ops.Started:
        if not key.sees(plan.institution.id):
            raise ops.InstitutionNotAllowed(
                f"this key starts internships of {key.describe_scope()} only, and the plan is "
                f"for institution {plan.institution.id!r} (institution.id)"
            )
        try:
            return await ops.start_plan(
                client,
                settings,
                plan,
                recorded_plans=recorded_plans(services),
                names=await names_for(key, services),
            )
        except ops.PlanRefused:
            raise  # about the plan itself
        except ops.OperationRejected:
            if await visible_to(key, plan.internship_id, services):
                raise
            raise ops.OperationRejected(
                f"internship_id {plan.internship_id!r} cannot be used: choose a new internship_id"
            ) from None

    return start


@router.post(
    "",
    status_code=201,
    response_model=Started,
    summary="Start an internship from a plan",
    responses={
        200: {"model": Started, "description": "The same plan was already running"},
        403: {"description": "The plan's institution is not one of the key's"},
        409: {"description": "A different plan runs under this internship_id, or it has ended"},
        422: {"description": "The plan is invalid, or its agreement_deadline has passed"},
    },
)
async def start(
    plan: InternshipPlan,
    response: Response,
    key: Operator,
    client: TemporalDep,
    settings: SettingsDep,
    services: ServicesDep,
) -> Started:
    """Start the plan's internship. Refused (422, naming each field) before anything is started
    or sent: a plan whose agreement_deadline is not in the future, whose `period.time_zone` is
    not an IANA time zone, or that gives a recorded `institution.id` or `company.id` another
    name than the recorded one (rename it first: `POST /api/admin/companies/{id}/rename`,
    `POST /api/admin/institutions/{id}/rename`). A new institution or company id is recorded
    with its name. The same plan again answers 200 with `created: false`; a different plan
    under a running internship_id is refused (409): amend the running plan
    (`POST /api/internships/{id}/amendments`) or use a new internship_id. An operator key starts
    plans of its own institutions only (403)."""
    started = await starter_for(key, client, settings, services)(plan)
    if not started.created:
        response.status_code = 200
    return Started(
        internship_id=plan.internship_id, workflow_id=started.handle.id, created=started.created
    )


@router.post(
    "/batch",
    response_model=BatchResult,
    summary="Start many internships: a JSON list of plans, or CSV rows over a template plan",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"type": "array", "items": {"type": "object"}},
                            {
                                "type": "object",
                                "properties": {
                                    "template": {"type": "object"},
                                    "rows": {"type": "array", "items": {"type": "object"}},
                                },
                                "required": ["template", "rows"],
                            },
                        ]
                    }
                },
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "rows": {"type": "string", "format": "binary"},
                            "template": {"type": "string", "format": "binary"},
                        },
                        "required": ["rows", "template"],
                    }
                },
            },
            "required": True,
        }
    },
)
async def start_many(
    request: Request,
    key: Operator,
    client: TemporalDep,
    settings: SettingsDep,
    services: ServicesDep,
) -> BatchResult:
    """JSON: a list of plans, or `{"template": plan, "rows": [{"intern.name": ...}, ...]}`.
    Multipart: a `rows` CSV file whose columns are dotted plan fields (`internship_id`,
    `intern.name`, `intern.email`, `period.start`, ...) and a `template` plan JSON file. Every row
    gets its own result; a bad row does not stop the others. A row is refused, as a single start
    would be, when its agreement_deadline has passed or a different plan runs under its id, and
    when its institution is not one of an operator key's."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            rows_file, template_file = form.get("rows"), form.get("template")
            if not isinstance(rows_file, UploadFile) or not isinstance(template_file, UploadFile):
                raise BatchError("send a `rows` CSV file and a `template` plan JSON file")
            try:
                template = InternshipPlan.model_validate_json(await template_file.read())
            except ValidationError as error:
                first = error.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "(plan)"
                raise BatchError(
                    f"the template is not a valid plan: {where}: {first['msg']}"
                ) from None
            rows = rows_from_csv((await rows_file.read()).decode("utf-8-sig"), template)
        else:
            rows = rows_from_json((await request.body()).decode("utf-8", errors="replace"))
    except BatchError as error:
        raise HTTPException(422, str(error)) from None
    except UnicodeDecodeError:
        raise HTTPException(422, "the CSV file is not UTF-8 text") from None
    if len(rows) > 1000:
        raise HTTPException(422, "at most 1000 rows per batch: split the file")
    return await start_batch(
        client, settings, rows, starter=starter_for(key, client, settings, services)
    )


@router.get("", response_model=InternshipPage, summary="List and search internships")
async def list_internships(
    key: Operator,
    pool: RecordsDep,
    phase: Phase | None = None,
    company: Identifier | None = None,
    institution: Identifier | None = None,
    overdue: bool | None = None,
    q: Annotated[str | None, Query(max_length=200, description="text in id or names")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> InternshipPage:
    """From the PostgreSQL records (no workflow is asked), latest start first: phase, company,
    institution, overdue (a milestone past its reminder with something still owed) and text (in
    ids and the parties' names) combine. An operator key lists its institutions' only."""
    items = await read.list_internships(
        pool,
        phase=phase,
        company_id=company,
        institution_id=institution,
        overdue=overdue,
        text=q.replace("\x00", "") if q else None,
        limit=limit,
        offset=offset,
        institution_ids=key.institution_scope,
    )
    return InternshipPage(items=items, limit=limit, offset=offset)


@router.get("/{internship_id}", response_model=RecordedStatus, summary="An internship's status")
async def status(internship_id: Identifier, key: Operator, pool: RecordsDep) -> RecordedStatus:
    """From the read model (no workflow is asked), in one read: phase, dates in force, approvals
    of every plan version, milestones with what is owed and whether late, overdue or missed, and
    the next deadline. It is as of the workflow's latest record (`recorded_at`, workflow time),
    with its time-dependent flags brought to now (`as_of`). A submission is answered before its
    record is written: a receipt whose `accepted_at` is after `recorded_at` is not in it yet. An
    internship started a moment ago is 404 until its first record (a moment later)."""
    found = await read.recorded_status(pool, internship_id)
    if found is None or not key.sees(found.institution_id):
        raise not_found(internship_id)
    return found.status


@router.post("/{internship_id}/amendments", response_model=Receipt, summary="Amend the plan")
async def amend(
    internship_id: Identifier,
    amendment: Amendment,
    key: Operator,
    client: TemporalDep,
    records: ReceiverDep,
    services: ServicesDep,
) -> Receipt:
    """A new version of the plan, during planning. Its plan is checked as a start checks one
    (422 naming `body.plan.<field>`: its time zone, its badge image, its institution's and
    company's names against the records), then by the workflow."""
    await require_visible(key, internship_id, services)
    return await ops.amend(
        client, internship_id, amendment, records, names=await names_for(key, services)
    )


@router.post(
    "/{internship_id}/paper-signatures",
    response_model=Receipt,
    summary="Record a signature of the learning agreement given on paper",
)
async def record_paper_signature(
    internship_id: Identifier,
    paper: PaperSignatureRequest,
    key: Operator,
    client: TemporalDep,
    records: ReceiverDep,
    services: ServicesDep,
) -> Receipt:
    """The signer in `role` signed the current plan version on paper at `signed_at`: a date
    (`2027-02-10`, local midnight in the plan's time zone) or a moment with its UTC offset;
    `note` says where the paper is. It counts as that signer's approval (during planning only,
    for a signer the plan names who has not approved yet). A `signed_at` in the future or on a
    day before the plan existed is refused (422, naming `body.signed_at`)."""
    await require_visible(key, internship_id, services)
    return await ops.sign_on_paper(client, internship_id, paper, records, records)


@router.post("/{internship_id}/pause", response_model=Receipt, summary="Pause the clock")
async def pause(
    internship_id: Identifier,
    request: Pause,
    key: Operator,
    client: TemporalDep,
    records: ReceiverDep,
    services: ServicesDep,
) -> Receipt:
    await require_visible(key, internship_id, services)
    return await ops.pause(client, internship_id, request, records)


@router.post("/{internship_id}/resume", response_model=Receipt, summary="Resume after a pause")
async def resume(
    internship_id: Identifier,
    request: Resume,
    key: Operator,
    client: TemporalDep,
    records: ReceiverDep,
    services: ServicesDep,
) -> Receipt:
    await require_visible(key, internship_id, services)
    return await ops.resume(client, internship_id, request, records)


@router.post(
    "/{internship_id}/extension", response_model=Receipt, summary="Move the end date later"
)
async def extend(
    internship_id: Identifier,
    extension: Extension,
    key: Operator,
    client: TemporalDep,
    records: ReceiverDep,
    services: ServicesDep,
) -> Receipt:
    await require_visible(key, internship_id, services)
    return await ops.extend(client, internship_id, extension, records)


@router.post("/{internship_id}/withdrawal", response_model=Receipt, summary="Withdraw")
async def withdraw(
    internship_id: Identifier,
    withdrawal: Withdrawal,
    key: Operator,
    client: TemporalDep,
    records: ReceiverDep,
    services: ServicesDep,
) -> Receipt:
    await require_visible(key, internship_id, services)
    return await ops.withdraw(client, internship_id, withdrawal, records)


# ---- European Digital Credentials ----------------------------------------------------------

EuropassForm = Annotated[
    europass.Form,
    Query(
        description="`uploadable` (default): the Europass issuer's unsigned upload, for the "
        "institution to seal there with its eIDAS seal; `unsigned`: the credential itself "
        "(JSON-LD); `sealed`: sealed here with the institution's own seal certificate"
    ),
]


@router.get(
    "/{internship_id}/europass",
    response_class=Response,
    summary="The certified internship as a European Digital Credential (ELM v3)",
    responses={
        200: {"content": {"application/json": {}, "application/ld+json": {}}},
        404: {"description": "No such internship (or not one of the key's institutions)"},
        409: {
            "description": "No badge, a revoked or suspended badge, an institution without a "
            "legal identifier, or no seal certificate for `sealed`: the answer says which and "
            "what to do"
        },
    },
)
async def europass_credential(
    internship_id: Identifier,
    key: Operator,
    pool: RecordsDep,
    settings: SettingsDep,
    services: ServicesDep,
    form: EuropassForm = "uploadable",
) -> Response:
    """Built from the records of the certified internship (its plan, its two assessments, its
    badge), as a file to save (`Content-Disposition`). Its institution must have its legal
    identifier recorded (`POST /api/admin/institutions/{id}/legal-identifier`)."""
    await require_visible(key, internship_id, services)
    made = await europass.europass_file(pool, settings, internship_id, form)
    return Response(
        made.text(),
        media_type=made.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{made.file_name}"',
            "Cache-Control": "no-store",
        },
    )


class EuropassBatchRequest(BaseModel):
    internship_ids: list[Identifier] = Field(min_length=1, max_length=1000)
    form: europass.Form = "uploadable"


class EuropassDocument(BaseModel):
    internship_id: str
    file_name: str
    document: dict[str, object]


class EuropassBatch(BaseModel):
    credentials: list[EuropassDocument]
    refused: dict[str, str] = Field(
        description="Each internship that has no credential, with why (an unknown id, or one of "
        "another institution, is refused as `no internship`)"
    )


@router.post(
    "/europass",
    response_model=EuropassBatch,
    summary="Many certified internships as European Digital Credentials, in one answer",
)
async def europass_batch(
    batch: EuropassBatchRequest, key: Operator, pool: RecordsDep, settings: SettingsDep
) -> EuropassBatch:
    """Each internship's credential in `form`; one that has none is listed under `refused` with
    the reason, and the others are made. At most 1000 ids."""
    made = await europass.europass_files(
        pool,
        settings,
        batch.internship_ids,
        batch.form,
        visible=None if key.is_global else set(key.institutions),
    )
    return EuropassBatch(
        credentials=[
            EuropassDocument(
                internship_id=f.internship_id, file_name=f.file_name, document=f.document
            )
            for f in made.files
        ],
        refused=made.refused,
    )
