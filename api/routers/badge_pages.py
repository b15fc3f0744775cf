"""The earner's side of a badge: its public page to share (`/badges/<uuid>`: the image, what was
achieved, the live status, share links, downloads and an embed snippet), its files, and the
intern's page for their choices about it (`/b/<token>`, from the badge e-mail)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

import structlog
from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import i18n
from api.documents import cacheable
from api.i18n import EUROPASS_NOT_YET, EUROPASS_TITLE, LINK_EXPIRED, LINK_INVALID
from api.pages import browser_language, error_page, render
from api.ratelimit import client_address, rate_limited
from api.services import RecordsDep, SettingsDep
from badges.credential import EQF_FRAMEWORK
from badges.share import credential_facts, embed_snippet
from i18n import gettext
from mail.badge import badge_page_url, sharing, template_artwork, verify_page_url
from models.plan import InternshipPlan, Language
from operations import badge_pages as pages
from operations import credentials as creds
from operations import europass, organisations, wallet_claims
from records import read
from runtime.badge_links import BadgeGrant, read_badge_token
from runtime.links import LinkExpired, LinkRefused
from runtime.secret import load_or_create_secret
from runtime.settings import Settings

log = structlog.get_logger(__name__)
router = APIRouter(tags=["badge pages"], dependencies=[Depends(rate_limited)])

CredentialUuid = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="The credential's UUID (its id without `urn:uuid:`)",
    ),
]
#: The page's files: kept by a cache only if it asks again every time (a 304 when unchanged),
#: so that the earner taking the page down takes them down at once.
PAGE_FILE_CACHE: Final = "no-cache"


def page_url(settings: Settings, credential_uuid: str) -> str:
    return badge_page_url(settings.public_base_url, credential_uuid)


async def _published(
    pool: Any, credential_uuid: str
) -> tuple[creds.CredentialRecord, InternshipPlan, pages.PageChoices] | None:
    """The credential, its plan and the intern's choices; None when there is no such badge or
    its page is taken down (both answer 404, alike)."""
    try:
        record = await creds.get_credential(pool, credential_uuid)
    except creds.CredentialNotFound:
        return None
    plan = await read.latest_plan(pool, record.internship_id)
    if plan is None:
        return None
    choices = await pages.page_choices(pool, record.credential_id)
    if not choices.published:
        return None
    return record, plan, choices


def _gone(request: Request) -> HTMLResponse:
    return render(
        request, "badge_page.html", browser_language(request), status_code=404, badge=None
    )


def _outcomes(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each learning outcome with the level achieved, the level required and its EQF level."""
    subject = document.get("credentialSubject") or {}
    achievement = subject.get("achievement") or {}
    achieved = {
        item.get("resultDescription"): item.get("achievedLevel")
        for item in subject.get("result") or []
        if isinstance(item, dict)
    }
    outcomes = []
    for description in achievement.get("resultDescription") or []:
        levels = {level.get("id"): level for level in description.get("rubricCriterionLevel") or []}
        level = levels.get(achieved.get(description.get("id"))) or {}
        eqf: dict[str, Any] = next(
            (
                item
                for item in description.get("alignment") or []
                if item.get("targetFramework") == EQF_FRAMEWORK
            ),
            {},
        )
        esco = next(
            (
                item.get("targetUrl")
                for item in description.get("alignment") or []
                if item.get("targetFramework") == "ESCO"
            ),
            None,
        )
        outcomes.append(
            {
                "name": description.get("name"),
                "level": level.get("name"),
                "level_description": level.get("description"),
                "eqf_level": eqf.get("targetCode"),
                "eqf_url": eqf.get("targetUrl"),
                "esco_url": esco,
            }
        )
    return outcomes


def _evidence(document: dict[str, Any]) -> list[dict[str, str]]:
    items = document.get("evidence") or []
    if isinstance(items, dict):
        items = [items]
    return [
        {"name": str(item.get("name") or ""), "narrative": str(item.get("narrative") or "")}
        for item in items
        if isinstance(item, dict) and (item.get("name") or item.get("narrative"))
    ]


def _period(document: dict[str, Any], zone: str, language: Language) -> str:
    subject = document.get("credentialSubject") or {}
    start = subject.get("activityStartDate")
    if not start:
        return ""
    try:
        begin = datetime.fromisoformat(str(start))
        end = datetime.fromisoformat(str(subject.get("activityEndDate") or start))
    except ValueError:
        return str(start)[:10]
    return i18n.period(begin, end, zone, language)


