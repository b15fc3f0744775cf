"""Bounds on what a browser form may send: a form post larger than any form needs is refused
with 413 before it is read (a page for a browser, JSON for an API client)."""

from __future__ import annotations

from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response

#: The largest form body accepted: the longest form (feedback on a dozen outcomes with a
#: 4,000-character comment, every character percent-encoded) stays well under it.
MAX_FORM_BYTES: Final = 256 * 1024
#: Where the HTML forms post.
FORM_PATHS: Final = ("/p/", "/admin/")
TOO_LARGE: Final = "the form is too large: a text may have at most 4,000 characters"


class FormBodyLimit:
    """ASGI middleware: a POST to a form path declaring more than `limit` bytes is answered 413
    at once; one that does not declare its length is counted as it is read and stopped with 413
    once it passes the limit."""

    def __init__(self, app: ASGIApp, limit: int = MAX_FORM_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not str(scope["path"]).startswith(FORM_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = error_response(Request(scope), 413, TOO_LARGE)
            await response(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, counted, send)
