"""Public endpoints: health and readiness, issuer profiles, keys, images, unknown badges, and
the OpenAPI document."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from temporalio.testing import ActivityEnvironment

from activities.badge import BadgeActivities
from activities.records import RecordActivities
from api.app import create_app
from badges.bake import unbake
from badges.conformance import schema_errors
from badges.keyring import KeyRing
from badges.vcjwt import decode_jwt
from embedded.ports import throwaway_settings
from issuance.issuers import institution_key_dir, institution_ring
from mail.sending import Mailer
from models.activities import BadgeRequest
from runtime import readiness
from tests.helpers import sample_plan
from tests.test_api_harness import Api, api, planned

LD_JSON = "application/ld+json"

__all__ = ["api"]


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == dict.fromkeys(readiness.CHECKS, "ok")
    assert set(readiness.CHECKS) == {
        "temporal",
        "namespace",
        "search_attributes",
        "postgresql",
        "migrations",
        "signing_keys",
    }


async def test_readiness_says_which_part_is_missing(tmp_path: Path) -> None:
    settings = throwaway_settings(tmp_path)  # nothing listens on its ports
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        checks = ready.json()["checks"]
        assert checks["temporal"] != "ok" and checks["postgresql"] != "ok"
        # Anything that needs the database says so instead of failing.
        unavailable = await http.get("/api/internships", headers={"Authorization": "Bearer x"})
        assert unavailable.status_code == 503


async def test_issuer_profile_keys_images_and_unknowns(api: Api) -> None:
    KeyRing.load_or_create(api.settings.keys_path)  # key-1 (Data Integrity) and rsa-1 (VC-JWT)
    plan = planned()
    assert (await api.start(plan)).status_code == 201
    await api.settle(plan.internship_id)
    profile = await api.http.get(f"/issuers/{plan.institution.id}")
    assert profile.status_code == 200
    assert profile.headers["content-type"].startswith("application/ld+json")
    body = profile.json()
    assert body["id"] == f"{api.settings.public_base_url}/issuers/{plan.institution.id}"
    assert body["type"] == ["Profile"] and body["url"] == plan.institution.url
    methods = body["verificationMethod"]
    assert methods and all(m["controller"] == body["id"] for m in methods)
    assert (await api.http.get("/issuers/nobody")).status_code == 404
    assert (await api.http.get("/issuers/NOT%20AN%20ID")).status_code == 422
    assert (
        await api.http.get(f"/issuers/{plan.institution.id}/status/revocation")
    ).status_code in (
        200,
        404,
    )
    assert (await api.http.get(f"/issuers/{plan.institution.id}/status/expired")).status_code == 422

    # Every key at its own URL: the Multikey document a proof's verificationMethod names, and
    # the JWK a VC-JWT's kid names; the profile lists both under assertionMethod.
    issuer_id = body["id"]
    assert body["@context"][0] == "https://www.w3.org/ns/did/v1"
    key = await api.http.get(f"/issuers/{plan.institution.id}/keys/key-1")
    assert key.status_code == 200 and key.headers["content-type"].startswith(LD_JSON)
    multikey = key.json()
    assert multikey["@context"] == ["https://w3id.org/security/multikey/v1"]
    assert (multikey["id"], multikey["type"], multikey["controller"]) == (
        f"{issuer_id}/keys/key-1",
        "Multikey",
        issuer_id,
    )
    assert multikey["publicKeyMultibase"].startswith("z6Mk")
    assert multikey["id"] in body["assertionMethod"]
    jwk = await api.http.get(f"/issuers/{plan.institution.id}/keys/rsa-1")
    assert jwk.status_code == 200 and jwk.headers["content-type"].startswith("application/jwk+json")
    assert jwk.json()["kid"] == f"{issuer_id}/keys/rsa-1" and "d" not in jwk.json()
    assert f"{issuer_id}/keys/rsa-1" in body["assertionMethod"]
    assert (await api.http.get(f"/issuers/{plan.institution.id}/keys/key-9")).status_code == 404
    assert (await api.http.get("/issuers/nobody/keys/key-1")).status_code == 404

    jwks = await api.http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    kids = [item["kid"] for item in jwks.json()["keys"]]
    assert f"{issuer_id}/keys/rsa-1" in kids and f"{issuer_id}#rsa-1" in kids
    # No did:web on a plain-http (loopback) deployment.
    assert (await api.http.get("/.well-known/did.json")).status_code == 404

    image = await api.http.get("/images/badge.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert (await api.http.get("/images/..%2Fkeys%2Fkey-1.pem")).status_code == 404
    assert (await api.http.get("/images/missing.png")).status_code == 404

    ghost = "00000000-0000-4000-8000-000000000000"
    page = await api.http.get(f"/verify/{ghost}")
    assert page.status_code == 404 and "Unknown badge" in page.text
    assert (await api.http.get(f"/credentials/{ghost}.json")).status_code == 404
    assert (await api.http.get(f"/credentials/{ghost}/status")).status_code == 404
    assert (await api.http.get("/verify/not-a-uuid")).status_code == 422


async def test_openapi_is_served(api: Api) -> None:
    spec = (await api.http.get("/openapi.json")).json()
    assert spec["info"]["title"] == "internflow"
    paths = spec["paths"]
    for path in (
        "/api/internships",
        "/api/internships/batch",
        "/api/internships/{internship_id}/feedback",
        "/api/admin/internships/{internship_id}/events",
        "/verify/{credential_uuid}",
        "/.well-known/jwks.json",
    ):
        assert path in paths
    assert (await api.http.get("/docs")).status_code == 200


async def test_did_web_document_on_an_https_deployment(tmp_path: Path) -> None:
    """With an https public base URL the deployment is did:web:<host>: /.well-known/did.json
    lists every key as '<DID>#<key id>' under assertionMethod (no database needed)."""
    settings = throwaway_settings(
        tmp_path, public_base_url="https://badges.example.org", did_web_institutions="*"
    )
    KeyRing.load_or_create(settings.keys_path)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/.well-known/did.json")
    assert answer.status_code == 200
    document = answer.json()
    did = "did:web:badges.example.org"
    assert document["id"] == did
    assert document["@context"][:2] == [
        "https://www.w3.org/ns/did/v1",
        "https://w3id.org/security/multikey/v1",
    ]
    ids = [method["id"] for method in document["verificationMethod"]]
    assert ids == [f"{did}#key-1", f"{did}#rsa-1"] == document["assertionMethod"]
    assert all(method["controller"] == did for method in document["verificationMethod"])


async def test_each_institution_on_did_web_has_its_own_did_document(tmp_path: Path) -> None:
    """/issuers/<id>/did.json is the institution's own DID document: its own keys only, every
    one of them after a rotation; none for an institution that is not on did:web; the
    deployment's document stays as it was (no database needed once the keys exist)."""
    settings = throwaway_settings(
        tmp_path, public_base_url="https://badges.example.org", did_web_institutions="school-a"
    )
    deployment = KeyRing.load_or_create(settings.keys_path, rsa=False)
    ring = institution_ring(settings, "school-a")
    did = "did:web:badges.example.org:issuers:school-a"
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        answer = await http.get("/issuers/school-a/did.json")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/did+ld+json"
        document = answer.json()
        assert document["id"] == did
        assert document["verificationMethod"] == [
            {
                "id": f"{did}#key-1",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": ring.signing_key.public_key_multibase,
            }
        ]
        assert document["assertionMethod"] == [f"{did}#key-1"]
        ring.rotate(institution_key_dir(settings, "school-a"))
        rotated = (await http.get("/issuers/school-a/did.json")).json()
        assert rotated["assertionMethod"] == [f"{did}#key-1", f"{did}#key-2"]
        assert rotated["verificationMethod"][0] == document["verificationMethod"][0]
        assert (await http.get("/issuers/school-b/did.json")).status_code == 404
        shared = (await http.get("/.well-known/did.json")).json()
    assert shared["id"] == "did:web:badges.example.org"
    assert [m["publicKeyMultibase"] for m in shared["verificationMethod"]] == [
        deployment.signing_key.public_key_multibase
    ]


