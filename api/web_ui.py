"""The Temporal Web UI under the API's own origin, at /temporal, for signed-in admins.

Why: the Web UI decrypts payloads by calling the codec endpoint (/codec) from the browser. Served
from another origin (the dev server's own port), that call carries the admin's session cookie only
when the UI is configured to "include cross-origin credentials", which the embedded dev server
cannot be told. Served here, the UI, the codec endpoint and the admin's session share one origin:
the browser sends the cookie by default, no CORS is involved, and any host name the admin uses
(127.0.0.1, localhost, a LAN name) works, because the codec endpoint handed to the UI is the
origin the UI was loaded from.

The upstream is the UI the embedded Temporal dev server runs with `--ui-public-path /temporal`
(INTERNFLOW_WEB_UI_UPSTREAM), on loopback. Every request needs the admin session: the UI can
terminate and reset workflows, so it is never served to anyone else.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated
from urllib.parse import urlencode, urlsplit

import h11
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.routers.dashboard import COOKIE, session_key
from api.services import ServicesDep
from runtime.codec import codec_configured
from runtime.settings import Settings

#: Where the UI lives under the API; the dev server's --ui-public-path.
PREFIX = "/temporal"
#: Headers that belong to one connection, not to the message (RFC 9110 7.6.1), and the ones this
#: proxy sets itself.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "accept-encoding",
}
_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: What the UI shows under a failed decode: what to do about it.
CODEC_HINT = (
    "The codec endpoint refused to decrypt: your admin session has ended. Sign in again at "
    "/admin/login, then reload this page."
)


#: How long the UI may take to answer one request (it is on loopback: seconds mean it is stuck).
UPSTREAM_TIMEOUT = 30.0


async def _exchange(
    host: str, port: int, method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One HTTP/1.1 request to the upstream on a fresh connection; its whole answer."""
    conn = h11.Connection(h11.CLIENT)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        request_headers = [("host", f"{host}:{port}"), ("connection", "close"), *headers]
        if body or method not in ("GET", "HEAD"):
            request_headers.append(("content-length", str(len(body))))
        writer.write(conn.send(h11.Request(method=method, target=target, headers=request_headers)))
        if body:
            writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        status = 502
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(65536))
            elif isinstance(event, h11.Response):
                status, response_headers = event.status_code, list(event.headers)
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, response_headers, b"".join(chunks)
    finally:
        writer.close()


def _with_codec_of(body: bytes, origin: str) -> bytes:
    """The UI's settings with the codec endpoint at the origin the UI was loaded from."""
    settings = json.loads(body)
    codec = settings.setdefault("Codec", {})
    codec["Endpoint"] = f"{origin}/codec"
    codec["IncludeCredentials"] = True
    codec["PassAccessToken"] = False
    codec["DefaultErrorMessage"] = CODEC_HINT
    codec["DefaultErrorLink"] = f"{origin}/admin/login"
    return json.dumps(settings).encode()


def web_ui_router(settings: Settings) -> APIRouter:
    """/temporal/...: the Web UI at INTERNFLOW_WEB_UI_UPSTREAM, to signed-in admins only."""
    assert settings.web_ui_upstream is not None
    upstream = urlsplit(settings.web_ui_upstream)
    host, port = upstream.hostname or "127.0.0.1", upstream.port or 80
    codec_on = codec_configured(settings)
    router = APIRouter(include_in_schema=False)

    async def forward(request: Request, app: ServicesDep, path: str) -> Response:
        if await session_key(request, app) is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                return RedirectResponse(
                    f"/admin/login?{urlencode({'next': wanted})}", status_code=303
                )
            return JSONResponse(
                {"detail": "the Temporal Web UI is for admins: sign in at /admin/login first"},
                status_code=401,
            )
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _HOP and name.lower() != "cookie"
        ]
        # The UI's own cookies (its CSRF token) go up; the admin session stays here.
        cookies = [f"{k}={v}" for k, v in request.cookies.items() if k != COOKIE]
        if cookies:
            headers.append(("cookie", "; ".join(cookies)))
        target = f"{PREFIX}/{path}" + (f"?{request.url.query}" if request.url.query else "")
        try:
            status, raw_headers, body = await asyncio.wait_for(
                _exchange(host, port, request.method, target, headers, await request.body()),
                UPSTREAM_TIMEOUT,
            )
        except (OSError, TimeoutError):
            return JSONResponse(
                {"detail": "the Temporal Web UI does not answer: is the stack running?"},
                status_code=502,
            )
        if path == "api/v1/settings" and status == 200:
            origin = f"{request.url.scheme}://{request.url.netloc}"
            body = _with_codec_of(body, origin) if codec_on else body
        response = Response(body, status_code=status)  # sets only content-length
        response.raw_headers += [
            (name, value) for name, value in raw_headers if name.decode().lower() not in _HOP
        ]
        return response

    @router.api_route(PREFIX, methods=_METHODS)
    async def root(request: Request, app: ServicesDep) -> Response:
        return await forward(request, app, "")

    @router.api_route(PREFIX + "/{path:path}", methods=_METHODS)
    async def anything(
        request: Request, app: ServicesDep, path: Annotated[str, Path(max_length=4000)]
    ) -> Response:
        return await forward(request, app, path)

    return router
