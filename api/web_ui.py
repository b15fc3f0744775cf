"""The Temporal Web UI under the API's own origin, at /temporal, for signed-in admins.

Why: the Web UI decrypts payloads by calling the codec endpoint (/codec) from the browser. Served
from another origin (the dev server's own port), that call carries the admin's session cookie only
when the UI is configured to "include cross-origin credentials", which the embedded dev server
cannot be told. Served here, the UI, the codec endpoint and the admin's session share one origin:
the browser sends the cookie by default, no CORS is involved, and any host name the admin uses
(127.0.0.1, localhost, a LAN name) works, because the codec endpoint handed to the UI is the
origin the UI was loaded from.

The upstream is the UI the embedded Temporal dev server runs with `--ui-public-path /temporal`
(INTERNFLOW_WEB_UI_UPSTREAM), on loopback. Every request needs the admin session: the UI shows
every internship's history, so it is never served to anyone else.

The UI served here is read-only (docs/decisions/0035-the-web-ui-is-read-only.md): an internship
changes only through internflow, which records who changed it and why. Temporal's UI would
otherwise terminate, cancel, signal, update, reset, pause and start workflows, run batch
operations and edit schedules, all by calls to its HTTP API that bypass the audit trail. So only
reading passes: GET (and HEAD) requests, and under api/v1 only the read calls the UI makes
(READS); everything else is refused before it reaches the dev server. The UI is also told that
write actions are disabled (its settings), so it offers none. The dev server cannot be
configured so (`temporal server start-dev` has no such flag).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Annotated
from urllib.parse import urlencode, urlsplit

import h11
import structlog
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from api.routers.dashboard import COOKIE, session_key
from api.services import ServicesDep
from runtime.codec import codec_configured
from runtime.settings import Settings

log = structlog.get_logger(__name__)

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
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: The methods that pass: reading. Every write of Temporal's HTTP API is a POST, PUT, PATCH or
#: DELETE (temporal/api/workflowservice/v1/service.proto's http rules); every GET is a read.
READ_METHODS = frozenset({"GET", "HEAD"})
#: The calls under api/v1 the UI reads with (the read entries of its route table, UI 2.54), each
#: a GET of Temporal's HTTP API or of the UI's own server (tests/test_web_ui_codec.py checks it
#: against the protos): `{}` is one path segment. Any other api/v1 path is refused, even as a
#: GET, so a call a newer UI makes is refused until someone has checked that it reads. Queries
#: (POST .../query/...) are refused too: they run workflow code on a worker.
READS = (
    "settings",
    "cluster-info",
    "system-info",
    "namespaces",
    "namespaces/{}",
    "namespaces/{}/search-attributes",
    "namespaces/{}/workflows",
    "namespaces/{}/workflows/{}",
    "namespaces/{}/workflows/{}/history",
    "namespaces/{}/workflows/{}/history-reverse",
    "namespaces/{}/workflows/{}/run/{}/history.json",
    "namespaces/{}/archived-workflows",
    "namespaces/{}/workflow-count",
    "namespaces/{}/schedules",
    "namespaces/{}/schedules/{}",
    "namespaces/{}/schedule-count",
    "namespaces/{}/task-queues/{}",
    "namespaces/{}/task-queues/{}/worker-build-id-compatibility",
    "namespaces/{}/task-queues/{}/worker-versioning-rules",
    "namespaces/{}/workers",
    "namespaces/{}/workers/describe/{}",
    "namespaces/{}/worker-count",
    "namespaces/{}/worker-task-reachability",
    "namespaces/{}/worker-deployments",
    "namespaces/{}/worker-deployments/{}",
    "namespaces/{}/worker-deployment-versions/{}/{}",
    "namespaces/{}/batch-operations",
    "namespaces/{}/batch-operations/{}",
    "namespaces/{}/activities",
    "namespaces/{}/activities/{}",
    "namespaces/{}/activity-count",
    "namespaces/{}/nexus-operations",
    "namespaces/{}/nexus-operations/{}",
    "namespaces/{}/nexus-operations/{}/poll",
    "namespaces/{}/nexus-operation-count",
    "nexus/endpoints",
    "nexus/endpoints/{}",
)
_API = "api/v1/"
_READ_PATHS = re.compile(
    "|".join(re.escape(_API + read).replace(r"\{\}", "[^/]+") for read in READS)
)
#: The UI's settings that turn its write actions off: every button that would change a workflow
#: (or start one) is disabled. The UI checks DisableWriteActions and, for some actions, a setting
#: of their own: all of them are set.
READ_ONLY_SETTINGS = {
    "DisableWriteActions": True,
    "WorkflowTerminateDisabled": True,
    "WorkflowCancelDisabled": True,
    "WorkflowSignalDisabled": True,
    "WorkflowUpdateDisabled": True,
    "WorkflowResetDisabled": True,
    "WorkflowPauseDisabled": True,
    "BatchActionsDisabled": True,
    "StartWorkflowDisabled": True,
    "ActivityCommandsDisabled": True,
}
#: What a refused write says.
READ_ONLY = (
    "the Temporal Web UI is read-only: change an internship through internflow (the API, the "
    "command line or the dashboard), which records who changed it and why"
)
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


def _settings_for(body: bytes, origin: str, codec_on: bool) -> bytes:
    """The UI's settings with its write actions disabled and, when payloads are encrypted, the
    codec endpoint at the origin the UI was loaded from."""
    settings = json.loads(body)
    settings.update(READ_ONLY_SETTINGS)
    if codec_on:
        codec = settings.setdefault("Codec", {})
        codec["Endpoint"] = f"{origin}/codec"
        codec["IncludeCredentials"] = True
        codec["PassAccessToken"] = False
        codec["DefaultErrorMessage"] = CODEC_HINT
        codec["DefaultErrorLink"] = f"{origin}/admin/login"
    return json.dumps(settings).encode()


def refusal(method: str, path: str) -> str | None:
    """Why the passthrough refuses `method` on `path` (relative to /temporal), or None when it
    reads. A path with `.` or `..` segments is refused: only what it names literally is checked."""
    if method not in READ_METHODS:
        return READ_ONLY
    if any(segment in (".", "..") for segment in path.split("/")):
        return "a path with . or .. segments is not forwarded"
    if path.startswith(_API) and _READ_PATHS.fullmatch(path) is None:
        return READ_ONLY
    return None


def web_ui_router(settings: Settings) -> APIRouter:
    """/temporal/...: the Web UI at INTERNFLOW_WEB_UI_UPSTREAM, to signed-in admins only."""
    assert settings.web_ui_upstream is not None
    upstream = urlsplit(settings.web_ui_upstream)
    host, port = upstream.hostname or "127.0.0.1", upstream.port or 80
    codec_on = codec_configured(settings)
    router = APIRouter(include_in_schema=False)

    async def forward(request: Request, app: ServicesDep, path: str) -> Response:
        admin = await session_key(request, app)
        if admin is None:
            wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                return RedirectResponse(
                    f"/admin/login?{urlencode({'next': wanted})}", status_code=303
                )
            return JSONResponse(
                {"detail": "the Temporal Web UI is for admins: sign in at /admin/login first"},
                status_code=401,
            )
        refused = refusal(request.method, path)
        if refused is not None:
            log.warning(
                "web_ui.refused",
                method=request.method,
                path=f"{PREFIX}/{path}",
                key_id=admin.key_id,
            )
            allow = {"Allow": ", ".join(sorted(READ_METHODS))}
            if request.method in READ_METHODS:
                return JSONResponse({"detail": refused}, status_code=403)
            return JSONResponse({"detail": refused}, status_code=405, headers=allow)
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _HOP and name.lower() not in ("cookie", "x-http-method-override")
        ]
        # The UI's own cookies (its CSRF token) go up; the admin session stays here.
        cookies = [f"{k}={v}" for k, v in request.cookies.items() if k != COOKIE]
        if cookies:
            headers.append(("cookie", "; ".join(cookies)))
        target = f"{PREFIX}/{path}" + (f"?{request.url.query}" if request.url.query else "")
        try:
            status, raw_headers, body = await asyncio.wait_for(
                _exchange(host, port, request.method, target, headers, b""),
                UPSTREAM_TIMEOUT,
            )
        except (OSError, TimeoutError):
            return JSONResponse(
                {"detail": "the Temporal Web UI does not answer: is the stack running?"},
                status_code=502,
            )
        if path == "api/v1/settings" and status == 200:
            origin = f"{request.url.scheme}://{request.url.netloc}"
            body = _settings_for(body, origin, codec_on)
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
