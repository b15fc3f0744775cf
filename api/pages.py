"""Server-rendered HTML: the Jinja2 environment of the party, verification and admin pages."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.i18n import translator
from models.plan import Language


def _environment() -> Environment:
    directory = resources.files("api") / "templates"
    env = Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["day"] = lambda value: f"{value:%d %b %Y}" if value is not None else ""
    env.filters["moment"] = lambda value: (
        f"{value:%d %b %Y %H:%M %Z}".strip() if value is not None else ""
    )
    return env


templates = Jinja2Templates(env=_environment())

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def render(
    request: Request,
    name: str,
    language: Language = "en",
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"t": translator(language), "lang": language, **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )
