"""Master data that holds, through the HTTP API and the CLI on the real parts: an institution or
a company has one recorded name (a plan giving a known id another name is refused with both
names and how to rename, nothing started, recorded or sent; a rename is explicit, with a reason,
kept with who and when, and shown where companies are listed); `period.time_zone` is an IANA
zone; an operator key names recorded institutions only; a paper signature takes a plain date
(midnight in the plan's time zone) and refuses one in the future or before the plan existed.
Migration 0021 records what the internships held before it."""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from models.plan import InternshipPlan
from models.status import Phase
from runtime.migrations import apply_migrations, discover_migrations
from tests.helpers import clock_held, load_outbox, sent, wait_for_phase
from tests.test_api_harness import Api, api, detail, planned
from tests.test_cli import cli_for
from tests.test_signers import GUARDIAN, REPRESENTATIVE, with_signers
from tests.test_start_rules import flat, workflow_exists

__all__ = ["api"]

COMPANY = "northwind-freight"


def at(plan: InternshipPlan, **changes: Any) -> InternshipPlan:
    """The plan under a new id (a fresh sample plan's) with `changes` to its sections, e.g.
    company={"name": ...}, period={"time_zone": ...}."""
    data = plan.model_dump(mode="json")
    data["internship_id"] = planned().internship_id
    for section, fields in changes.items():
        data[section] = {**data[section], **fields}
    return InternshipPlan.model_validate(data)


def northwind(name: str = "Northwind Freight") -> InternshipPlan:
    return at(planned(), company={"id": COMPANY, "name": name})


async def companies_shown(api: Api, headers: dict[str, str]) -> dict[str, str]:
    """company id -> name, as GET /api/admin/companies shows them."""
    answer = await api.http.get("/api/admin/companies", headers=headers)
    assert answer.status_code == 200, answer.text
    return {c["company_id"]: c["name"] for c in answer.json()}


