"""Server-rendered HTML: the Jinja2 environment of the party, verification and admin pages."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from api.i18n import (
    ADMIN_OUTAGE_BANNER,
    ERRORS,
    OUTAGE_BANNER,
    PAUSED_DAYS,
    PAUSED_HOURS,
    PAUSED_MINUTES,
    WORDS,
)
from i18n import LANGUAGES, day, gettext, moment, ngettext, number, percent, translations
from models.plan import Language
from runtime.availability import Outage

#: The Jinja options of the page templates (also those their messages are extracted with).
OPTIONS: dict[str, Any] = {
    "extensions": ["jinja2.ext.i18n"],
    "trim_blocks": True,
    "lstrip_blocks": True,
}


def _environment(language: Language) -> Environment:
    directory = resources.files("api") / "templates"
    env = Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=select_autoescape(["html"]),
        **OPTIONS,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    # `|day(zone)`, `|moment(zone)`: in the internship's time zone, named (UTC unless given).
    env.filters["day"] = lambda value, zone="UTC": (
        day(value, zone, language) if value is not None else ""
    )
    env.filters["moment"] = lambda value, zone="UTC": (
        moment(value, zone, language) if value is not None else ""
    )
    env.globals["number"] = lambda value: number(value, language)
    env.globals["percent"] = lambda rate: percent(rate, language) if rate is not None else "—"
    env.globals["words"] = WORDS
    env.globals["paused_shift"] = lambda seconds: paused_shift(seconds, language)
    return env


def paused_shift(seconds: float, language: Language) -> str:
    """How far pauses moved the dates, in the largest unit that is at least one (days to one
    decimal; whole hours or minutes below a day); nothing below a minute."""
    if seconds >= 86400:
        days = round(seconds / 86400, 1)
        # The form for the count: a fraction takes the plural (1.5 days).
        count = int(days) if days == int(days) else 2
        message, value = PAUSED_DAYS, number(days, language)
    elif seconds >= 3600:
        count = int(seconds // 3600)
        message, value = PAUSED_HOURS, number(count, language)
    elif seconds >= 60:
        count = int(seconds // 60)
        message, value = PAUSED_MINUTES, number(count, language)
    else:
        return ""
    return ngettext(language, *message, count, count=value)


#: The pages' templates in each language.
TEMPLATES: dict[str, Jinja2Templates] = {
    language: Jinja2Templates(env=_environment(language)) for language in LANGUAGES
}
templates = TEMPLATES["en"]

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


#: Paths whose pages people open in a browser: their errors are pages too (for a browser).
HTML_PATHS = ("/p/", "/b/", "/admin", "/verify/")


def wants_html(request: Request) -> bool:
    """A browser on one of the HTML pages (it accepts text/html): its errors are answered with
    a page in its language; API clients (and anything not asking for HTML) get JSON."""
    path = request.url.path
    accepts = request.headers.get("accept", "")
    return (path.startswith(HTML_PATHS) or path == "/p") and "text/html" in accepts


def browser_language(request: Request, fallback: Language = "en") -> Language:
    """The first language of the browser's Accept-Language that the pages are written in (its
    weights are in preference order in practice), else `fallback` (a page whose content is
    written in one language passes it: the page is then all in that language)."""
    for item in request.headers.get("accept-language", "").split(","):
        tag = item.split(";")[0].strip().lower()
        primary = tag.split("-")[0]
        if primary in LANGUAGES:
            return primary
    return fallback


def error_page(
    request: Request,
    status_code: int,
    detail: str,
    headers: dict[str, str] | None = None,
    language: Language | None = None,
) -> HTMLResponse:
    """An error as a page: what happened and what to do, in `language` (the page's own, where
    it has one), else the browser's."""
    language = language or browser_language(request)
    known = status_code if status_code in ERRORS else None
    title, message = ERRORS[known]
    retry = (headers or {}).get("Retry-After")
    seconds = int(retry) if retry and retry.isdigit() else 60
    if isinstance(message, tuple):  # a count: the language's form for it
        said = ngettext(language, *message, seconds, seconds=number(seconds, language))
    else:
        said = gettext(language, message)
    response = render(
        request,
        "error.html",
        language,
        status_code=status_code,
        status=status_code,
        title=gettext(language, title),
        message=said,
        detail=detail if known in (None, 422, 401, 403) else "",
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
    return TEMPLATES[language].TemplateResponse(
        request,
        name,
        {"lang": language, "outage": outage_banner(request, name, language), **context},
        status_code=status_code,
        headers=SECURITY_HEADERS,
    )


def outage_banner(request: Request, name: str, language: Language) -> str | None:
    """The banner above a page while Temporal is down (api/outage.py found it so), else None:
    for admins, what the records are as of; for a party, that sending waits for it."""
    outage: Outage | None = getattr(request.state, "outage", None)
    if outage is None:
        return None
    if not name.startswith("admin"):
        return gettext(language, OUTAGE_BANNER)
    as_of = moment(outage.as_of, "UTC", language) if outage.as_of is not None else "—"
    return gettext(language, ADMIN_OUTAGE_BANNER, as_of=as_of)