@router.get(
    "/badges/{credential_uuid}",
    response_class=HTMLResponse,
    summary="A badge's public page, to share: what was achieved, its live status, share links",
    responses={404: {"description": "No such badge, or its earner took the page down"}},
)
async def badge_page(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep, settings: SettingsDep
) -> HTMLResponse:
    found = await _published(pool, credential_uuid)
    if found is None:
        return _gone(request)
    record, plan, choices = found
    # The page's words in the browser's language; one that asks for none of ours reads the page
    # in the language the badge is written in. The badge's own texts keep their language
    # (`lang` on them), so a page in another language marks them as such.
    content_language: Language = plan.badge.language
    language = browser_language(request, fallback=content_language)
    uuid = credential_uuid.lower()
    document = pages.credential_document(record)
    facts = credential_facts(document)
    report = await creds.verify_issued(pool, settings, record)
    revoked = bool(report.revoked) or record.revoked_at is not None
    suspended = not revoked and (bool(report.suspended) or record.suspended_at is not None)
    url = page_url(settings, uuid)
    svg_only = plan.badge.image is not None and plan.badge.image.endswith(".svg")
    image_url = f"{url}/badge.svg" if svg_only else f"{url}/badge.png"
    zone = plan.period.time_zone
    name = plan.intern.name if choices.show_name else None
    linkedin = await organisations.linkedin_organization(pool, plan.institution.id)
    shares = sharing(document, url, language, linkedin)
    jwt = isinstance(record.credential, str)
    return render(
        request,
        "badge_page.html",
        language,
        badge=facts,
        content_lang=content_language,
        evidence_lang=plan.intern.language,
        recipient=name,
        zone=zone,
        period=_period(document, zone, language),
        record=record,
        revoked=revoked,
        suspended=suspended,
        verified=report.verified and not revoked and not suspended,
        issuer=document.get("issuer") or {},
        outcomes=_outcomes(document),
        evidence=_evidence(document),
        page_url=url,
        image_url=image_url,
        png_url=None if svg_only else image_url,
        svg_url=f"{url}/badge.svg",
        credential_url=f"{url}/credential",
        credential_file="credential.jwt" if jwt else "credential.json",
        verify_url=verify_page_url(settings.public_base_url, uuid),
        shares=shares,
        embed=embed_snippet(url, image_url, facts.name, facts.issuer_name),
        description=facts.description,
        # Its earner can claim it into a wallet (with the code from the badge e-mail).
        wallet=None if revoked else await wallet_claims.page_offer(pool, settings, uuid, language),
    )


