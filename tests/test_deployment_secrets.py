"""No deployment with public secrets: the settings check (unit tests) and the processes people
start (the API, the worker, `internflow serve|worker|migrate|start`), refused with a message
that names the variable, unless INTERNFLOW_DEMO=true says it is a trial."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import sys
from pathlib import Path

import pytest
import structlog

from embedded.ports import free_port
from runtime.deployment import (
    PUBLIC_CODEC_KEYS,
    SERVER_NEEDS,
    InsecureConfiguration,
    is_placeholder,
    problems,
    require_secrets,
)
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CODEC_KEYS = ROOT / "deploy/secrets/codec-keys.example.json"


def own_codec_keys(tmp_path: Path) -> Path:
    path = tmp_path / "codec-keys.json"
    path.write_text(json.dumps({"key-1": base64.b64encode(secrets.token_bytes(32)).decode()}))
    return path


def good(tmp_path: Path, **overrides: object) -> Settings:
    """Settings a production process accepts: every secret its own."""
    values: dict[str, object] = {
        "state_dir": tmp_path,
        "secret_key": secrets.token_urlsafe(32),
        "codec_keys_file": own_codec_keys(tmp_path),
        "database_url": f"postgresql://internflow_app:{secrets.token_hex(16)}@db:5432/internflow",
        "database_owner_url": f"postgresql://internflow:{secrets.token_hex(16)}@db/internflow",
    }
    values.update(overrides)
    return Settings.model_validate(values)


ALL_NEEDS = (*SERVER_NEEDS, "database_owner")


def test_own_secrets_pass(tmp_path: Path) -> None:
    assert problems(good(tmp_path), ALL_NEEDS) == []
    require_secrets(good(tmp_path), ALL_NEEDS)


def test_missing_secrets_are_each_named(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)  # the defaults: nothing configured
    found = problems(settings, ALL_NEEDS)
    assert len(found) == 4
    for variable in (
        "INTERNFLOW_SECRET_KEY is not set",
        "INTERNFLOW_CODEC_KEYS_FILE (or INTERNFLOW_CODEC_KEYS) is not set",
        "INTERNFLOW_DATABASE_URL has no password",
        "INTERNFLOW_DATABASE_OWNER_URL is not set",
    ):
        assert any(problem.startswith(variable) for problem in found), (variable, found)
    # Only what is asked for.
    assert problems(settings, ["database"]) == [found[2]]


@pytest.mark.parametrize(
    ("override", "variable"),
    [
        ({"secret_key": "secret-key-placeholder-not-secret"}, "INTERNFLOW_SECRET_KEY"),
        ({"secret_key": "replace-me-with-32-random-bytes"}, "INTERNFLOW_SECRET_KEY"),
        ({"secret_key": "short"}, "INTERNFLOW_SECRET_KEY"),
        ({"codec_keys_file": EXAMPLE_CODEC_KEYS}, "the codec keys example-not-secret"),
        (
            {
                "codec_keys": json.dumps({"key-2027-01": next(iter(PUBLIC_CODEC_KEYS))}),
                "codec_keys_file": None,
            },
            "the codec keys key-2027-01",
        ),
        ({"codec_keys": '{"a": "%%%"}', "codec_keys_file": None}, "INTERNFLOW_CODEC_KEYS"),
        (
            {"database_url": "postgresql://internflow_app:internflow-placeholder@db/internflow"},
            "INTERNFLOW_DATABASE_URL has a public placeholder password",
        ),
        (
            {"database_url": "postgresql://internflow_app:replace-me@db/internflow"},
            "INTERNFLOW_DATABASE_URL",
        ),
        (
            {"database_owner_url": "postgresql://internflow:internflow-placeholder@db/internflow"},
            "INTERNFLOW_DATABASE_OWNER_URL",
        ),
    ],
)
def test_public_placeholders_are_refused_naming_the_variable(
    tmp_path: Path, override: dict[str, object], variable: str
) -> None:
    settings = good(tmp_path, **override)
    found = problems(settings, ALL_NEEDS)
    assert len(found) == 1 and variable in found[0], found
    with pytest.raises(InsecureConfiguration, match=variable.split()[0]):
        require_secrets(settings, ALL_NEEDS)


def test_the_published_placeholders_are_known() -> None:
    """Every value deploy/env.example and the example codec key file publish is refused."""
    env_example = (ROOT / "deploy/env.example").read_text()
    published = {
        line.partition("=")[2]
        for line in env_example.splitlines()
        if "=" in line and not line.startswith("#") and ("PASSWORD" in line or "SECRET" in line)
    }
    assert published and all(is_placeholder(value) for value in published), published
    example = json.loads(EXAMPLE_CODEC_KEYS.read_text())
    assert set(example.values()) <= PUBLIC_CODEC_KEYS


def test_demo_accepts_them_with_a_warning(tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tmp_path, secret_key="secret-key-placeholder-not-secret", demo=True
    )
    with structlog.testing.capture_logs() as logs:
        require_secrets(settings, SERVER_NEEDS)
    assert [entry["event"] for entry in logs] == ["secrets.trial_only"]
    assert logs[0]["log_level"] == "warning" and len(logs[0]["problems"]) == 3


# ---- the processes people start -----------------------------------------------------------------


def placeholder_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What compose used to fall back to when .env was missing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERNFLOW_")}
    return {
        **env,
        "INTERNFLOW_STATE_DIR": str(tmp_path),
        "INTERNFLOW_SECRET_KEY": "secret-key-placeholder-not-secret",
        "INTERNFLOW_CODEC_KEYS_FILE": str(EXAMPLE_CODEC_KEYS),
        "INTERNFLOW_CODEC_KEY_ID": "example-not-secret",
        # Port 1: nothing listens there (a port picked free could meanwhile be another test's).
        "INTERNFLOW_DATABASE_URL": "postgresql://internflow_app:internflow-placeholder@127.0.0.1:1/x",
        "INTERNFLOW_API_PORT": str(free_port()),
        "INTERNFLOW_LOG_FORMAT": "json",
        **extra,
    }


async def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "api"],
        [sys.executable, "-m", "worker"],
        [sys.executable, "-m", "cli", "serve"],
        [sys.executable, "-m", "cli", "worker"],
    ],
    ids=["python -m api", "python -m worker", "internflow serve", "internflow worker"],
)
async def test_a_server_process_refuses_to_start_with_public_secrets(
    tmp_path: Path, argv: list[str]
) -> None:
    code, output = await run(argv, placeholder_environment(tmp_path))
    assert code == 2, output
    lines = [json.loads(line) for line in output.splitlines()]  # every line JSON
    refused = [line for line in lines if line.get("level") == "error"]
    assert len(refused) == 1, lines
    message = refused[0]["error"]
    assert message.startswith("refusing to start with missing or public secrets")
    for variable in (
        "INTERNFLOW_SECRET_KEY",
        "INTERNFLOW_CODEC_KEYS_FILE",
        "INTERNFLOW_DATABASE_URL",
    ):
        assert variable in message
    assert "INTERNFLOW_DEMO=true" in message
    assert "Traceback" not in output
    assert not (tmp_path / "secret").exists(), "nothing was made before the refusal"


async def test_cli_commands_refuse_what_they_need_and_name_it(tmp_path: Path) -> None:
    env = placeholder_environment(tmp_path, INTERNFLOW_LOG_FORMAT="console", COLUMNS="300")
    env["INTERNFLOW_CODEC_KEYS_FILE"] = str(own_codec_keys(tmp_path))
    env["INTERNFLOW_CODEC_KEY_ID"] = "key-1"
    plan = ROOT / "examples/plan.json"
    code, output = await run([sys.executable, "-m", "cli", "start", str(plan)], env)
    assert code == 2 and "INTERNFLOW_DATABASE_URL has a public placeholder password" in output
    assert "INTERNFLOW_CODEC_KEYS_FILE" not in output  # its own keys are fine
    code, output = await run([sys.executable, "-m", "cli", "migrate"], env)
    assert code == 2 and "INTERNFLOW_DATABASE_OWNER_URL is not set" in output
    code, output = await run([sys.executable, "-m", "cli", "keys", "list"], env)
    assert code == 2 and "INTERNFLOW_DATABASE_URL" in output
    # A trial says so, and goes on (here to find no database).
    env["INTERNFLOW_DEMO"] = "true"
    code, output = await run([sys.executable, "-m", "cli", "keys", "list"], env)
    assert code == 75 and "cannot reach PostgreSQL" in output  # down, not a mistake: try again
    assert "secrets.trial_only" in output
