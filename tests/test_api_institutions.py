"""Operator keys belong to institutions: through the HTTP API and the CLI, a key of one school
cannot see, list, start, steer or validate another school's internship (the same 404 as for an
unknown id), a batch refuses its rows for other institutions one by one, and admin keys and keys
made for every institution see everything. Keys made before institutions existed keep working."""

from __future__ import annotations

import html
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import asyncpg
import httpx
import pytest

from models.activities import BadgeRequest
from models.plan import InternshipPlan
from models.status import Phase
from operations import organisations as orgs
from operations.access import authenticate, create_api_key, key_hash
from runtime.migrations import apply_migrations, discover_migrations
from runtime.settings import Settings
from tests.helpers import (
    clock_held,
    issue_badge_through_activities,
    load_outbox,
    sample_plan,
    wait_for_phase,
)
from tests.test_api_harness import Api, api, detail, planned
from tests.test_cli import Cli, cli_for

__all__ = ["api"]


def plan_of(institution: str) -> InternshipPlan:
    """The sample plan under a new id, for `institution`."""
    plan = planned()
    return plan.model_copy(
        update={"institution": plan.institution.model_copy(update={"id": institution})}
    )


async def key_for(api: Api, name: str, institutions: list[str]) -> dict[str, str]:
    _, key = await create_api_key(api.pool, name, "operator", institutions=institutions)
    return {"Authorization": f"Bearer {key}"}


def unknown_id_answer(response: httpx.Response, internship_id: str) -> tuple[int, str]:
    """What the caller learns, with the id made anonymous."""
    return response.status_code, detail(response).replace(internship_id, "<id>")


CHANGES = (
    ("pause", {"submission_id": "p-x", "reason": "illness"}),
    ("resume", {"submission_id": "r-x"}),
    ("extension", {"submission_id": "e-x", "new_end": "2030-01-01T00:00:00Z", "reason": "x"}),
    ("withdrawal", {"submission_id": "w-x", "reason": "not yours"}),
    ("validation", {"submission_id": "v-x", "decision": "fail", "reason": "not yours"}),
)


async def test_another_institutions_internship_is_as_an_unknown_id(api: Api) -> None:
    school_a = await key_for(api, "school-a office", ["school-a"])
    school_b = await key_for(api, "school-b office", ["school-b", "school-c"])
    _, every = await create_api_key(api.pool, "head office", "operator", institutions=None)
    head_office = {"Authorization": f"Bearer {every}"}

    plan = plan_of("school-a")
    iid = plan.internship_id
    with clock_held(api.env):
        started = await api.http.post(
            "/api/internships", json=plan.model_dump(mode="json"), headers=school_a
        )
    assert started.status_code == 201, started.text
    await wait_for_phase(api.client, iid, Phase.PLANNING)
    await api.settle(iid)
    base = f"/api/internships/{iid}"

    # Seeing: the owner, the all-institutions key and an admin see it; school-b gets exactly
    # what an id nobody ever used gets.
    for headers in (school_a, head_office, api.admin):
        assert (await api.http.get(base, headers=headers)).status_code == 200
    ghost = "it-nobody-ever"
    expected = unknown_id_answer(
        await api.http.get(f"/api/internships/{ghost}", headers=school_b), ghost
    )
    assert expected[0] == 404
    assert unknown_id_answer(await api.http.get(base, headers=school_b), iid) == expected

    # Listing: school-b's list leaves it out, also when asking for school-a by name.
    def ids(response: httpx.Response) -> set[str]:
        assert response.status_code == 200, response.text
        return {item["internship_id"] for item in response.json()["items"]}

    assert iid in ids(await api.http.get("/api/internships", headers=school_a))
    assert iid in ids(await api.http.get("/api/internships", headers=head_office))
    assert iid not in ids(await api.http.get("/api/internships", headers=school_b))
    asked = await api.http.get(
        "/api/internships", params={"institution": "school-a"}, headers=school_b
    )
    assert ids(asked) == set()
    assert ids(await api.http.get("/api/internships", params={"q": iid}, headers=school_b)) == set()

    # Steering: every change (and a validation) is refused as for an unknown id, and nothing
    # reaches the workflow or the records.
    before = await api.recorded(iid)
    for path, body in CHANGES:
        theirs = await api.http.post(f"{base}/{path}", json=body, headers=school_b)
        unknown = await api.http.post(
            f"/api/internships/{ghost}/{path}", json=body, headers=school_b
        )
        assert theirs.status_code == 404, (path, theirs.text)
        assert unknown_id_answer(theirs, iid) == unknown_id_answer(unknown, ghost), path
    amendment = {
        "submission_id": "m-x",
        "plan": plan.model_copy(update={"version": 2}).model_dump(mode="json"),
        "reason": "not yours",
    }
    amended = await api.http.post(f"{base}/amendments", json=amendment, headers=school_b)
    assert amended.status_code == 404
    await api.settle(iid)
    assert await api.recorded(iid) == before
    status = await api.http.get(base, headers=school_a)
    assert status.json()["phase"] == "planning" and status.json()["plan_version"] == 1

    # History is the admins' (global); an operator key of any institution is refused.
    history = f"/api/admin/internships/{iid}/history"
    assert (await api.http.get(history, headers=school_a)).status_code == 403
    assert (await api.http.get(history, headers=school_b)).status_code == 403
    assert (await api.http.get(history, headers=api.admin)).status_code == 200

    # The owner steers it as before.
    withdrawn = await api.http.post(
        f"{base}/withdrawal", json={"submission_id": "w-1", "reason": "moved"}, headers=school_a
    )
    assert withdrawn.status_code == 200, withdrawn.text


