"""How refusals become HTTP answers: status codes and one JSON shape for every error."""

from __future__ import annotations

from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.pages import error_page, wants_html
from operations.credentials import CredentialConflict, CredentialNotFound
from operations.internships import (
    DifferentPlanRunning,
    FieldRefused,
    InstitutionNotAllowed,
    InternshipNotFound,
    OperationRejected,
)
from operations.organisations import OrganisationExists, OrganisationNotFound
from runtime.availability import RECORDS_UNREACHABLE, RETRY_AFTER_SECONDS, TemporalUnreachable
from runtime.links import LinkRefused

log = structlog.get_logger(__name__)


# The workflow's validators say what is wrong in words. These phrases mark a refusal of the
# request's content (the same request can never succeed: 422); every other refusal is about the
# internship's state (wrong phase, already done, paused: 409).
_CONTENT_PHRASES: Final = (
    "unknown learning outcome",
    "is not a level of this plan's rubric",
    "every learning outcome must be assessed",
    "unknown milestone",
    "asks nothing of the",
    "the amended plan must have version",
    "cannot change the internship_id",
    "agreement_deadline has already passed",
    "is the same as the current one",
    "the new end must be after",
    "the extended plan would be inconsistent",
    "cannot validate as pass",
)


def rejection_status(error: OperationRejected) -> int:
    if isinstance(error, InternshipNotFound | OrganisationNotFound):
        return 404
    if isinstance(error, InstitutionNotAllowed):
        return 403
    if isinstance(error, FieldRefused):
        return 422
    if isinstance(error, DifferentPlanRunning | OrganisationExists):
        return 409
    message = str(error)
    return 422 if any(phrase in message for phrase in _CONTENT_PHRASES) else 409


def error_body(detail: str, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, **extra}


def field_errors(error: RequestValidationError) -> list[dict[str, str]]:
    """Each problem with its field path (`body.plan.period.end`) and message."""
    problems = []
    for item in error.errors():
        location = ".".join(str(part) for part in item.get("loc", ())) or "body"
        problems.append({"field": location, "message": str(item.get("msg", "invalid"))})
    return problems


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OperationRejected)
    async def rejected(request: Request, error: OperationRejected) -> JSONResponse:
        if isinstance(error, FieldRefused):
            # A plan that can never run (or a field that can never be taken) is refused like an
            # invalid request body (the plan is the body of the requests that start one), naming
            # each field to change.
            problems = [
                {"field": f"body.{field}", "message": message} for field, message in error.problems
            ]
            return JSONResponse(error_body(str(error), errors=problems), status_code=422)
        return JSONResponse(error_body(str(error)), status_code=rejection_status(error))

    @app.exception_handler(CredentialNotFound)
    async def no_credential(request: Request, error: CredentialNotFound) -> JSONResponse:
        return JSONResponse(error_body(str(error)), status_code=404)

    @app.exception_handler(CredentialConflict)
    async def credential_conflict(request: Request, error: CredentialConflict) -> JSONResponse:
        return JSONResponse(error_body(str(error)), status_code=409)

    @app.exception_handler(LinkRefused)
    async def link_refused(request: Request, error: LinkRefused) -> JSONResponse:
        log.warning(
            "auth.refused", path=request.url.path, reason=type(error).__name__, kind="party_link"
        )
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error_body(str(error)), status_code=error.status, headers=headers)

    async def records_unreachable(request: Request, error: Exception) -> Response:
        # PostgreSQL went away under an open pool (an outage, a restart): the same request will
        # pass once it is back. Named by type only; the message can carry connection details.
        log.warning("records.unreachable", path=request.url.path, error=type(error).__name__)
        return error_response(
            request,
            503,
            "the records (PostgreSQL) are not reachable right now; try again shortly",
            headers={"Retry-After": "5"},
        )

    for unreachable in RECORDS_UNREACHABLE:
        app.add_exception_handler(unreachable, records_unreachable)

    @app.exception_handler(TemporalUnreachable)
    async def temporal_unreachable(request: Request, error: TemporalUnreachable) -> Response:
        # Never 409 ("wrong moment") or 500 for an outage: nothing was recorded, and the same
        # request passes once Temporal is back. Reads from the records go on meanwhile.
        request.app.state.services.temporal_health.failed()
        route = request.scope.get("route")
        log.warning("temporal.unreachable", route=getattr(route, "path", "?"))
        return error_response(
            request, 503, str(error), headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> Response:
        if wants_html(request):
            problems = "; ".join(f"{p['field']}: {p['message']}" for p in field_errors(error))
            return error_page(request, 422, problems)
        return JSONResponse(
            error_body("the request is not valid", errors=field_errors(error)), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        return error_response(
            request, error.status_code, str(error.detail), getattr(error, "headers", None)
        )


def error_response(
    request: Request, status_code: int, detail: str, headers: dict[str, str] | None = None
) -> Response:
    """An error in the shape the client reads: a page for a browser on an HTML page (a form too
    large, too many requests, a page not found), the JSON body for everyone else."""
    if wants_html(request):
        return error_page(request, status_code, detail, headers)
    return JSONResponse(error_body(detail), status_code=status_code, headers=headers)
