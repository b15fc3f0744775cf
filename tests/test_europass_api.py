"""European Digital Credentials of certified internships through the real stack: an institution
without a legal identifier is named with the command that sets it; once set, operators download
the credential from the API (one, or a batch) and the CLI, the intern from their own badge page,
unsealed or sealed with the institution's own (self-signed, test) seal. Every credential built
here is checked against the Commission's shapes (tests/europass_shapes.py); the CLI's files are
checked explicitly, since the CLI runs in a process of its own."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from issuance.seal import open_seal
from models.ids import credential_uuid_for
from operations.europass import seal_path
from runtime.badge_links import badge_choices_link
from tests.europass_shapes import violations
from tests.test_api_harness import Api, api, detail, finished_internship
from tests.test_cli import cli_for
from tests.test_europass import LEGAL_ID, write_seal

__all__ = ["api"]


async def test_operators_and_the_intern_get_the_european_digital_credential(
    api: Api, tmp_path: Path
) -> None:
    plan = await finished_internship(api)
    iid = plan.internship_id
    school = plan.institution.id
    url = f"/api/internships/{iid}/europass"

    # Without a legal identifier, the institution is named, with the command that sets it.
    refused = await api.http.get(url, headers=api.operator)
    assert refused.status_code == 409, refused.text
    assert f"institution {school!r} has no legal identifier" in detail(refused)
    assert f"internflow institution identify {school} --legal-identifier" in detail(refused)
    listed = await api.http.get("/api/admin/institutions", headers=api.operator)
    (item,) = [i for i in listed.json() if i["id"] == school]
    assert item["legal_identifier"] is None
    assert f"POST /api/admin/institutions/{school}/legal-identifier" in item["europass_needs"]
    choices = urlsplit(badge_choices_link(api.settings, credential_uuid_for(iid))).path
    page = await api.http.get(choices)
    assert page.status_code == 200 and 'id="europass"' not in page.text

    wrong = await api.http.post(
        f"/api/admin/institutions/{school}/legal-identifier",
        json={"legal_identifier": "IT01234567890"},
        headers=api.operator,
    )
    assert wrong.status_code == 422 and "VATIT-01234567890" in detail(wrong), wrong.text
    identified = await api.http.post(
        f"/api/admin/institutions/{school}/legal-identifier",
        json={"legal_identifier": LEGAL_ID},
        headers=api.operator,
    )
    assert identified.status_code == 200, identified.text
    assert identified.json()["legal_identifier"] == LEGAL_ID
    assert identified.json()["europass_needs"] is None
    history = (await api.http.get(f"/api/admin/institutions/{school}", headers=api.operator)).json()
    assert history["name_history"][-1]["event"] == "identified"
    replaced = await api.http.post(
        f"/api/admin/institutions/{school}/legal-identifier",
        json={"legal_identifier": "VATIT-98765432109"},
        headers=api.operator,
    )
    assert replaced.status_code == 422 and "give a reason" in detail(replaced)

    # The uploadable form: the credential, from the records.
    got = await api.http.get(url, headers=api.operator)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/json")
    assert f'filename="europass-{iid}.json"' in got.headers["content-disposition"]
    credential = got.json()["credential"]
    assert violations(credential) == []
    assert credential["credentialSubject"]["fullName"] == {"en": plan.intern.name}
    assert credential["issuer"]["eIDASIdentifier"]["notation"] == LEGAL_ID
    stored = await api.pool.fetchrow(
        "SELECT credential, issued_at FROM credentials WHERE internship_id = $1", iid
    )
    badge = json.loads(stored["credential"])
    assert credential["issued"] == stored["issued_at"].isoformat().replace("+00:00", "Z")
    achievement, activity = credential["credentialSubject"]["hasClaim"]
    subject = badge["credentialSubject"]
    assert activity["temporal"]["startDate"][:16] == subject["activityStartDate"][:16]
    results = [part["provenBy"] for part in achievement["hasPart"]]
    # finished_internship: the mentor rated every outcome excellent, the tutor good.
    assert {r["grade"]["noteLiteral"]["en"] for r in results} == {"Good"}
    levels = {
        p["title"]["en"].rsplit(": ", 1)[1]: p["grade"]["noteLiteral"]["en"]
        for r in results
        for p in r["hasPart"]
    }
    assert levels == {
        "assessment by the company mentor": "Excellent",
        "assessment by the institution tutor": "Good",
    }
    assessed_at = await api.pool.fetchval(
        "SELECT accepted_at FROM submissions WHERE internship_id = $1 AND kind = 'assessment' "
        "AND actor = 'mentor'",
        iid,
    )
    mentor = next(p for p in results[0]["hasPart"] if "mentor" in p["title"]["en"])
    assert mentor["dateIssued"] == assessed_at.isoformat().replace("+00:00", "Z")

    unsigned = await api.http.get(url, params={"form": "unsigned"}, headers=api.operator)
    assert unsigned.headers["content-type"].startswith("application/ld+json")
    assert unsigned.json() == credential

    # A batch: each internship its credential, or why not.
    batch = await api.http.post(
        "/api/internships/europass",
        json={"internship_ids": [iid, "no-such-internship"]},
        headers=api.operator,
    )
    assert batch.status_code == 200, batch.text
    assert [c["internship_id"] for c in batch.json()["credentials"]] == [iid]
    assert batch.json()["credentials"][0]["document"] == {"credential": credential}
    assert "no internship 'no-such-internship'" in batch.json()["refused"]["no-such-internship"]

    # The intern's own page offers it (unsealed: the school has no seal of its own yet).
    page = await api.http.get(choices)
    assert 'id="europass" data-form="unsigned"' in page.text
    mine = await api.http.get(f"{choices}/europass")
    assert mine.status_code == 200 and mine.json() == credential

    # Sealed: refused without a seal, refused with another organisation's, made with its own.
    no_seal = await api.http.get(url, params={"form": "sealed"}, headers=api.operator)
    assert no_seal.status_code == 409 and f"{school}.p12" in detail(no_seal)
    path = seal_path(api.settings, school)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_seal(path, legal_identifier="VATIT-99999999999")
    foreign = await api.http.get(url, params={"form": "sealed"}, headers=api.operator)
    assert foreign.status_code == 409 and "not for 'VATIT-01234567890'" in detail(foreign)
    intern_refused = await api.http.get(f"{choices}/europass")
    assert intern_refused.status_code == 409
    assert "Chieda alla sua scuola" in intern_refused.text  # the intern reads Italian
    assert "VATIT" not in intern_refused.text
    write_seal(path, b"passphrase")
    path.with_name(path.name + ".pass").write_text("passphrase\n")
    sealed = await api.http.get(url, params={"form": "sealed"}, headers=api.operator)
    assert sealed.status_code == 200, sealed.text
    assert open_seal(sealed.json()).credential == credential
    page = await api.http.get(choices)
    assert 'data-form="sealed"' in page.text
    mine = await api.http.get(f"{choices}/europass")
    assert open_seal(mine.json()).credential == credential
    assert "-sealed.json" in mine.headers["content-disposition"]


async def test_the_cli_identifies_institutions_and_writes_the_credentials(
    api: Api, tmp_path: Path
) -> None:
    plan = await finished_internship(api)
    iid = plan.internship_id
    school = plan.institution.id
    cli = cli_for(api.env, api.settings)

    code, out = await cli("badge", "europass", iid, "no-such-internship", "--out", str(tmp_path))
    assert code == 1
    assert f"{iid}: institution {school!r} has no legal identifier" in out
    assert f"internflow institution identify {school}" in out
    code, out = await cli("institutions")
    assert code == 0 and f"note: institution {school!r} has no legal identifier" in out

    code, out = await cli("institution", "identify", school, "--legal-identifier", "VATIT-0")
    assert code == 0, out
    code, out = await cli(
        "institution", "identify", school, "--legal-identifier", LEGAL_ID, "--reason", "typo"
    )
    assert code == 0 and LEGAL_ID in out, out
    code, out = await cli("institutions", school)
    assert f"legal identifier: {LEGAL_ID}" in out and "typo" in out and "note:" not in out
    code, out = await cli("institution", "add", "other", "--name", "X", "--legal-identifier", "x")
    assert code != 0 and "--legal-identifier" in out and "VATIT-01234567890" in out

    code, out = await cli("badge", "europass", iid, "no-such-internship", "--out", str(tmp_path))
    assert code == 1
    assert "refused: no-such-internship: no internship 'no-such-internship'" in out
    written = tmp_path / f"europass-{iid}.json"
    credential = json.loads(written.read_text())["credential"]
    assert violations(credential) == []
    assert credential["credentialSubject"]["fullName"] == {"en": plan.intern.name}
    activity = credential["credentialSubject"]["hasClaim"][1]
    assert activity["title"] == {"en": f"Internship at {plan.company.name}"}

    code, out = await cli("badge", "europass", iid, "--form", "sealed", "--out", str(tmp_path))
    assert code == 1 and "no seal certificate configured" in out
