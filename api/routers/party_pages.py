"""The pages a party opens from an e-mail link: GET shows the right form, POST submits it."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse

from api.errors import rejection_status
from api.i18n import ENTER_A_NUMBER, LINK_EXPIRED, LINK_INVALID, NOT_FOUND, NOT_RECORDED_NOW
from api.pages import browser_language, render
from api.ratelimit import client_address, rate_limited
from api.services import RecordsDep, ServicesDep
from i18n import day, gettext, moment
from models import kinds
from models.kinds import PURPOSES
from models.plan import InternshipPlan, Language
from models.submissions import (
    Approval,
    ChangeRequest,
    CompanyFeedback,
    MilestoneReport,
    SelfAssessment,
)
from operations import internships as ops
from operations.internships import OperationRejected
from operations.party_steps import CORRECTABLE, Sent, Step, read_step
from records import read
from runtime.availability import RETRY_AFTER_SECONDS, TemporalUnreachable
from runtime.links import LinkExpired, LinkRefused, PartyGrant, read_token

log = structlog.get_logger(__name__)
router = APIRouter(tags=["party pages"], dependencies=[Depends(rate_limited)])


def template_of(purpose: str) -> str:
    """The page of a link's purpose: api/templates/party_<purpose>.html."""
    return f"party_{purpose}.html"


#: The purposes whose submission, once sent, can no longer be changed (the approval can: a new
#: plan version asks for it again).
GIVEN_ONCE: Final = tuple(p for p in PURPOSES if p not in CORRECTABLE and p != "approve")


def _refused_link(request: Request, error: LinkRefused) -> HTMLResponse:
    # The path holds the token: log where without it.
    log.warning(
        "auth.refused",
        path="/p/<token>",
        reason=type(error).__name__,
        client=client_address(request),
    )
    language = browser_language(request)
    message = gettext(language, LINK_EXPIRED if isinstance(error, LinkExpired) else LINK_INVALID)
    return render(
        request,
        "party_link_refused.html",
        language,
        status_code=error.status,
        message=message,
    )


def _submission_id(grant: PartyGrant, plan: InternshipPlan) -> str:
    """The id of the submission a form stands for. A double click or a form sent again carries
    the same id and is answered with the first receipt. Approvals, assessments and the
    validation can be given once, so their id is stable (`web-<kind>`, then the sender when
    several may send it, then the milestone, or `final`, for a kind sent per milestone; an
    approval's names the plan version); a report or feedback form gets a new id each time it is
    shown, so that a corrected one sent from a reopened link is a new submission that supersedes
    the earlier one (both stay in the history)."""
    if grant.purpose in CORRECTABLE:
        return f"web-{grant.purpose}-{grant.milestone_id or 'any'}-{uuid.uuid4().hex[:16]}"
    if grant.purpose == "approve":
        return f"web-approval-{grant.party}-v{plan.version}"
    kind = kinds.sent_through(grant.purpose)[0]
    parts = ["web", kind.kind.replace("_", "-")]
    if kind.actor_field is not None:
        parts.append(grant.party)
    if "milestone_id" in kind.model.model_fields:
        parts.append(grant.milestone_id or "final")
    return "-".join(parts)


async def _context(
    request: Request, token: str, app: Any, pool: Any
) -> tuple[PartyGrant, InternshipPlan] | HTMLResponse:
    try:
        grant = read_token(app.secret, token)
    except LinkRefused as error:
        return _refused_link(request, error)
    plan = await read.latest_plan(pool, grant.internship_id)
    if plan is None:
        language = browser_language(request)
        return render(
            request,
            "party_link_refused.html",
            language,
            status_code=404,
            message=gettext(language, NOT_FOUND),
        )
    return grant, plan