async def test_a_vc_jwt_badge_has_its_verification_page_file_and_revocation(api: Api) -> None:
    """A badge stored as a compact VC-JWT (the plan's proof_format) is read from its payload:
    the verification page shows it verified, its file is the JWT, and a revocation shows."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    plan = plan.model_copy(
        update={"badge": plan.badge.model_copy(update={"proof_format": "vc-jwt"})}
    )
    request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=now - timedelta(hours=1),
        workflow_id=f"internship-{plan.internship_id}",
    )
    env = ActivityEnvironment()
    await env.run(RecordActivities(api.pool).save_plan, plan)
    ring = KeyRing.load_or_create(api.settings.keys_path)
    badge = BadgeActivities(api.pool, Mailer(api.settings), ring, api.settings)
    stored = await env.run(badge.store_badge, request)
    uuid = stored.credential_id.removeprefix("urn:uuid:")

    page = await api.http.get(f"/verify/{uuid}")
    assert page.status_code == 200, page.text
    assert plan.badge.name in page.text and "Verified" in page.text
    file = await api.http.get(f"/credentials/{uuid}.json")
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("application/jwt")
    assert decode_jwt(file.text).payload["id"] == stored.credential_id

    url = f"/api/admin/credentials/{uuid}/revoke"
    revoked = await api.http.post(url, json={"reason": "issued in error"}, headers=api.admin)
    assert revoked.status_code == 200, revoked.text
    page = await api.http.get(f"/verify/{uuid}")
    assert page.status_code == 200 and 'data-verdict="revoked"' in page.text
    assert 'id="revoked-on"' in page.text and "issued in error" not in page.text


async def _stored_badge(api: Api) -> str:
    """A Data Integrity badge built, signed and stored by the real badge activity; its uuid."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=now - timedelta(hours=1),
        workflow_id=f"internship-{plan.internship_id}",
    )
    env = ActivityEnvironment()
    await env.run(RecordActivities(api.pool).save_plan, plan)
    ring = KeyRing.load_or_create(api.settings.keys_path)
    badge = BadgeActivities(api.pool, Mailer(api.settings), ring, api.settings)
    stored = await env.run(badge.store_badge, request)
    return stored.credential_id.removeprefix("urn:uuid:")


