"""Reads while Temporal is down: the operators', parties' and admins' pages and JSON still answer
from the records, and say that nothing moves meanwhile (a header; a banner on pages)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The reads that belong to a running internship (public verification does not need Temporal).
READ_PATHS = ("/api/", "/admin", "/p/")
HEADER = "Internflow-Notice"


class OutageNotice:
    """ASGI middleware: a GET or HEAD of READ_PATHS while Temporal does not answer gets the
    `Internflow-Notice` header with the line of `Services.outage`, and `request.state.outage`
    for the page's banner. Anything else passes through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(READ_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        outage = await scope["app"].state.services.outage()
        if outage is None:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["outage"] = outage

        async def send_with_notice(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(HEADER, outage.line())
            await send(message)

        await self.app(scope, receive, send_with_notice)
