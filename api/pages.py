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


#: Paths whose pages people open in a browser: their errors are pages too (for a browser).
HTML_PATHS = ("/p/", "/admin", "/verify/")


def wants_html(request: Request) -> bool:
    """A browser on one of the HTML pages (it accepts text/html): its errors are answered with
    a page in its language; API clients (and anything not asking for HTML) get JSON."""
    path = request.url.path
    accepts = request.headers.get("accept", "")
    return (path.startswith(HTML_PATHS) or path == "/p") and "text/html" in accepts


def browser_language(request: Request) -> Language:
    accepted = request.headers.get("accept-language", "").strip().lower()
    return "it" if accepted.startswith("it") else "en"


def error_page(
    request: Request,
    status_code: int,
    detail: str,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """An error as a page: what happened and what to do, in the browser's language."""
    language = browser_language(request)
    texts = translator(language)
    key = f"error_{status_code}" if f"error_{status_code}_title" in texts else "error_other"
    retry = (headers or {}).get("Retry-After")
    response = render(
        request,
        "error.html",
        language,
        status_code=status_code,
        status=status_code,
        title=texts[f"{key}_title"],
        message=texts[key].replace("{seconds}", retry or "60"),
        detail=detail if key in ("error_other", "error_422", "error_401", "error_403") else "",
    )
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-type", "content-length"):
            response.headers[name] = value
    return response


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