async def test_a_known_company_under_another_name_is_refused_until_renamed(api: Api) -> None:
    first = northwind()
    assert (await api.start(first)).status_code == 201
    await api.settle(first.internship_id)
    (recorded,) = await api.pool.fetch(
        "SELECT * FROM organisation_events WHERE organisation = 'company' AND organisation_id = $1",
        COMPANY,
    )
    assert (recorded["event"], recorded["name"], recorded["internship_id"]) == (
        "recorded",
        "Northwind Freight",
        first.internship_id,
    )
    assert recorded["actor"].startswith("operator:")

    # Another name for the known company (and for the known institution): refused with both
    # names and how to rename, each field named; nothing starts, is recorded or is sent.
    other = at(northwind("Northwind Logistics"), institution={"name": "IPSIA Bassano del Grappa"})
    refused = await api.start(other)
    assert refused.status_code == 422, refused.text
    problems = {p["field"]: p["message"] for p in refused.json()["errors"]}
    assert set(problems) == {"body.company.name", "body.institution.name"}
    company = problems["body.company.name"]
    assert (
        f"company.id {COMPANY!r} is recorded as 'Northwind Freight', but this plan names it "
        "'Northwind Logistics'" in company
    )
    assert f'internflow company rename {COMPANY} --name "Northwind Logistics"' in company
    assert f"POST /api/admin/companies/{COMPANY}/rename" in company
    assert "'Istituto Professionale Bassano'" in problems["body.institution.name"]
    assert "'IPSIA Bassano del Grappa'" in problems["body.institution.name"]
    assert not await workflow_exists(api.client, other.internship_id)
    assert await api.recorded(other.internship_id) == (0, 0)
    assert sent(load_outbox(api.settings), other.internship_id) == []
    assert await companies_shown(api, api.admin) == {COMPANY: "Northwind Freight"}

    # A batch refuses that row and starts the others; a new company is recorded with its name.
    newcomer = at(planned(), company={"id": "fjord-logistics", "name": "Fjord Logistics AS"})
    with clock_held(api.env):
        batch = await api.http.post(
            "/api/internships/batch",
            json=[p.model_dump(mode="json") for p in (northwind("Northwind Logistics"), newcomer)],
            headers=api.operator,
        )
    rows = batch.json()["rows"]
    assert [r["status"] for r in rows] == ["refused", "started"], rows
    assert "is recorded as 'Northwind Freight'" in rows[0]["errors"][0]
    await api.settle(newcomer.internship_id)
    assert await companies_shown(api, api.admin) == {
        COMPANY: "Northwind Freight",
        "fjord-logistics": "Fjord Logistics AS",
    }

    # Renaming: an operator key of an institution that sends nobody there is told nothing
    # (404, as for an unknown company); a reason is required; the operator who sends interns
    # there renames it.
    school = {"institution_id": "another-school", "name": "Another School"}
    added = await api.http.post("/api/admin/institutions", json=school, headers=api.admin)
    assert added.status_code == 201, added.text
    made = await api.http.post(
        "/api/admin/keys",
        json={"name": "elsewhere", "role": "operator", "institutions": ["another-school"]},
        headers=api.admin,
    )
    assert made.status_code == 201, made.text
    elsewhere = made.json()["key"]
    rename = {"name": "Northwind Logistics", "reason": "new legal name after the merger"}
    path = f"/api/admin/companies/{COMPANY}/rename"
    hidden = await api.http.post(
        path, json=rename, headers={"Authorization": f"Bearer {elsewhere}"}
    )
    assert hidden.status_code == 404, hidden.text
    unknown = await api.http.post(
        "/api/admin/companies/nobody-gmbh/rename", json=rename, headers=api.admin
    )
    assert unknown.status_code == 404 and detail(unknown) == detail(hidden).replace(
        COMPANY, "nobody-gmbh"
    )
    no_reason = await api.http.post(path, json={"name": "X"}, headers=api.operator)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.reason"
    renamed = await api.http.post(path, json=rename, headers=api.operator)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Northwind Logistics"
    same = await api.http.post(path, json=rename, headers=api.operator)
    assert same.status_code == 422 and "already named 'Northwind Logistics'" in detail(same)

    # Every list of companies shows the recorded name; the company's page keeps who renamed it,
    # when, from what and why.
    assert (await companies_shown(api, api.operator))[COMPANY] == "Northwind Logistics"
    one = await api.http.get(f"/api/admin/companies/{COMPANY}", headers=api.admin)
    assert one.json()["name"] == "Northwind Logistics"
    history = one.json()["name_history"]
    assert [(e["event"], e["name"], e["previous_name"]) for e in history] == [
        ("recorded", "Northwind Freight", None),
        ("renamed", "Northwind Logistics", "Northwind Freight"),
    ]
    assert history[1]["reason"] == rename["reason"]
    assert history[1]["actor"] == recorded["actor"]
    signed_in = await api.http.post(
        "/admin/login", data={"key": api.admin["Authorization"].removeprefix("Bearer ")}
    )
    assert signed_in.status_code in (200, 303), signed_in.text
    page = await api.http.get("/admin/companies")
    assert page.status_code == 200
    assert "Northwind Logistics" in page.text and "Northwind Freight" not in page.text

    # From now on plans give the new name; the first plan, already running, is still the same
    # plan (starting it again stays harmless); amending it means giving the new name.
    again = await api.start(first)
    assert again.status_code == 200 and again.json()["created"] is False, again.text
    assert (await api.start(northwind("Northwind Freight"))).status_code == 422
    assert (await api.start(northwind("Northwind Logistics"))).status_code == 201
    amend = f"/api/internships/{first.internship_id}/amendments"
    stale = {
        "submission_id": "amend-hours",
        "plan": first.model_copy(update={"version": 2, "weekly_hours": 30}).model_dump(mode="json"),
        "concerns": ["intern"],
        "reason": "fewer hours",
    }
    before = await api.recorded(first.internship_id)
    refused_amendment = await api.http.post(amend, json=stale, headers=api.operator)
    assert refused_amendment.status_code == 422, refused_amendment.text
    assert refused_amendment.json()["errors"][0]["field"] == "body.plan.company.name"
    await api.settle(first.internship_id)
    assert await api.recorded(first.internship_id) == before
    stale["plan"]["company"]["name"] = "Northwind Logistics"
    amended = await api.http.post(amend, json=stale, headers=api.operator)
    assert amended.status_code == 200, amended.text
    await api.settle(first.internship_id)


