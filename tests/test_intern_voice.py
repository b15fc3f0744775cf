"""The intern's own voice on real parts (Temporal with time skipping, PostgreSQL, SMTP sink): a
self-assessment at a milestone the plan names and at the end, on the plan's rubric, outside the
pass rule and in the badge only when the intern agrees (labelled as theirs, the credential still
valid against the official schema); the evaluation of the placement at the end. Every refusal
says why and records nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from badges.bake import unbake_png
from badges.verify import local_issuer_keys, verify_credential
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import PlacementEvaluation, SelfAssessment, Validation
from operations import internships as ops
from operations.internships import OperationRejected
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    audit_rows,
    clock_held,
    load_outbox,
    report_and_feedback,
    running_worker,
    sample_plan,
    sent,
    wait_for_phase,
)


def self_assessing_plan(agreement_deadline: datetime) -> InternshipPlan:
    """The sample plan whose mid-term milestone asks the intern for a self-assessment."""
    data = sample_plan(agreement_deadline).model_dump(mode="json")
    for milestone in data["milestones"]:
        milestone["self_assessment"] = milestone["id"] == "mid-term"
    return InternshipPlan.model_validate(data)


def _own(submission_id: str, levels: dict[str, str], **values: object) -> SelfAssessment:
    return SelfAssessment.model_validate(
        {"submission_id": submission_id, "levels": levels, **values}
    )


async def test_self_assessments_beside_the_assessments_and_in_the_badge_by_consent(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = self_assessing_plan(datetime.now().astimezone() + timedelta(days=30))
    iid = plan.internship_id
    m = {ms.id: ms for ms in plan.milestones}
    every = {o.id: "excellent" for o in plan.learning_outcomes}
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, iid, Phase.AWAITING_START)
        # Not before the internship runs; not at a milestone that does not ask for one.
        with pytest.raises(OperationRejected, match="only while the internship is"):
            await ops.submit_self_assessment(
                client, iid, _own("own-early", every, milestone_id="mid-term")
            )

        await advance_to(env, handle, m["check-in"].due - timedelta(hours=1))
        await report_and_feedback(client, plan, "check-in")
        with pytest.raises(OperationRejected, match="does not ask for a self-assessment"):
            await ops.submit_self_assessment(
                client, iid, _own("own-check-in", every, milestone_id="check-in")
            )
        await advance_to(env, handle, m["mid-term"].due - timedelta(hours=1))
        await report_and_feedback(client, plan, "mid-term")
        with pytest.raises(OperationRejected, match="only the final self-assessment"):
            await ops.submit_self_assessment(
                client,
                iid,
                _own("own-shared", every, milestone_id="mid-term", share_in_badge=True),
            )
        with pytest.raises(OperationRejected, match="every learning outcome"):
            await ops.submit_self_assessment(
                client, iid, _own("own-part", {"lo-web": "good"}, milestone_id="mid-term")
            )
        with pytest.raises(OperationRejected, match="only while the internship is evaluation"):
            await ops.submit_self_assessment(client, iid, _own("own-final-early", every))
        mid = _own(
            "own-mid",
            {"lo-web": "basic", "lo-team": "good"},
            milestone_id="mid-term",
            comment="Still slow with CSS grids.\nBetter at stand-ups.",
        )
        first = await ops.submit_self_assessment(client, iid, mid)
        assert first.kind == "self_assessment"
        assert (await ops.submit_self_assessment(client, iid, mid)) == first, "a retry"
        with pytest.raises(OperationRejected, match="already sent the self-assessment"):
            await ops.submit_self_assessment(
                client, iid, _own("own-mid-2", every, milestone_id="mid-term")
            )
        with pytest.raises(OperationRejected, match="evaluation of the placement is accepted"):
            await ops.evaluate_placement(
                client,
                iid,
                PlacementEvaluation(
                    submission_id="place-early",
                    tasks_matched=4,
                    mentor_support=4,
                    would_recommend=True,
                ),
            )

        await advance_to(env, handle, m["final-report"].due - timedelta(hours=1))
        await report_and_feedback(client, plan, "final-report")
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        assert (await ops.status(client, iid)).phase == Phase.EVALUATION
        # The intern rates themself above what the assessors confirm: the rule ignores it.
        await ops.submit_self_assessment(
            client,
            iid,
            _own("own-final", every, comment="I grew a lot.", share_in_badge=True),
        )
        await ops.evaluate_placement(
            client,
            iid,
            PlacementEvaluation(
                submission_id="place-1",
                tasks_matched=4,
                mentor_support=5,
                would_recommend=True,
                comments="Good team; the tasks were\nmostly what we agreed.",
            ),
        )
        with pytest.raises(OperationRejected, match="already evaluated the placement"):
            await ops.evaluate_placement(
                client,
                iid,
                PlacementEvaluation(
                    submission_id="place-2",
                    tasks_matched=1,
                    mentor_support=1,
                    would_recommend=False,
                ),
            )
        await assess(client, plan, mentor="good", tutor="basic")
        with pytest.raises(OperationRejected, match="cannot validate as pass"):
            await ops.validate(client, iid, Validation(submission_id="v-pass", decision="pass"))
        await ops.validate(
            client, iid, Validation(submission_id="v-fail", decision="fail", reason="lo-web")
        )
        outcome = await handle.result()
    assert outcome.phase == Phase.NOT_CERTIFIED, "the self-assessment never lifts the result"

    rows = await audit_rows(pool, iid)
    own = [json.loads(r["detail"]) for r in rows if r["kind"] == "self_assessment"]
    assert [(d.get("milestone_id"), d["share_in_badge"]) for d in own] == [
        ("mid-term", False),
        (None, True),
    ]
    assert own[0]["comment"] == "Still slow with CSS grids.\nBetter at stand-ups."
    assert [r["actor"] for r in rows if r["kind"] == "self_assessment"] == ["intern", "intern"]
    stored = await pool.fetch(
        "SELECT kind, milestone_id, payload FROM submissions WHERE internship_id = $1 "
        "AND kind IN ('self_assessment', 'placement_evaluation') ORDER BY accepted_at",
        iid,
    )
    assert [(s["kind"], s["milestone_id"]) for s in stored] == [
        ("self_assessment", "mid-term"),
        ("self_assessment", None),
        ("placement_evaluation", None),
    ]
    evaluation = json.loads(stored[2]["payload"])
    assert evaluation == {
        "tasks_matched": 4,
        "mentor_support": 5,
        "would_recommend": True,
        "comments": "Good team; the tasks were\nmostly what we agreed.",
    }
    mails = sent(load_outbox(settings), iid)
    assert mails.count(("final_review", plan.intern.email)) == 1
    assert not [k for k in mails if k[0] == "final_review" and k[1] != plan.intern.email]


async def test_a_shared_self_assessment_is_a_labelled_result_of_its_own_in_the_badge(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    """The recorded history `self-assessed` plays this: the intern self-assesses at the
    mid-term and at the end (agreeing to show it), evaluates the placement; the badge carries
    the assessed levels and, beside each, the intern's own, labelled."""
    env, client = time_skipping_env, time_skipping_env.client
    plan = self_assessing_plan(datetime.now().astimezone() + timedelta(days=30))
    iid = plan.internship_id
    m = {ms.id: ms for ms in plan.milestones}
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await advance_to(env, handle, m["mid-term"].due - timedelta(hours=1))
        await report_and_feedback(client, plan, "check-in")
        await report_and_feedback(client, plan, "mid-term")
        await ops.submit_self_assessment(
            client,
            iid,
            _own("own-mid", {"lo-web": "basic", "lo-team": "basic"}, milestone_id="mid-term"),
        )
        await advance_to(env, handle, m["final-report"].due - timedelta(hours=1))
        await report_and_feedback(client, plan, "final-report")
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await ops.submit_self_assessment(
            client,
            iid,
            _own("own-final", {"lo-web": "excellent", "lo-team": "good"}, share_in_badge=True),
        )
        await ops.evaluate_placement(
            client,
            iid,
            PlacementEvaluation(
                submission_id="place-1", tasks_matched=3, mentor_support=4, would_recommend=True
            ),
        )
        await assess(client, plan, mentor="excellent", tutor="good")
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED

    badge_mail = next(
        msg
        for msg in load_outbox(settings)
        if msg["X-Internflow-Internship"] == iid and msg["X-Internflow-Kind"] == "badge"
    )
    png = next(p for p in badge_mail.iter_attachments() if p.get_content_type() == "image/png")
    document = unbake_png(png.get_content())
    report = verify_credential(
        document,
        local_issuer_keys(settings.keys_path),
        now=plan.period.end + plan.assessment_window,
    )
    assert report.verified, report.errors
    credential = json.loads(document) if isinstance(document, str) else document
    achievement = credential["credentialSubject"]["achievement"]
    names = {d["id"]: d["name"] for d in achievement["resultDescription"]}
    results = {
        r["resultDescription"]: r["achievedLevel"]
        for r in credential["credentialSubject"]["result"]
    }
    assessed = {k: v for k, v in results.items() if not k.endswith(":self-assessment")}
    own = {k: v for k, v in results.items() if k.endswith(":self-assessment")}
    # The assessed levels: the lower of mentor's and tutor's, as without a self-assessment.
    assert sorted(v.rsplit(":", 1)[1] for v in assessed.values()) == ["good", "good"]
    assert sorted(v.rsplit(":", 1)[1] for v in own.values()) == ["excellent", "good"]
    for description_id in own:
        assert "self-assessment" in names[description_id]
        assert "not the assessed level" in names[description_id]
        assert description_id.removesuffix(":self-assessment") in assessed
