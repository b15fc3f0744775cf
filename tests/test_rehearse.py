"""`internflow rehearse` as an operator runs it (a subprocess): the real workflow on its own
time-skipping Temporal server, stand-ins for the records, the mail and the badge. The database
and the mail server it is configured with are listeners that count connections: nothing may
reach them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cli.main import app
from models.plan import InternshipPlan
from tests.helpers import EXAMPLE_PLAN

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d) (?P<zone>\S+)  (?P<type>phase|e-mail|act) +(?P<what>.+)$"
)
NO_SHOW_MAIL = {"agreement_reminder", "reminder", "escalation", "missed", "assessment_reminder"}


class CountingListener:
    """A TCP port that accepts, counts and drops every connection: where the configured database
    or mail server would be."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._socket.close()
        self._thread.join(5)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def steps(self) -> list[dict[str, str]]:
        return [m.groupdict() for line in self.lines if (m := STEP.match(line))]


@dataclass
class Setup:
    env: dict[str, str]
    state_dir: Path
    database: CountingListener
    smtp: CountingListener

    def rehearse(self, *args: str | Path) -> Run:
        began = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "cli", "rehearse", *map(str, args)],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        run = Run(done.returncode, done.stdout, done.stderr, time.monotonic() - began)
        assert "Traceback" not in run.out + run.err, run.out + run.err
        return run


def example_plan(directory: Path) -> tuple[Path, InternshipPlan]:
    """examples/plan.json itself while its agreement deadline is ahead; once it has passed, the
    same plan moved forward by whole 52-week spans (same weekdays and times of day) once its
    agreement reminders are no longer ahead, so that this test outlives the example's dates."""
    plan = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    reminders = plan.reminder_policy.agreement_reminders
    first_reminder = plan.agreement_deadline - max(reminders, default=timedelta(0))
    soon = datetime.now(UTC) + timedelta(hours=1)
    if first_reminder > soon:
        return EXAMPLE_PLAN, plan
    span = timedelta(weeks=52)
    spans = (soon - first_reminder) // span + 1
    moved = plan.retimed(plan.internship_id, plan.agreement_deadline + span * spans)
    path = directory / "plan.json"
    path.write_text(moved.model_dump_json())
    return path, moved


def local(plan: InternshipPlan, moment: datetime) -> str:
    """A plan time as the rehearsal prints it: minutes, in the plan's named time zone."""
    return f"{moment.astimezone(ZoneInfo(plan.period.time_zone)):%Y-%m-%d %H:%M}"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    database, smtp = CountingListener(), CountingListener()
    state_dir = tmp_path_factory.mktemp("state")
    env = {
        **os.environ,
        "INTERNFLOW_STATE_DIR": str(state_dir),
        "INTERNFLOW_DATABASE_URL": f"postgresql://internflow_app@127.0.0.1:{database.port}/x",
        "INTERNFLOW_SMTP_HOST": "127.0.0.1",
        "INTERNFLOW_SMTP_PORT": str(smtp.port),
        "INTERNFLOW_LOG_LEVEL": "warning",
    }
    try:
        yield Setup(env, state_dir, database, smtp)
    finally:
        database.close()
        smtp.close()


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, InternshipPlan]:
    return example_plan(tmp_path_factory.mktemp("example"))


@pytest.fixture(scope="module")
def nobody(setup: Setup, example: tuple[Path, InternshipPlan]) -> Run:
    return setup.rehearse(example[0])


@pytest.fixture(scope="module")
def on_time(setup: Setup, example: tuple[Path, InternshipPlan]) -> Run:
    return setup.rehearse(example[0], "--everyone-on-time")


@pytest.fixture(scope="module")
def on_time_json(setup: Setup, example: tuple[Path, InternshipPlan]) -> Run:
    return setup.rehearse(example[0], "--everyone-on-time", "--json")


