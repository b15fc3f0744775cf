"""Public: health, badge verification, issuer profiles and keys, status lists, badge images."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from importlib import resources
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

import i18n
from api.documents import cacheable, json_document
from api.pages import browser_language, render
from api.ratelimit import rate_limited
from api.services import RecordsDep, ServicesDep, SettingsDep
from badges.credential import issuer_id_for
from badges.status import STATUS_PURPOSES, StatusPurpose
from issuance.issuers import (
    did_status_list_url,
    did_web_id,
    institution_did,
    institution_key_dir,
    institution_ring,
    institutions_with_keys,
    uses_did_web,
)
from models.base import Identifier
from models.plan import STORED_IMAGE
from operations import badge_pages, wallet_claims
from operations import credentials as creds
from operations.key_ring import current_ring
from operations.status_lists import signed_status_list
from records import read
from records.images import kept_image
from runtime import readiness

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
KeyId = Annotated[
    str,
    Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", description="A key id, e.g. key-1, rsa-1"),
]
LD_JSON = "application/ld+json"
JWK_JSON = "application/jwk+json"
DID_JSON = "application/did+ld+json"


#: How long verifiers and caches may keep each kind of document before asking again (every one
#: also has an ETag, so asking again costs a 304): keys never change under their id; a profile,
#: a DID document or the JWKS lists every key, so a rotation reaches verifiers within minutes;
#: a signed credential never changes, but its earner can take it down at any time, so it is
#: asked for again every time, like the issuer-kept status.
KEY_CACHE: Final = "public, max-age=3600"
KEY_LIST_CACHE: Final = "public, max-age=300"
CREDENTIAL_CACHE: Final = "no-cache"
ALWAYS_REVALIDATE: Final = "no-cache"
IMAGE_CACHE: Final = "public, max-age=86400"
#: An image kept under its content's hash never changes.
KEPT_IMAGE_CACHE: Final = "public, max-age=31536000, immutable"
#: An SVG badge image, opened by itself, loads and runs nothing.
SVG_POLICY: Final = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


class LdJsonResponse(JSONResponse):
    media_type = LD_JSON


@health.get("/healthz", summary="The process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@health.get(
    "/readyz",
    summary="Temporal and PostgreSQL are reachable, and the deployment is complete",
    responses={503: {"description": "A part is not reachable, or the deployment lacks something"}},
)
async def readyz(app: ServicesDep) -> JSONResponse:
    """Each check by name (runtime/readiness.py): `ok`, or what is wrong. Temporal: reachable,
    its namespace, the search attributes the code sets; PostgreSQL: reachable, the migrations
    as far as the code's; the signing key directory."""
    checks: dict[str, str] = {}
    try:
        client = await app.temporal()
        await asyncio.wait_for(client.service_client.check_health(), 5)
        checks["temporal"] = readiness.OK
    except Exception as error:  # any failure means not ready; say which part, and why if known
        problem = app.temporal_health.problem
        checks["temporal"] = problem or f"unreachable ({type(error).__name__})"
    if checks["temporal"] == readiness.OK:
        try:
            async with asyncio.timeout(10):
                checks.update(await readiness.temporal_problems(client, app.temporal_target))
        except Exception as error:
            for name in ("namespace", "search_attributes"):
                checks.setdefault(name, f"could not be checked ({type(error).__name__})")
    try:
        pool = await app.records()
        await asyncio.wait_for(pool.fetchval("SELECT 1"), 5)
        checks["postgresql"] = readiness.OK
    except Exception as error:
        checks["postgresql"] = f"unreachable ({type(error).__name__})"
    if checks["postgresql"] == readiness.OK:
        try:
            async with asyncio.timeout(5):
                checks["migrations"] = await readiness.migrations_problem(pool) or readiness.OK
        except Exception as error:
            checks["migrations"] = f"could not be checked ({type(error).__name__})"
    checks["signing_keys"] = readiness.signing_keys_problem(app.settings) or readiness.OK
    ready = all(name in checks for name in readiness.CHECKS) and not readiness.failures(checks)
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {name: checks[name] for name in readiness.CHECKS if name in checks},
        },
        status_code=200 if ready else 503,
    )