async def test_the_cli_refuses_another_name_and_renames_with_a_reason(
    api: Api, tmp_path: Path
) -> None:
    cli = cli_for(api.env, api.settings)
    files = {}
    for key, plan in (
        ("first", northwind()),
        ("other", northwind("Northwind Logistics")),
        ("school", at(planned(), institution={"name": "IPSIA Bassano del Grappa"})),
    ):
        files[key] = tmp_path / f"{key}.json"
        files[key].write_text(plan.model_dump_json())

    code, out = await cli("start", str(files["first"]))
    assert code == 0, out
    code, out = await cli("start", str(files["other"]))
    assert code == 2, out
    assert (
        f"company.id {COMPANY!r} is recorded as 'Northwind Freight', but this plan names it "
        "'Northwind Logistics'" in flat(out)
    )
    assert f'internflow company rename {COMPANY} --name "Northwind Logistics"' in flat(out)
    other = InternshipPlan.model_validate_json(files["other"].read_text())
    assert not await workflow_exists(api.client, other.internship_id)
    batch = tmp_path / "batch.json"
    batch.write_text(f"[{files['other'].read_text()}]")
    code, out = await cli("start", "--batch", str(batch))
    assert code == 2 and "0 started, 0 already running, 1 failed" in flat(out), out
    assert "is recorded as 'Northwind Freight'" in flat(out)

    # Refusals of a rename say what to change.
    code, out = await cli("company", "rename", "nobody-gmbh", "--name", "X", "--reason", "typo")
    assert code == 2 and "no company 'nobody-gmbh' is recorded" in out
    code, out = await cli(
        "company", "rename", COMPANY, "--name", "Northwind Freight", "--reason", "typo"
    )
    assert code == 2 and "already named 'Northwind Freight'" in out
    code, out = await cli("company", "rename", COMPANY, "--name", "Northwind Logistics")
    assert code == 2 and "--reason" in out
    code, out = await cli(
        "company", "rename", COMPANY, "--name", "Northwind\nLogistics", "--reason", "x"
    )
    assert code == 2 and "--name" in out and "line break" in out

    code, out = await cli(
        "company",
        "rename",
        COMPANY,
        "--name",
        "Northwind Logistics",
        "--reason",
        "new legal name after the merger",
    )
    assert code == 0, out
    assert "'Northwind Freight' -> 'Northwind Logistics'" in out
    code, out = await cli("companies", "--json")
    assert code == 0, out
    assert {c["company_id"]: c["name"] for c in json.loads(out)} == {COMPANY: "Northwind Logistics"}
    code, out = await cli("companies", COMPANY)
    assert code == 0, out
    assert "Northwind Logistics (northwind-freight)" in out
    assert (
        "renamed 'Northwind Freight' -> 'Northwind Logistics' by cli: new legal name after "
        "the merger" in flat(out)
    )
    code, out = await cli("start", str(files["other"]))
    assert code == 0, out

    # The institution, likewise; the CLI lists institutions with their one name.
    code, out = await cli("start", str(files["school"]))
    assert code == 2 and "institution.id 'ipsia-bassano' is recorded as" in flat(out), out
    code, out = await cli(
        "institution",
        "rename",
        "ipsia-bassano",
        "--name",
        "IPSIA Bassano del Grappa",
        "--reason",
        "the school's new name",
    )
    assert code == 0, out
    code, out = await cli("institutions")
    assert code == 0 and "ipsia-bassano  IPSIA Bassano del Grappa" in out, out
    code, out = await cli("institutions", "ipsia-bassano")
    assert code == 0 and "by cli: the school's new name" in flat(out), out
    code, out = await cli("start", str(files["school"]))
    assert code == 0, out

    # An institution recorded by its first internship may have keys; an unknown one may not.
    code, out = await cli("keys", "create", "office", "--institution", "ipsia-bassano")
    assert code == 0, out
    code, out = await cli("keys", "create", "office", "--institution", "ipsia-bassnao")
    assert code == 2 and "--institution 'ipsia-bassnao': no institution is recorded" in out
    code, out = await cli("institution", "add", "ipsia-bassano", "--name", "Anything")
    assert code == 2 and "recorded already, as 'IPSIA Bassano del Grappa'" in out
    code, out = await cli("institution", "add", "Bad Id", "--name", "Anything")
    assert code == 2 and "INSTITUTION_ID" in out


