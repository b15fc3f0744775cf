"""Public: health, badge verification, issuer profiles and keys, status lists, badge images."""

from __future__ import annotations

import asyncio
import re
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from activities.status_lists import signed_status_list, status_list_url
from api import reads
from api.pages import render
from api.ratelimit import rate_limited
from api.services import RecordsDep, ServicesDep, SettingsDep
from badges.credential import issuer_id_for
from badges.keyring import KeyRing
from badges.keys import rsa_public_key_to_jwk
from badges.status import STATUS_PURPOSES, StatusPurpose
from models.base import Identifier
from operations import credentials as creds

router = APIRouter(tags=["public"], dependencies=[Depends(rate_limited)])
health = APIRouter(tags=["public"])

CredentialUuid = Annotated[
    str,
    Path(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="The credential's UUID (its id without `urn:uuid:`)",
    ),
]
_IMAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\.(png|svg)$")
LD_JSON = "application/ld+json"


class LdJsonResponse(JSONResponse):
    media_type = LD_JSON


@health.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz",
    summary="Temporal and PostgreSQL are reachable",
    responses={503: {"description": "A dependency is not reachable"}},
)
async def readyz(app: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        client = await app.temporal()
        await asyncio.wait_for(client.service_client.check_health(), 5)
        checks["temporal"] = "ok"
    except Exception as error:  # any failure means not ready; say which part
        checks["temporal"] = f"unreachable ({type(error).__name__})"
    try:
        pool = await app.records()
        await asyncio.wait_for(pool.fetchval("SELECT 1"), 5)
        checks["postgresql"] = "ok"
    except Exception as error:
        checks["postgresql"] = f"unreachable ({type(error).__name__})"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


@router.get(
    "/verify/{credential_uuid}",
    response_class=HTMLResponse,
    summary="Verification page of an issued badge",
)
async def verify_page(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep, settings: SettingsDep
) -> HTMLResponse:
    try:
        record = await creds.get_credential(pool, credential_uuid)
    except creds.CredentialNotFound:
        return render(request, "verify.html", status_code=404, record=None, report=None)
    report = await creds.verify_issued(pool, settings, record)
    credential = record.credential
    subject = credential.get("credentialSubject") or {}
    achievement = subject.get("achievement") or {}
    results = {
        item.get("resultDescription"): item.get("achievedLevel")
        for item in subject.get("result") or []
        if isinstance(item, dict)
    }
    outcomes = []
    for description in achievement.get("resultDescription") or []:
        levels = {
            level.get("id"): level.get("name")
            for level in description.get("rubricCriterionLevel") or []
        }
        outcomes.append(
            {
                "name": description.get("name"),
                "achieved": levels.get(results.get(description.get("id"))),
            }
        )
    revoked = bool(report.revoked) or record.revoked_at is not None
    suspended = not revoked and (bool(report.suspended) or record.suspended_at is not None)
    return render(
        request,
        "verify.html",
        record=record,
        report=report,
        revoked=revoked,
        suspended=suspended,
        verified=report.verified and not revoked and not suspended,
        issuer=credential.get("issuer") or {},
        achievement=achievement,
        subject=subject,
        outcomes=outcomes,
        json_url=f"/credentials/{credential_uuid.lower()}.json",
    )


@router.get(
    "/credentials/{credential_uuid}.json",
    summary="The signed credential (Open Badges 3.0, eddsa-rdfc-2022)",
    response_class=LdJsonResponse,
)
async def credential_json(credential_uuid: CredentialUuid, pool: RecordsDep) -> Response:
    try:
        record = await creds.get_credential(pool, credential_uuid)
    except creds.CredentialNotFound as error:
        raise HTTPException(404, str(error)) from None
    return LdJsonResponse(record.credential)


@router.get(
    "/issuers/{institution_id}",
    summary="The issuer's profile: a controller document with its public keys",
    response_class=LdJsonResponse,
)
async def issuer(institution_id: Identifier, pool: RecordsDep, settings: SettingsDep) -> Response:
    profile = await reads.institution_profile(pool, institution_id)
    if profile is None:
        raise HTTPException(404, f"no issuer {institution_id!r} is known here")
    issuer_id = issuer_id_for(settings.public_base_url, institution_id)
    document = KeyRing.load(settings.keys_path).controller_document(
        issuer_id, name=profile["name"], url=profile.get("url"), email=profile.get("email")
    )
    return LdJsonResponse(document)


@router.get(
    "/issuers/{institution_id}/status/{purpose}",
    summary="The issuer's signed revocation or suspension list (Bitstring Status List)",
    response_class=LdJsonResponse,
)
async def status_list(
    institution_id: Identifier,
    purpose: StatusPurpose,
    pool: RecordsDep,
    settings: SettingsDep,
) -> Response:
    assert purpose in STATUS_PURPOSES
    list_id = status_list_url(settings, institution_id, purpose)
    document = await signed_status_list(pool, settings, list_id)
    if document is None:
        raise HTTPException(404, "this issuer has no such status list (yet)")
    return LdJsonResponse(document, headers={"Cache-Control": "max-age=60"})


@router.get("/.well-known/jwks.json", summary="The deployment's RSA public keys (VC-JWT)")
async def jwks(settings: SettingsDep) -> dict[str, Any]:
    """Every RSA key by its key id; each issuer's profile lists the same keys under the kid
    `<issuer id>#<key id>`."""
    ring = KeyRing.load(settings.keys_path)
    return {"keys": [rsa_public_key_to_jwk(key.public_key, key.key_id) for key in ring.rsa_keys]}


@router.get(
    "/images/{name}",
    summary="A badge image shipped with internflow",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
    response_class=Response,
)
async def image(name: Annotated[str, Path(max_length=70)]) -> Response:
    if not _IMAGE_NAME.match(name):
        raise HTTPException(404, "no such image")
    file = resources.files("badges") / "images" / name
    if not file.is_file():
        raise HTTPException(404, "no such image")
    media = "image/png" if name.endswith(".png") else "image/svg+xml"
    return Response(file.read_bytes(), media_type=media, headers={"Cache-Control": "max-age=86400"})