@router.get(
    "/verify/{credential_uuid}",
    response_class=HTMLResponse,
    summary="Verification page of an issued badge",
    responses={404: {"description": "No such badge, or its earner took it down"}},
)
async def verify_page(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep, settings: SettingsDep
) -> HTMLResponse:
    try:
        # A badge its earner took down is, here, a badge never issued (decision 0044).
        record = await badge_pages.public_credential(pool, credential_uuid)
    except creds.CredentialNotFound:
        language = browser_language(request)
        return render(request, "verify.html", language, status_code=404, record=None, report=None)
    report = await creds.verify_issued(pool, settings, record)
    credential = record.document
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
    # A verifier reads the page in their browser's language, its times in the internship's zone.
    language = browser_language(request)
    plan = await read.latest_plan(pool, record.internship_id)
    zone = plan.period.time_zone if plan is not None else "UTC"
    period = ""
    if subject.get("activityStartDate"):
        try:
            start = datetime.fromisoformat(str(subject["activityStartDate"]))
            end = datetime.fromisoformat(str(subject.get("activityEndDate") or start.isoformat()))
            period = i18n.period(start, end, zone, language)
        except ValueError:
            period = str(subject["activityStartDate"])[:10]
    return render(
        request,
        "verify.html",
        language,
        zone=zone,
        period=period,
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
        # Its earner can claim it into a wallet (with the code from the badge e-mail).
        wallet=None
        if revoked
        else await wallet_claims.page_offer(pool, settings, credential_uuid, language),
    )


@router.get(
    "/credentials/{credential_uuid}.json",
    summary="The signed credential (Open Badges 3.0, eddsa-rdfc-2022)",
    response_class=LdJsonResponse,
    responses={404: {"description": "No such badge, or its earner took it down"}},
)
async def credential_json(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep
) -> Response:
    """Exactly as it was signed and stored (a badge signed before proofs were arrays keeps its
    single proof object): a signed document is never rewritten. A 404 as for an unknown id once
    its earner has taken the badge down."""
    try:
        record = await badge_pages.public_credential(pool, credential_uuid)
    except creds.CredentialNotFound as error:
        raise HTTPException(404, str(error)) from None
    if isinstance(record.credential, str):  # a VC-JWT: the compact JWS itself
        return cacheable(
            request,
            record.credential.encode(),
            "application/jwt",
            CREDENTIAL_CACHE,
            last_modified=record.issued_at,
        )
    return json_document(
        request, record.credential, LD_JSON, CREDENTIAL_CACHE, last_modified=record.issued_at
    )


@router.get(
    "/issuers/{institution_id}",
    summary="The issuer's profile: a controller document with its public keys",
    response_class=LdJsonResponse,
)
async def issuer(
    institution_id: Identifier, request: Request, pool: RecordsDep, settings: SettingsDep
) -> Response:
    profile = await read.institution_profile(pool, institution_id)
    if profile is None:
        raise HTTPException(404, f"no issuer {institution_id!r} is known here")
    issuer_id = issuer_id_for(settings.public_base_url, institution_id)
    document = current_ring(settings.keys_path).controller_document(
        issuer_id, name=profile["name"], url=profile.get("url"), email=profile.get("email")
    )
    return json_document(request, document, LD_JSON, KEY_LIST_CACHE)


@router.get(
    "/issuers/{institution_id}/keys/{key_id}",
    summary="One of the issuer's public keys: a Multikey document (Ed25519) or a JWK (RSA)",
    responses={200: {"content": {LD_JSON: {}, JWK_JSON: {}}}},
    response_class=LdJsonResponse,
)
async def issuer_key(
    institution_id: Identifier,
    key_id: KeyId,
    request: Request,
    pool: RecordsDep,
    settings: SettingsDep,
) -> Response:
    """What a proof's `verificationMethod` (or a VC-JWT's `kid`) `<issuer id>/keys/<key id>`
    dereferences to: the key itself, controlled by the issuer, whose profile lists it under
    `assertionMethod`. Earlier keys stay served after a rotation."""
    if await read.institution_profile(pool, institution_id) is None:
        raise HTTPException(404, f"no issuer {institution_id!r} is known here")
    issuer_id = issuer_id_for(settings.public_base_url, institution_id)
    document = current_ring(settings.keys_path).key_document(issuer_id, key_id)
    if document is None:
        raise HTTPException(404, f"the issuer has no key {key_id!r}")
    media = LD_JSON if "@context" in document else JWK_JSON
    return json_document(request, document, media, KEY_CACHE)