async def test_a_time_zone_that_is_none_is_refused_with_a_suggestion(
    api: Api, tmp_path: Path
) -> None:
    # The model still decodes such a plan (running internships and recorded histories must);
    # the door refuses it.
    misspelt = at(planned(), period={"time_zone": "Europe/Roma"})
    refused = await api.start(misspelt)
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"] == [
        {
            "field": "body.period.time_zone",
            "message": "period.time_zone 'Europe/Roma' is not a time zone; did you mean "
            "Europe/Rome?",
        }
    ]
    mars = at(planned(), period={"time_zone": "Mars/Olympus"})
    assert InternshipPlan.model_validate_json(mars.model_dump_json()) == mars
    refused = await api.start(mars)
    assert refused.status_code == 422, refused.text
    assert "period.time_zone 'Mars/Olympus' is not a time zone: give an IANA" in detail(refused)
    for plan in (misspelt, mars):
        assert not await workflow_exists(api.client, plan.internship_id)
        assert await api.recorded(plan.internship_id) == (0, 0)
    # Nothing about a refused plan was recorded, not even a company or institution name.
    assert await api.pool.fetchval("SELECT count(*) FROM organisation_events") == 0

    # An amendment is checked the same way, under `plan`.
    running = at(planned(), period={"time_zone": "America/New_York"})
    assert (await api.start(running)).status_code == 201
    await wait_for_phase(api.client, running.internship_id, Phase.PLANNING)
    amendment = {
        "submission_id": "amend-zone",
        "plan": {
            **running.model_copy(update={"version": 2}).model_dump(mode="json"),
            "period": {**running.model_dump(mode="json")["period"], "time_zone": "Europe/Roma"},
        },
        "reason": "the school's zone",
    }
    answer = await api.http.post(
        f"/api/internships/{running.internship_id}/amendments",
        json=amendment,
        headers=api.operator,
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "body.plan.period.time_zone"
    assert "did you mean Europe/Rome?" in detail(answer)

    # The CLI: a start and a rehearsal, each refused naming the field.
    cli = cli_for(api.env, api.settings)
    path = tmp_path / "plan.json"
    path.write_text(at(planned(), period={"time_zone": "europe/rome"}).model_dump_json())
    code, out = await cli("start", str(path))
    assert code == 2, out
    assert "period.time_zone 'europe/rome' is not a time zone; did you mean Europe/Rome?" in out
    code, out = await cli("rehearse", str(path))
    assert code == 2 and "did you mean Europe/Rome?" in out, out
    await api.settle(running.internship_id)


async def _signatures(api: Api, internship_id: str) -> dict[str, str | None]:
    status = await api.http.get(f"/api/internships/{internship_id}", headers=api.operator)
    assert status.status_code == 200, status.text
    return {s["party"]: s["signed_at"] for s in status.json()["signatures"] if s["on_paper"]}


async def test_a_paper_signature_takes_a_date_and_refuses_one_before_the_plan_or_ahead(
    api: Api,
) -> None:
    plan = with_signers(planned(), GUARDIAN, REPRESENTATIVE)
    iid = plan.internship_id
    zone = ZoneInfo(plan.period.time_zone)  # Europe/Berlin, whatever the machine's zone
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)
    today = datetime.now(zone).date()
    path = f"/api/internships/{iid}/paper-signatures"

    sent_papers: list[str] = []

    def paper(signed_at: str, role: str = "company_representative") -> dict[str, str]:
        sent_papers.append(signed_at)
        return {
            "submission_id": f"paper-{role}-{len(sent_papers)}",
            "role": role,
            "signed_at": signed_at,
            "note": "signed copy in the school's file 2027/41",
        }

    before = await api.recorded(iid)
    refusals = [
        ((today + timedelta(days=1)).isoformat(), "is in the future"),
        ("2099-01-01T00:00:00+00:00", "is in the future"),
        ("1900-01-01", "is before this internship's plan existed"),
        ((today - timedelta(days=1)).isoformat(), f"on or after {today.isoformat()}"),
        ("10/02/2027", "give the date the paper was signed (YYYY-MM-DD"),
        ("2027-02-10T15:30", "with its UTC offset"),
    ]
    for signed_at, words in refusals:
        refused = await api.http.post(path, json=paper(signed_at), headers=api.operator)
        assert refused.status_code == 422, (signed_at, refused.text)
        (problem,) = refused.json()["errors"]
        assert problem["field"] == "body.signed_at", problem
        assert words in problem["message"], problem
    await api.settle(iid)
    assert await api.recorded(iid) == before, "nothing recorded for a refused paper"

    # A plain date: midnight in the plan's time zone.
    accepted = await api.http.post(path, json=paper(today.isoformat()), headers=api.operator)
    assert accepted.status_code == 200, accepted.text
    await api.settle(iid)
    signed = (await _signatures(api, iid))["company_representative"]
    assert signed is not None
    assert datetime.fromisoformat(signed) == datetime.combine(today, time(), zone)

    # The CLI, likewise, naming its option.
    cli = cli_for(api.env, api.settings)
    for signed_at, words in (
        ("1900-01-01", "--signed-at 1900-01-01 is before this internship's plan existed"),
        ((today + timedelta(days=2)).isoformat(), "is in the future"),
    ):
        code, out = await cli(
            "paper-signature", iid, "--role", "guardian", "--signed-at", signed_at, "--note", "x"
        )
        assert code == 2 and words in flat(out), out
    code, out = await cli(
        "paper-signature",
        iid,
        "--role",
        "guardian",
        "--signed-at",
        today.isoformat(),
        "--note",
        "signed at the school",
    )
    assert code == 0, out
    await api.settle(iid)
    guardian = (await _signatures(api, iid))["guardian"]
    assert guardian is not None
    assert datetime.fromisoformat(guardian) == datetime.combine(today, time(), zone)


