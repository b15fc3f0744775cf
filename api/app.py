"""The HTTP application: `create_app(settings)` wires the routers to Temporal and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

import asyncpg
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from temporalio.client import Client

from api.codec import codec_router
from api.documents import HeadAsGet, PublicCors
from api.errors import install_error_handlers
from api.limits import FormBodyLimit
from api.metrics import install_metrics
from api.outage import OutageNotice
from api.ratelimit import RateLimiter
from api.routers import (
    admins,
    badge_pages,
    dashboard,
    operators,
    parties,
    party_pages,
    public,
    wallet,
)
from api.services import Services
from api.web_ui import web_ui_router
from runtime.settings import Settings

DESCRIPTION = """
Durable internship workflows that end in a verifiable Open Badge.

* **operators** (API key, role `operator` or `admin`): start internships, one or a batch; list
  and search them; see one's status; amend, pause, resume, extend, withdraw, validate.
* **parties** (the token of the link they got by e-mail, as a Bearer token): approve or ask for
  changes, milestone reports, company feedback, assessments. The same forms are web pages at
  `/p/{token}`.
* **admins** (API key, role `admin`): history (audit trail and raw Temporal events), workflow
  description, statistics, badge revocation and suspension, API keys.
* **public**: badge verification, issuer profiles, keys and status lists, health.

Every change is a Temporal update: the answer comes once the workflow has accepted it. A
refusal says why: 404 unknown internship, 409 not possible in the internship's state, 422 not
valid (with each field's path), 503 with `Retry-After` while a part it needs (Temporal,
PostgreSQL) is down: nothing was recorded, and the same request (with the same submission id)
can be sent again. While Temporal is down, reads still answer from the records, with an
`Internflow-Notice` header saying what they are as of.
"""

#: The routers every app includes, in order.
ROUTERS: Final = (
    public.health,
    public.router,
    operators.router,
    parties.router,
    parties.validation_router,
    admins.router,
    party_pages.router,
    badge_pages.router,
    dashboard.router,
    wallet.router,
)


def create_app(
    settings: Settings, client: Client | None = None, pool: asyncpg.Pool | None = None
) -> FastAPI:
    """The API for `settings`. A given Temporal client or pool is used (and left open);
    otherwise they are made on first use and the pool is closed on shutdown."""
    services = Services(settings, client, pool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(
        title="internflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.limiter = RateLimiter(settings.rate_limit_per_minute)
    app.state.document_limiter = RateLimiter(settings.document_rate_limit_per_minute)
    install_error_handlers(app)
    app.add_middleware(FormBodyLimit)
    app.add_middleware(OutageNotice)
    for router in ROUTERS:
        app.include_router(router)
    # Admins decrypt histories here: the Temporal Web UI with the dashboard's session, the CLI
    # with an admin key.
    app.include_router(
        codec_router(
            settings,
            authorize=dashboard.admin_session_or_key,
            namespace=services.temporal_namespace,
        )
    )
    if settings.web_ui_upstream:
        # The Web UI on this origin, so that it reaches /codec with the admin's session.
        app.include_router(web_ui_router(settings))
    install_metrics(app, settings, temporal=client)
    # Outermost: HEAD wherever GET is, then CORS on the public documents (every answer of theirs,
    # refusals and 304s included, and their preflights before any route or limit).
    app.add_middleware(HeadAsGet)
    app.add_middleware(PublicCors)

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse("/docs")

    return app
