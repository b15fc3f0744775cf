"""Public endpoints: health and readiness, issuer profiles, keys, images, unknown badges, and
the OpenAPI document."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.app import create_app
from runtime.ports import throwaway_settings
from tests.test_api_harness import Api, api, planned

__all__ = ["api"]


async def test_health_and_readiness(api: Api) -> None:
    assert (await api.http.get("/healthz")).json() == {"status": "ok"}
    ready = await api.http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"temporal": "ok", "postgresql": "ok"}


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

    jwks = await api.http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200 and isinstance(jwks.json()["keys"], list)

    image = await api.http.get("/images/badge.png")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert (await api.http.get("/images/..%2Fkeys%2Fkey-1.pem")).status_code == 404
    assert (await api.http.get("/images/missing.png")).status_code == 404

    ghost = "00000000-0000-4000-8000-000000000000"
    page = await api.http.get(f"/verify/{ghost}")
    assert page.status_code == 404 and "Unknown badge" in page.text
    assert (await api.http.get(f"/credentials/{ghost}.json")).status_code == 404
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
