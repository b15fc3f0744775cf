"""Claiming a badge into a wallet: OpenID for Verifiable Credential Issuance 1.0, pre-authorized
code flow. The issuer's and the authorization server's metadata, the offers by reference (each
fetched once), the token, nonce and credential endpoints (operations/wallet_claims.py). Errors
are OAuth 2.0 error objects (`error`, `error_description`), never the API's usual `detail`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from api.documents import json_document
from api.ratelimit import rate_limited
from api.services import RecordsDep, SettingsDep
from badges.oid4vci import (
    CREDENTIAL_PATH,
    NONCE_PATH,
    OFFERS_PATH,
    TOKEN_PATH,
    authorization_server_metadata,
    issuer_metadata,
)
from operations import wallet_claims as claims

router = APIRouter(tags=["wallet (OpenID4VCI)"], dependencies=[Depends(rate_limited)])
_NO_STORE = {"Cache-Control": "no-store"}
#: The metadata changes only with the deployment's configuration.
METADATA_CACHE = "public, max-age=3600"


def _refused(refused: claims.ClaimRefused) -> JSONResponse:
    """An OAuth error object; a 401 also says, in WWW-Authenticate, what RFC 6750 section 3 has
    a protected resource say: `Bearer` alone without a token, with the error code otherwise."""
    headers = dict(_NO_STORE)
    if refused.status == 401:
        challenge = "Bearer"
        if refused.error is not None:
            description = claims.oauth_text(refused.description)
            challenge += f' error="{refused.error}", error_description="{description}"'
        headers["WWW-Authenticate"] = challenge
    return JSONResponse(refused.as_dict(), status_code=refused.status, headers=headers)


@router.get(
    "/.well-known/openid-credential-issuer",
    summary="Credential issuer metadata (OpenID4VCI 1.0): one ldp_vc configuration, the badge",
)
async def credential_issuer_metadata(request: Request, settings: SettingsDep) -> Response:
    return json_document(
        request, issuer_metadata(settings.public_base_url), "application/json", METADATA_CACHE
    )


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorization server metadata (RFC 8414): the pre-authorized code grant",
)
async def oauth_authorization_server(request: Request, settings: SettingsDep) -> Response:
    return json_document(
        request,
        authorization_server_metadata(settings.public_base_url),
        "application/json",
        METADATA_CACHE,
    )


@router.get(
    OFFERS_PATH + "/{reference}",
    summary="A credential offer by reference (credential_offer_uri), answered once",
    responses={404: {"description": "Unknown, expired or already fetched: an OAuth error"}},
)
async def credential_offer(reference: str, pool: RecordsDep) -> JSONResponse:
    """The offer the badge e-mail or a badge's page shows by reference, for the wallet that
    fetches it: once, before its pre-authorized code expires (then never again: it is cleared
    from the records as it is answered). Never cached."""
    try:
        offer = await claims.served_offer(pool, reference)
    except claims.ClaimRefused as refused:
        return _refused(refused)
    return JSONResponse(offer, headers=_NO_STORE)


@router.post(
    TOKEN_PATH,
    summary="Redeem a pre-authorized code (with the badge's transaction code) for an access token",
    responses={400: {"description": "An OAuth error: invalid_grant, invalid_request, ..."}},
)
async def token(request: Request, pool: RecordsDep, settings: SettingsDep) -> JSONResponse:
    form = await request.form()

    def field(name: str) -> str | None:
        value = form.get(name)
        return value if isinstance(value, str) else None

    try:
        answer = await claims.redeem_code(
            pool,
            settings,
            field("grant_type"),
            field("pre-authorized_code"),
            field("tx_code"),
        )
    except claims.ClaimRefused as refused:
        return _refused(refused)
    return JSONResponse(answer, headers=_NO_STORE)


@router.post(NONCE_PATH, summary="A fresh c_nonce for a proof of possession")
async def nonce(settings: SettingsDep) -> JSONResponse:
    return JSONResponse(claims.new_nonce(settings), headers=_NO_STORE)


@router.post(
    CREDENTIAL_PATH,
    summary="The badge, bound to the key the wallet proves it holds (ldp_vc, eddsa-rdfc-2022)",
    responses={
        400: {"description": "invalid_proof, invalid_nonce, unknown_credential_configuration"},
        401: {"description": "invalid_token"},
    },
)
async def credential(request: Request, pool: RecordsDep, settings: SettingsDep) -> JSONResponse:
    try:
        body = await request.json()
    except ValueError:
        body = None
    try:
        answer = await claims.issue_to_wallet(
            pool, settings, request.headers.get("authorization"), body
        )
    except claims.ClaimRefused as refused:
        return _refused(refused)
    return JSONResponse(answer, headers=_NO_STORE)