@router.get(
    "/.well-known/did.json",
    summary="The deployment's did:web DID document (when its public base URL is https)",
    response_class=LdJsonResponse,
)
async def did_document(request: Request, settings: SettingsDep) -> Response:
    """`did:web:<public host>`: every key of the key ring as a verification method
    `<DID>#<key id>` under `assertionMethod`. Badges that institutions on did:web issued before
    each had a DID of its own name this DID as their issuer: it stays served for them."""
    try:
        did = did_web_id(settings.public_base_url)
    except ValueError:
        raise HTTPException(404, "no did:web here: the public base URL is not https") from None
    document = current_ring(settings.keys_path).did_document(did)
    return json_document(request, document, DID_JSON, KEY_LIST_CACHE)


@router.get(
    "/issuers/{institution_id}/did.json",
    summary="The institution's own did:web DID document (did:web:<host>:issuers:<id>)",
    response_class=LdJsonResponse,
    responses={200: {"content": {DID_JSON: {}}}},
)
async def institution_did_document(
    institution_id: Identifier, request: Request, app: ServicesDep, settings: SettingsDep
) -> Response:
    """Where did:web resolves `did:web:<host>:issuers:<institution id>`: every key of the
    institution's own ring (earlier keys too, so that badges they signed keep verifying) as a
    verification method `<DID>#<key id>` under `assertionMethod`. Served for an institution
    that has keys of its own, or that is configured for did:web and recorded (its first key is
    then created, as the first badge would). Once it has keys, the document needs no database."""
    try:
        did = institution_did(settings.public_base_url, institution_id)
    except ValueError:
        raise HTTPException(404, "no did:web here: the public base URL is not https") from None
    ring = current_ring(institution_key_dir(settings, institution_id))
    if not ring.ed25519_keys:
        if not uses_did_web(settings, institution_id):
            raise HTTPException(404, f"{institution_id!r} has no did:web DID here")
        if await read.institution_profile(await app.records(), institution_id) is None:
            raise HTTPException(404, f"no issuer {institution_id!r} is known here")
        ring = institution_ring(settings, institution_id)
    return json_document(request, ring.did_document(did), DID_JSON, KEY_LIST_CACHE)


@router.get(
    "/issuers/{institution_id}/did/status/{purpose}",
    summary="The revocation list of the badges the institution issued under its own DID",
    response_class=LdJsonResponse,
)
async def institution_did_status_list(
    institution_id: Identifier,
    purpose: StatusPurpose,
    request: Request,
    pool: RecordsDep,
    settings: SettingsDep,
) -> Response:
    assert purpose in STATUS_PURPOSES
    list_id = did_status_list_url(settings.public_base_url, institution_id, purpose)
    return await _status_list_response(request, pool, settings, list_id)


@router.get(
    "/issuers/{institution_id}/status/{purpose}",
    summary="The issuer's signed revocation list (and, for badges issued before one status "
    "entry per badge, its suspension list): a Bitstring Status List credential",
    response_class=LdJsonResponse,
)
async def status_list(
    institution_id: Identifier,
    purpose: StatusPurpose,
    request: Request,
    pool: RecordsDep,
    settings: SettingsDep,
) -> Response:
    assert purpose in STATUS_PURPOSES
    list_id = f"{issuer_id_for(settings.public_base_url, institution_id)}/status/{purpose}"
    return await _status_list_response(request, pool, settings, list_id)


@router.get(
    "/status/{purpose}",
    summary="The did:web issuer's signed revocation list (Bitstring Status List credential)",
    response_class=LdJsonResponse,
)
async def did_status_list(
    purpose: StatusPurpose, request: Request, pool: RecordsDep, settings: SettingsDep
) -> Response:
    assert purpose in STATUS_PURPOSES
    list_id = f"{settings.public_base_url.rstrip('/')}/status/{purpose}"
    return await _status_list_response(request, pool, settings, list_id)


