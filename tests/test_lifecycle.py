"""Whole internships on real parts: Temporal dev server (time skipping), PostgreSQL, SMTP sink."""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from badges.bake import unbake_png
from badges.vcjwt import decode_jwt
from badges.verify import local_issuer_keys, local_public_keys, verify_badge, verify_credential
from models.ids import message_id_for
from models.status import Phase
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    Validation,
    Withdrawal,
)
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


async def test_whole_internship_ends_with_one_verified_badge(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    m = {ms.id: ms for ms in plan.milestones}
    policy = plan.reminder_policy
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, plan.internship_id, Phase.AWAITING_START)

        # First milestone: asked five days before it is due, answered on time.
        await advance_to(
            env, handle, m["check-in"].due - policy.request_before + timedelta(hours=1)
        )
        assert (await ops.status(client, plan.internship_id)).phase == Phase.IN_PROGRESS
        assert await report_and_feedback(client, plan, "check-in") == [False, False]

        # Mid-term: nobody answers until after the escalation, so the whole ladder runs.
        await advance_to(
            env, handle, m["mid-term"].due + policy.escalate_after + timedelta(hours=1)
        )
        status = await ops.status(client, plan.internship_id)
        assert [s.outstanding for s in status.milestones if s.milestone_id == "mid-term"] == [
            ("intern", "mentor")
        ]
        assert await report_and_feedback(client, plan, "mid-term") == [True, True]

        await advance_to(env, handle, m["final-report"].due - timedelta(hours=1))
        assert await report_and_feedback(client, plan, "final-report") == [False]

        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        assert (await ops.status(client, plan.internship_id)).phase == Phase.EVALUATION
        await assess(client, plan, mentor="excellent", tutor="good")
        await ops.validate(
            client, plan.internship_id, Validation(submission_id="v-1", decision="pass")
        )
        outcome = await handle.result()

    assert outcome.phase == Phase.COMPLETED
    assert outcome.credential_id is not None

    rows = await audit_rows(pool, plan.internship_id)
    phases = [r["phase"] for r in rows if r["kind"] == "phase"]
    assert phases == [
        "planning",
        "awaiting_start",
        "in_progress",
        "evaluation",
        "certification",
        "completed",
    ]
    kinds = [r["kind"] for r in rows]
    assert kinds.count("approval") == 3
    assert kinds.count("milestone_report") == 3
    assert kinds.count("company_feedback") == 2
    assert kinds.count("assessment") == 2
    assert kinds.count("validation") == 1
    assert "milestone_missed" not in kinds
    read_model = await pool.fetchrow(
        "SELECT phase FROM internships WHERE internship_id = $1", plan.internship_id
    )
    assert read_model is not None and read_model["phase"] == "completed"

    outbox = load_outbox(settings)
    mails = sent(outbox, plan.internship_id)
    intern, mentor, tutor = plan.intern.email, plan.mentor.email, plan.tutor.email
    assert sorted(mails[:3]) == sorted([("approval_request", a) for a in (intern, tutor, mentor)])
    assert mails.count(("milestone_request", intern)) == 3
    assert mails.count(("milestone_request", mentor)) == 2
    # Only the unanswered mid-term milestone was reminded and escalated, once each.
    # (E-mails of one step go out side by side, in either order.)
    ladder = [k for k in mails if k[0] in ("reminder", "escalation")]
    assert sorted(ladder[:2]) == sorted([("reminder", intern), ("reminder", mentor)])
    assert ladder[2:] == [("escalation", tutor)]
    assert mails.count(("assessment_request", mentor)) == 1
    assert mails.count(("assessment_request", tutor)) == 1
    assert mails.count(("validation_request", tutor)) == 1
    assert mails.count(("badge", intern)) == 1

    badge_mail = next(msg for msg in outbox if msg["X-Internflow-Kind"] == "badge")
    assert badge_mail["Message-ID"] == message_id_for(f"{handle.id}/badge")
    png = next(p for p in badge_mail.iter_attachments() if p.get_content_type() == "image/png")
    # The badge was issued in the workflow's virtual time, weeks after the wall clock's today.
    report = verify_credential(
        unbake_png(png.get_content()),
        local_issuer_keys(settings.keys_path),
        now=plan.period.end + plan.assessment_window,
    )
    assert report.verified, report.errors
    assert report.credential_id == outcome.credential_id
    stored = await pool.fetchrow(
        "SELECT emailed_at FROM credentials WHERE internship_id = $1", plan.internship_id
    )
    assert stored is not None and stored["emailed_at"] is not None