async def test_starting_for_another_institution_is_refused_one_and_per_batch_row(
    api: Api,
) -> None:
    school_b = await key_for(api, "school-b office", ["school-b"])
    theirs = plan_of("school-a")
    refused = await api.http.post(
        "/api/internships", json=theirs.model_dump(mode="json"), headers=school_b
    )
    assert refused.status_code == 403, refused.text
    assert "'school-a'" in detail(refused) and "school-b" in detail(refused)
    assert (
        await api.http.get(f"/api/internships/{theirs.internship_id}", headers=api.admin)
    ).status_code == 404

    # A batch: its own row starts, the other institution's row is refused, the rest go on.
    mine, other, mine_too = plan_of("school-b"), plan_of("school-a"), plan_of("school-b")
    with clock_held(api.env):
        batch = await api.http.post(
            "/api/internships/batch",
            json=[p.model_dump(mode="json") for p in (mine, other, mine_too)],
            headers=school_b,
        )
    assert batch.status_code == 200, batch.text
    rows = batch.json()["rows"]
    assert [row["status"] for row in rows] == ["started", "refused", "started"]
    assert "'school-a'" in rows[1]["errors"][0]
    assert batch.json()["failed"] == 1
    await api.settle(mine.internship_id)
    assert (
        await api.http.get(f"/api/internships/{other.internship_id}", headers=api.admin)
    ).status_code == 404

    # school-a's running internship under the same id as school-b's new plan: refused without
    # a word about the running one (its plan, version or parties).
    school_a = await key_for(api, "school-a office", ["school-a"])
    running = plan_of("school-a")
    with clock_held(api.env):
        first = await api.http.post(
            "/api/internships", json=running.model_dump(mode="json"), headers=school_a
        )
        assert first.status_code == 201
        same_id = plan_of("school-b").model_copy(update={"internship_id": running.internship_id})
        taken = await api.http.post(
            "/api/internships", json=same_id.model_dump(mode="json"), headers=school_b
        )
    assert taken.status_code == 409, taken.text
    assert detail(taken) == (
        f"internship_id {running.internship_id!r} cannot be used: choose a new internship_id"
    )
    await api.settle(running.internship_id)