@router.get(
    "/badges/{credential_uuid}/badge.png",
    summary="The badge image with the credential baked in (PNG, iTXt `openbadgecredential`)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
async def badge_png(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep
) -> Response:
    found = await _published(pool, credential_uuid)
    if found is None:
        return Response("no such badge page", status_code=404, media_type="text/plain")
    record, plan, _ = found
    png = pages.baked_png(record, await template_artwork(pool, plan))
    if png is None:
        return Response(
            "this badge's image is an SVG: see badge.svg", status_code=404, media_type="text/plain"
        )
    return cacheable(request, png, "image/png", PAGE_FILE_CACHE)


@router.get(
    "/badges/{credential_uuid}/badge.svg",
    summary="The badge image as SVG with the credential baked in (`<openbadges:credential>`)",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def badge_svg(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep
) -> Response:
    found = await _published(pool, credential_uuid)
    if found is None:
        return Response("no such badge page", status_code=404, media_type="text/plain")
    record, plan, _ = found
    svg = pages.baked_svg(record, await template_artwork(pool, plan), plan.badge.name)
    return cacheable(request, svg, "image/svg+xml", PAGE_FILE_CACHE)


@router.get(
    "/badges/{credential_uuid}/credential",
    summary="The signed credential, as a file (JSON, or a compact VC-JWT)",
    response_class=Response,
    responses={200: {"content": {"application/ld+json": {}, "application/jwt": {}}}},
)
async def badge_credential(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep
) -> Response:
    found = await _published(pool, credential_uuid)
    if found is None:
        return Response("no such badge page", status_code=404, media_type="text/plain")
    record, _, _ = found
    jwt = isinstance(record.credential, str)
    return cacheable(
        request,
        pages.stored_text(record).encode(),
        "application/jwt" if jwt else "application/ld+json",
        PAGE_FILE_CACHE,
    )


# ---- the intern's choices ------------------------------------------------------------------


async def _granted(
    token: str, request: Request, pool: Any, settings: Settings
) -> tuple[BadgeGrant, creds.CredentialRecord] | HTMLResponse:
    """The grant of an intern's badge link and its credential, or the page that says why not
    (a link refused, a badge that is no more)."""
    try:
        grant = read_badge_token(load_or_create_secret(settings), token)
        return grant, await creds.get_credential(pool, grant.credential_uuid)
    except LinkRefused as error:
        return _refused(request, error)
    except creds.CredentialNotFound:
        return _gone(request)


def _refused(request: Request, error: LinkRefused) -> HTMLResponse:
    # The path holds the token: log where without it.
    log.warning(
        "auth.refused",
        path="/b/<token>",
        reason=type(error).__name__,
        client=client_address(request),
    )
    language = browser_language(request)
    message = gettext(language, LINK_EXPIRED if isinstance(error, LinkExpired) else LINK_INVALID)
    return render(
        request, "party_link_refused.html", language, status_code=error.status, message=message
    )


@router.get(
    "/b/{token}",
    response_class=HTMLResponse,
    summary="The intern's choices about their badge page, from the badge e-mail's link",
)
async def choices_page(
    token: str, request: Request, pool: RecordsDep, settings: SettingsDep, done: str = ""
) -> HTMLResponse:
    granted = await _granted(token, request, pool, settings)
    if isinstance(granted, HTMLResponse):
        return granted
    grant, record = granted
    plan = await read.latest_plan(pool, record.internship_id)
    language: Language = plan.intern.language if plan is not None else browser_language(request)
    choices = await pages.page_choices(pool, record.credential_id)
    facts = credential_facts(pages.credential_document(record))
    offered = None
    if plan is not None and record.status == "active":
        # The European Digital Credential, when the institution can issue one: sealed by its
        # own seal if it has one, else unsigned (it seals through the Europass issuer).
        legal = await pool.fetchval(
            "SELECT legal_identifier FROM institutions WHERE institution_id = $1",
            plan.institution.id,
        )
        if legal is not None:
            offered = europass.interns_form(settings, plan.institution.id)
    return render(
        request,
        "badge_choices.html",
        language,
        badge=facts,
        intern=plan.intern.name if plan is not None else "",
        choices=choices,
        done=done if done in pages.CHOICES else "",
        zone=plan.period.time_zone if plan is not None else "UTC",
        page_url=page_url(settings, grant.credential_uuid),
        europass=offered,
        europass_url=f"/b/{token}/europass",
    )


@router.get(
    "/b/{token}/europass",
    summary="The intern's badge as a European Digital Credential (ELM v3), from their own link",
    response_class=Response,
    responses={200: {"content": {"application/json": {}, "application/ld+json": {}}}},
)
async def interns_europass(
    token: str, request: Request, pool: RecordsDep, settings: SettingsDep
) -> Response:
    """Sealed with the institution's own seal when it has one configured, else the unsigned
    credential (the institution has it sealed through the Europass issuer). It names the intern,
    so it is offered on the intern's own page only, never on the public one."""
    granted = await _granted(token, request, pool, settings)
    if isinstance(granted, HTMLResponse):
        return granted
    record = granted[1]
    plan = await read.latest_plan(pool, record.internship_id)
    if plan is None:
        return _gone(request)
    form = europass.interns_form(settings, plan.institution.id)
    try:
        made = await europass.europass_file(pool, settings, record.internship_id, form)
    except europass.EuropassRefused as refused:
        # Not the intern's to fix: their institution is told the same when it asks.
        log.warning(
            "europass.refused", internship_id=record.internship_id, reason=type(refused).__name__
        )
        language: Language = plan.intern.language
        return render(
            request,
            "error.html",
            language,
            status_code=409,
            status=409,
            title=gettext(language, EUROPASS_TITLE),
            message=gettext(language, EUROPASS_NOT_YET),
        )
    return Response(
        made.text(),
        media_type=made.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{made.file_name}"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/b/{token}",
    response_class=HTMLResponse,
    summary="Record one of the intern's choices: show_name, hide_name, take_down or publish",
)
async def choose(
    token: str,
    request: Request,
    pool: RecordsDep,
    settings: SettingsDep,
    choice: Annotated[str, Form()] = "",
) -> Response:
    granted = await _granted(token, request, pool, settings)
    if isinstance(granted, HTMLResponse):
        return granted
    record = granted[1]
    if choice not in pages.CHOICES:
        # A form the page did not send (none, or an action it does not offer): the error page,
        # in the language the intern's page is in, as other browser forms answer.
        plan = await read.latest_plan(pool, record.internship_id)
        return error_page(
            request,
            422,
            f"choice: one of {', '.join(pages.CHOICES)}",
            language=plan.intern.language if plan is not None else None,
        )
    await pages.record_choice(pool, record.credential_id, choice)
    log.info("badge_page.choice", internship_id=record.internship_id, choice=choice)
    return RedirectResponse(f"/b/{token}?done={choice}", status_code=303)