def test_nobody_acting_ends_in_cancellation_at_the_agreement_deadline(
    nobody: Run, example: tuple[Path, InternshipPlan]
) -> None:
    _, plan = example
    assert nobody.code == 0, nobody.out + nobody.err
    steps = nobody.steps()
    mails = [(s["what"], s["at"]) for s in steps if s["type"] == "e-mail"]
    assert {what for what, _ in mails[:3]} == {
        "approval_request → intern",
        "approval_request → tutor",
        "approval_request → mentor",
    }
    reminders = [(s["what"], s["at"]) for s in steps if s["what"].startswith("agreement_reminder")]
    expected_reminders = [
        (f"agreement_reminder → {party}", local(plan, plan.agreement_deadline - before))
        for before in sorted(plan.reminder_policy.agreement_reminders, reverse=True)
        for party in ("intern", "tutor", "mentor")
    ]
    assert reminders == expected_reminders
    assert not [s for s in steps if s["type"] == "act"]

    phases = [(s["what"], s["at"]) for s in steps if s["type"] == "phase"]
    deadline = local(plan, plan.agreement_deadline)
    assert phases[-1] == ("cancelled", deadline)
    assert [what for what, _ in phases] == ["planning", "cancelled"]
    # Nothing after the cancellation but the e-mails that tell of it, sent at that moment.
    cancelled_at = next(i for i, s in enumerate(steps) if s["what"] == "cancelled")
    assert [(s["type"], s["what"], s["at"]) for s in steps[cancelled_at + 1 :]] == [
        ("e-mail", f"cancellation → {party}", deadline) for party in ("intern", "tutor", "mentor")
    ]
    assert "Outcome: cancelled" in nobody.out


def test_everyone_on_time_reaches_the_badge_without_reminders(
    on_time: Run, example: tuple[Path, InternshipPlan]
) -> None:
    _, plan = example
    assert on_time.code == 0, on_time.out + on_time.err
    steps = on_time.steps()
    phases = [s["what"] for s in steps if s["type"] == "phase"]
    assert phases == [
        "planning",
        "awaiting_start",
        "in_progress",
        "evaluation",
        "certification",
        "completed",
    ]
    assert steps[-1]["what"] == "completed"
    mails = [s["what"] for s in steps if s["type"] == "e-mail"]
    assert "badge → intern" in mails
    assert not [m for m in mails if m.split(" ")[0] in NO_SHOW_MAIL]
    assert {m for m in mails if m.startswith("milestone_request")} == {
        f"milestone_request → {party}, {m.id}" for m in plan.milestones for party in m.submitted_by
    }

    # Each milestone is answered by everyone it asks, before it is due, and not late.
    acts = [s for s in steps if s["type"] == "act"]
    for milestone in plan.milestones:
        answers = [a for a in acts if a["what"].endswith(f", {milestone.id}")]
        assert len(answers) == len(milestone.submitted_by), milestone.id
        assert all(a["at"] < local(plan, milestone.due) for a in answers), answers
    assert not [a for a in acts if a["what"].endswith(", late")]
    assert [a["what"] for a in acts if not a["what"].startswith(("milestone", "company"))] == [
        "approval ← intern",
        "approval ← tutor",
        "approval ← mentor",
        "assessment ← mentor",
        "assessment ← tutor",
        "validation ← tutor",
    ]
    assert "Outcome: completed" in on_time.out
    assert "Badge:" in on_time.out


def test_lines_name_the_plans_time_zone_and_fit_80_columns(
    nobody: Run, on_time: Run, example: tuple[Path, InternshipPlan]
) -> None:
    _, plan = example
    for run in (nobody, on_time):
        assert {s["zone"] for s in run.steps()} == {plan.period.time_zone}
        assert max(len(line) for line in run.lines) <= 80, run.out
        assert all(line.strip() for line in run.lines)


