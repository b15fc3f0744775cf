"""What verifiers fetch, as they fetch it: the verification documents are cacheable (ETag,
Last-Modified, Cache-Control; the status list kept as long as its `ttl`; conditional requests
answered 304), HEAD works on every GET route, and the documents have a rate limit of their own,
far above what a verifier needs: 300 badges verified in a minute from one address, each through
the documents a verifier fetches for it, with no 429."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import asyncpg
import httpx
from fastapi.routing import APIRoute
from starlette.routing import Route
from temporalio.testing import ActivityEnvironment

from activities.badge import BadgeActivities
from activities.records import RecordActivities
from api.app import ROUTERS
from badges.keyring import KeyRing, PublicKeySet
from badges.verify import verify_badge
from mail.sending import Mailer
from models.activities import BadgeRequest
from models.plan import InternshipPlan
from operations.status_lists import STATUS_LIST_TTL
from tests.helpers import sample_plan
from tests.test_api_harness import Api, api

__all__ = ["api"]


async def _record_internship(api: Api, plan: InternshipPlan) -> None:
    """The rows the workflow leaves before its badge (the issuer profile reads the plan)."""
    await api.pool.execute(
        "INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase, "
        "plan_version, start_at, end_at, updated_at) "
        "VALUES ($1, $2, $3, $4, 'certification', 1, $5, $6, now())",
        plan.internship_id,
        f"internship-{plan.internship_id}",
        plan.institution.id,
        plan.company.id,
        plan.period.start,
        plan.period.end,
    )
    await ActivityEnvironment().run(RecordActivities(api.pool).save_plan, plan)


async def _issue(api: Api, count: int) -> list[str]:
    """`count` Data Integrity badges of one institution, built, signed and stored by the real
    badge activity (each for its own internship, its plan saved); their credential ids."""
    now = datetime.now(UTC)
    template = sample_plan(now - timedelta(days=200))
    await _record_internship(api, template)
    ring = KeyRing.load_or_create(api.settings.keys_path)
    activity = BadgeActivities(api.pool, Mailer(api.settings), ring, api.settings)
    env = ActivityEnvironment()
    records = RecordActivities(api.pool)
    issued = []
    for number in range(count):
        plan = template.model_copy(update={"internship_id": f"{template.internship_id}-{number}"})
        await env.run(records.save_plan, plan)
        request = BadgeRequest(
            plan=plan,
            achieved_levels={o.id: "good" for o in plan.learning_outcomes},
            issued_at=now - timedelta(hours=1),
            workflow_id=f"internship-{plan.internship_id}",
        )
        issued.append((await env.run(activity.store_badge, request)).credential_id)
    return issued


class Verifier:
    """A relying party over HTTP: per badge it fetches the credential, the key its proof names,
    the issuer's profile (the key must be listed there under assertionMethod), the status list
    and the issuer-kept status, and keeps what it fetched by ETag (asking again with
    If-None-Match, as an HTTP cache does)."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.kept: dict[str, tuple[str, Any]] = {}
        self.answers: list[int] = []

    async def fetch(self, url: str) -> Any:
        headers = {"Accept": "application/ld+json, application/json"}
        if url in self.kept:
            headers["If-None-Match"] = self.kept[url][0]
        answer = await self.http.get(url, headers=headers)
        self.answers.append(answer.status_code)
        if answer.status_code == 304:
            return self.kept[url][1]
        assert answer.status_code == 200, (url, answer.status_code, answer.text)
        document = answer.json()
        self.kept[url] = (answer.headers["etag"], document)
        return document

    async def verify(self, credential_id: str) -> bool:
        uuid = credential_id.removeprefix("urn:uuid:")
        credential = await self.fetch(f"/credentials/{uuid}.json")
        method = credential["proof"][0]["verificationMethod"]
        key = await self.fetch(method)
        profile = await self.fetch(credential["issuer"]["id"])
        keys = PublicKeySet.from_controller_document(profile)
        assert keys.methods[method] == key["publicKeyMultibase"]
        lists = {}
        for url in [credential["credentialStatus"]["statusListCredential"]]:
            lists[url] = await self.fetch(url)
        report = await asyncio.to_thread(
            verify_badge, credential, issuer_keys=keys, status_lists=lists.__getitem__
        )
        kept = await self.fetch(f"/credentials/{uuid}/status")
        return report.verified and kept["status"] == "active"


