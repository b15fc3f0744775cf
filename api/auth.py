"""Who is asking: operators and admins by API key, parties by their signed link token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.ratelimit import client_address
from api.services import RecordsDep, ServicesDep
from operations.access import ApiKey, Role, authenticate
from runtime.links import PartyGrant, read_token

log = structlog.get_logger(__name__)

api_key_scheme = HTTPBearer(
    scheme_name="ApiKey",
    description="An operator's or admin's API key (`internflow keys create`).",
    auto_error=False,
)
party_scheme = HTTPBearer(
    scheme_name="PartyToken",
    description="The token of a party link (the part after /p/ in the e-mail's link).",
    auto_error=False,
)
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(api_key_scheme)]
PartyBearer = Annotated[HTTPAuthorizationCredentials | None, Depends(party_scheme)]


def unauthorized(request: Request, reason: str, message: str) -> HTTPException:
    # Never the presented token: only where, why and from which address.
    log.warning(
        "auth.refused", path=request.url.path, reason=reason, client=client_address(request)
    )
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


async def api_key(request: Request, credentials: Bearer, pool: RecordsDep) -> ApiKey:
    if credentials is None:
        raise unauthorized(
            request, "missing", "send an API key: `Authorization: Bearer <key>` (see keys create)"
        )
    key = await authenticate(pool, credentials.credentials)
    if key is None:
        raise unauthorized(request, "unknown_or_revoked", "this API key is unknown or revoked")
    return key


def _requiring(role: Role) -> Callable[..., Awaitable[ApiKey]]:
    async def check(request: Request, key: Annotated[ApiKey, Depends(api_key)]) -> ApiKey:
        if not key.allows(role):
            log.warning("auth.forbidden", path=request.url.path, key_id=key.key_id, needs=role)
            raise HTTPException(403, f"this needs an {role} key; yours is an {key.role} key")
        return key

    return check


def actor_of(key: ApiKey) -> str:
    """Who acted, as the records keep it: the key's role and id (never its name or secret)."""
    return f"{key.role}:{key.key_id}"


require_admin = _requiring("admin")
Operator = Annotated[ApiKey, Depends(_requiring("operator"))]
Admin = Annotated[ApiKey, Depends(require_admin)]


async def party_grant(request: Request, credentials: PartyBearer, app: ServicesDep) -> PartyGrant:
    if credentials is None:
        raise unauthorized(
            request, "missing", "send the token of your link: `Authorization: Bearer <token>`"
        )
    return read_token(app.secret, credentials.credentials)


Party = Annotated[PartyGrant, Depends(party_grant)]
