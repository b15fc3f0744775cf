"""What the `internflow` command says, as a new user in an 80-column terminal reads it (each run a
subprocess): messages keep their brackets, a plan's mistakes are reported all at once, hints name
the option at fault, `list` never cuts an id, and `--help` fits and names the command."""

from __future__ import annotations

import json
import os
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from runtime.settings import Settings
from tests.helpers import eventually, running_worker
from tests.test_api_harness import planned
from tests.test_cli import Cli, cli_for

IDENTIFIER_PATTERN = "'^[a-z0-9][a-z0-9._-]{0,62}$'"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The command with no stack behind it, 80 columns wide: enough for everything refused
    before it connects anywhere."""
    return Cli(
        {
            **os.environ,
            "INTERNFLOW_STATE_DIR": str(tmp_path / "state"),
            "INTERNFLOW_LOG_LEVEL": "warning",
            "INTERNFLOW_DEMO": "true",
        },
        columns=80,
    )


def problems_of(out: str) -> dict[str, str]:
    """The `  field: message` lines under an error, by field."""
    found = {}
    for line in out.splitlines():
        if line.startswith("  "):
            where, _, message = line.strip().partition(": ")
            found[where] = message
    return found


def plan_file(tmp_path: Path, name: str, **changes: object) -> Path:
    """The sample plan with top-level `changes` (a dict value is merged into that section)."""
    data = json.loads(planned().model_dump_json())
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


async def test_a_message_keeps_its_brackets(cli: Cli, tmp_path: Path) -> None:
    plan = plan_file(tmp_path, "bad-id.json", internship_id="Giulia's [draft]")
    code, out = await cli("start", str(plan))
    assert code == 2, out
    assert out.startswith("error: ")
    assert problems_of(out) == {
        "internship_id": f"String should match pattern {IDENTIFIER_PATTERN}"
    }, out


async def test_a_plan_with_three_mistakes_reports_all_three(cli: Cli, tmp_path: Path) -> None:
    fields = plan_file(
        tmp_path,
        "fields.json",
        internship_id="Bad Id",
        weekly_hours=99,
        intern={"email": "not-an-address"},
    )
    code, out = await cli("start", str(fields))
    assert code == 2, out
    assert "3 problems" in out.splitlines()[0], out
    found = problems_of(out)
    assert set(found) == {"internship_id", "weekly_hours", "intern.email"}, out
    assert found["internship_id"].endswith(IDENTIFIER_PATTERN)
    assert "60" in found["weekly_hours"]

    # Mistakes between fields, found after each field is valid: every one, each at its field.
    template = planned()
    across = plan_file(
        tmp_path,
        "across.json",
        agreement_deadline=(
            template.period.start + (template.period.end - template.period.start) / 2
        ).isoformat(),
        learning_outcomes=[
            {**template.learning_outcomes[0].model_dump(mode="json"), "required_level": "superb"},
            *[o.model_dump(mode="json") for o in template.learning_outcomes[1:]],
        ],
        milestones=[
            {**template.milestones[0].model_dump(mode="json"), "due": "2001-01-01T09:00:00Z"},
            *[m.model_dump(mode="json") for m in template.milestones[1:]],
        ],
    )
    code, out = await cli("rehearse", str(across))
    assert code == 2, out
    found = problems_of(out)
    assert set(found) == {
        "agreement_deadline",
        "learning_outcomes.0.required_level",
        "milestones.0.due",
    }, out
    levels = sorted(level.id for level in template.rubric.levels)
    assert (
        f"'superb' is not a rubric level (choose one of {levels})"
        in found["learning_outcomes.0.required_level"]
    )


async def test_a_repeated_signer_role_or_id_is_named(cli: Cli, tmp_path: Path) -> None:
    """Two guardians: the message names both signers' ids and what to do, not just the role;
    a repeated milestone id is called a duplicate and named."""
    template = planned()
    guardian = {
        "id": "guardian-rossi",
        "name": "Maria Rossi",
        "email": "maria@example.org",
        "role": "guardian",
    }
    milestone = template.milestones[0].model_dump(mode="json")
    plan = plan_file(
        tmp_path,
        "twice.json",
        signers=[guardian, {**guardian, "id": "guardian-bianchi", "name": "Luca Bianchi"}],
        milestones=[milestone, milestone],
    )
    code, out = await cli("rehearse", str(plan))
    assert code == 2, out
    found = problems_of(out)
    assert set(found) == {"signers", "milestones"}, out
    assert found["signers"] == (
        "names 2 signers with the role 'guardian' ('guardian-rossi', 'guardian-bianchi'): each "
        "role signs at most once, so keep one guardian and remove the others"
    ), out
    assert found["milestones"] == (
        f"has duplicate ids: {milestone['id']!r} (each id once: rename or remove the repeats)"
    ), out


async def test_hints_name_the_option_given(cli: Cli) -> None:
    code, out = await cli("feedback", "it-1", "--hours", "8", "--rating", "lo-web")
    assert code == 2
    assert out.strip() == "error: --rating 'lo-web': write OUTCOME=LEVEL, e.g. --rating lo-web=good"
    # What the user typed comes back as typed: no markup, no emoji.
    code, out = await cli("feedback", "it-1", "--hours", "8", "--rating", ":warning: [b]lo-web")
    assert code == 2
    assert out.startswith("error: --rating ':warning: [b]lo-web': write OUTCOME=LEVEL"), out
    code, out = await cli("assess", "it-1", "--assessor", "tutor", "--level", "=good")
    assert code == 2
    assert out.strip() == "error: --level '=good': write OUTCOME=LEVEL, e.g. --level lo-web=good"
    # A value the submission refuses is named by the option it came from, not the field.
    code, out = await cli(
        "feedback", "it-1", "--hours", "5000", "--rating", "Web Dev=good", "--id", "[1]"
    )
    assert code == 2
    found = problems_of(out)
    assert set(found) == {"--hours", "--rating (the outcome 'Web Dev')", "--id"}, out
    assert found["--hours"] == "Input should be less than or equal to 2000"
    assert found["--id"] == "String should match pattern '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'"


HELP = [[], ["start"], ["list"], ["feedback"], ["assess"], ["extend"], ["badge", "revoke"]]


@pytest.mark.parametrize("command", HELP, ids=lambda c: " ".join(c) or "internflow")
async def test_help_fits_80_columns_and_names_the_command(cli: Cli, command: list[str]) -> None:
    code, out = await cli(*command, "--help")
    assert code == 0, out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    usage = next(line.strip() for line in lines if "Usage:" in line)
    assert usage.startswith(" ".join(["Usage: internflow", *command])), usage
    words = usage.split()
    assert all(w.strip("{}[].") == w.strip("{}[].").upper() for w in words[3 + len(command) :])
    for unreadable in ("<list[str]>", "%Y", "<planning|"):
        assert unreadable not in out, out


async def test_approve_says_what_it_records_and_points_to_paper_signature(cli: Cli) -> None:
    """`approve` records an approval with on_paper false: its help says so, and sends a paper
    signature to `paper-signature`; `report` offers the report page's badge choice."""
    code, out = await cli("approve", "--help")
    assert code == 0, out
    said = " ".join(out.replace("│", " ").split())
    assert "recorded as not on paper (on_paper false)" in said, said
    assert "For a signature on paper, use internflow paper-signature" in said, said
    assert "e.g. one given on paper" not in said
    code, out = await cli("report", "--help")
    assert code == 0, out
    said = " ".join(out.replace("│", " ").split())
    assert "--share-in-badge" in said and "Show this report in my badge" in said, said