async def test_keys_made_with_the_cli_belong_to_their_institutions(api: Api) -> None:
    cli = cli_for(api.env, api.settings)
    code, out = await cli("keys", "create", "anywhere", "--role", "operator")
    assert code == 2 and "--institution" in out and "--all-institutions" in out
    assert '"institutions"' not in out and "all_institutions" not in out  # the CLI's terms
    code, out = await cli("keys", "create", "too-much", "--role", "admin", "--institution", "x")
    assert code == 2 and "admin keys see every institution" in out
    code, out = await cli(
        "keys", "create", "both", "--institution", "school-a", "--all-institutions"
    )
    assert code == 2 and "not both" in out
    code, out = await cli("keys", "create", "bad", "--institution", "School A")
    assert code == 2 and "not an institution id" in out

    # A key for institutions with no record would see nothing: refused, naming each, until they
    # are recorded (here explicitly; a start records one too).
    code, out = await cli(
        "keys", "create", "two-schools", "--institution", "school-a", "--institution", "school-c"
    )
    assert code == 2, out
    assert "--institution 'school-a': no institution is recorded" in out
    assert "--institution 'school-c': no institution is recorded" in out
    assert "internflow institution add school-a" in out
    assert "/api/" not in out  # the CLI's terms, not the API's
    assert await api.pool.fetchval("SELECT count(*) FROM api_keys") == 2  # the harness's two
    name = planned().institution.name
    for school in ("school-a", "school-c"):
        code, out = await cli("institution", "add", school, "--name", name)
        assert code == 0, out
    code, out = await cli(
        "keys", "create", "two-schools", "--institution", "school-a", "--institution", "school-c"
    )
    assert code == 0, out
    assert "school-a, school-c" in out
    two_schools = {"Authorization": f"Bearer {_key_in(out)}"}
    code, out = await cli("keys", "create", "head-office", "--all-institutions")
    assert code == 0 and "all institutions" in out
    head_office = {"Authorization": f"Bearer {_key_in(out)}"}
    code, out = await cli("keys", "list")
    assert code == 0 and "school-a, school-c" in out and "all institutions" in out

    plans = {name: plan_of(name) for name in ("school-a", "school-b", "school-c")}
    with clock_held(api.env):
        for plan in plans.values():
            started = await api.http.post(
                "/api/internships", json=plan.model_dump(mode="json"), headers=head_office
            )
            assert started.status_code == 201, started.text
    for plan in plans.values():
        await api.settle(plan.internship_id)
    listed = await api.http.get("/api/internships", headers=two_schools)
    seen = {item["internship_id"] for item in listed.json()["items"]}
    assert plans["school-a"].internship_id in seen and plans["school-c"].internship_id in seen
    assert plans["school-b"].internship_id not in seen
    hidden = await api.http.get(
        f"/api/internships/{plans['school-b'].internship_id}", headers=two_schools
    )
    assert hidden.status_code == 404
    for plan in plans.values():
        shown = await api.http.get(f"/api/internships/{plan.internship_id}", headers=head_office)
        assert shown.status_code == 200


async def test_keys_list_keeps_names_and_institutions_whole_in_80_columns(api: Api) -> None:
    """A long name and long institution ids do not fit a table in 80 columns: each key gets a
    block, long fields on lines of their own, folded at word boundaries; nothing is cut."""
    cli = cli_for(api.env, api.settings)
    narrow = Cli(cli.env, columns=80)
    schools = [f"istituto-superiore-{n}-".ljust(60, "x") for n in range(3)]
    for school in schools:
        code, out = await cli("institution", "add", school, "--name", planned().institution.name)
        assert code == 0, out
    name = "registry office of the three vocational schools of the province spring 2027"
    assert len(name) <= 80
    code, out = await cli("keys", "create", name, *(f"--institution={s}" for s in schools))
    assert code == 0, out
    key_id = _key_in(out).split("_")[1]
    code, out = await narrow("keys", "list")
    assert code == 0, out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80, out
    words = out.split()
    assert key_id in words, out
    for school in schools:  # each id whole, on one line
        assert any(school in line for line in out.splitlines()), out
    assert any(line.strip() == name for line in out.splitlines()), out  # on a line of its own
    assert "…" not in out and "..." not in out, out
    assert out.splitlines()[-1] == "3 keys", out
    # Wide enough: the same keys as a table, one row each.
    code, out = await Cli(cli.env, columns=400)("keys", "list")
    assert code == 0, out
    assert any(name in line and key_id in line for line in out.splitlines()), out


def _key_in(output: str) -> str:
    return next(line for line in output.splitlines() if line.startswith("ifk_"))


async def test_keys_made_before_institutions_see_every_institution(
    database: str, settings: Settings, tmp_path: Path
) -> None:
    """Migration 0014 makes every existing key an all-institutions key: it works as before."""
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for migration in discover_migrations():
        if migration.version < 14:
            shutil.copy(str(migration.source), earlier / migration.name)
    await apply_migrations(database, directory=earlier)
    owner = await asyncpg.connect(database)
    try:
        key = "ifk_0123456789ab_" + "k" * 43
        await owner.execute(
            "INSERT INTO api_keys (key_id, name, role, key_hash) "
            "VALUES ('0123456789ab', 'old operator', 'operator', $1)",
            key_hash(key),
        )
    finally:
        await owner.close()
    assert (await apply_migrations(database))[:1] == ["0014_key_institutions.sql"]
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    assert pool is not None
    try:
        found = await authenticate(pool, key)
        assert found is not None and found.role == "operator"
        assert found.all_institutions and found.institutions == ()
        assert found.sees("any-school") and found.institution_scope is None
        with pytest.raises(asyncpg.CheckViolationError):
            await pool.execute(
                "INSERT INTO api_keys (key_id, name, role, key_hash) "
                "VALUES ('ba9876543210', 'unscoped', 'operator', $1)",
                bytes(32),
            )
    finally:
        await pool.close()