async def _every_container(api: Api, uuid: str) -> dict[str, Any]:
    """The credential as each public download carries it, parsed."""
    found: dict[str, Any] = {}
    for name, path in (
        ("json", f"/credentials/{uuid}.json"),
        ("page json", f"/badges/{uuid}/credential"),
        ("png", f"/badges/{uuid}/badge.png"),
        ("svg", f"/badges/{uuid}/badge.svg"),
    ):
        answer = await api.http.get(path)
        assert answer.status_code == 200, (name, answer.text)
        body = answer.content
        found[name] = json.loads(unbake(body) if name in ("png", "svg") else body)
    return found


async def test_new_badges_carry_a_proof_array_and_old_ones_are_served_as_signed(
    api: Api,
) -> None:
    """Every container of a new badge carries `proof` as a one-element array and passes the
    official schema as it is; a badge stored before, with its single proof object, is served
    exactly as it was signed (never rewritten) and still verifies."""
    new = await _stored_badge(api)
    for name, document in (await _every_container(api, new)).items():
        assert isinstance(document["proof"], list) and len(document["proof"]) == 1, name
        assert schema_errors(document) == [], name

    old = await _stored_badge(api)
    credential_id = f"urn:uuid:{old}"
    signed = json.loads(
        await api.pool.fetchval(
            "SELECT credential FROM credentials WHERE credential_id = $1", credential_id
        )
    )
    # As an earlier version stored it: the same signature, the proof a single object.
    before = {**signed, "proof": signed["proof"][0]}
    owner = await asyncpg.connect(api.settings.database_owner_dsn)
    try:
        await owner.execute(
            "UPDATE credentials SET credential = $2 WHERE credential_id = $1",
            credential_id,
            json.dumps(before),
        )
    finally:
        await owner.close()
    for name, document in (await _every_container(api, old)).items():
        assert document == before, name
    page = await api.http.get(f"/verify/{old}")
    assert page.status_code == 200 and 'data-verdict="verified"' in page.text
