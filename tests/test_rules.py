"""The workflow's rules as plain functions: no Temporal, no database, milliseconds each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from models.state import InternshipState, Signature
from models.status import Phase
from models.submissions import Approval, CompanyFeedback, MilestoneReport, Pause
from tests.helpers import sample_plan
from workflows import intake, rules
from workflows.clock import PausableClock
from workflows.ladder import LADDER, LADDER_STEPS

pytestmark = pytest.mark.pure

DEADLINE = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def signed(party: str, version: int) -> Signature:
    approval = Approval(submission_id=f"a-{party}-{version}", party=party, plan_version=version)  # type: ignore[arg-type]
    return Signature(approval=approval, at=DEADLINE - timedelta(days=1))


def test_an_approval_counts_from_the_version_its_party_must_approve() -> None:
    plan = sample_plan(DEADLINE)
    state = InternshipState(required_since={"intern": 2, "tutor": 1, "mentor": 1})
    state.signatures += [signed("intern", 1), signed("tutor", 1)]
    assert rules.unapproved(plan, state) == ["intern", "mentor"]
    state.signatures.append(signed("intern", 2))
    assert rules.unapproved(plan, state) == ["mentor"]


def test_refusals_name_what_is_wrong() -> None:
    plan = sample_plan(DEADLINE)
    state = InternshipState(phase=Phase.IN_PROGRESS)
    rules.require_phase(state, "a report", rules.REPORT_PHASES)
    state.pause = Pause(submission_id="p", reason="illness")
    with pytest.raises(ValueError, match="not accepted while the internship is paused"):
        rules.require_phase(state, "a report", rules.REPORT_PHASES)
    with pytest.raises(ValueError, match="current version is 1"):
        rules.require_current_version(plan, 2)
    with pytest.raises(ValueError, match="unknown milestone 'nope'"):
        rules.require_milestone_party(plan, "nope", "intern")
    with pytest.raises(ValueError, match="not a level of this plan's rubric"):
        rules.require_levels(plan, {plan.learning_outcomes[0].id: "stellar"}, complete=False)
    with pytest.raises(ValueError, match="every learning outcome must be assessed"):
        rules.require_levels(plan, {}, complete=True)


def test_a_pause_in_progress_moves_the_end_and_the_due_dates_but_not_the_start() -> None:
    plan = sample_plan(DEADLINE)
    state = InternshipState(phase=Phase.IN_PROGRESS, start_shift=timedelta(0))
    clock = PausableClock(state, stop=lambda: False)
    paused_at = plan.period.start + timedelta(days=1)
    clock.pause(Pause(submission_id="p", reason="illness"), paused_at)
    assert rules.status(plan, state, paused_at).phase == Phase.PAUSED
    clock.resume(paused_at + timedelta(days=3))
    dates = rules.dates_in_force(plan, state)
    assert dates.start == plan.period.start
    assert dates.end == plan.period.end + timedelta(days=3)
    assert [dates.due(m) for m in plan.milestones] == [
        m.due + timedelta(days=3) for m in plan.milestones
    ]
    assert clock.epoch == 2  # each change woke the waits


def test_status_brings_late_and_overdue_to_the_time_of_reading() -> None:
    example = sample_plan(DEADLINE)
    # A day's grace after the due date before the reminder (the example reminds at once).
    policy = example.reminder_policy.model_copy(update={"remind_after": timedelta(days=1)})
    plan = example.model_copy(update={"reminder_policy": policy})
    state = InternshipState(phase=Phase.IN_PROGRESS, start_shift=timedelta(0))
    first = plan.milestones[0]
    before = rules.status(plan, state, first.due - timedelta(hours=1))
    assert before.next_deadline == first.due
    assert [d.what for d in before.deadlines][:1] == [f"milestone:{first.id}"]
    assert not before.milestones[0].late
    late = before.at(first.due + timedelta(minutes=1))
    assert late.milestones[0].late and not late.milestones[0].overdue
    overdue = before.at(first.due + plan.reminder_policy.remind_after + timedelta(minutes=1))
    assert overdue.milestones[0].overdue and overdue.overdue
    state.submitted[first.id] = list(first.submitted_by)
    done = rules.status(plan, state, first.due + timedelta(days=30))
    assert done.milestones[0].outstanding == () and not done.milestones[0].overdue


def test_the_ladder_asks_before_the_due_date_then_reminds_escalates_and_marks_missed() -> None:
    policy = sample_plan(DEADLINE).reminder_policy
    offsets = [offset(policy) for _, offset in LADDER]
    assert [step for step, _ in LADDER] == ["milestone_request", "reminder", "escalation", "missed"]
    assert offsets[0] < timedelta(0) <= offsets[1] < offsets[2] < offsets[3]
    assert LADDER_STEPS == 4


def test_the_agreement_waits_for_each_unsent_reminder_then_for_its_deadline() -> None:
    plan = sample_plan(DEADLINE)
    reminders = plan.reminder_policy.agreement_reminders
    assert reminders, "the sample plan reminds before the agreement deadline"
    state = InternshipState()
    early = DEADLINE - max(reminders) - timedelta(hours=1)
    key, at = rules.next_agreement_stop(plan, state, early)
    assert (key, at) == ("v1-" + str(reminders.index(max(reminders))), DEADLINE - max(reminders))
    for i in range(len(reminders)):
        state.agreement_reminders_sent.append(f"v1-{i}")
    assert rules.next_agreement_stop(plan, state, early) == ("deadline", DEADLINE)


def test_accepting_a_report_keeps_the_words_and_says_whether_it_was_late() -> None:
    plan = sample_plan(DEADLINE)
    state = InternshipState(phase=Phase.IN_PROGRESS, start_shift=timedelta(0))
    milestone = plan.milestones[0]
    due = rules.dates_in_force(plan, state).due(milestone)
    desk = intake.Desk(plan, state, PausableClock(state, stop=lambda: False), due + timedelta(1))
    report = MilestoneReport(
        submission_id="r-1",
        milestone_id=milestone.id,
        summary="Line one\nline two",
        share_in_badge=True,
    )
    entry = intake.entry(desk, report)
    assert (entry.kind, entry.actor, entry.late) == ("milestone_report", "intern", True)
    assert entry.detail["summary"] == "Line one\nline two"
    assert state.evidence == {}  # nothing changes before the entry is applied
    entry.apply()
    assert state.evidence == {milestone.id: "Line one\nline two"}
    assert state.submitted[milestone.id] == ["intern"]


# ----------------------------------------------------------------------------- time of receipt
# Decision 0046: the rules judge when the product received a submission, bounded by the
# workflow's time `now`: never after it, never more than RECEIPT_MAX_AGE before it.

NOW = datetime(2027, 3, 8, 16, 0, tzinfo=UTC)
S = timedelta(seconds=1)


@pytest.mark.parametrize(
    ("received_at", "judged"),
    [
        (None, NOW),  # sent before receipts were stamped: the workflow's time
        (NOW - 7 * S, NOW - 7 * S),  # seen after a worker died: its receipt
        (NOW, NOW),
        (NOW + 3 * S, NOW),  # an API host's clock ahead of Temporal's: taken as seen
        (NOW + timedelta(days=1), NOW),
        (NOW - rules.RECEIPT_MAX_AGE, NOW - rules.RECEIPT_MAX_AGE),
        (NOW - rules.RECEIPT_MAX_AGE - S, NOW - rules.RECEIPT_MAX_AGE),  # older: at most that
        (NOW - timedelta(days=2), NOW - rules.RECEIPT_MAX_AGE),
    ],
    ids=[
        "none",
        "seven seconds old",
        "now",
        "ahead",
        "a day ahead",
        "as old as believed",
        "a second older",
        "two days old",
    ],
)
def test_the_moment_judged_is_the_receipt_bounded_by_the_workflows_time(
    received_at: datetime | None, judged: datetime
) -> None:
    assert rules.received(received_at, NOW) == judged


@pytest.mark.parametrize(
    ("received", "seen", "late"),
    [
        (-6.7, +3.3, False),  # the reported case: received before due, seen 3.3 s after
        (-6.7, -6.6, False),
        (+0.5, +3.0, True),  # received after due: late, whenever seen
        (0.0, +10.0, False),  # at the due moment is on time
        (None, +3.3, True),  # no receipt time (runs before the patch): the workflow's time
        (None, -1.0, False),
        # Received 15 min before due: believed up to 10 min back from when it is seen.
        (-900.0, +300.0, False),
        (-900.0, +600.0, False),
        (-900.0, +660.0, True),
        (-900.0, -60.0, False),
    ],
)
def test_a_report_or_feedback_is_late_by_when_it_was_received(
    received: float | None, seen: float, late: bool
) -> None:
    plan = sample_plan(DEADLINE)
    state = InternshipState(phase=Phase.IN_PROGRESS, start_shift=timedelta(0))
    milestone = plan.milestones[0]
    due = rules.dates_in_force(plan, state).due(milestone)
    now = due + timedelta(seconds=seen)
    received_at = None if received is None else due + timedelta(seconds=received)
    clock = PausableClock(state, stop=lambda: False)
    desk = intake.Desk(plan, state, clock, now, rules.received(received_at, now))
    report = MilestoneReport(
        submission_id="r-1", milestone_id=milestone.id, summary="Done.", received_at=received_at
    )
    feedback = CompanyFeedback(
        submission_id="f-1",
        milestone_id=milestone.id,
        attendance_hours=36,
        received_at=received_at,
    )
    assert intake.entry(desk, report).late is late
    assert intake.entry(desk, feedback).late is late
    # Legacy: a run before the patch judges the workflow's time, whatever the receipt says.
    legacy = intake.Desk(plan, state, clock, now)
    assert intake.entry(legacy, report).late is (seen > 0)