def _form_page(
    request: Request,
    grant: PartyGrant,
    plan: InternshipPlan,
    step: Step,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    refusal: str | None = None,
    problems: list[str] | None = None,
) -> HTMLResponse:
    """The link's page: what the step is now (said before any form), what was already sent
    with its receipt, and the form when it is open, filled with what was sent last so that a
    correction starts from it."""
    language = plan.person(grant.party).language
    if values is None:
        values = _last_values(step)
    # A form shown again (refused, or not recorded during an outage) keeps its submission id,
    # so that sending it again cannot count twice; the approval page has two forms.
    sent_id = values.get("submission_id")
    change_id = f"web-changes-{uuid.uuid4().hex[:16]}"
    if values.get("action") == "request_changes" and sent_id:
        change_id, sent_id = sent_id, None
    return render(
        request,
        template_of(grant.purpose),
        language,
        status_code=status_code,
        **_page_context(grant, plan, language),
        step=step,
        submission_id=sent_id or _submission_id(grant, plan),
        change_id=change_id,
        values=values,
        refusal=refusal,
        problems=problems or [],
    )


def _page_context(grant: PartyGrant, plan: InternshipPlan, language: Language) -> dict[str, Any]:
    zone = plan.period.time_zone
    return {
        "plan": plan,
        "party": grant.party,
        "full": grant.purpose == "approve",
        "milestone": plan.milestone(grant.milestone_id) if grant.milestone_id else None,
        "level_names": {level.id: level.name for level in plan.rubric.levels},
        "outcome_titles": {o.id: o.title for o in plan.learning_outcomes},
        "when": lambda at: moment(at, zone, language) if at else "",
        "day": lambda at: day(at, zone, language) if at else "",
        "now": datetime.now(UTC),
    }


def _last_values(step: Step) -> dict[str, Any]:
    """The latest report or feedback as form values, for a correction to start from."""
    latest = step.latest
    if not step.correctable or latest is None:
        return {}
    sent = latest.values
    values: dict[str, Any] = {}
    if isinstance(sent.get("summary"), str):
        values["summary"] = sent["summary"]
    if sent.get("share_in_badge"):
        values["share_in_badge"] = "yes"
    for outcome_id, level in (sent.get("ratings") or {}).items():
        values[f"level.{outcome_id}"] = level
    if sent.get("attendance_hours") is not None:
        hours = float(sent["attendance_hours"])
        values["attendance_hours"] = f"{hours:g}"
    if isinstance(sent.get("comments"), str):
        values["comments"] = sent["comments"]
    return values


@router.get("/p/{token}", response_class=HTMLResponse, summary="A party's form, from a link")
async def party_page(token: str, request: Request, app: ServicesDep, pool: RecordsDep) -> Any:
    found = await _context(request, token, app, pool)
    if isinstance(found, HTMLResponse):
        return found
    grant, plan = found
    return _form_page(request, grant, plan, await read_step(pool, grant, plan))


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value