ADD_TO_PROFILE = re.compile(r"https://www\.linkedin\.com/profile/add\?[^\s\"'<>]+")


async def _badge_of(api: Api, institution: str) -> tuple[InternshipPlan, str]:
    """A badge of `institution` issued and e-mailed by the real activities; (plan, its uuid)."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    plan = plan.model_copy(
        update={"institution": plan.institution.model_copy(update={"id": institution})}
    )
    request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=now - timedelta(hours=1),
        workflow_id=f"internship-{plan.internship_id}",
    )
    await api.pool.execute(
        "INSERT INTO internships (internship_id, workflow_id, institution_id, company_id, phase, "
        "plan_version, start_at, end_at, updated_at) "
        "VALUES ($1, $2, $3, $4, 'certification', 1, $5, $6, now())",
        plan.internship_id,
        request.workflow_id,
        institution,
        plan.company.id,
        plan.period.start,
        plan.period.end,
    )
    credential_id = await issue_badge_through_activities(api.pool, api.settings, request)
    return plan, credential_id.removeprefix("urn:uuid:")


async def _page_link(api: Api, uuid: str) -> dict[str, str]:
    page = await api.http.get(f"/badges/{uuid}")
    assert page.status_code == 200, page.text
    [link] = {html.unescape(found) for found in ADD_TO_PROFILE.findall(page.text)}
    return dict(parse_qsl(urlsplit(link).query))


async def test_an_institution_s_linkedin_organization_names_it_in_add_to_profile(
    api: Api,
) -> None:
    """Set through the admin API (or the CLI), the institution's LinkedIn organization id
    replaces organizationName in the "Add to LinkedIn profile" link of its badges, on the page
    and in the badge e-mail; certId is the credential's UUID; cleared, the name is back."""
    await orgs.add_institution(api.pool, "liceo-linkedin", "Liceo Linkedin", "test")
    url = "/api/admin/institutions/liceo-linkedin/linkedin"
    done = await api.http.put(url, json={"organization_id": "2414183"}, headers=api.admin)
    assert done.status_code == 200, done.text
    assert done.json()["linkedin_organization_id"] == "2414183"

    plan, uuid = await _badge_of(api, "liceo-linkedin")
    page = await _page_link(api, uuid)
    assert page["organizationId"] == "2414183" and "organizationName" not in page
    assert page["certId"] == uuid and page["name"] == plan.badge.name
    [mail] = [
        m
        for m in load_outbox(api.settings)
        if m["X-Internflow-Internship"] == plan.internship_id and m["X-Internflow-Kind"] == "badge"
    ]
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    [mailed] = ADD_TO_PROFILE.findall(str(body.get_content()))
    assert dict(parse_qsl(urlsplit(mailed).query)) == page

    cleared = await api.http.put(url, json={"organization_id": None}, headers=api.admin)
    assert cleared.status_code == 200 and cleared.json()["linkedin_organization_id"] is None
    page = await _page_link(api, uuid)
    assert page["organizationName"] == plan.institution.name and "organizationId" not in page
    assert page["certId"] == uuid

    # Refused: not an organization id (nothing changes), another school's key, an unknown one.
    wrong = await api.http.put(
        url, json={"organization_id": "linkedin.com/company/acme"}, headers=api.admin
    )
    assert wrong.status_code == 422 and "organization_id" in detail(wrong)
    other = await key_for(api, "other-school", ["ipsia-bassano"])
    await orgs.add_institution(api.pool, "ipsia-bassano", "Istituto Professionale Bassano", "t")
    assert (
        await api.http.put(url, json={"organization_id": "1"}, headers=other)
    ).status_code == 404
    unknown = "/api/admin/institutions/nobody/linkedin"
    assert (
        await api.http.put(unknown, json={"organization_id": "1"}, headers=api.admin)
    ).status_code == 404
    assert "organizationId" not in await _page_link(api, uuid)

    # The command line: set, listed, cleared.
    cli = cli_for(api.env, api.settings)
    code, out = await cli("institution", "linkedin", "liceo-linkedin", "77")
    assert code == 0 and "LinkedIn organization 77" in out, out
    assert (await _page_link(api, uuid))["organizationId"] == "77"
    code, out = await cli("institutions")
    assert code == 0 and "LinkedIn organization 77" in out, out
    code, out = await cli("institution", "linkedin", "liceo-linkedin", "--clear")
    assert code == 0, out
    assert "organizationId" not in await _page_link(api, uuid)
    code, out = await cli("institution", "linkedin", "liceo-linkedin")
    assert code != 0 and "--clear" in out, out
