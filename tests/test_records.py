"""The PostgreSQL records: migrations, the append-only audit trail, submissions, parties, overdue
flags and the reads operators use (search, timeline, cohort figures), from real internships."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.records import RecordActivities
from models.activities import AuditEvent
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import Validation
from operations import internships as ops
from records.read import (
    cohort_statistics,
    internship_timeline,
    list_internships,
    recorded_phase,
)
from runtime.migrations import apply_migrations, discover_migrations
from runtime.settings import Settings
from tests.helpers import (
    advance_to,
    approve_all,
    assess,
    audit_rows,
    clock_held,
    eventually,
    report_and_feedback,
    running_worker,
    sample_plan,
    wait_for_phase,
)

# ----------------------------------------------------------------- schema


async def test_migrations_apply_once_and_a_second_run_does_nothing(database: str) -> None:
    shipped = [m.name for m in discover_migrations()]
    assert "0003_parties_submissions.sql" in shipped
    assert "0004_credential_status.sql" in shipped

    assert await apply_migrations(database) == shipped
    assert await apply_migrations(database) == []

    conn = await asyncpg.connect(database)
    try:
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    finally:
        await conn.close()
    assert [r["name"] for r in rows] == shipped
    assert [r["version"] for r in rows] == [m.version for m in discover_migrations()]
    assert {"parties", "submissions", "status_lists", "credentials", "audit_events"} <= tables


def _event(plan: InternshipPlan, kind: str, key: str, **fields: Any) -> AuditEvent:
    workflow_id = f"internship-{plan.internship_id}"
    values: dict[str, Any] = {
        "event_id": f"{workflow_id}/{kind}/{key}",
        "internship_id": plan.internship_id,
        "workflow_id": workflow_id,
        "run_id": "run-1",
        "plan_version": plan.version,
        "actor": "system",
        "kind": kind,
        "phase": "planning",
        "occurred_at": plan.agreement_deadline - timedelta(days=1),
        "detail": {},
    }
    values.update(fields)
    return AuditEvent(**values)


def _activities(plan: InternshipPlan) -> ActivityEnvironment:
    """Temporal's environment for running an activity outside a worker, as the internship's
    workflow would call it."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=f"internship-{plan.internship_id}")
    return env


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'someone else'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events, submissions",
        "TRUNCATE audit_events CASCADE",
        "UPDATE submissions SET late = NOT late",
        "DELETE FROM submissions",
        "TRUNCATE submissions",
    ],
)
async def test_the_audit_trail_and_submissions_cannot_be_changed(
    pool: asyncpg.Pool, settings: Settings, statement: str
) -> None:
    """The application role has no such privilege; the tables' owner meets the triggers."""
    plan = sample_plan(datetime.now(UTC) + timedelta(days=10))
    records = RecordActivities(pool)
    env = _activities(plan)
    await env.run(records.save_plan, plan)
    approval = _event(
        plan, "approval", "a-1", actor="intern", detail={"late": False, "plan_version": 1}
    )
    assert await env.run(records.record_event, approval)

    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await pool.execute(statement)
    owner = await asyncpg.connect(settings.database_owner_dsn)
    try:
        with pytest.raises(asyncpg.RaiseError, match="is append-only"):
            await owner.execute(statement)
    finally:
        await owner.close()
    assert await pool.fetchval("SELECT count(*) FROM audit_events") == 1
    assert await pool.fetchval("SELECT count(*) FROM submissions") == 1
    assert await pool.fetchval("SELECT actor FROM audit_events") == "intern"


async def test_records_made_at_one_time_set_the_phase_in_the_order_the_workflow_made_them(
    pool: asyncpg.Pool,
) -> None:
    """A feedback and the end date in one workflow task: both records carry the same time, and
    their activities may run in either order; the read model keeps the later one's phase."""
    plan = sample_plan(datetime.now(UTC) + timedelta(days=10))
    records = RecordActivities(pool)
    env = _activities(plan)
    await env.run(records.save_plan, plan)
    moment = plan.period.end
    feedback = _event(
        plan, "company_feedback", "f-1", actor="mentor", phase="in_progress", occurred_at=moment
    )
    evaluation = _event(plan, "phase", "evaluation", phase="evaluation", occurred_at=moment)
    await env.run(records.record_event, evaluation.model_copy(update={"seq": 8}))
    await env.run(records.record_event, feedback.model_copy(update={"seq": 7}))
    async with pool.acquire() as conn:
        assert await recorded_phase(conn, plan.internship_id) == Phase.EVALUATION
    # A later record at a later time still moves it on.
    completed = _event(
        plan, "phase", "completed", phase="completed", occurred_at=moment + timedelta(hours=1)
    )
    await env.run(records.record_event, completed.model_copy(update={"seq": 9}))
    async with pool.acquire() as conn:
        assert await recorded_phase(conn, plan.internship_id) == Phase.COMPLETED


