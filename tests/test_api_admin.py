"""Admins: history (audit trail and raw Temporal events, paged), describe, statistics, API keys,
and badge revocation, suspension and reinstatement as verifiers see them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from badges.credential import issuer_id_for
from badges.keyring import KeyRing
from badges.proof import sign
from badges.verify import verify_badge
from issuance.award import build_credential
from issuance.status_places import assign_status
from models.plan import InternshipPlan
from operations.status_lists import signing_key
from tests.test_api_harness import Api, api, detail, finished_internship, planned

__all__ = ["api"]


async def test_history_events_describe_and_statistics(api: Api) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)

    for path in ("history", "events", "describe"):
        url = f"/api/admin/internships/{iid}/{path}"
        assert (await api.http.get(url)).status_code == 401
        assert (await api.http.get(url, headers=api.operator)).status_code == 403
    history = await api.http.get(f"/api/admin/internships/{iid}/history", headers=api.admin)
    assert history.status_code == 200
    entries = history.json()["entries"]
    assert entries[0]["kind"] == "phase" and entries[0]["key"] == "planning"

    first = await api.http.get(
        f"/api/admin/internships/{iid}/events", params={"page_size": 3}, headers=api.admin
    )
    assert first.status_code == 200
    page = first.json()
    # The server pages at event-batch boundaries: a page holds about page_size events.
    assert 1 <= len(page["events"]) < 20 and page["next_page_token"]
    assert page["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    second = await api.http.get(
        f"/api/admin/internships/{iid}/events",
        params={"page_size": 3, "next_page_token": page["next_page_token"]},
        headers=api.admin,
    )
    assert second.status_code == 200
    last = int(page["events"][-1]["eventId"])
    assert int(second.json()["events"][0]["eventId"]) == last + 1
    bad_token = await api.http.get(
        f"/api/admin/internships/{iid}/events",
        params={"next_page_token": "%%%"},
        headers=api.admin,
    )
    assert bad_token.status_code == 422

    described = await api.http.get(f"/api/admin/internships/{iid}/describe", headers=api.admin)
    assert described.status_code == 200
    body = described.json()
    assert body["status"] == "RUNNING" and body["search_attributes"]["CompanyId"] == plan.company.id
    assert body["temporal_ui_url"].endswith(f"/namespaces/internflow/workflows/internship-{iid}")

    for path in ("history", "events", "describe"):
        missing = await api.http.get(f"/api/admin/internships/ghost/{path}", headers=api.admin)
        assert missing.status_code == 404, (path, missing.text)

    stats = await api.http.get(
        "/api/admin/statistics", params={"institution": plan.institution.id}, headers=api.admin
    )
    assert stats.status_code == 200
    assert stats.json()["cohort"]["by_phase"]["planning"] >= 1
    assert stats.json()["badges"]["issued"] >= 0
    assert (await api.http.get("/api/admin/statistics", headers=api.operator)).status_code == 403


async def test_api_keys_are_created_listed_and_revoked(api: Api) -> None:
    unscoped = await api.http.post(
        "/api/admin/keys", json={"name": "registry office", "role": "operator"}, headers=api.admin
    )
    # Said in the API's terms (its JSON fields), never the CLI's options.
    assert unscoped.status_code == 422, unscoped.text
    said = unscoped.json()["detail"]
    assert '"institutions"' in said and '"all_institutions": true' in said, said
    assert "--" not in said, said
    both = await api.http.post(
        "/api/admin/keys",
        json={"name": "x", "role": "operator", "institutions": ["a"], "all_institutions": True},
        headers=api.admin,
    )
    assert both.status_code == 422 and "--" not in both.json()["detail"], both.text
    asked = {"name": "registry office", "role": "operator", "institutions": ["school-a"]}
    # An institution with no record: refused, naming the field, and no key is made.
    unrecorded = await api.http.post("/api/admin/keys", json=asked, headers=api.admin)
    assert unrecorded.status_code == 422, unrecorded.text
    (problem,) = unrecorded.json()["errors"]
    assert problem["field"] == "body.institutions"
    assert "institutions 'school-a': no institution is recorded" in problem["message"]
    assert "POST /api/admin/institutions" in problem["message"]
    assert "internflow" not in problem["message"], problem  # the API's terms, not the CLI's
    assert len((await api.http.get("/api/admin/keys", headers=api.admin)).json()) == 2
    school = {"institution_id": "school-a", "name": "Scuola A"}
    assert (
        await api.http.post("/api/admin/institutions", json=school, headers=api.operator)
    ).status_code == 403
    added = await api.http.post("/api/admin/institutions", json=school, headers=api.admin)
    assert added.status_code == 201, added.text
    again = await api.http.post("/api/admin/institutions", json=school, headers=api.admin)
    assert again.status_code == 409 and "recorded already, as 'Scuola A'" in again.text
    created = await api.http.post("/api/admin/keys", json=asked, headers=api.admin)
    assert created.status_code == 201
    new = created.json()
    assert new["key"].startswith("ifk_") and new["role"] == "operator"
    assert (new["institutions"], new["all_institutions"]) == (["school-a"], False)
    listed = await api.http.get("/api/admin/keys", headers=api.admin)
    assert new["key_id"] in {k["key_id"] for k in listed.json()}
    assert new["key"] not in listed.text, "a key is shown once, at creation"
    stored = await api.pool.fetchval(
        "SELECT key_hash FROM api_keys WHERE key_id = $1", new["key_id"]
    )
    assert new["key"].encode() not in bytes(stored)

    headers = {"Authorization": f"Bearer {new['key']}"}
    assert (await api.http.get("/api/internships", headers=headers)).status_code == 200
    assert (await api.http.get("/api/admin/keys", headers=headers)).status_code == 403
    assert (
        await api.http.post(
            "/api/admin/keys", json={"name": "x", "role": "root"}, headers=api.admin
        )
    ).status_code == 422
    revoked = await api.http.delete(f"/api/admin/keys/{new['key_id']}", headers=api.admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await api.http.get("/api/internships", headers=headers)).status_code == 401
    again = await api.http.delete(f"/api/admin/keys/{new['key_id']}", headers=api.admin)
    assert again.status_code == 409
    missing = await api.http.delete("/api/admin/keys/000000000000", headers=api.admin)
    assert missing.status_code == 404


async def test_revoking_an_issued_badge(api: Api) -> None:
    plan = await finished_internship(api)
    credential_id = await api.pool.fetchval(
        "SELECT credential_id FROM credentials WHERE internship_id = $1", plan.internship_id
    )
    uuid = credential_id.removeprefix("urn:uuid:")

    page = await api.http.get(f"/verify/{uuid}")
    assert page.status_code == 200 and 'data-verdict="verified"' in page.text, re.findall(
        r"<li>(.*?)</li>", page.text
    )
    assert plan.intern.email not in page.text and plan.intern.name not in page.text
    document = await api.http.get(f"/credentials/{uuid}.json")
    assert document.status_code == 200 and document.json()["id"] == credential_id
    state = await api.http.get(f"/api/admin/credentials/{uuid}", headers=api.admin)
    assert state.json()["status"] == "active"

    url = f"/api/admin/credentials/{uuid}"
    assert (await api.http.post(f"{url}/revoke", json={"reason": "x"})).status_code == 401
    assert (
        await api.http.post(f"{url}/revoke", json={"reason": "x"}, headers=api.operator)
    ).status_code == 403
    assert (
        await api.http.post(f"{url}/revoke", json={"reason": ""}, headers=api.admin)
    ).status_code == 422
    assert (
        await api.http.post(f"{url}/delete", json={"reason": "x"}, headers=api.admin)
    ).status_code == 422
    ghost = "00000000-0000-4000-8000-000000000000"
    assert (
        await api.http.post(
            f"/api/admin/credentials/{ghost}/revoke", json={"reason": "x"}, headers=api.admin
        )
    ).status_code == 404
    not_suspended = await api.http.post(f"{url}/reinstate", json={"reason": "x"}, headers=api.admin)
    assert not_suspended.status_code == 409
    trail = await api.pool.fetchval(
        "SELECT count(*) FROM audit_events WHERE kind LIKE 'credential%' AND internship_id = $1",
        plan.internship_id,
    )
    assert trail == 0, "no refusal recorded anything"

    suspended = await api.http.post(
        f"{url}/suspend", json={"reason": "under review"}, headers=api.admin
    )
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert 'data-verdict="suspended"' in (await api.http.get(f"/verify/{uuid}")).text
    reinstated = await api.http.post(
        f"{url}/reinstate", json={"reason": "review closed"}, headers=api.admin
    )
    assert reinstated.json()["status"] == "active"
    revoked = await api.http.post(
        f"{url}/revoke", json={"reason": "plagiarised report"}, headers=api.admin
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    page = await api.http.get(f"/verify/{uuid}")
    # The date, not the reason: that stays in the audit trail (below) and the intern's e-mail.
    assert 'data-verdict="revoked"' in page.text and 'id="revoked-on"' in page.text
    assert "plagiarised report" not in page.text
    final = await api.http.post(f"{url}/reinstate", json={"reason": "oops"}, headers=api.admin)
    assert final.status_code == 409 and "cannot be undone" in detail(final)

    rows = await api.pool.fetch(
        "SELECT event_id, kind, actor, detail FROM audit_events "
        "WHERE internship_id = $1 AND kind LIKE 'credential%' ORDER BY seq",
        plan.internship_id,
    )
    assert [r["kind"] for r in rows] == [
        "credential_suspended",
        "credential_reinstated",
        "credential_revoked",
    ]
    assert rows[-1]["event_id"] == f"internship-{plan.internship_id}/credential_revoked/3"
    assert json.loads(rows[-1]["detail"])["reason"] == "plagiarised report"
    assert rows[-1]["actor"].startswith("admin:")
    assert (
        await api.pool.fetchval(
            "SELECT reason FROM credentials WHERE credential_id = $1", credential_id
        )
        == "plagiarised report"
    )


async def _issue_with_status(api: Api, plan: InternshipPlan) -> dict[str, Any]:
    """A credential issued the way issuance does it with status lists: places on the issuer's
    lists, signed, stored with its places (the credentials row of migration 0004)."""
    async with api.pool.acquire() as conn:
        assignment = await assign_status(conn, api.settings, plan.institution.id)
        issuer_id = issuer_id_for(api.settings.public_base_url, plan.institution.id)
        key = signing_key(api.settings)
        now = datetime.now(UTC)
        credential = build_credential(
            plan,
            {o.id: "good" for o in plan.learning_outcomes},
            issuer_id=issuer_id,
            image_url=f"{api.settings.public_base_url}/images/badge.png",
            issued_at=now,
            credential_status=assignment.credential_status(),
        )
        signed = sign(credential, key, KeyRing.verification_method(issuer_id, key), now)
        await conn.execute(
            """
            INSERT INTO credentials (credential_id, internship_id, format, credential, issued_at,
                                     message_id, revocation_list_id, revocation_index,
                                     suspension_list_id, suspension_index)
            VALUES ($1, $2, 'ob3+eddsa-rdfc-2022', $3, $4, 'none', $5, $6, $7, $8)
            """,
            signed["id"],
            plan.internship_id,
            json.dumps(signed),
            now,
            *assignment.revocation,
            *(assignment.suspension or (None, None)),
        )
    return signed


async def test_revocation_flips_the_bit_on_the_signed_public_status_list(api: Api) -> None:
    plan = planned()
    assert (await api.start(plan)).status_code == 201
    await api.settle(plan.internship_id)
    credential = await _issue_with_status(api, plan)
    uuid = credential["id"].removeprefix("urn:uuid:")
    base = api.settings.public_base_url

    async def fetched_status_lists() -> dict[str, Any]:
        lists = {}
        for entry in [credential["credentialStatus"]]:  # one entry: the revocation list
            url = entry["statusListCredential"]
            response = await api.http.get(url.removeprefix(base))
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/ld+json")
            lists[url] = response.json()
        return lists

    keys = KeyRing.load(api.settings.keys_path).public_keys()
    lists = await fetched_status_lists()
    report = verify_badge(credential, issuer_keys=keys, status_lists=lists.__getitem__)
    assert report.verified, report.errors
    assert report.revoked is False and report.suspended is None
    assert 'data-verdict="verified"' in (await api.http.get(f"/verify/{uuid}")).text

    # Suspension is the issuer's own state: on its page and in the API, not on a list.
    suspended = await api.http.post(
        f"/api/admin/credentials/{uuid}/suspend", json={"reason": "under review"}, headers=api.admin
    )
    assert suspended.status_code == 200
    assert 'data-verdict="suspended"' in (await api.http.get(f"/verify/{uuid}")).text
    assert (await api.http.get(f"/credentials/{uuid}/status")).json()["status"] == "suspended"
    assert verify_badge(credential, issuer_keys=keys, status_lists=lists.__getitem__).verified
    reinstated = await api.http.post(
        f"/api/admin/credentials/{uuid}/reinstate", json={"reason": "cleared"}, headers=api.admin
    )
    assert reinstated.status_code == 200
    assert (await api.http.get(f"/credentials/{uuid}/status")).json()["status"] == "active"

    revoked = await api.http.post(
        f"/api/admin/credentials/{uuid}/revoke",
        json={"reason": "issued in error"},
        headers=api.admin,
    )
    assert revoked.status_code == 200 and revoked.json()["on_status_lists"] is True
    lists = await fetched_status_lists()
    report = verify_badge(credential, issuer_keys=keys, status_lists=lists.__getitem__)
    assert not report.verified and report.revoked is True
    assert "revoked" in " ".join(report.errors)
    page = (await api.http.get(f"/verify/{uuid}")).text
    assert 'data-verdict="revoked"' in page

    issuer = await api.http.get(f"/issuers/{plan.institution.id}")
    assert issuer.status_code == 200
    profile = issuer.json()
    assert profile["id"] == issuer_id_for(base, plan.institution.id)
    assert profile["name"] == plan.institution.name and profile["assertionMethod"]


async def test_codec_endpoint_needs_an_admin_key_or_the_dashboard_session(api: Api) -> None:
    body = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "e30="}]}
    refused = await api.http.post("/codec/decode", json=body)
    assert refused.status_code == 401
    as_operator = await api.http.post("/codec/decode", json=body, headers=api.operator)
    assert as_operator.status_code == 403
    with_key = await api.http.post("/codec/decode", json=body, headers=api.admin)
    assert with_key.status_code == 200
    assert with_key.json()["payloads"][0]["data"] == "e30="  # encryption is off here
    # The Temporal Web UI sends the admin's dashboard session cookie instead of a key.
    key = api.admin["Authorization"].removeprefix("Bearer ")
    signed_in = await api.http.post("/admin/login", data={"key": key})
    assert signed_in.status_code == 303
    via_cookie = await api.http.post("/codec/decode", json=body)
    assert via_cookie.status_code == 200
