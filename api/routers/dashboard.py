"""The admin dashboard: sign in with an admin key, list and filter internships, see a timeline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import structlog
from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.auth import Bearer, api_key, require_admin
from api.i18n import NOT_AN_ADMIN_KEY
from api.pages import browser_language, render
from api.ratelimit import client_address, rate_limited
from api.services import RecordsDep, ServicesDep, SettingsDep
from i18n import gettext
from models.status import Phase
from operations import companies as host_companies
from operations.access import ApiKey, authenticate, get_api_key
from operations.badge_pages import page_choices
from operations.credentials import credential_for_internship
from operations.history import temporal_ui_link
from records import read

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/admin", tags=["admin dashboard"], include_in_schema=False)

COOKIE = "internflow_admin"
SESSION_SECONDS = 8 * 3600
PAGE = 50


def _session_value(secret: bytes, key_id: str, expires: int) -> str:
    body = f"{key_id}.{expires}"
    mac = hmac.new(secret, b"internflow/admin-session\x00" + body.encode(), hashlib.sha256)
    return f"{body}.{base64.urlsafe_b64encode(mac.digest()).rstrip(b'=').decode()}"


async def session_key(request: Request, app: Any) -> ApiKey | None:
    """The admin key behind the session cookie, if the cookie is genuine, fresh and the key
    is still an active admin key."""
    value = request.cookies.get(COOKIE, "")
    key_id, _, rest = value.partition(".")
    expires, _, _ = rest.partition(".")
    if not key_id or not expires.isdigit() or int(expires) < time.time():
        return None
    if not hmac.compare_digest(value, _session_value(app.secret, key_id, int(expires))):
        return None
    key = await get_api_key(await app.records(), key_id)
    return key if key is not None and key.allows("admin") else None


async def admin_session_or_key(request: Request, credentials: Bearer, app: ServicesDep) -> ApiKey:
    """An admin signed in to the dashboard (its cookie), or an admin API key: what the codec
    endpoint accepts, for the Temporal Web UI and the CLI alike."""
    key = await session_key(request, app)
    if key is not None:
        return key
    return await require_admin(request, await api_key(request, credentials, await app.records()))


def _to_login(request: Request) -> RedirectResponse:
    """To the sign-in page, which leads back to the page asked for (an e-mail's link to an
    internship, a filtered list)."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if wanted == "/admin":
        return RedirectResponse("/admin/login", status_code=303)
    return RedirectResponse(f"/admin/login?{urlencode({'next': wanted})}", status_code=303)


def _back_to(wanted: str) -> str:
    """Where to go after signing in: a dashboard page of this site (or the Temporal Web UI it
    serves), else the list. Anything
    else (another site, `//host`, a backslash trick) is refused, so the sign-in page cannot be
    used to send an admin elsewhere."""
    parts = urlsplit(wanted)
    if (
        parts.scheme
        or parts.netloc
        or "\\" in wanted
        or any(ord(c) < 32 for c in wanted)
        or not (
            parts.path in ("/admin", "/temporal")
            or parts.path.startswith(("/admin/", "/temporal/"))
        )
        or parts.path.startswith(("/admin/login", "/admin/logout"))
    ):
        return "/admin"
    return wanted


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, next: Annotated[str, Query(max_length=2000)] = "/admin"
) -> HTMLResponse:
    language = browser_language(request)
    return render(request, "admin_login.html", language, error=None, next=_back_to(next))


@router.post("/login", response_class=HTMLResponse, dependencies=[Depends(rate_limited)])
async def login(
    request: Request,
    app: ServicesDep,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/admin",
) -> Response:
    found = await authenticate(await app.records(), key.strip())
    if found is None or not found.allows("admin"):
        log.warning(
            "auth.refused", path=request.url.path, reason="login", client=client_address(request)
        )
        language = browser_language(request)
        return render(
            request,
            "admin_login.html",
            language,
            status_code=401,
            error=gettext(language, NOT_AN_ADMIN_KEY),
            next=_back_to(next),
        )
    expires = int(time.time()) + SESSION_SECONDS
    response = RedirectResponse(_back_to(next), status_code=303)
    response.set_cookie(
        COOKIE,
        _session_value(app.secret, found.key_id, expires),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
        # Also sent to /codec, so that the Temporal Web UI (same site) shows decrypted histories
        # to a signed-in admin.
        path="/",
    )
    log.info("admin.signed_in", key_id=found.key_id)
    return response