async def test_list_shows_whole_ids_at_80_columns(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    wide = cli_for(time_skipping_env, settings)
    narrow = Cli(wide.env, columns=80)
    template = planned()
    fits = f"{template.internship_id}-cohort-2027-web"
    longest = f"{template.internship_id}-".ljust(63, "x")
    assert len(longest) == 63  # the longest id a plan may have
    async with running_worker(time_skipping_env.client, settings, pool):
        for internship_id in (fits, longest):
            plan = tmp_path / f"{internship_id}.json"
            plan.write_text(
                template.model_copy(update={"internship_id": internship_id}).model_dump_json()
            )
            code, out = await narrow("start", str(plan))
            assert code == 0, out

        async def recorded() -> bool:
            count = await pool.fetchval(
                "SELECT count(*) FROM internships WHERE internship_id = ANY($1)", [fits, longest]
            )
            return bool(count == 2)

        await eventually(recorded, "both internships in the records")

    def whole(internship_id: str, out: str) -> bool:
        return any(internship_id in line.split() for line in out.splitlines())

    # Both: the longest id does not leave room for a table; each gets a block.
    code, out = await narrow("list", "--search", template.internship_id)
    assert code == 0, out
    assert whole(fits, out) and whole(longest, out), out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80, out
    assert "2 internships" in out
    # One that fits: a table, the id whole in its column.
    code, out = await narrow("list", "--search", fits)
    assert code == 0, out
    assert whole(fits, out), out
    assert out.splitlines()[1].startswith("internship "), out
    assert out.splitlines()[-1] == "1 internship", out
    assert max(len(line.rstrip()) for line in out.splitlines()) <= 80, out
