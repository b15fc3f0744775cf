"""internflow against Temporal endpoints that require credentials, as docs/operating/production.md
configures them: a TLS-terminating gRPC proxy (nginx, tests/grpc_proxy.py) in front of the dev
server requires a client certificate on one listener (a secured self-hosted cluster) and an API
key on the other (Temporal Cloud's way). Through each, a whole internship runs to its signed
badge with the worker as production starts it (`python -m worker`, its configuration in the
environment only); a worker without the certificate or the key is refused in one line saying
what is missing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from rich.console import Console
from temporalio.testing import WorkflowEnvironment

from activities.notify import message_id_for
from api.app import create_app
from badges.bake import unbake_png
from badges.verify import local_issuer_keys, verify_credential
from cli.demo import EXAMPLE_PLAN, PartyPlayer, compress_plan, find_message
from models.plan import InternshipPlan
from models.status import Phase
from operations import internships as ops
from records.read import recorded_phase
from runtime import readiness, search_attributes
from runtime.clients import connect_temporal, temporal_connection
from runtime.settings import Settings
from tests.grpc_proxy import GrpcTlsProxy, Pki, make_pki

ROOT = Path(__file__).resolve().parent.parent
POLL = "/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowTaskQueue"
START = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def proxy(
    time_skipping_env: WorkflowEnvironment, pki: Pki, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[GrpcTlsProxy]:
    """nginx in front of the session's dev server (workflows started without time skipping
    run in real time there): one mTLS listener, one API key listener."""
    upstream = time_skipping_env.client.service_client.config.target_host
    with GrpcTlsProxy(tmp_path_factory.mktemp("nginx"), pki, upstream) as running:
        yield running


def recipe(kind: str, proxy: GrpcTlsProxy, pki: Pki) -> dict[str, str]:
    """The Temporal variables of production.md's recipes, as the test's endpoints need them.
    `mtls`: a self-hosted cluster (the address as compose names it, INTERNFLOW_TEMPORAL_ADDRESS,
    which wins). `api-key`: Temporal Cloud's variables (the CA only because the proxy's
    certificate is the test's own; Cloud's is publicly trusted)."""
    if kind == "mtls":
        return {
            "INTERNFLOW_TEMPORAL_ADDRESS": proxy.mtls_address,
            "INTERNFLOW_TEMPORAL_NAMESPACE": "internflow",
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_cert),
            "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client_cert),
            "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client_key),
        }
    return {
        "TEMPORAL_ADDRESS": proxy.api_key_address,
        "TEMPORAL_NAMESPACE": "internflow",
        "TEMPORAL_API_KEY": proxy.api_key,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca_cert),
    }


def production_environment(
    settings: Settings, tmp_path: Path, temporal: dict[str, str]
) -> dict[str, str]:
    """A worker's whole environment, as production gives it: its own secrets (no trial), JSON
    logs, the test's database, mail sink and task queue, a mounted (empty) key directory, and
    `temporal`; nothing from a developer's Temporal configuration."""
    codec_keys = tmp_path / "codec-keys.json"
    codec_keys.write_text(json.dumps({"k1": base64.b64encode(secrets.token_bytes(32)).decode()}))
    (tmp_path / "keys").mkdir(exist_ok=True)
    no_config = tmp_path / "temporal.toml"  # no profile: a developer's own file is not read
    no_config.write_text("")
    outside = {
        k: v for k, v in os.environ.items() if not k.startswith(("INTERNFLOW_", "TEMPORAL_"))
    }
    return {
        **outside,
        "INTERNFLOW_STATE_DIR": str(settings.state_dir),
        "INTERNFLOW_KEY_DIR": str(tmp_path / "keys"),
        "INTERNFLOW_LOG_FORMAT": "json",
        "INTERNFLOW_SECRET_KEY": secrets.token_urlsafe(32),
        "INTERNFLOW_CODEC_KEYS_FILE": str(codec_keys),
        "INTERNFLOW_DATABASE_URL": settings.database_url,
        "INTERNFLOW_TASK_QUEUE": settings.task_queue,
        "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
        "INTERNFLOW_API_PORT": str(settings.api_port),
        "TEMPORAL_CONFIG_FILE": str(no_config),
        **temporal,
    }


