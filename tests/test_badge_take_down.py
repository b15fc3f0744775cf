"""A badge its earner took down is, to the public, exactly a badge never issued here: its page, its
verification page, its credential (both addresses) and its downloads answer as an unknown id does,
word for word, while the status list, the issuer-kept status and the issuer's keys stay public
for whoever holds the credential. A revoked badge's verification page says when, never why."""

from __future__ import annotations

import html
import re
import uuid as uuids
from email.message import EmailMessage

import pytest

from i18n import moment
from tests.helpers import eventually, load_outbox
from tests.test_api_harness import Api, api, finished_internship

__all__ = ["api"]

CHOICES = re.compile(r"https?://[^\s\"'<>]+/b/[A-Za-z0-9_.=-]+")
#: Every public address of a badge, by its uuid.
PUBLIC = (
    "/badges/{}",
    "/verify/{}",
    "/credentials/{}.json",
    "/badges/{}/credential",
    "/badges/{}/badge.png",
    "/badges/{}/badge.svg",
)
REASON = "the report was copied from <b>someone else</b>"


async def _interns_link(api: Api, internship_id: str, to: str) -> str:
    """The intern's own link from their badge e-mail."""
    found: list[EmailMessage] = []

    async def arrived() -> bool:
        found[:] = [
            m
            for m in load_outbox(api.settings)
            if m["X-Internflow-Internship"] == internship_id
            and m["X-Internflow-Kind"] == "badge"
            and m["To"].addresses[0].addr_spec == to
        ]
        return bool(found)

    await eventually(arrived, "the badge e-mail arrived", within=30)
    part = found[0].get_body(preferencelist=("plain",))
    assert part is not None
    [link] = CHOICES.findall(str(part.get_content()))
    return link


@pytest.mark.timeout(180)
async def test_a_badge_taken_down_is_an_unknown_badge_and_a_revoked_one_keeps_its_reason(
    api: Api,
) -> None:
    plan = await finished_internship(api)
    credential_id = await api.pool.fetchval(
        "SELECT credential_id FROM credentials WHERE internship_id = $1", plan.internship_id
    )
    uuid = credential_id.removeprefix("urn:uuid:")
    ghost = str(uuids.uuid4())
    for path in PUBLIC:
        assert (await api.http.get(path.format(uuid))).status_code == 200, path
    credential = (await api.http.get(f"/credentials/{uuid}.json")).json()
    kept_public = (
        credential["credentialStatus"]["statusListCredential"],
        credential["proof"][0]["verificationMethod"],
        credential["issuer"]["id"],
        f"/credentials/{uuid}/status",
    )

    # Revoked: the verification page says when, not why (the audit trail and the intern's
    # e-mail keep the reason).
    revoked = await api.http.post(
        f"/api/admin/credentials/{uuid}/revoke", json={"reason": REASON}, headers=api.admin
    )
    assert revoked.status_code == 200, revoked.text
    revoked_at = await api.pool.fetchval(
        "SELECT revoked_at FROM credentials WHERE credential_id = $1", credential_id
    )
    page = await api.http.get(f"/verify/{uuid}")
    assert page.status_code == 200 and 'data-verdict="revoked"' in page.text
    when = moment(revoked_at, plan.period.time_zone, "en")
    assert f'<p id="revoked-on">Revoked on {html.escape(when, quote=False)}</p>' in page.text
    for shown in (REASON, html.escape(REASON), "copied from"):
        assert shown not in page.text, "the reason is on the public page"

    # The intern takes the badge down from their own link, as the e-mail gives it.
    link = await _interns_link(api, plan.internship_id, plan.intern.email)
    path = "/" + link.split("/", 3)[3]
    taken = await api.http.post(path, data={"choice": "take_down"})
    assert taken.status_code == 303, taken.text
    choices = await api.http.get(taken.headers["location"])
    assert 'data-published="no"' in choices.text and 'id="taken-down-note"' in choices.text

    for address in PUBLIC:
        down = await api.http.get(address.format(uuid))
        unknown = await api.http.get(address.format(ghost))
        assert down.status_code == unknown.status_code == 404, address
        assert down.headers["content-type"] == unknown.headers["content-type"], address
        # The same words (an answer that names the id it was asked for names its own).
        assert down.text.replace(uuid, "<id>") == unknown.text.replace(ghost, "<id>"), address
        assert plan.institution.name not in down.text, address
    # What a holder of the credential needs to check it stays public.
    for address in kept_public:
        assert (await api.http.get(address)).status_code == 200, address
    status = (await api.http.get(f"/credentials/{uuid}/status")).json()
    assert status["status"] == "revoked" and "reason" not in status

    # Put back up, every address answers again.
    assert (await api.http.post(path, data={"choice": "publish"})).status_code == 303
    for address in PUBLIC:
        assert (await api.http.get(address.format(uuid))).status_code == 200, address
