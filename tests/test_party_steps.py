"""What a party link leads to: the JSON API answers every link it issues (milestone links
included) with where the step stands and what was sent; a reopened page shows what was sent with
its receipt and takes a correction that supersedes it (both kept); a closed step says so before
any form; the validation page shows both assessments against the rule; errors are pages for
browsers and JSON for API clients; signing in to the dashboard leads back to the page asked."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from models.status import Phase
from operations.access import create_api_key
from runtime.links import party_link
from tests.helpers import advance_to, wait_for_phase
from tests.test_api_harness import Api, api, planned
from tests.test_cli import cli_for

__all__ = ["api"]

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _path(api: Api, *args: Any) -> str:
    return party_link(api.settings, *args).removeprefix(api.settings.public_base_url)


def _form_id(html: str) -> str:
    found = re.search(r'name="submission_id" value="([^"]+)"', html)
    assert found is not None, "the page has a form"
    return found[1]


async def _in_progress(api: Api) -> tuple[Any, Any]:
    """An internship approved by everyone and started, an hour before its first milestone."""
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    for party in ("intern", "tutor", "mentor"):
        ok = await api.http.post(
            f"/api/internships/{iid}/approvals",
            json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
            headers=api.party(iid, party, "approve"),
        )
        assert ok.status_code == 200, ok.text
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    handle = api.client.get_workflow_handle(f"internship-{iid}")
    await advance_to(api.env, handle, plan.milestones[0].due - timedelta(hours=1))
    await wait_for_phase(api.client, iid, Phase.IN_PROGRESS)
    await api.settle(iid)
    return plan, handle


async def _task(api: Api, iid: str, *grant: Any) -> dict[str, Any]:
    answer = await api.http.get(f"/api/internships/{iid}/task", headers=api.party(iid, *grant))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_the_json_api_answers_every_link_it_issues(api: Api) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    await api.settle(iid)
    for party in ("intern", "tutor", "mentor"):
        task = await _task(api, iid, party, "approve")
        assert (task["purpose"], task["state"], task["open"], task["sent"]) == (
            "approve",
            "open",
            True,
            [],
        )
        ok = await api.http.post(
            f"/api/internships/{iid}/approvals",
            json={"submission_id": f"a-{party}", "party": party, "plan_version": 1},
            headers=api.party(iid, party, "approve"),
        )
        assert ok.status_code == 200, ok.text
    await wait_for_phase(api.client, iid, Phase.AWAITING_START)
    await api.settle(iid)
    approved = await _task(api, iid, "intern", "approve")
    assert approved["state"] == "closed" and approved["sent"][0]["kind"] == "approval"

    handle = api.client.get_workflow_handle(f"internship-{iid}")
    milestone = next(m for m in plan.milestones if set(m.submitted_by) == {"intern", "mentor"})
    await advance_to(api.env, handle, milestone.due - timedelta(hours=1))
    await wait_for_phase(api.client, iid, Phase.IN_PROGRESS)
    await api.settle(iid)
    # Milestone links: the task of a report or feedback link names its milestone and due date
    # (it was refused with 403 before), and the same token submits.
    for party, purpose, url, body in (
        (
            "intern",
            "report",
            "reports",
            {"submission_id": "r-1", "milestone_id": milestone.id, "summary": "Did it."},
        ),
        (
            "mentor",
            "feedback",
            "feedback",
            {"submission_id": "f-1", "milestone_id": milestone.id, "attendance_hours": 30},
        ),
    ):
        task = await _task(api, iid, party, purpose, milestone.id)
        assert (task["milestone_id"], task["state"], task["open"]) == (milestone.id, "open", True)
        assert datetime.fromisoformat(task["due"]) == milestone.due
        sent = await api.http.post(
            f"/api/internships/{iid}/{url}",
            json=body,
            headers=api.party(iid, party, purpose, milestone.id),
        )
        assert sent.status_code == 200, sent.text
    # Feedback at any time: a link without a milestone.
    general = await _task(api, iid, "mentor", "feedback")
    assert general["milestone_id"] is None and general["state"] == "open"
    sent = await api.http.post(
        f"/api/internships/{iid}/feedback",
        json={"submission_id": "f-any", "attendance_hours": 12},
        headers=api.party(iid, "mentor", "feedback"),
    )
    assert sent.status_code == 200, sent.text
    await api.settle(iid)
    report = await _task(api, iid, "intern", "report", milestone.id)
    assert [s["submission_id"] for s in report["sent"]] == ["r-1"]
    assert report["sent"][0]["values"]["summary"] == "Did it."
    assessing = await _task(api, iid, "mentor", "assess")
    assert assessing["state"] == "not_yet" and "ends" in assessing["message"]

    await advance_to(api.env, handle, plan.period.end + timedelta(hours=1))
    await wait_for_phase(api.client, iid, Phase.EVALUATION)
    await api.settle(iid)
    assert (await _task(api, iid, "tutor", "validate"))["state"] == "waiting"
    for assessor in ("mentor", "tutor"):
        assert (await _task(api, iid, assessor, "assess"))["state"] == "open"
        sent = await api.http.post(
            f"/api/internships/{iid}/assessments",
            json={
                "submission_id": f"s-{assessor}",
                "assessor": assessor,
                "levels": {o.id: "good" for o in plan.learning_outcomes},
            },
            headers=api.party(iid, assessor, "assess"),
        )
        assert sent.status_code == 200, sent.text
    await api.settle(iid)
    assert (await _task(api, iid, "mentor", "assess"))["state"] == "done"
    validating = await _task(api, iid, "tutor", "validate")
    assert validating["state"] == "open"
    validated = await api.http.post(
        f"/api/internships/{iid}/validation",
        json={"submission_id": "v-1", "decision": "pass"},
        headers=api.party(iid, "tutor", "validate"),
    )
    assert validated.status_code == 200, validated.text
    assert (await handle.result())["phase"] == Phase.COMPLETED.value
    await api.settle(iid)
    for grant in (
        ("tutor", "validate"),
        ("mentor", "feedback", milestone.id),
        ("intern", "report", milestone.id),
    ):
        closed = await _task(api, iid, *grant)
        assert closed["state"] in ("closed", "done") and closed["open"] is False, grant
        assert closed["sent"], grant


async def test_a_reopened_link_shows_what_was_sent_and_takes_a_correction(api: Api) -> None:
    plan, handle = await _in_progress(api)
    iid = plan.internship_id
    milestone = plan.milestones[0]
    assert "mentor" in milestone.submitted_by and "intern" in milestone.submitted_by
    path = _path(api, iid, "mentor", "feedback", milestone.id)
    first_page = (await api.http.get(path)).text
    assert 'id="sent"' not in first_page and plan.intern.name in first_page
    levels = plan.rubric.levels
    outcome = plan.learning_outcomes[0]

    first = await api.http.post(
        path,
        data={
            "submission_id": _form_id(first_page),
            f"level.{outcome.id}": levels[1].id,
            "attendance_hours": "30",
            "comments": "Promising start.",
        },
    )
    assert first.status_code == 200, first.text
    # The receipt in plain words, echoing what was received; no internal names.
    assert "We received the company's feedback" in first.text  # a message, not escaped data
    assert f"for “{milestone.title}”" in first.text
    assert levels[1].name in first.text and ">30<" in first.text
    assert "Promising start." in first.text and "company_feedback" not in first.text
    await api.settle(iid)

    reopened = (await api.http.get(path)).text
    assert 'id="sent"' in reopened and 'data-state="open"' in reopened
    assert reopened.index('id="sent"') < reopened.index("<form")
    assert f'<option value="{levels[1].id}" selected>' in reopened, "the form starts from it"
    assert 'value="30"' in reopened and "Send the correction" in reopened
    assert _form_id(reopened) != _form_id(first_page), "a correction is a new submission"
    corrected = await api.http.post(
        path,
        data={
            "submission_id": _form_id(reopened),
            f"level.{outcome.id}": levels[-1].id,
            "attendance_hours": "32",
        },
    )
    assert corrected.status_code == 200 and levels[-1].name in corrected.text
    await api.settle(iid)
    rows = await api.pool.fetch(
        "SELECT payload FROM submissions WHERE internship_id = $1 AND kind = 'company_feedback' "
        "ORDER BY accepted_at",
        iid,
    )
    assert len(rows) == 2, "both are kept"
    latest = (await api.http.get(path)).text
    sent = latest[latest.index('id="sent"') : latest.index("<form")]
    assert "this is the one that counts" in sent
    assert sent.index(levels[-1].name) < sent.index("Earlier versions")
    assert levels[1].name in sent[sent.index("Earlier versions") :]

    # The report form offers to show the report in the badge.
    report_path = _path(api, iid, "intern", "report", milestone.id)
    report_page = (await api.http.get(report_path)).text
    assert 'name="share_in_badge"' in report_page
    shared = await api.http.post(
        report_path,
        data={
            "submission_id": _form_id(report_page),
            "summary": "Set up the project.",
            "share_in_badge": "yes",
        },
    )
    assert shared.status_code == 200 and "Mostrata nel badge</dt><dd>sì" in shared.text
    await api.settle(iid)
    payload = await api.pool.fetchval(
        "SELECT payload->>'share_in_badge' FROM submissions "
        "WHERE internship_id = $1 AND kind = 'milestone_report'",
        iid,
    )
    assert payload == "true"
    again = (await api.http.get(report_path)).text
    assert 'name="share_in_badge" value="yes" checked' in again
    assert "resta nel suo badge" in again, "what sharing earlier means is said"

    # The same choice on the command line (a report handed in on paper): `--share-in-badge`
    # means what the page's box means; without it the report stays out of the badge.
    cli = cli_for(api.env, api.settings)
    for flags, shared_flag in (([], "false"), (["--share-in-badge"], "true")):
        summary = f"Set up the project ({shared_flag})."
        code, out = await cli(
            "report", iid, "--milestone", milestone.id, "--summary", summary, *flags
        )
        assert code == 0, out
        await api.settle(iid)
        latest_report = await api.pool.fetchrow(
            "SELECT payload->>'summary' AS summary, payload->>'share_in_badge' AS shared "
            "FROM submissions WHERE internship_id = $1 AND kind = 'milestone_report' "
            "ORDER BY accepted_at DESC LIMIT 1",
            iid,
        )
        assert latest_report is not None
        assert (latest_report["summary"], latest_report["shared"]) == (summary, shared_flag)

    # Evaluation: an assessment is shown once sent, and cannot be changed.
    await advance_to(api.env, handle, plan.period.end + timedelta(hours=1))
    await wait_for_phase(api.client, iid, Phase.EVALUATION)
    await api.settle(iid)
    assess_path = _path(api, iid, "mentor", "assess")
    assess_page = (await api.http.get(assess_path)).text
    mentor_levels = {f"level.{o.id}": levels[-1].id for o in plan.learning_outcomes}
    assessed = await api.http.post(
        assess_path,
        data={"submission_id": _form_id(assess_page), **mentor_levels, "comment": "Strong."},
    )
    assert assessed.status_code == 200 and "can no longer be changed" in assessed.text
    await api.settle(iid)
    done = (await api.http.get(assess_path)).text
    assert 'data-state="done"' in done and "<form" not in done and "Strong." in done

    # The validation page: both assessments, achieved against required, what pass means.
    validate_path = _path(api, iid, "tutor", "validate")
    waiting = (await api.http.get(validate_path)).text
    assert 'data-state="waiting"' in waiting and "<form" not in waiting
    short = next(o for o in plan.learning_outcomes if o.required_level != levels[0].id)
    tutor = await api.http.post(
        f"/api/internships/{iid}/assessments",
        json={
            "submission_id": "s-tutor",
            "assessor": "tutor",
            "levels": {
                o.id: (levels[0].id if o is short else levels[-1].id)
                for o in plan.learning_outcomes
            },
            "comment": "Needs more practice.",
        },
        headers=api.party(iid, "tutor", "assess"),
    )
    assert tutor.status_code == 200, tutor.text
    await api.settle(iid)
    page = (await api.http.get(validate_path)).text
    assert 'id="assessments"' in page and page.index('id="assessments"') < page.index("<form")
    # (The tutor reads Italian.)
    shortfall = page[page.index(f'data-outcome="{short.id}"') :]
    shortfall = shortfall[: shortfall.index("data-outcome=", 20)]
    assert 'data-reaches="no"' in shortfall and "non lo raggiunge" in shortfall
    assert shortfall.count(levels[0].name) == 2, "the tutor's level, and so the achieved one"
    assert "il più basso tra quelli del tutor aziendale" in page and "Needs more practice." in page
    assert 'data-pass="no"' in page and 'value="pass" required disabled' in page
    refused = await api.http.post(
        validate_path, data={"submission_id": _form_id(page), "decision": "pass"}
    )
    assert refused.status_code == 422 and "cannot validate as pass" in refused.text
    assert 'data-pass="no"' in refused.text, "the refusal comes with the assessments again"
    failed = await api.http.post(
        validate_path,
        data={"submission_id": _form_id(page), "decision": "fail", "reason": "Below level."},
    )
    assert failed.status_code == 200 and "Below level." in failed.text
    assert (await handle.result())["phase"] == Phase.NOT_CERTIFIED.value
    await api.settle(iid)

    # A link to a closed step says so before any form, and shows what was sent.
    closed = (await api.http.get(path)).text
    assert 'data-state="closed"' in closed and "<form" not in closed
    assert "ended without a badge" in closed and levels[-1].name in closed
    assert closed.index('data-state="closed"') < closed.index('id="sent"')


async def test_errors_are_pages_for_browsers_and_json_for_api_clients(api: Api) -> None:
    plan, _ = await _in_progress(api)
    iid = plan.internship_id
    path = _path(api, iid, "mentor", "feedback", plan.milestones[0].id)

    missing = await api.http.get("/p/", headers=BROWSER)
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    assert (await api.http.get("/p/")).json()["detail"] == "Not Found"

    huge = {"attendance_hours": "1", "comments": "x" * (2 * 1024 * 1024)}
    too_large = await api.http.post(path, data=huge, headers=BROWSER)
    assert too_large.status_code == 413 and "text/html" in too_large.headers["content-type"]
    assert "at most 4,000 characters" in too_large.text
    as_api = await api.http.post(path, data=huge)
    assert as_api.status_code == 413 and "too large" in as_api.json()["detail"]
    assert (await api.recorded(iid))[1] == 3, "nothing more recorded than the approvals"

    invalid = await api.http.get("/verify/not-a-uuid", headers=BROWSER)
    assert invalid.status_code == 422 and "text/html" in invalid.headers["content-type"]
    api_route = await api.http.get(f"/api/internships/{iid}/task", headers=BROWSER)
    assert api_route.status_code == 401 and api_route.json()["detail"]

    limiter = api.http._transport.app.state.limiter  # type: ignore[attr-defined]
    limiter.capacity, limiter.rate = 2.0, 0.01
    limiter._buckets.clear()
    for _ in range(2):
        await api.http.get(path, headers=BROWSER)
    limited = await api.http.get(path, headers={**BROWSER, "Accept-Language": "it-IT"})
    assert limited.status_code == 429 and "text/html" in limited.headers["content-type"]
    assert "Troppe richieste" in limited.text and int(limited.headers["retry-after"]) >= 1
    # The wait in the language's form for its count: "1 Sekunde", "5 Sekunden".
    german = await api.http.get(path, headers={**BROWSER, "Accept-Language": "de"})
    wait = int(german.headers["retry-after"])
    unit = "Sekunde" if wait == 1 else "Sekunden"
    assert f"Warten Sie {wait} {unit} und" in " ".join(german.text.split()), german.text
    as_client = await api.http.get(path)
    assert as_client.status_code == 429 and "too many requests" in as_client.json()["detail"]
    limiter.capacity, limiter.rate = 120.0, 2.0
    limiter._buckets.clear()


async def test_signing_in_leads_back_to_the_page_asked_for(api: Api) -> None:
    plan = planned()
    assert (await api.start(plan)).status_code == 201
    await api.settle(plan.internship_id)
    _, key = await create_api_key(api.pool, "dashboard", "admin")
    page = f"/admin/internships/{plan.internship_id}"
    asked = await api.http.get(page)
    assert asked.status_code == 303
    login = asked.headers["location"]
    assert login == f"/admin/login?next=%2Fadmin%2Finternships%2F{plan.internship_id}"
    form = await api.http.get(login)
    assert f'name="next" value="{page}"' in form.text
    signed_in = await api.http.post("/admin/login", data={"key": key, "next": page})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == page
    shown = await api.http.get(page)
    assert shown.status_code == 200 and plan.internship_id in shown.text
    for elsewhere in ("https://evil.example/", "//evil.example/admin", "/\\evil", "/p/x"):
        away = await api.http.post("/admin/login", data={"key": key, "next": elsewhere})
        assert away.headers["location"] == "/admin", elsewhere
    api.http.cookies.clear()
