"""The codec endpoint for the Temporal Web UI and CLI: POST /codec/encode and /codec/decode."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from runtime.clients import temporal_connection
from runtime.codec import CodecError, EncryptionCodec, codec_from_settings
from runtime.settings import Settings

#: What the Web UI sends besides the body: its namespace, and a token when configured to.
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
_Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _origin(url: str) -> str:
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else url.strip()


def allowed_origins(settings: Settings) -> frozenset[str]:
    """INTERNFLOW_CODEC_CORS_ORIGINS (comma-separated), else the embedded Web UI under both of its
    loopback names."""
    if settings.codec_cors_origins:
        return frozenset(_origin(o) for o in settings.codec_cors_origins.split(",") if o.strip())
    port = settings.temporal_ui_port
    return frozenset({f"http://127.0.0.1:{port}", f"http://localhost:{port}"})


class _Refused(HTTPException):
    """A refusal of the request itself (not of the caller): its message stands alone."""


def refusal_hint(public_base_url: str) -> str:
    """What a caller the codec refused should do: sign in (the Web UI) or send an admin key
    (the CLI). Names no credential."""
    return (
        "The codec decrypts for admins only. In a browser: sign in at "
        f"{public_base_url}/admin/login, then open the Temporal Web UI at "
        f"{public_base_url}/temporal. From the CLI: temporal workflow show --workflow-id <id> "
        f"--codec-endpoint {public_base_url}/codec --codec-auth 'Bearer <admin API key>'"
    )


def codec_router(
    settings: Settings,
    authorize: Callable[..., Any],
    *,
    codec: EncryptionCodec | None = None,
    prefix: str = "/codec",
    namespace: str | None = None,
) -> APIRouter:
    """The Temporal remote codec protocol: a JSON body `{"payloads": [...]}` (protobuf JSON, bytes
    in base64) in, the same shape out, through the configured codec (the identity when payload
    encryption is off). `authorize` is a FastAPI dependency that raises HTTPException (401/403)
    to refuse a caller; preflight requests pass without it, as browsers send no credentials there.
    Responses carry CORS headers for the allowed origins (the Web UI), with credentials."""
    codec = codec if codec is not None else codec_from_settings(settings)
    how_to = refusal_hint(settings.public_base_url)
    origins = allowed_origins(settings)
    namespace = namespace if namespace is not None else temporal_connection(settings).namespace

    def cors_headers(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in origins:
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    class CodecRoute(APIRoute):
        """Adds CORS headers to every answer, refusals included, so the UI can show them."""

        def get_route_handler(self) -> _Handler:
            handler = super().get_route_handler()

            async def with_cors(request: Request) -> Response:
                try:
                    response = await handler(request)
                except HTTPException as refused:
                    detail = refused.detail
                    if refused.status_code in (401, 403) and not isinstance(refused, _Refused):
                        detail = f"{detail}. {how_to}"  # the caller is not an admin
                    response = JSONResponse(
                        {"detail": detail}, refused.status_code, headers=refused.headers
                    )
                response.headers.update(cors_headers(request))
                return response

            return with_cors

    router = APIRouter(prefix=prefix, tags=["codec"], route_class=CodecRoute)

    async def apply(request: Request, encode: bool) -> Response:
        asked = request.headers.get("x-namespace")
        if asked is not None and asked != namespace:
            raise _Refused(403, f"this codec serves namespace {namespace!r}, not {asked!r}")
        try:
            message = json_format.Parse(await request.body(), Payloads())
        except json_format.ParseError:
            raise HTTPException(
                400, 'send JSON {"payloads": [{"metadata": {...}, "data": "<base64>"}]}'
            ) from None
        payloads: list[Payload] = list(message.payloads)
        if codec is not None:
            try:
                payloads = await (codec.encode(payloads) if encode else codec.decode(payloads))
            except CodecError as error:
                raise HTTPException(400, str(error)) from None
        body = json_format.MessageToDict(Payloads(payloads=payloads))
        return JSONResponse({"payloads": body.get("payloads", [])})

    guard = [Depends(authorize)]

    @router.post("/encode", dependencies=guard, summary="Encrypt payloads")
    async def encode(request: Request) -> Response:
        return await apply(request, encode=True)

    @router.post("/decode", dependencies=guard, summary="Decrypt payloads (Web UI, CLI)")
    async def decode(request: Request) -> Response:
        return await apply(request, encode=False)

    @router.options("/encode", include_in_schema=False)
    @router.options("/decode", include_in_schema=False)
    async def preflight(request: Request) -> Response:
        headers = cors_headers(request)
        if headers:
            headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Max-Age"] = "600"
        return Response(status_code=204 if headers else 403, headers=headers)

    return router