async def test_bad_submissions_are_refused_and_nothing_is_recorded(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=10))
    iid = plan.internship_id
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        first = await ops.approve(
            client, iid, Approval(submission_id="a-1", party="intern", plan_version=1)
        )
        again = await ops.approve(
            client, iid, Approval(submission_id="a-1", party="intern", plan_version=1)
        )
        assert again == first  # a retry is answered with the first receipt

        with pytest.raises(OperationRejected, match="already approved"):
            await ops.approve(
                client, iid, Approval(submission_id="a-2", party="intern", plan_version=1)
            )
        with pytest.raises(OperationRejected, match="current version is 1"):
            await ops.approve(
                client, iid, Approval(submission_id="a-3", party="tutor", plan_version=2)
            )
        with pytest.raises(OperationRejected, match="accepted only while"):
            await ops.submit_assessment(
                client,
                iid,
                Assessment(
                    submission_id="s-early",
                    assessor="tutor",
                    levels={o.id: "good" for o in plan.learning_outcomes},
                ),
            )
        for party in ("tutor", "mentor"):
            await ops.approve(
                client, iid, Approval(submission_id=f"a-{party}", party=party, plan_version=1)
            )
        await wait_for_phase(client, iid, Phase.AWAITING_START)
        with pytest.raises(OperationRejected, match="not a level of this plan's rubric"):
            await ops.submit_feedback(
                client,
                iid,
                CompanyFeedback(
                    submission_id="f-bad", ratings={"lo-web": "stellar"}, attendance_hours=1
                ),
            )
        # A signal cannot be refused, so an invalid one is dropped; a valid one counts once.
        valid = CompanyFeedback(submission_id="f-sig", attendance_hours=8, comments="Good start.")
        invalid = CompanyFeedback(
            submission_id="f-sig-bad", milestone_id="nope", attendance_hours=1
        )
        await ops.signal_feedback(client, iid, invalid)
        await ops.signal_feedback(client, iid, valid)
        await ops.signal_feedback(client, iid, valid)
        await ops.withdraw(client, iid, Withdrawal(submission_id="w-1", reason="moved abroad"))
        outcome = await handle.result()
        with pytest.raises(OperationRejected, match="has already ended"):
            await ops.approve(
                client, iid, Approval(submission_id="a-4", party="mentor", plan_version=1)
            )

    assert outcome.phase == Phase.WITHDRAWN
    rows = await audit_rows(pool, iid)
    # The submissions (an approval request still going out when the withdrawal came is dropped,
    # and recorded as such: that depends on timing, not on what this test checks).
    submissions = [r for r in rows if r["kind"] != "phase" and not r["kind"].startswith("notif")]
    assert [r["kind"] for r in submissions] == [
        "approval",
        "approval",
        "approval",
        "company_feedback",
        "withdrawal",
    ]
    assert [r["phase"] for r in rows if r["kind"] == "phase"] == [
        "planning",
        "awaiting_start",
        "withdrawn",
    ]
    mails = sent(load_outbox(settings), iid)
    assert sorted(k for k in mails if k[0] == "withdrawal") == sorted(
        [("withdrawal", plan.intern.email), ("withdrawal", plan.mentor.email)]
    )


async def test_failed_validation_is_refused_as_pass_and_ends_not_certified(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=3))
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            await report_and_feedback(client, plan, milestone.id, level="basic")
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await assess(client, plan, mentor="good", tutor="basic")
        with pytest.raises(
            OperationRejected, match="'lo-web' reached 'basic', below the required 'good'"
        ):
            await ops.validate(
                client, plan.internship_id, Validation(submission_id="v-pass", decision="pass")
            )
        await ops.validate(
            client,
            plan.internship_id,
            Validation(submission_id="v-fail", decision="fail", reason="web outcome not reached"),
        )
        outcome = await handle.result()
    assert outcome.phase == Phase.NOT_CERTIFIED
    assert outcome.reason == "web outcome not reached"
    kinds = [r["kind"] for r in await audit_rows(pool, plan.internship_id)]
    assert kinds.count("validation") == 1
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM credentials WHERE internship_id = $1", plan.internship_id
        )
        == 0
    )
    mails = sent(load_outbox(settings), plan.internship_id)
    assert ("outcome", plan.intern.email) in mails
    assert not [k for k in mails if k[0] == "badge"]


async def test_a_vc_jwt_badge_template_issues_a_jwt_baked_into_the_png(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    example = sample_plan(datetime.now().astimezone() + timedelta(days=3))
    plan = example.model_copy(
        update={"badge": example.badge.model_copy(update={"proof_format": "vc-jwt"})}
    )
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        for milestone in plan.milestones:
            await advance_to(env, handle, milestone.due - timedelta(hours=1))
            # The intern agrees to show only the final report's summary in the badge.
            await report_and_feedback(
                client, plan, milestone.id, share=milestone.id == "final-report"
            )
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await assess(client, plan, mentor="good", tutor="good")
        await ops.validate(
            client, plan.internship_id, Validation(submission_id="v-1", decision="pass")
        )
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED
    badge_mail = next(m for m in load_outbox(settings) if m["X-Internflow-Kind"] == "badge")
    files = {p.get_filename(): p for p in badge_mail.iter_attachments()}
    assert set(files) == {"badge.png", "credential.jwt"}
    jwt = files["credential.jwt"].get_content()
    jwt = jwt.decode() if isinstance(jwt, bytes) else jwt
    assert jwt.count(".") == 2 and unbake_png(files["badge.png"].get_content()) == jwt
    report = verify_badge(
        files["badge.png"].get_content(),
        issuer_keys=local_public_keys(settings.keys_path),
        now=plan.period.end + plan.assessment_window,
    )
    assert report.verified, report.errors
    assert report.credential_id == outcome.credential_id
    evidence = decode_jwt(jwt).payload["evidence"]
    assert [(e["name"], e["narrative"]) for e in evidence] == [
        ("Final report", "Progress at final-report.")
    ]
    assert (
        await pool.fetchval(
            "SELECT format FROM credentials WHERE internship_id = $1", plan.internship_id
        )
        == "ob3+vc-jwt"
    )