async def test_migration_0021_records_what_the_internships_held(
    database: str, tmp_path: Path
) -> None:
    """Each id keeps its latest-starting internship's name; other names it had are noted."""
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for migration in discover_migrations():
        if migration.version < 21:
            shutil.copy(str(migration.source), earlier / migration.name)
    await apply_migrations(database, directory=earlier)
    owner = await asyncpg.connect(database)
    try:
        starts = {"old": date(2025, 3, 1), "new": date(2026, 3, 1), "solo": date(2026, 4, 1)}
        names = {
            "old": ("northwind-freight", "Northwind Freight", "school-a", "Scuola A"),
            "new": ("northwind-freight", "Northwind Logistics", "school-a", "Scuola A"),
            "solo": ("fjord", "Fjord AS", "school-b", "Scuola B"),
        }
        for iid, (company, company_name, school, school_name) in names.items():
            start = datetime.combine(starts[iid], time(), ZoneInfo("UTC"))
            await owner.execute(
                "INSERT INTO internships (internship_id, workflow_id, institution_id, "
                "company_id, phase, plan_version, start_at, end_at, updated_at) "
                "VALUES ($1, $2, $3, $4, 'completed', 1, $5, $5, $5)",
                iid,
                f"internship-{iid}",
                school,
                company,
                start,
            )
            for role, party, name in (
                ("company", company, company_name),
                ("operator", school, school_name),
            ):
                await owner.execute(
                    "INSERT INTO parties (internship_id, role, party_id, name, email, language, "
                    "plan_version) VALUES ($1, $2, $3, $4, 'x@example.org', 'en', 1)",
                    iid,
                    role,
                    party,
                    name,
                )
        # 0021 itself (later migrations are not this test's business).
        [organisations] = [m for m in discover_migrations() if m.version == 21]
        shutil.copy(str(organisations.source), earlier / organisations.name)
        assert await apply_migrations(database, directory=earlier) == ["0021_organisations.sql"]
        companies = await owner.fetch("SELECT company_id, name FROM companies ORDER BY 1")
        assert [tuple(r) for r in companies] == [
            ("fjord", "Fjord AS"),
            ("northwind-freight", "Northwind Logistics"),
        ]
        schools = await owner.fetch("SELECT institution_id, name FROM institutions ORDER BY 1")
        assert [tuple(r) for r in schools] == [("school-a", "Scuola A"), ("school-b", "Scuola B")]
        events = {
            (r["organisation"], r["organisation_id"]): r
            for r in await owner.fetch("SELECT * FROM organisation_events")
        }
        assert len(events) == 4
        drifted = events[("company", "northwind-freight")]
        assert (drifted["event"], drifted["actor"], drifted["internship_id"]) == (
            "recorded",
            "migration 0021",
            "new",
        )
        assert drifted["reason"] == (
            "kept from the latest internship; earlier ones also named it 'Northwind Freight'"
        )
        assert events[("company", "fjord")]["reason"] is None
        try:
            await owner.execute("DELETE FROM organisation_events")
        except asyncpg.RaiseError as error:
            assert "append-only" in str(error)
        else:
            raise AssertionError("the names' history could be deleted")
    finally:
        await owner.close()