def apply(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """Give this process the INTERNFLOW_* and TEMPORAL_* variables of `env` (and no others), so
    that its own Settings() and clients are made exactly as the worker's."""
    for key in list(os.environ):
        if key.startswith(("INTERNFLOW_", "TEMPORAL_")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith(("INTERNFLOW_", "TEMPORAL_")):
            monkeypatch.setenv(key, value)
    return Settings()


async def start_worker(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def until_running(worker: asyncio.subprocess.Process, within: float = 60) -> list[Any]:
    """The worker's JSON lines up to `worker running`; fails with its output if it exits."""
    assert worker.stdout is not None
    lines: list[Any] = []
    async with asyncio.timeout(within):
        while True:
            raw = await worker.stdout.readline()
            assert raw, f"the worker exited: {lines}"
            lines.append(json.loads(raw))
            if lines[-1]["event"] == "worker running":
                return lines


async def play_to_the_end(settings: Settings, plan: InternshipPlan, within: float = 120) -> None:
    """Start the internship and play its parties (cli/demo.py's PartyPlayer) until it ends."""
    client = await connect_temporal(settings)
    handle = await ops.start_internship(client, settings, plan)
    player = PartyPlayer(client, plan, Console(quiet=True))
    records = await asyncpg.connect(settings.database_url)
    try:
        async with asyncio.timeout(within):
            while True:
                phase = await recorded_phase(records, plan.internship_id) or Phase.PLANNING
                if phase.is_final:
                    break
                await player.play(phase, datetime.now().astimezone())
                await asyncio.sleep(0.2)
    finally:
        await records.close()
    outcome = await handle.result()
    assert outcome.phase == Phase.COMPLETED, outcome.reason
    assert outcome.credential_id is not None


@pytest.mark.parametrize("kind", ["mtls", "api-key"])
async def test_an_internship_runs_to_its_badge_through_a_secured_endpoint(
    kind: str,
    proxy: GrpcTlsProxy,
    pki: Pki,
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = production_environment(settings, tmp_path, recipe(kind, proxy, pki))
    configured = apply(monkeypatch, env)
    target = temporal_connection(configured)
    port = proxy.mtls_port if kind == "mtls" else proxy.api_key_port
    assert target.address == f"127.0.0.1:{port}" and target.uses_tls
    assert target.client_certificate == (kind == "mtls")
    assert (target.api_key is not None) == (kind == "api-key")

    worker = await start_worker(env)
    try:
        started = await until_running(worker)
        running = started[-1]
        assert running["temporal"] == target.describe()
        assert running["payload_encryption"] is True
        plan = compress_plan(
            InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text()),
            datetime.now().astimezone(),
            seconds=12,
            internship_id=f"tls-{kind}-{uuid.uuid4().hex[:8]}",
        )
        await play_to_the_end(configured, plan)

        # The API through the same endpoint: every check passes, Temporal's through the proxy.
        app = create_app(configured)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == dict.fromkeys(readiness.CHECKS, "ok")
    finally:
        worker.send_signal(signal.SIGTERM)
        rest, _ = await asyncio.wait_for(worker.communicate(), 60)
    assert worker.returncode == 0, rest.decode()

    # The badge e-mail arrived, and its credential verifies against the keys the worker made.
    workflow_id = f"internship-{plan.internship_id}"
    found = find_message(configured.outbox_path, message_id_for(f"{workflow_id}/badge"))
    assert found is not None, "no badge e-mail in the outbox"
    png = next(p for p in found[1].iter_attachments() if p.get_content_type() == "image/png")
    report = verify_credential(unbake_png(png.get_content()), local_issuer_keys(tmp_path / "keys"))
    assert report.verified, report.errors

    # Everything went through this listener: the worker's polls and the test's start.
    calls = proxy.calls(port)
    assert f"{POLL} 200" in calls and f"{START} 200" in calls
    output = rest.decode()
    assert proxy.api_key not in output and "PRIVATE KEY" not in output

    # The command line, with the same environment: Temporal's own history of the internship.
    cli = [sys.executable, "-m", "cli", "history", plan.internship_id, "--raw"]
    code, printed = await run(cli, {**env, "INTERNFLOW_LOG_FORMAT": "console"})
    assert code == 0, printed
    assert "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED" in printed
    # Without the certificate, or the key: one line, exit 2.
    for variable in ("TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH"):
        env.pop(variable, None)
    env.pop("TEMPORAL_API_KEY", None)
    env["TEMPORAL_TLS"] = "true"
    code, printed = await run(cli, {**env, "INTERNFLOW_LOG_FORMAT": "console", "COLUMNS": "400"})
    assert code == 2, printed
    refusal = "requires a client certificate" if kind == "mtls" else "requires credentials"
    assert printed.startswith(f"error: Temporal at {target.address} {refusal}"), printed
    assert len(printed.strip().splitlines()) == 1 and "Traceback" not in printed
    # The API process refuses to start so, in one line; an API already running says so in
    # /readyz.
    code, printed = await run([sys.executable, "-m", "api"], env)
    assert code == 2, printed
    lines = [json.loads(line) for line in printed.splitlines()]
    assert [line["event"] for line in lines if line["level"] == "error"] == ["api.refused"]
    assert next(line for line in lines if line["level"] == "error")["error"].startswith(
        f"Temporal at {target.address} {refusal}"
    )
    app = create_app(apply(monkeypatch, env))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["temporal"].startswith(f"Temporal at {target.address} {refusal}")


async def run(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        (
            "mtls",
            {"TEMPORAL_TLS_CLIENT_CERT_PATH": None, "TEMPORAL_TLS_CLIENT_KEY_PATH": None},
            "Temporal at {address} requires a client certificate (mTLS) and none is configured: "
            "set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (or the _DATA "
            "variables)",
        ),
        (
            "mtls",
            {
                "TEMPORAL_TLS_CLIENT_CERT_PATH": "stranger_cert",
                "TEMPORAL_TLS_CLIENT_KEY_PATH": "stranger_key",
            },
            "Temporal at {address} refused the client certificate (TEMPORAL_TLS_CLIENT_CERT_PATH): "
            "it must be signed by a certificate authority the server accepts, and not expired",
        ),
        (
            "api-key",
            {"TEMPORAL_API_KEY": None, "TEMPORAL_TLS": "true"},
            "Temporal at {address} requires credentials and none are configured: set "
            "TEMPORAL_API_KEY (an API key for namespace internflow), or "
            "TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH (mTLS)",
        ),
        (
            "api-key",
            {"TEMPORAL_API_KEY": "tcak_revoked-long-ago"},
            "Temporal at {address} refused the API key in TEMPORAL_API_KEY (unauthenticated): "
            "check that it is current and meant for namespace internflow",
        ),
        (
            "api-key",
            {"TEMPORAL_TLS_SERVER_CA_CERT_PATH": None},
            "the certificate of Temporal at {address} is not trusted (UnknownIssuer): set "
            "TEMPORAL_TLS_SERVER_CA_CERT_PATH to the certificate authority that signed it, or "
            "TEMPORAL_TLS_SERVER_NAME to the name it was issued for",
        ),
    ],
    ids=["no certificate", "another CA's certificate", "no API key", "wrong API key", "no CA"],
)
async def test_a_worker_without_its_credentials_is_refused_saying_what_is_missing(
    kind: str,
    change: dict[str, str | None],
    expected: str,
    proxy: GrpcTlsProxy,
    pki: Pki,
    settings: Settings,
    tmp_path: Path,
) -> None:
    temporal = recipe(kind, proxy, pki)
    for key, value in change.items():
        if value is None:
            temporal.pop(key, None)
        else:
            temporal[key] = str(getattr(pki, value, value))
    env = production_environment(settings, tmp_path, temporal)
    worker = await start_worker(env)
    output, _ = await asyncio.wait_for(worker.communicate(), 60)
    text = output.decode()
    assert worker.returncode == 2, text
    lines = [json.loads(line) for line in text.splitlines()]  # every line JSON: no traceback
    errors = [line for line in lines if line["level"] == "error"]
    assert len(errors) == 1, lines
    address = proxy.mtls_address if kind == "mtls" else proxy.api_key_address
    assert errors[0]["event"] == "worker.refused"
    assert errors[0]["error"] == expected.format(address=address)
    assert "worker running" not in text and "Traceback" not in text
    assert proxy.api_key not in text and "tcak_revoked-long-ago" not in text


def documented(heading: str) -> dict[str, str]:
    """The variables of the `sh` block under `heading` in docs/operating/production.md."""
    text = (ROOT / "docs/operating/production.md").read_text()
    section = text.split(f"\n{heading}\n", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return dict(line.split("=", 1) for line in block.splitlines() if line)


def test_the_documented_recipes_are_the_tested_ones(proxy: GrpcTlsProxy, pki: Pki) -> None:
    """production.md's recipes set exactly the variables the tests above run with (the Cloud
    recipe there adds the CA of the test's own proxy certificate), and its table of search
    attributes is runtime/search_attributes.py's."""
    cloud = set(recipe("api-key", proxy, pki)) - {"TEMPORAL_TLS_SERVER_CA_CERT_PATH"}
    assert set(documented("### Temporal Cloud")) == cloud
    assert set(documented("### A self-hosted cluster with mTLS")) == set(recipe("mtls", proxy, pki))
    text = (ROOT / "docs/operating/production.md").read_text()
    table = text.split("\n### Search attributes\n", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines() if line.startswith("| `")]
    assert [(name.strip(" `"), kind.strip()) for name, kind in rows] == [
        (key.name, readiness.type_name(key.indexed_value_type)) for key in search_attributes.ALL
    ]