# ----------------------------------------------------------------- one whole internship


async def _wait_overdue(pool: asyncpg.Pool, internship_id: str, expected: bool) -> None:
    """The overdue flag is written by the workflow's records after a time skip."""
    for _ in range(200):
        flag = await pool.fetchval(
            "SELECT overdue FROM internships WHERE internship_id = $1", internship_id
        )
        if flag is expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"internship {internship_id} stayed overdue={not expected}")


async def test_a_whole_internship_leaves_exact_records(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    env, client = time_skipping_env, time_skipping_env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    iid = plan.internship_id
    m = {ms.id: ms for ms in plan.milestones}
    policy = plan.reminder_policy
    async with running_worker(client, settings, pool):
        with clock_held(env):
            handle = await ops.start_internship(client, settings, plan)
        await approve_all(client, plan)
        await wait_for_phase(client, iid, Phase.AWAITING_START)

        async def recorded_awaiting_start() -> bool:  # the record follows the phase change
            return await recorded_phase(pool, iid) == Phase.AWAITING_START

        await eventually(recorded_awaiting_start, "the read model in awaiting_start")

        await advance_to(env, handle, m["check-in"].due - timedelta(hours=2))
        await report_and_feedback(client, plan, "check-in")
        # The mid-term milestone is left unanswered past its reminder and escalation.
        await advance_to(
            env, handle, m["mid-term"].due + policy.escalate_after + timedelta(hours=1)
        )
        await _wait_overdue(pool, iid, True)
        # The workflow's own record of the change brought the flag (no e-mail writes it).
        flagged = await pool.fetch(
            "SELECT event_id, detail FROM audit_events WHERE internship_id = $1 "
            "AND kind = 'overdue'",
            iid,
        )
        assert [
            (r["event_id"].rpartition("/")[2].startswith("mid-term-"), json.loads(r["detail"]))
            for r in flagged
        ] == [(True, {"overdue": True, "milestone_id": "mid-term"})]
        overdue = await list_internships(pool, overdue=True)
        assert [row.internship_id for row in overdue] == [iid]
        assert await list_internships(pool, overdue=False) == []
        await report_and_feedback(client, plan, "mid-term")
        await _wait_overdue(pool, iid, False)

        await advance_to(env, handle, m["final-report"].due - timedelta(hours=1))
        await report_and_feedback(client, plan, "final-report")
        await advance_to(env, handle, plan.period.end + timedelta(hours=1))
        await assess(client, plan, mentor="excellent", tutor="good")
        await ops.validate(client, iid, Validation(submission_id="v-1", decision="pass"))
        outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED

    # Every submission once, with the fields the workflow recorded.
    submissions = await pool.fetch(
        "SELECT submission_id, kind, actor, plan_version, milestone_id, late, payload "
        "FROM submissions WHERE internship_id = $1 ORDER BY submission_id",
        iid,
    )
    assert [
        (r["submission_id"], r["kind"], r["actor"], r["plan_version"], r["milestone_id"], r["late"])
        for r in submissions
    ] == [
        ("a-intern", "approval", "intern", 1, None, False),
        ("a-mentor", "approval", "mentor", 1, None, False),
        ("a-tutor", "approval", "tutor", 1, None, False),
        ("f-check-in", "company_feedback", "mentor", 1, "check-in", False),
        ("f-mid-term", "company_feedback", "mentor", 1, "mid-term", True),
        ("r-check-in", "milestone_report", "intern", 1, "check-in", False),
        ("r-final-report", "milestone_report", "intern", 1, "final-report", False),
        ("r-mid-term", "milestone_report", "intern", 1, "mid-term", True),
        ("s-mentor", "assessment", "mentor", 1, None, False),
        ("s-tutor", "assessment", "tutor", 1, None, False),
        ("v-1", "validation", "tutor", 1, None, False),
    ]
    feedback = next(r for r in submissions if r["submission_id"] == "f-check-in")
    assert '"attendance_hours": 36' in feedback["payload"]
    assert await pool.fetchval(
        "SELECT count(*) FROM submissions s JOIN audit_events a USING (event_id)"
    ) == len(submissions)

    parties = await pool.fetch(
        "SELECT role, party_id, email, language, plan_version FROM parties "
        "WHERE internship_id = $1 ORDER BY role",
        iid,
    )
    assert [tuple(r) for r in parties] == sorted(
        [
            ("company", plan.company.id, plan.company.contact_email, plan.mentor.language, 1),
            ("intern", plan.intern.id, plan.intern.email, plan.intern.language, 1),
            ("mentor", plan.mentor.id, plan.mentor.email, plan.mentor.language, 1),
            ("operator", plan.institution.id, plan.institution.email, plan.tutor.language, 1),
            ("tutor", plan.tutor.id, plan.tutor.email, plan.tutor.language, 1),
        ]
    )

    # The timeline is the audit trail in order, each step with its key.
    timeline = await internship_timeline(pool, iid)
    audit = await audit_rows(pool, iid)
    assert [(t.kind, t.actor, t.phase) for t in timeline] == [
        (r["kind"], r["actor"], r["phase"]) for r in audit
    ]
    assert [t.key for t in timeline if t.kind == "phase"] == [
        "planning",
        "awaiting_start",
        "in_progress",
        "evaluation",
        "certification",
        "completed",
    ]
    assert timeline[-1].detail == {"credential_id": outcome.credential_id}
    assert [t.occurred_at for t in timeline] == sorted(t.occurred_at for t in timeline)

    rows = await list_internships(pool)
    assert len(rows) == 1
    row = rows[0]
    assert (row.internship_id, row.phase, row.overdue, row.plan_version) == (
        iid,
        Phase.COMPLETED,
        False,
        1,
    )
    stats = await cohort_statistics(pool)
    assert stats.internships == 1
    assert stats.by_phase == {Phase.COMPLETED: 1}
    assert (stats.milestone_submissions, stats.on_time_submissions) == (5, 3)
    assert stats.on_time_rate == pytest.approx(0.6)
    assert stats.pass_rate == 1.0


# ----------------------------------------------------------------- searches and figures


async def _seed(
    pool: asyncpg.Pool,
    plan: InternshipPlan,
    phases: list[str],
    milestone_lateness: Sequence[bool] = (),
) -> None:
    """An internship recorded through the record activities, as its workflow would: the plan,
    the phases it went through and milestone reports (late or not)."""
    records = RecordActivities(pool)
    env = _activities(plan)
    await env.run(records.save_plan, plan)
    moment = plan.agreement_deadline
    for phase in phases:
        moment += timedelta(days=1)
        await env.run(
            records.record_event, _event(plan, "phase", phase, phase=phase, occurred_at=moment)
        )
    for i, late in enumerate(milestone_lateness):
        moment += timedelta(hours=1)
        milestone = plan.milestones[i % len(plan.milestones)]
        report = _event(
            plan,
            "milestone_report",
            f"r-{i}",
            actor="intern",
            phase=phases[-1],
            occurred_at=moment,
            detail={"late": late, "milestone_id": milestone.id},
        )
        await env.run(records.record_event, report)


def _plan_for(institution: str, company: str, start: datetime, intern: str) -> InternshipPlan:
    """The sample plan starting at `start`, for the given institution, company and intern."""
    example = sample_plan(start)
    base = sample_plan(start - (example.period.start - example.agreement_deadline))
    assert base.period.start == start
    data = base.model_dump()
    data["institution"]["id"] = institution
    data["company"]["id"] = company
    data["intern"]["name"] = intern
    return InternshipPlan.model_validate(data)


async def test_searches_filter_and_page(pool: asyncpg.Pool) -> None:
    march = datetime(2027, 3, 1, 9, tzinfo=UTC)
    a = _plan_for("school-a", "acme", march, "Giulia Esposito")
    b = _plan_for("school-a", "webwerk", march + timedelta(days=30), "Luca Rossi")
    c = _plan_for("school-b", "acme", march + timedelta(days=60), "Sara Bianchi")
    await _seed(pool, a, ["planning", "awaiting_start", "in_progress"])
    await _seed(pool, b, ["planning", "cancelled"])
    await _seed(pool, c, ["planning"])

    def ids(rows: list[Any]) -> list[str]:
        return [row.internship_id for row in rows]

    everything = await list_internships(pool)
    assert ids(everything) == [c.internship_id, b.internship_id, a.internship_id]
    assert ids(await list_internships(pool, phase=Phase.IN_PROGRESS)) == [a.internship_id]
    assert ids(await list_internships(pool, company_id="acme")) == [
        c.internship_id,
        a.internship_id,
    ]
    assert ids(await list_internships(pool, institution_id="school-a", company_id="acme")) == [
        a.internship_id
    ]
    assert ids(await list_internships(pool, text="rossi")) == [b.internship_id]
    assert ids(await list_internships(pool, text="SCHOOL-B")) == [c.internship_id]
    assert ids(await list_internships(pool, text=a.internship_id[2:8])) == [a.internship_id]
    assert await list_internships(pool, text="100%_") == []
    assert ids(await list_internships(pool, limit=2)) == ids(everything)[:2]
    assert ids(await list_internships(pool, limit=2, offset=2)) == ids(everything)[2:]
    with pytest.raises(ValueError, match="limit"):
        await list_internships(pool, limit=0)
    assert [row.phase for row in everything] == [
        Phase.PLANNING,
        Phase.CANCELLED,
        Phase.IN_PROGRESS,
    ]
    assert all(row.overdue is False for row in everything)


async def test_cohort_statistics_count_phases_punctuality_and_passes(pool: asyncpg.Pool) -> None:
    march = datetime(2027, 3, 1, 9, tzinfo=UTC)
    decided = ["planning", "awaiting_start", "in_progress", "evaluation"]
    plans = [
        (_plan_for("school-a", "acme", march, "A"), [*decided, "certification", "completed"]),
        (_plan_for("school-a", "acme", march, "B"), [*decided, "not_certified"]),
        (_plan_for("school-a", "acme", march, "C"), [*decided, "not_certified"]),
        (_plan_for("school-a", "acme", march, "D"), ["planning", "withdrawn"]),
        (_plan_for("school-a", "acme", march + timedelta(days=90), "E"), decided[:3]),
        (_plan_for("school-b", "acme", march, "F"), [*decided, "certification", "completed"]),
    ]
    lateness = [[False, True, False], [True], [], [], [False, False], [True, True]]
    for (plan, phases), late in zip(plans, lateness, strict=True):
        await _seed(pool, plan, phases, late)

    every = await cohort_statistics(pool)
    assert every.internships == 6
    assert every.by_phase == {
        Phase.COMPLETED: 2,
        Phase.NOT_CERTIFIED: 2,
        Phase.WITHDRAWN: 1,
        Phase.IN_PROGRESS: 1,
    }
    assert (every.milestone_submissions, every.on_time_submissions) == (8, 4)
    assert every.on_time_rate == pytest.approx(0.5)
    assert every.pass_rate == pytest.approx(0.5)

    school_a = await cohort_statistics(pool, institution_id="school-a")
    assert school_a.internships == 5
    assert (school_a.completed, school_a.not_certified) == (1, 2)
    assert school_a.pass_rate == pytest.approx(1 / 3)
    assert school_a.on_time_rate == pytest.approx(4 / 6)

    spring = await cohort_statistics(
        pool, institution_id="school-a", start_from=march, start_to=march + timedelta(days=30)
    )
    assert spring.internships == 4
    assert spring.on_time_rate == pytest.approx(2 / 4)

    later = await cohort_statistics(pool, start_from=march + timedelta(days=30))
    assert later.by_phase == {Phase.IN_PROGRESS: 1}
    assert later.pass_rate is None

    nobody = await cohort_statistics(pool, institution_id="school-z")
    assert (nobody.internships, nobody.on_time_rate, nobody.pass_rate) == (0, None, None)
    with pytest.raises(ValueError, match="time zone"):
        await cohort_statistics(pool, start_from=datetime(2027, 3, 1))


# ----------------------------------------------------------------- retries write nothing twice


@pytest.mark.parametrize("failing_table", ["submissions", "internships", "audit_events"])
async def test_record_event_retried_after_a_failure_writes_once(
    pool: asyncpg.Pool, settings: Settings, failing_table: str
) -> None:
    """A failure at any statement of the activity's transaction (here a trigger makes PostgreSQL
    itself refuse the write) leaves nothing behind; the retry writes each row once, and a retry
    after success writes nothing."""
    plan = sample_plan(datetime.now(UTC) + timedelta(days=10))
    records = RecordActivities(pool)
    env = _activities(plan)
    await env.run(records.save_plan, plan)
    event = _event(
        plan,
        "approval",
        "a-intern",
        actor="intern",
        occurred_at=plan.agreement_deadline - timedelta(days=2),
        detail={"late": False, "plan_version": 1, "comment": "fine"},
    )
    await _fail_writes_to(settings, failing_table)
    with pytest.raises(asyncpg.RaiseError, match="simulated failure"):
        await env.run(records.record_event, event)
    assert await pool.fetchval("SELECT count(*) FROM audit_events") == 0
    assert await pool.fetchval("SELECT count(*) FROM submissions") == 0
    await _stop_failing(settings, failing_table)

    assert await env.run(records.record_event, event) is True
    assert await env.run(records.record_event, event) is False

    audit = await pool.fetch("SELECT event_id, kind, actor, detail FROM audit_events")
    assert [tuple(r) for r in audit] == [
        (
            event.event_id,
            "approval",
            "intern",
            '{"late": false, "comment": "fine", "plan_version": 1}',
        )
    ]
    submissions = await pool.fetch(
        "SELECT submission_id, kind, actor, plan_version, milestone_id, late, payload, "
        "accepted_at, event_id FROM submissions"
    )
    assert [tuple(r) for r in submissions] == [
        (
            "a-intern",
            "approval",
            "intern",
            1,
            None,
            False,
            '{"comment": "fine"}',
            event.occurred_at,
            event.event_id,
        )
    ]
    internship = await pool.fetchrow(
        "SELECT phase, updated_at FROM internships WHERE internship_id = $1", plan.internship_id
    )
    assert tuple(internship) == ("planning", event.occurred_at)


@pytest.mark.parametrize("failing_table", ["internships", "plan_versions", "parties"])
async def test_save_plan_retried_after_a_failure_writes_once(
    pool: asyncpg.Pool, settings: Settings, failing_table: str
) -> None:
    plan = sample_plan(datetime.now(UTC) + timedelta(days=10))
    records = RecordActivities(pool)
    env = _activities(plan)
    await _fail_writes_to(settings, failing_table)
    with pytest.raises(asyncpg.RaiseError, match="simulated failure"):
        await env.run(records.save_plan, plan)
    for table in ("internships", "plan_versions", "parties"):
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
    await _stop_failing(settings, failing_table)

    await env.run(records.save_plan, plan)
    await env.run(records.save_plan, plan)
    amended = InternshipPlan.model_validate(
        {**plan.model_dump(), "version": 2, "weekly_hours": plan.weekly_hours - 1}
    )
    await env.run(records.save_plan, amended)
    await env.run(records.save_plan, plan)  # a late retry of version 1 changes nothing

    assert await pool.fetchval("SELECT count(*) FROM internships") == 1
    versions = await pool.fetch("SELECT version FROM plan_versions ORDER BY version")
    assert [r["version"] for r in versions] == [1, 2]
    parties = await pool.fetch("SELECT role, plan_version FROM parties ORDER BY role")
    assert [tuple(r) for r in parties] == [
        ("company", 2),
        ("intern", 2),
        ("mentor", 2),
        ("operator", 2),
        ("tutor", 2),
    ]


async def _as_owner(settings: Settings, *statements: str) -> None:
    """Run statements as the tables' owner (the application role may not touch triggers)."""
    owner = await asyncpg.connect(settings.database_owner_dsn)
    try:
        for statement in statements:
            await owner.execute(statement)
    finally:
        await owner.close()


async def _fail_writes_to(settings: Settings, table: str) -> None:
    """Make PostgreSQL refuse every insert into or update of `table` until _stop_failing."""
    await _as_owner(
        settings,
        """
        CREATE OR REPLACE FUNCTION simulated_failure() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'simulated failure writing %', TG_TABLE_NAME; END; $$
        """,
        f"CREATE TRIGGER simulated_failure BEFORE INSERT OR UPDATE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION simulated_failure()",
    )


async def _stop_failing(settings: Settings, table: str) -> None:
    await _as_owner(settings, f"DROP TRIGGER simulated_failure ON {table}")