class FormProblem(ValueError):
    """A form field that is not a number; `field` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _number(form: FormData, name: str) -> float:
    text = _text(form, name)
    try:
        value = float((text or "").replace(",", "."))
    except ValueError:
        raise FormProblem(name) from None
    if not math.isfinite(value):
        raise FormProblem(name)
    return value


def _levels(form: FormData) -> dict[str, str]:
    return {
        name.removeprefix("level."): value
        for name, value in form.items()
        if name.startswith("level.") and isinstance(value, str) and value
    }


def _approval_form(grant: PartyGrant, form: FormData, submission_id: str) -> Any:
    version = int(_number(form, "plan_version"))
    if form.get("action") == "request_changes":
        return ChangeRequest(
            submission_id=submission_id,
            party=grant.party,
            plan_version=version,
            comment=_text(form, "comment") or "",
        )
    return Approval(
        submission_id=submission_id,
        party=grant.party,
        plan_version=version,
        comment=_text(form, "comment"),
    )


def _report_form(grant: PartyGrant, form: FormData, submission_id: str) -> Any:
    return MilestoneReport(
        submission_id=submission_id,
        milestone_id=grant.milestone_id or "",
        summary=_text(form, "summary") or "",
        share_in_badge=form.get("share_in_badge") == "yes",
    )


def _feedback_form(grant: PartyGrant, form: FormData, submission_id: str) -> Any:
    return CompanyFeedback(
        submission_id=submission_id,
        milestone_id=grant.milestone_id,
        ratings=_levels(form),
        attendance_hours=_number(form, "attendance_hours"),
        comments=_text(form, "comments"),
    )


def _self_assessment_form(grant: PartyGrant, form: FormData, submission_id: str) -> Any:
    return SelfAssessment(
        submission_id=submission_id,
        milestone_id=grant.milestone_id,
        levels=_levels(form),
        comment=_text(form, "comment"),
        share_in_badge=grant.milestone_id is None and form.get("share_in_badge") == "yes",
    )


def _fields_form(grant: PartyGrant, form: FormData, submission_id: str) -> Any:
    """A form whose fields are its submission's, as the form's words ("4", "yes") read as the
    model's values: an assessment, the validation, the evaluation of the placement, and any
    purpose `_FORMS` does not name. Its sender and its milestone come from the link, its levels
    from the `level.<outcome>` fields."""
    kind = kinds.sent_through(grant.purpose)[0]
    values: dict[str, Any] = {}
    for name in kind.model.model_fields:
        if name == "submission_id":
            values[name] = submission_id
        elif name == "received_at":
            continue  # the server's, stamped as it sends the submission
        elif name == kind.actor_field:
            values[name] = grant.party
        elif name == "milestone_id":
            values[name] = grant.milestone_id
        elif name == "levels":
            values[name] = _levels(form)
        else:
            values[name] = _text(form, name)
    return kind.model.model_validate(values)


#: How each purpose's form becomes its submission (the forms whose fields need more than
#: `_fields_form`).
_FORMS: Final[dict[str, Callable[[PartyGrant, FormData, str], Any]]] = {
    "approve": _approval_form,
    "report": _report_form,
    "feedback": _feedback_form,
    "self_assess": _self_assessment_form,
}


def _submission(grant: PartyGrant, form: FormData) -> Any:
    """The submission the form stands for; the party, purpose and milestone come from the
    link, never from the form."""
    submission_id = _text(form, "submission_id") or ""
    return _FORMS.get(grant.purpose, _fields_form)(grant, form, submission_id)


@router.post("/p/{token}", response_class=HTMLResponse, summary="Submit a party's form")
async def party_submit(token: str, request: Request, app: ServicesDep, pool: RecordsDep) -> Any:
    found = await _context(request, token, app, pool)
    if isinstance(found, HTMLResponse):
        return found
    grant, plan = found
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}

    async def again(status_code: int, refusal: str, problems: list[str] | None = None) -> Any:
        step = await read_step(pool, grant, plan)
        return _form_page(request, grant, plan, step, status_code, values, refusal, problems)

    try:
        submission = _submission(grant, form)
    except ValidationError as error:
        problems = [
            f"{'.'.join(str(p) for p in item['loc']) or 'form'}: {item['msg']}"
            for item in error.errors()
        ]
        return await again(422, problems[0], problems[1:])
    except FormProblem as problem:
        language = plan.person(grant.party).language
        return await again(422, gettext(language, ENTER_A_NUMBER, field=problem.field))
    try:
        receipt = await ops.send(await app.temporal(), grant.internship_id, submission, pool)
    except OperationRejected as rejected:
        return await again(rejection_status(rejected), str(rejected))
    except TemporalUnreachable:
        # Nothing was recorded: the same form (its submission id too) comes back as it was
        # sent, in the party's language, to be sent again once Temporal is back.
        app.temporal_health.failed()
        language = plan.person(grant.party).language
        page = await again(503, gettext(language, NOT_RECORDED_NOW))
        page.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return page
    language = plan.person(grant.party).language
    echo = submission.model_dump(mode="json", exclude={"submission_id"})
    sent = Sent(
        submission_id=receipt.submission_id,
        kind=receipt.kind,
        actor=grant.party,
        milestone_id=grant.milestone_id,
        plan_version=int(echo.pop("plan_version", plan.version)),
        late=receipt.late,
        accepted_at=receipt.accepted_at,
        values=echo,
    )
    return render(
        request,
        "party_receipt.html",
        language,
        **{**_page_context(grant, plan, language), "full": False},
        receipt=receipt,
        sent=sent,
        purpose=grant.purpose,
        correctable=grant.purpose in CORRECTABLE,
        final_purposes=GIVEN_ONCE,
        again_url=request.url.path,
    )
