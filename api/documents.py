"""What verifiers fetch: the public, credential-free verification documents (issuer profiles,
public keys, DID documents, the JWKS, status lists, the credential JSON, the wallet's metadata),
served to any origin (CORS, preflight included), cacheable (ETag, Last-Modified, Cache-Control,
conditional requests answered 304), under a rate limit of their own; and HEAD on every GET route.

Decision 0038 (docs/decisions/0038-what-verifiers-fetch.md) says why each is as it is."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CORS_MAX_AGE",
    "HeadAsGet",
    "PublicCors",
    "cacheable",
    "is_shared_with_any_origin",
    "is_verification_document",
    "json_document",
]

_UUID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

#: The verification documents, by path: what a verifier (or a wallet) fetches to check a badge.
_DOCUMENTS: Final = re.compile(
    rf"""^(?:
        /issuers/[^/]+(?:/keys/[^/]+|(?:/did)?/status/[^/]+)?  # profile, keys, revocation list
      | /status/[^/]+                                  # the did:web issuer's list
      | (?:/[^/]+)*/did\.json                          # any did:web DID document
      | /\.well-known/(?:jwks\.json|openid-credential-issuer|oauth-authorization-server)
      | /credentials/{_UUID}(?:\.json|/status)         # the credential, its issuer-kept status
      | /images/[^/]+                                  # the achievement's image
    )$""",
    re.VERBOSE,
)
#: Public, credential-free files that are not verification documents but any page may read: a
#: badge page's downloads (the credential, the baked PNG and SVG).
_PAGE_FILES: Final = re.compile(rf"^/badges/{_UUID}/(?:credential|badge\.png|badge\.svg)$")
#: The wallet's offers by reference (`credential_offer_uri`): a wallet that runs in a browser
#: fetches one from another origin, as it does the wallet's metadata. Never cached (no-store).
_WALLET_OFFERS: Final = re.compile(r"^/oid4vci/offers/[^/]+$")

#: How long a browser may keep a preflight's answer (seconds).
CORS_MAX_AGE: Final = 86400
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_ALLOW_METHODS: Final = "GET, HEAD, OPTIONS"
_EXPOSE: Final = "ETag, Last-Modified, Cache-Control, Retry-After, Content-Length"


def is_verification_document(path: str) -> bool:
    """Whether `path` is one of the verification documents (their CORS and rate limit)."""
    return _DOCUMENTS.match(path) is not None


def is_shared_with_any_origin(path: str) -> bool:
    """Whether any origin may read `path` (CORS `*`): the verification documents, a badge
    page's downloads and the wallet's offers by reference. Never a page, a form, an API call
    with credentials or the wallet's token and credential endpoints."""
    return (
        is_verification_document(path)
        or _PAGE_FILES.match(path) is not None
        or _WALLET_OFFERS.match(path) is not None
    )


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


class PublicCors:
    """ASGI middleware: the public documents may be read from any origin, without credentials.

    Every answer on those paths, refusals included (404, 429 with Retry-After: a browser
    verifier can then read why), carries `Access-Control-Allow-Origin: *`; a preflight
    (`OPTIONS` with `Access-Control-Request-Method` GET or HEAD) is answered 204 with the methods
    and the request headers asked for, before any route or rate limit. No
    `Access-Control-Allow-Credentials`: none of these needs a cookie, and `*` forbids one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_shared_with_any_origin(str(scope["path"])):
            await self.app(scope, receive, send)
            return
        asked = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and asked is not None:
            await self._preflight(scope, asked, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (key, value)
                    for key, value in message.get("headers", [])
                    if not key.lower().startswith(b"access-control-")
                ]
                headers += [
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", _EXPOSE.encode()),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_cors)

    @staticmethod
    async def _preflight(scope: Scope, asked: bytes, send: Send) -> None:
        allowed = asked.decode("latin-1").strip().upper() in _SAFE_METHODS
        headers = [
            (b"access-control-allow-origin", b"*"),
            (b"access-control-allow-methods", _ALLOW_METHODS.encode()),
            (b"access-control-max-age", str(CORS_MAX_AGE).encode()),
            (b"vary", b"Access-Control-Request-Headers"),
            (b"content-length", b"0"),
        ]
        wanted = _header(scope, b"access-control-request-headers")
        if wanted:
            # Whatever a reader asks to send (Accept, Cache-Control, If-None-Match, ...): these
            # documents are the same for every request, so no request header can do harm.
            headers.append((b"access-control-allow-headers", wanted))
        status = 204 if allowed else 405
        if not allowed:
            headers.append((b"allow", _ALLOW_METHODS.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


class HeadAsGet:
    """ASGI middleware: `HEAD` works wherever `GET` does. A HEAD request that no route takes as
    HEAD is run as the GET it mirrors and answered with that GET's status and headers
    (Content-Length, ETag, Cache-Control... as for GET) and no body. Routes that take HEAD
    themselves (the Web UI's passthrough) still get it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or self._takes_head(scope):
            await self.app(scope, receive, send)
            return

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, without_body)

    @staticmethod
    def _takes_head(scope: Scope) -> bool:
        app = scope.get("app")
        router = getattr(app, "router", None)
        for route in getattr(router, "routes", ()):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return True
        return False


def entity_tag(body: bytes) -> str:
    """A strong entity tag of `body`: the same bytes give the same tag in every process."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _matches(if_none_match: str, tag: str) -> bool:
    """If-None-Match's weak comparison (RFC 9110 13.1.2): `*`, or any listed tag, W/ or not."""
    if if_none_match.strip() == "*":
        return True
    wanted = tag.removeprefix("W/")
    return any(
        candidate.strip().removeprefix("W/") == wanted for candidate in if_none_match.split(",")
    )


def _not_modified_since(request: Request, last_modified: datetime) -> bool:
    since = request.headers.get("if-modified-since")
    if since is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return last_modified.replace(microsecond=0) <= moment


def _second_is_over(moment: datetime) -> bool:
    """Whether the whole second of `moment` has passed. Last-Modified counts whole seconds, so
    it is sent only then: a second change within that same second would otherwise carry the
    same date, and a cache asking If-Modified-Since would keep the first. (The ETag tells every
    change apart; If-None-Match takes precedence.)"""
    return datetime.now(UTC) >= moment.astimezone(UTC).replace(microsecond=0) + timedelta(seconds=1)


def cacheable(
    request: Request,
    body: bytes,
    media_type: str,
    cache_control: str,
    *,
    last_modified: datetime | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """`body` with its ETag, Cache-Control and (when given, once its second is over)
    Last-Modified; a conditional request that matches (If-None-Match, else If-Modified-Since)
    gets 304 with the same validators and no body."""
    tag = entity_tag(body)
    validators = {"ETag": tag, "Cache-Control": cache_control, **(headers or {})}
    if last_modified is not None and _second_is_over(last_modified):
        validators["Last-Modified"] = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        fresh = _matches(if_none_match, tag)
    else:
        fresh = last_modified is not None and _not_modified_since(request, last_modified)
    if fresh:
        return Response(status_code=304, headers=validators)
    return Response(body, media_type=media_type, headers=validators)


def json_document(
    request: Request,
    document: Any,
    media_type: str,
    cache_control: str,
    last_modified: datetime | None = None,
) -> Response:
    """A JSON document, written as JSONResponse writes it, cacheable (see `cacheable`)."""
    body = bytes(JSONResponse(document).body)
    return cacheable(request, body, media_type, cache_control, last_modified=last_modified)