async def _status_list_response(
    request: Request, pool: Any, settings: Any, list_id: str
) -> Response:
    """The signed list, kept by caches as long as its own `ttl` says (Bitstring Status List's
    hint to verifiers), last modified when the list last changed (its validFrom)."""
    document = await signed_status_list(pool, settings, list_id)
    if document is None:
        raise HTTPException(404, "this issuer has no such status list (yet)")
    ttl = document["credentialSubject"].get("ttl")
    max_age = int(ttl) // 1000 if isinstance(ttl, int) else 0
    changed = datetime.fromisoformat(document["validFrom"])
    cache = f"public, max-age={max_age}" if max_age else ALWAYS_REVALIDATE
    return json_document(request, document, LD_JSON, cache, last_modified=changed)


@router.get(
    "/credentials/{credential_uuid}/status",
    summary="An issued badge's status as its issuer keeps it: active, suspended or revoked",
)
async def credential_status(
    credential_uuid: CredentialUuid, request: Request, pool: RecordsDep
) -> Response:
    """Revocation is also on the badge's status list, which any verifier reads; suspension is
    the issuer's own state (a badge carries one status entry, its revocation), so this is where
    it is published. The reason is not: it stays in the audit trail."""
    try:
        record = await creds.get_credential(pool, credential_uuid)
    except creds.CredentialNotFound as error:
        raise HTTPException(404, str(error)) from None
    answer = {
        "credential_id": record.credential_id,
        "status": record.status,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
        "suspended_at": record.suspended_at.isoformat() if record.suspended_at else None,
    }
    # It changes whenever the issuer suspends or reinstates: asked again every time (a 304 when
    # it has not changed).
    return json_document(request, answer, "application/json", ALWAYS_REVALIDATE)


@router.get("/.well-known/jwks.json", summary="The deployment's RSA public keys (VC-JWT)")
async def jwks(request: Request, pool: RecordsDep, settings: SettingsDep) -> Response:
    """Every RSA key under each `kid` that VC-JWTs of this deployment carry: per issuer,
    `<issuer id>/keys/<key id>` (where the JWK itself is served; `<DID>#<key id>` for a did:web
    issuer, with each institution's own keys under its own DID), and `<issuer id>#<key id>` for
    VC-JWTs issued before keys had their own URLs."""
    issuers = [
        issuer_id_for(settings.public_base_url, institution_id)
        for institution_id in await read.institution_ids(pool)
    ]
    try:
        issuers.append(did_web_id(settings.public_base_url))
    except ValueError:
        # No did:web on a plain-http (loopback) deployment.
        document = current_ring(settings.keys_path).jwks(issuers)
        return json_document(request, document, "application/json", KEY_LIST_CACHE)
    document = current_ring(settings.keys_path).jwks(issuers)
    for institution_id in institutions_with_keys(settings):
        did = institution_did(settings.public_base_url, institution_id)
        own = current_ring(institution_key_dir(settings, institution_id)).jwks([did])
        document["keys"] += own["keys"]
    return json_document(request, document, "application/json", KEY_LIST_CACHE)


@router.get(
    "/images/{name}",
    summary="A badge image: a school's own or a drawn one (by its content's hash), or shipped",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
    response_class=Response,
)
async def image(
    name: Annotated[str, Path(max_length=80)], request: Request, pool: RecordsDep
) -> Response:
    """`sha256-<hex>.png` or `.svg`: an image kept in the records under the SHA-256 of its
    content, never changed (cached for a year); any other name: an image shipped with internflow.
    An SVG is served with a policy that lets it load and run nothing."""
    kept = STORED_IMAGE.match(name)
    if kept is not None:
        found = await kept_image(pool, kept["digest"])
        extension = "png" if found is not None and found[0] == "image/png" else "svg"
        if found is None or kept["extension"] != extension:
            raise HTTPException(404, "no such image")
        media, body, cache = found[0], found[1], KEPT_IMAGE_CACHE
    else:
        if not _IMAGE_NAME.match(name):
            raise HTTPException(404, "no such image")
        file = resources.files("badges") / "images" / name
        if not file.is_file():
            raise HTTPException(404, "no such image")
        media = "image/png" if name.endswith(".png") else "image/svg+xml"
        body, cache = file.read_bytes(), IMAGE_CACHE
    headers = {"X-Content-Type-Options": "nosniff"}
    if media == "image/svg+xml":
        headers["Content-Security-Policy"] = SVG_POLICY
    return cacheable(request, body, media, cache, headers=headers)