@router.post("/logout")
async def logout() -> RedirectResponse:
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("", response_class=HTMLResponse)
async def internships(
    request: Request,
    app: ServicesDep,
    pool: RecordsDep,
    phase: str = "",
    company: Annotated[str, Query(max_length=63)] = "",
    institution: Annotated[str, Query(max_length=63)] = "",
    overdue: str = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> Response:
    key = await session_key(request, app)
    if key is None:
        return _to_login(request)
    phases = [p.value for p in Phase]
    items = await read.list_internships(
        pool,
        phase=Phase(phase) if phase in phases else None,
        company_id=company or None,
        institution_id=institution or None,
        overdue={"yes": True, "no": False}.get(overdue),
        text=q.replace("\x00", "") or None,
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    stats = await read.cohort_statistics(pool)
    badges = await read.badge_counts(pool)
    return render(
        request,
        "admin_list.html",
        browser_language(request),
        items=items[:PAGE],
        more=len(items) > PAGE,
        stats=stats,
        badges=badges,
        phases=phases,
        filters={
            "phase": phase,
            "company": company,
            "institution": institution,
            "overdue": overdue,
            "q": q,
        },
        page=page,
        key=key,
    )


@router.get("/internships/{internship_id}", response_class=HTMLResponse)
async def internship(
    internship_id: Annotated[str, Path(max_length=63)],
    request: Request,
    app: ServicesDep,
    pool: RecordsDep,
    settings: SettingsDep,
) -> Response:
    key = await session_key(request, app)
    if key is None:
        return _to_login(request)
    row = await read.get_internship(pool, internship_id)
    if row is None:
        return render(
            request,
            "admin_internship.html",
            browser_language(request),
            status_code=404,
            row=None,
            key=key,
        )
    plan = await read.latest_plan(pool, internship_id)
    credential = await credential_for_internship(pool, internship_id)
    return render(
        request,
        "admin_internship.html",
        browser_language(request),
        # Every time on the page in the internship's time zone, named.
        zone=plan.period.time_zone if plan is not None else "UTC",
        row=row,
        plan=plan,
        # Who holds each role, by the plan in force: the approvals and the milestones name them.
        names=(
            {role: plan.person(role).name for role in plan.signatories()}
            if plan is not None
            else {}
        ),
        trail=await read.internship_timeline(pool, internship_id),
        status=await read.internship_status(pool, internship_id),
        credential=credential,
        # Its earner took it down: its public pages (the badge link below too) answer 404.
        taken_down=(
            credential is not None
            and not (await page_choices(pool, credential.credential_id)).published
        ),
        temporal_url=temporal_ui_link(
            settings.temporal_ui_url, app.temporal_namespace, internship_id
        ),
        key=key,
    )


@router.get("/companies", response_class=HTMLResponse)
async def companies(request: Request, app: ServicesDep, pool: RecordsDep) -> Response:
    """The school's view of its host companies (an admin sees every institution's)."""
    key = await session_key(request, app)
    if key is None:
        return _to_login(request)
    return render(
        request,
        "admin_companies.html",
        browser_language(request),
        companies=await host_companies.companies(pool, key.institution_scope),
        company=None,
        missing=False,
        min_ratings=host_companies.MIN_RATINGS,
        key=key,
    )


@router.get("/companies/{company_id}", response_class=HTMLResponse)
async def company(
    company_id: Annotated[str, Path(max_length=63)],
    request: Request,
    app: ServicesDep,
    pool: RecordsDep,
) -> Response:
    key = await session_key(request, app)
    if key is None:
        return _to_login(request)
    found = await host_companies.company(pool, company_id, key.institution_scope)
    return render(
        request,
        "admin_companies.html",
        browser_language(request),
        status_code=200 if found is not None else 404,
        companies=[found] if found is not None else [],
        company=found,
        missing=found is None,
        min_ratings=host_companies.MIN_RATINGS,
        key=key,
    )
