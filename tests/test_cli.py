"""The `internflow` command as a user runs it (a subprocess): keys, batch start, list, history,
badges; errors a user can cause end with exit code 2 and a message, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from cli.main import app
from embedded.ports import free_port
from runtime.settings import Settings
from tests.helpers import running_worker
from tests.test_api_harness import planned

COMMANDS = [
    [],
    ["start"],
    ["list"],
    ["history"],
    ["serve"],
    ["approve"],
    ["paper-signature"],
    ["feedback"],
    ["assess"],
    ["validate"],
    ["self-assess"],
    ["evaluate-placement"],
    ["companies"],
    ["institutions"],
    ["institution", "add"],
    ["institution", "rename"],
    ["institution", "identify"],
    ["company", "rename"],
    ["extend"],
    ["badge", "revoke"],
    ["badge", "europass"],
    ["keys", "create"],
    ["keys", "list"],
    ["report"],
    ["demo"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "internflow")
def test_every_command_explains_itself(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


class Cli:
    def __init__(self, env: dict[str, str], columns: int = 200) -> None:
        self.env = env
        self.columns = columns

    async def __call__(self, *args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            *args,
            env={**self.env, "COLUMNS": str(self.columns)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        text = output.decode()
        assert "Traceback" not in text, text
        return process.returncode, text


def cli_for(env: WorkflowEnvironment, settings: Settings) -> Cli:
    return Cli(
        {
            **os.environ,
            "INTERNFLOW_STATE_DIR": str(settings.state_dir),
            "INTERNFLOW_TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "INTERNFLOW_TEMPORAL_NAMESPACE": env.client.namespace,
            "INTERNFLOW_TASK_QUEUE": settings.task_queue,
            "INTERNFLOW_DATABASE_URL": settings.database_url,
            "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
            "INTERNFLOW_LOG_LEVEL": "warning",
            # A trial: the test's Temporal runs without payload encryption.
            "INTERNFLOW_DEMO": "true",
        }
    )


async def test_keys_are_created_listed_and_revoked(
    time_skipping_env: WorkflowEnvironment, settings: Settings, pool: asyncpg.Pool
) -> None:
    cli = cli_for(time_skipping_env, settings)
    code, out = await cli("keys", "create", "registry-office", "--role", "admin")
    assert code == 0, out
    key = next(line for line in out.splitlines() if line.startswith("ifk_"))
    key_id = key.split("_")[1]
    code, out = await cli("keys", "list")
    assert code == 0 and key_id in out and "registry-office" in out and key not in out
    assert (await cli("keys", "revoke", key_id))[0] == 0
    code, out = await cli("keys", "revoke", key_id)
    assert code == 2 and "already revoked" in out
    code, out = await cli("keys", "create", "x", "--role", "root")
    assert code == 2


async def test_batch_start_list_history_and_user_errors(
    time_skipping_env: WorkflowEnvironment,
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    cli = cli_for(time_skipping_env, settings)
    template = planned()
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(template.model_dump_json())
    ids = [f"{template.internship_id}-{n}" for n in range(2)]
    rows = tmp_path / "interns.csv"
    rows.write_text(
        "internship_id,intern.name,intern.email\n"
        f"{ids[0]},Anna Rossi,anna@example.org\n"
        f"{ids[1]},Ben Okafor,ben@example.org\n"
    )
    async with running_worker(time_skipping_env.client, settings, pool):
        code, out = await cli("start", str(plan_file), "--batch", str(rows))
        assert code == 0, out
        assert "2 started, 0 already running, 0 failed" in out
        for _ in range(100):
            if (
                await pool.fetchval(
                    "SELECT count(*) FROM audit_events WHERE internship_id = ANY($1)", ids
                )
                == 2
            ):
                break
            await asyncio.sleep(0.1)

        code, out = await cli("list", "--json", "--search", template.internship_id)
        assert code == 0, out
        assert sorted(item["internship_id"] for item in json.loads(out)) == ids
        code, out = await cli("history", ids[0], "--json")
        assert code == 0 and json.loads(out)[0]["key"] == "planning"
        code, out = await cli("history", ids[0], "--raw")
        assert code == 0
        assert json.loads(out.splitlines()[0])["eventType"] == (
            "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
        )
        code, out = await cli("pause", ids[0], "--reason", "illness")
        assert code == 2 and "planning" in out
        # Status comes from the records: it answers with Temporal out of reach.
        unreachable = Cli({**cli.env, "INTERNFLOW_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"})
        code, out = await unreachable("status", ids[0])
        assert code == 0, out
        # First (on stderr) the one line that says Temporal is down and what the records are
        # as of (the latest step recorded, in UTC); then the status from the records.
        note, _, body = out.partition("\n")
        assert note.startswith("note: Temporal is unreachable, so no internship moves"), note
        assert re.search(r"as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", note), note
        status = json.loads(body)
        assert status["phase"] == "planning"
        assert status["approvals"] == {"intern": False, "tutor": False, "mentor": False}
        assert [d["what"] for d in status["deadlines"]] == ["agreement_deadline", "start", "end"]
        assert status["next_deadline"] == status["deadlines"][0]["at"]
        code, out = await unreachable("status", ids[0], "--live")
        assert code == 75 and "cannot reach Temporal" in out  # down: the same can work later
        code, out = await cli("withdraw", ids[1], "--reason", "moved abroad")
        assert code == 0 and "accepted withdrawal" in out
        # The same id twice in one batch (a copied line): the second row is a duplicate, named
        # as such, not "already running".
        twice = tmp_path / "twice.csv"
        twice.write_text(
            "internship_id,intern.name,intern.email\n"
            f"{ids[0]},Anna Rossi,anna@example.org\n"
            f"{ids[0]},Anna Rossi,anna@example.org\n"
        )
        code, out = await cli("start", str(plan_file), "--batch", str(twice))
        assert code == 2, out
        assert "0 started, 1 already running, 1 failed" in out, out
        said = " ".join(out.split())
        assert f"internship_id: duplicate id {ids[0]!r} (row 1 has it already)" in said, out

    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**json.loads(plan_file.read_text()), "weekly_hours": 99}))
    code, out = await cli("start", str(broken))
    assert code == 2 and "weekly_hours" in out
    code, out = await cli("status", "nobody-here")
    assert code == 2 and "no internship" in out
    code, out = await cli("history", "nobody-here")
    assert code == 2
    code, out = await cli("badge", "revoke", "nobody-here", "--reason", "x")
    assert code == 2 and "neither a credential id" in out
    code, out = await cli("start")
    assert code == 2 and "--batch" in out