async def test_300_badges_verified_in_a_minute_from_one_address_with_no_429(api: Api) -> None:
    issued = await _issue(api, 300)
    verifier = Verifier(api.http)
    loop = asyncio.get_running_loop()
    started = loop.time()
    verdicts = [await verifier.verify(credential_id) for credential_id in issued]
    elapsed = loop.time() - started
    assert all(verdicts), [cid for cid, ok in zip(issued, verdicts, strict=True) if not ok]
    assert elapsed < 60, f"300 badges took {elapsed:.1f} s"
    # Five documents per badge, one address (the test client's), never refused: the pages'
    # limit (120 a minute) would have refused all but the first 120.
    assert len(verifier.answers) == 5 * 300
    assert 429 not in verifier.answers
    assert verifier.answers.count(304) >= 3 * 299  # key, profile and list revalidated
    assert api.settings.document_rate_limit_per_minute >= 5 * 300


async def test_the_documents_have_a_rate_limit_of_their_own(api: Api) -> None:
    """Pages and documents count separately: a client that exhausted the pages' limit still
    gets the documents, and the documents' limit, once exhausted, refuses with 429 and
    Retry-After (readable from any origin) while pages still answer."""
    [credential_id] = await _issue(api, 1)
    uuid = credential_id.removeprefix("urn:uuid:")
    app = api.http._transport.app  # type: ignore[attr-defined]
    pages, documents = app.state.limiter, app.state.document_limiter
    assert documents is not pages
    assert documents.capacity == api.settings.document_rate_limit_per_minute == 6000
    pages.capacity, pages.rate = 2.0, 0.001
    pages._buckets.clear()
    assert [(await api.http.get(f"/verify/{uuid}")).status_code for _ in range(3)] == [
        200,
        200,
        429,
    ]
    assert (await api.http.get(f"/credentials/{uuid}.json")).status_code == 200
    pages.capacity, pages.rate = 120.0, 2.0
    pages._buckets.clear()
    documents.capacity, documents.rate = 2.0, 0.001
    documents._buckets.clear()
    answers = [await api.http.get(f"/credentials/{uuid}/status") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"].isdigit()
    assert answers[2].headers["access-control-allow-origin"] == "*"
    assert (await api.http.get(f"/verify/{uuid}")).status_code == 200


async def test_verification_documents_are_cacheable(api: Api) -> None:
    [credential_id] = await _issue(api, 1)
    uuid = credential_id.removeprefix("urn:uuid:")
    credential = (await api.http.get(f"/credentials/{uuid}.json")).json()
    issuer = credential["issuer"]["id"]
    status_url = credential["credentialStatus"]["statusListCredential"]
    expected = {
        f"/credentials/{uuid}.json": "no-cache",
        f"/credentials/{uuid}/status": "no-cache",
        issuer: "public, max-age=300",
        credential["proof"][0]["verificationMethod"]: "public, max-age=3600",
        status_url: f"public, max-age={int(STATUS_LIST_TTL.total_seconds())}",
        "/.well-known/jwks.json": "public, max-age=300",
        "/.well-known/openid-credential-issuer": "public, max-age=3600",
        "/.well-known/oauth-authorization-server": "public, max-age=3600",
        # The drawn image, kept by its content's hash: it never changes.
        credential["credentialSubject"]["achievement"]["image"]["id"]: (
            "public, max-age=31536000, immutable"
        ),
    }
    for url, cache_control in expected.items():
        first = await api.http.get(url)
        assert first.status_code == 200, (url, first.text)
        assert first.headers["cache-control"] == cache_control, url
        tag = first.headers["etag"]
        assert tag.startswith('"') and tag.endswith('"'), url
        again = await api.http.get(url)
        assert again.headers["etag"] == tag, f"{url}: the same document, the same tag"
        unchanged = await api.http.get(url, headers={"If-None-Match": f'W/{tag}, "other"'})
        assert unchanged.status_code == 304 and unchanged.content == b"", url
        assert unchanged.headers["etag"] == tag and unchanged.headers["cache-control"] == (
            cache_control
        )
        other = await api.http.get(url, headers={"If-None-Match": '"not-this-one"'})
        assert other.status_code == 200 and other.content == first.content, url

    # The status list: kept as long as its own ttl says, last modified when it last changed (a
    # list last changed a minute ago; within the second of a change no Last-Modified is sent, as
    # a second change in that second would carry the same date).
    owner = await asyncpg.connect(api.settings.database_owner_dsn)
    try:
        await owner.execute("UPDATE status_lists SET updated_at = now() - interval '1 minute'")
    finally:
        await owner.close()
    listed = (await api.http.get(status_url)).json()
    assert listed["credentialSubject"]["ttl"] == STATUS_LIST_TTL.total_seconds() * 1000
    first = await api.http.get(status_url)
    changed = datetime.fromisoformat(listed["validFrom"])
    assert first.headers["last-modified"] == format_datetime(changed, usegmt=True)
    since = {"If-Modified-Since": first.headers["last-modified"]}
    assert (await api.http.get(status_url, headers=since)).status_code == 304
    earlier = {"If-Modified-Since": format_datetime(changed - timedelta(seconds=5), usegmt=True)}
    assert (await api.http.get(status_url, headers=earlier)).status_code == 200
    # Revoked: the list changes, its old tag no longer matches, and the new list says so.
    revoked = await api.http.post(
        f"/api/admin/credentials/{uuid}/revoke", json={"reason": "test"}, headers=api.admin
    )
    assert revoked.status_code == 200, revoked.text
    after = await api.http.get(status_url, headers={"If-None-Match": first.headers["etag"]})
    assert after.status_code == 200 and after.headers["etag"] != first.headers["etag"]
    assert after.json()["validFrom"] > listed["validFrom"]
    since_before = await api.http.get(status_url, headers=since)
    assert since_before.status_code == 200 and since_before.content == after.content
    # The credential itself: last modified when it was issued.
    issued = await api.http.get(f"/credentials/{uuid}.json")
    assert "last-modified" in issued.headers
    status = await api.http.get(f"/credentials/{uuid}/status")
    assert status.json()["status"] == "revoked"


def _concrete(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


async def test_head_works_on_every_get_route(api: Api) -> None:
    """Every GET route of the API answers HEAD as it answers GET (status, Content-Type, ETag,
    Cache-Control, Content-Length of a fixed document), without a body: pages, images, status
    lists, documents, the admin's and the parties' routes alike."""
    [credential_id] = await _issue(api, 1)
    uuid = credential_id.removeprefix("urn:uuid:")
    credential = (await api.http.get(f"/credentials/{uuid}.json")).json()
    plan_id = credential_id  # any value: unknown ids answer as GET does (404, 401, ...)
    institution = credential["issuer"]["id"].rsplit("/", 1)[1]
    values = {
        "credential_uuid": uuid,
        "institution_id": institution,
        "key_id": "key-1",
        "purpose": "revocation",
        "name": credential["credentialSubject"]["achievement"]["image"]["id"].rsplit("/", 1)[1],
        "internship_id": plan_id.removeprefix("urn:uuid:"),
        "token": "not-a-token",
    }
    app = api.http._transport.app  # type: ignore[attr-defined]
    routes = [
        route.path
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in route.methods
    ] + [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute | Route) and route.methods and "GET" in route.methods
    ]
    checked = []
    for route in routes:
        path = _concrete(route, values)
        if "{" in path:
            path = _concrete(path, {part.split("}")[0]: "x" for part in path.split("{")[1:]})
        headers = api.admin if path.startswith(("/api/", "/codec")) else {}
        got = await api.http.get(path, headers=headers)
        head = await api.http.head(path, headers=headers)
        assert head.status_code == got.status_code != 405, (path, head.status_code)
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
        for name in ("etag", "cache-control"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        if "etag" in got.headers:
            assert head.headers["content-length"] == str(len(got.content)), path
        checked.append(path)
    # The ones the task names, among the rest.
    for wanted in (
        f"/badges/{uuid}",
        f"/badges/{uuid}/badge.png",
        f"/verify/{uuid}",
        f"/issuers/{institution}/status/revocation",
        "/.well-known/jwks.json",
    ):
        assert wanted in checked, wanted
    assert len(checked) >= 40
    assert json.loads((await api.http.get("/openapi.json")).text)["paths"]
