"""The people of an internship are named where the school and the parties work: the admin
dashboard's internship page (where the institution's e-mails lead) and every party page
(`/p/<token>`, each purpose, and the receipt) name the intern, the company, the tutor and the
mentor, escaped like everything a page shows."""

from __future__ import annotations

from markupsafe import escape

from models.kinds import PURPOSES
from models.plan import InternshipPlan
from runtime.links import WHO_MAY
from tests.test_api_harness import Api, api, planned

__all__ = ["api"]

#: Names with markup and ampersands in them: each must reach the page as text.
NAMES = {
    "intern": "Giulia <b>Esposito</b> & Co",
    "company": "Rossi & Figli <b>S.r.l.</b>",
    "tutor": 'Marco <i>Bianchi</i> & "Partner"',
    "mentor": "Laura <script>Verdi</script> & O'Brien",
}


def _with_names(plan: InternshipPlan) -> InternshipPlan:
    data = plan.model_dump(mode="json")
    for role, name in NAMES.items():
        data[role]["name"] = name
    return InternshipPlan.model_validate(data)


def _names_all_escaped(html: str, where: str) -> None:
    for role, name in NAMES.items():
        assert str(escape(name)) in html, f"{where}: the {role}'s name is not shown"
        assert name not in html, f"{where}: the {role}'s name is not escaped"


async def test_the_admin_page_and_every_party_page_name_the_people(api: Api) -> None:
    plan = _with_names(planned())
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)

    # Every purpose's page, opened from a link of a party who may hold it.
    for purpose in PURPOSES:
        party = next(p for p in ("intern", "mentor", "tutor") if p in WHO_MAY[purpose])
        milestone = next(
            (m.id for m in plan.milestones if party in m.submitted_by), plan.milestones[0].id
        )
        token = api.token(iid, party, purpose, milestone if purpose == "report" else None)
        page = await api.http.get(f"/p/{token}")
        assert page.status_code == 200, (purpose, page.text)
        _names_all_escaped(page.text, f"the {purpose} page")

    # The receipt of an approval sent from the intern's page.
    token = api.token(iid, "intern", "approve")
    receipt = await api.http.post(
        f"/p/{token}",
        data={
            "action": "approve",
            "submission_id": "web-approval-intern-v1",
            "plan_version": "1",
        },
    )
    assert receipt.status_code == 200 and 'id="receipt"' in receipt.text, receipt.text
    _names_all_escaped(receipt.text, "the receipt")
    await api.settle(iid)

    # The institution's page of the internship: each role named, and each approval by name.
    key = api.admin["Authorization"].removeprefix("Bearer ")
    assert (await api.http.post("/admin/login", data={"key": key})).status_code == 303
    admin = await api.http.get(f"/admin/internships/{iid}")
    api.http.cookies.clear()
    assert admin.status_code == 200, admin.text
    _names_all_escaped(admin.text, "the admin page")
    assert f'<dd id="intern-name"><strong>{escape(NAMES["intern"])}</strong></dd>' in admin.text
    assert f'<dd id="tutor-name">{escape(NAMES["tutor"])}</dd>' in admin.text
    assert f'<dd id="mentor-name">{escape(NAMES["mentor"])}</dd>' in admin.text
    assert f"Intern {escape(NAMES['intern'])} v1 (" in admin.text, "the approval is not named"