def test_times_are_converted_into_the_plans_time_zone(
    setup: Setup, example: tuple[Path, InternshipPlan], tmp_path: Path
) -> None:
    """The example's times are written with the offset of its own zone, so printing them as
    written would look right there; in a plan kept in New York time they must be converted."""
    _, plan = example
    data = json.loads(plan.model_dump_json())
    data["period"]["time_zone"] = "America/New_York"
    path = tmp_path / "new-york.json"
    path.write_text(json.dumps(data))
    run = setup.rehearse(path)
    assert run.code == 0, run.out + run.err
    new_york = ZoneInfo("America/New_York")
    deadline = f"{plan.agreement_deadline.astimezone(new_york):%Y-%m-%d %H:%M}"
    assert f"{deadline} America/New_York  phase   cancelled" in run.lines
    assert deadline != local(plan, plan.agreement_deadline)


def test_json_is_the_same_rehearsal(
    on_time_json: Run, on_time: Run, example: tuple[Path, InternshipPlan]
) -> None:
    _, plan = example
    assert on_time_json.code == 0, on_time_json.out + on_time_json.err
    data = json.loads(on_time_json.out)
    assert data["internship_id"] == plan.internship_id
    assert data["time_zone"] == plan.period.time_zone
    assert data["outcome"]["phase"] == "completed"
    assert data["badge"]["credential_id"] == data["outcome"]["credential_id"]
    assert {"type": "e-mail", "kind": "badge", "role": "intern"}.items() <= next(
        s for s in data["steps"] if s["kind"] == "badge"
    ).items()
    zone = ZoneInfo(plan.period.time_zone)
    for step in data["steps"]:
        at = datetime.fromisoformat(step["at"])
        assert at.utcoffset() == zone.utcoffset(at.replace(tzinfo=None)), step
    kinds = [(s["type"], s["kind"], s["role"]) for s in data["steps"]]
    text = [(s["type"], s["what"]) for s in on_time.steps()]
    assert len(kinds) == len(text)
    assert [k for _, k, _ in kinds] == [what.split(" ")[0].rstrip(",") for _, what in text]


def test_nothing_reaches_the_database_or_the_mail_server(
    setup: Setup, nobody: Run, on_time: Run, on_time_json: Run
) -> None:
    assert (nobody.code, on_time.code, on_time_json.code) == (0, 0, 0)
    assert setup.database.connections == 0
    assert setup.smtp.connections == 0
    outbox = setup.state_dir / "outbox"
    assert not outbox.exists() or not any(outbox.iterdir())


def test_the_example_is_rehearsed_in_well_under_a_minute(nobody: Run, on_time: Run) -> None:
    assert nobody.seconds < 60, nobody.seconds
    assert on_time.seconds < 60, on_time.seconds


def test_a_plan_whose_agreement_deadline_has_passed_is_refused_as_start_refuses_it(
    setup: Setup, example: tuple[Path, InternshipPlan], tmp_path: Path
) -> None:
    _, plan = example
    late = plan.retimed(plan.internship_id, datetime.now(UTC) - timedelta(hours=1))
    path = tmp_path / "late.json"
    path.write_text(late.model_dump_json())
    run = setup.rehearse(path)
    assert run.code == 2
    assert "agreement_deadline" in run.out
    assert "has already passed" in run.out
    assert not run.steps()


def test_a_plan_with_a_mistake_or_an_unknown_time_zone_is_refused(
    setup: Setup, example: tuple[Path, InternshipPlan], tmp_path: Path
) -> None:
    _, plan = example
    data = json.loads(plan.model_dump_json())
    data["weekly_hours"] = 100
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    run = setup.rehearse(path)
    assert run.code == 2
    assert "weekly_hours" in run.out

    data = json.loads(plan.model_dump_json())
    data["period"]["time_zone"] = "Europe/Atlantis"
    path.write_text(json.dumps(data))
    run = setup.rehearse(path)
    assert run.code == 2
    assert "Europe/Atlantis" in run.out
    assert not run.steps()


def test_rehearse_explains_itself() -> None:
    result = CliRunner().invoke(app, ["rehearse", "--help"])
    assert result.exit_code == 0, result.output
    assert "--everyone-on-time" in result.output
