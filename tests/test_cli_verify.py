"""`internflow verify` as a user runs it (a subprocess), on badges issued by the real badge
activity into a real database, with the status lists served by a real `internflow serve`: the
verdict and exit code with the issuer running and stopped, and output that is always readable
(valid JSON with --json, whatever the terminal width; never a traceback)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from typer.testing import CliRunner

from cli.main import app
from models.activities import BadgeRequest
from runtime.settings import Settings
from tests.helpers import issue_badge_through_activities, load_outbox, sample_plan

VERIFIED, NOT_VALID, USAGE_ERROR, STATUS_NOT_CHECKED = 0, 1, 2, 3


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def headline(self) -> str:
        return self.out.splitlines()[0] if self.out else ""

    def json(self) -> dict[str, Any]:
        document = json.loads(self.out)
        assert isinstance(document, dict)
        return document


class Cli:
    """`python -m cli ...` with the test's settings; a narrow terminal unless told otherwise."""

    def __init__(self, settings: Settings) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INTERNFLOW_")}
        self.env = {
            **env,
            "INTERNFLOW_STATE_DIR": str(settings.state_dir),
            "INTERNFLOW_DATABASE_URL": settings.database_url,
            "INTERNFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
            "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
            "INTERNFLOW_API_PORT": str(settings.api_port),
            "INTERNFLOW_LOG_LEVEL": "warning",
            # A trial: the test's own secrets (the secret key made on first use, no codec keys).
            "INTERNFLOW_DEMO": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "COLUMNS": "40",
        }

    async def __call__(self, *args: str) -> Result:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cli",
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode is not None
        result = Result(process.returncode, out.decode(), err.decode())
        assert "Traceback" not in result.out + result.err, result
        return result


@dataclass(frozen=True)
class Issued:
    credential_id: str
    credential: str
    """The stored credential: JSON text of the signed document."""
    png: bytes
    """The badge image from the intern's e-mail, with the credential baked in."""
    institution_id: str
    intern_email: str


async def issue_badge(pool: asyncpg.Pool, settings: Settings) -> Issued:
    """One badge issued (and e-mailed to the mail sink) by the real badge activity."""
    now = datetime.now(UTC)
    plan = sample_plan(now - timedelta(days=200))
    request = BadgeRequest(
        plan=plan,
        achieved_levels={o.id: "good" for o in plan.learning_outcomes},
        issued_at=now - timedelta(hours=1),
        workflow_id=f"internship-{plan.internship_id}",
    )
    credential_id = await issue_badge_through_activities(pool, settings, request)
    credential = await pool.fetchval(
        "SELECT credential FROM credentials WHERE credential_id = $1", credential_id
    )
    message = next(
        m
        for m in load_outbox(settings)
        if m["X-Internflow-Internship"] == plan.internship_id and m["X-Internflow-Kind"] == "badge"
    )
    png = next(p for p in message.iter_attachments() if p.get_content_type() == "image/png")
    return Issued(
        credential_id, credential, png.get_content(), plan.institution.id, plan.intern.email
    )


def tampered(credential: str) -> str:
    """The credential with its achievement's name changed after signing."""
    document = json.loads(credential)
    document["credentialSubject"]["achievement"]["name"] += " (with honours)"
    return json.dumps(document)


async def _answers(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
            return (await http.get(url)).status_code == 200
    except httpx.TransportError:
        return False


def _refuses(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return False
    except OSError:
        return True


def _read(log: Path) -> str:
    return log.read_text(errors="replace")


@asynccontextmanager
async def issuer_api(cli: Cli, settings: Settings, log: Path) -> AsyncIterator[None]:
    """`internflow serve` (the issuer's public API, which serves its status lists) until the
    block ends; afterwards nothing listens on its port."""
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "cli", "serve", env=cli.env, stdout=output, stderr=output
        )
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while not await _answers(f"{settings.public_base_url}/healthz"):
            assert process.returncode is None, _read(log)
            assert asyncio.get_running_loop().time() < deadline, _read(log)
            await asyncio.sleep(0.1)
        yield
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert _refuses(settings.api_host, settings.api_port)


async def test_verdicts_with_the_issuer_running_and_stopped(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    cli = Cli(settings)
    good, to_revoke, to_suspend = [await issue_badge(pool, settings) for _ in range(3)]
    good_png = tmp_path / "badge.png"
    good_png.write_bytes(good.png)
    revoked = tmp_path / "revoked.json"
    revoked.write_text(to_revoke.credential)
    suspended = tmp_path / "suspended.json"
    suspended.write_text(to_suspend.credential)
    forged = tmp_path / "tampered.json"
    forged.write_text(tampered(good.credential))
    origin = settings.public_base_url

    async with issuer_api(cli, settings, tmp_path / "api.log"):
        result = await cli("verify", str(good_png), "--email", good.intern_email)
        assert result.code == VERIFIED, result
        assert result.headline.startswith("VERIFIED"), result
        assert "checked with the issuer: not revoked, not suspended" in result.out
        assert good.credential_id in result.out and "recipient:  matches" in result.out

        result = await cli("verify", str(good_png), "--email", "someone.else@example.org")
        assert result.code == NOT_VALID, result
        assert result.headline.startswith("NOT VALID"), result
        assert "recipient:  does NOT match" in result.out

        report = (await cli("verify", str(good_png), "--json")).json()  # COLUMNS=40
        assert report["verdict"] == "verified" and report["verified"] is True
        assert report["status_checked"] is True and report["status_not_checked_because"] == []
        assert (report["revoked"], report["suspended"]) == (False, False)
        assert report["checks"]["status"] is True and report["exit_code"] == VERIFIED

        # Not yet revoked: verified; revoked by the issuer: not valid from then on.
        assert (await cli("verify", str(revoked))).code == VERIFIED
        assert (await cli("badge", "revoke", to_revoke.credential_id, "--reason", "x")).code == 0
        assert (await cli("badge", "suspend", to_suspend.credential_id, "--reason", "y")).code == 0
        result = await cli("verify", str(revoked))
        assert result.code == NOT_VALID, result
        assert result.headline == "NOT VALID: the badge has been revoked by its issuer.", result
        report = (await cli("verify", str(revoked), "--json")).json()
        assert (report["verdict"], report["verified"], report["revoked"]) == (
            "revoked",
            False,
            True,
        )
        assert report["status_checked"] is True and report["exit_code"] == NOT_VALID

        result = await cli("verify", str(suspended))
        assert result.code == NOT_VALID, result
        assert result.headline == "NOT VALID: the badge is suspended by its issuer.", result

        result = await cli("verify", str(forged), "--json")
        assert result.code == NOT_VALID, result
        report = result.json()
        assert report["verdict"] == "not valid" and report["checks"]["proof"] is False
        assert "status" not in report["checks"]

    # The issuer is stopped: the signature still holds, the status cannot be known.
    result = await cli("verify", str(good_png))
    assert result.code == STATUS_NOT_CHECKED, result
    assert result.headline.startswith("STATUS NOT CHECKED"), result
    assert f"the issuer at {origin} could not be reached (connection refused)" in result.out
    assert "VERIFIED" not in result.out

    result = await cli("verify", str(good_png), "--json")
    assert result.code == STATUS_NOT_CHECKED, result
    report = result.json()
    assert (report["verdict"], report["verified"], report["status_checked"]) == (
        "status not checked",
        False,
        False,
    )
    assert report["status_not_checked_because"] == [
        f"the issuer at {origin} could not be reached (connection refused)"
    ]
    assert report["errors"] == [] and "status" not in report["checks"]
    assert report["checks"]["proof"] is True and report["exit_code"] == STATUS_NOT_CHECKED

    for badge in (revoked, suspended):  # it cannot know they were revoked, and never says valid
        result = await cli("verify", str(badge))
        assert result.code == STATUS_NOT_CHECKED, result
        assert "VERIFIED" not in result.out

    result = await cli("verify", str(forged))
    assert result.code == NOT_VALID, result
    assert result.headline.startswith("NOT VALID"), result
    assert "proof:" in result.out


async def test_an_issuer_that_answers_with_an_error_is_not_a_verdict(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Something else answers at the issuer's address (here: 404 for every URL): the status is not
    checked, and the output says what the issuer answered. A tampered badge is refused without
    asking anyone."""
    issued = await issue_badge(pool, settings)
    badge = tmp_path / "badge.json"
    badge.write_text(issued.credential)
    forged = tmp_path / "tampered.json"
    forged.write_text(tampered(issued.credential))
    requests: list[bytes] = []

    async def not_found(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    cli = Cli(settings)
    server = await asyncio.start_server(not_found, settings.api_host, settings.api_port)
    async with server:
        refused = await cli("verify", str(forged), "--json")
        assert requests == []
        result = await cli("verify", str(badge), "--json")
    assert refused.code == NOT_VALID and refused.json()["verdict"] == "not valid", refused
    assert requests == [
        b"GET /issuers/%s/status/revocation HTTP/1.1" % issued.institution_id.encode()
    ]
    assert result.code == STATUS_NOT_CHECKED, result
    report = result.json()
    assert report["verdict"] == "status not checked"
    reasons = report["status_not_checked_because"]
    assert len(reasons) == 1, reasons  # the one status entry: the revocation list
    for reason in reasons:
        assert reason.startswith(f"the issuer at {settings.public_base_url} answered HTTP 404")


def test_unreadable_files_and_garbage_end_with_a_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERNFLOW_")}
    env.update(INTERNFLOW_STATE_DIR=str(tmp_path / "state"), COLUMNS="40")

    def verify(*args: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", "cli", "verify", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "Traceback" not in done.stdout + done.stderr, done
        return Result(done.returncode, done.stdout, done.stderr)

    missing = verify(str(tmp_path / "missing.png"))
    assert missing.code == USAGE_ERROR, missing
    assert missing.err.startswith(f"error: cannot read {tmp_path / 'missing.png'}"), missing
    assert missing.out == "", missing
    directory = verify(str(tmp_path), "--json")
    assert directory.code == USAGE_ERROR and "cannot read" in directory.err, directory

    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    result = verify(str(garbage), "--json")
    assert result.code == NOT_VALID, result
    report = result.json()
    assert report["verdict"] == "not valid" and report["checks"]["parse"] is False

    broken = tmp_path / "broken.json"
    broken.write_text('{"@context": [')
    result = verify(str(broken))
    assert result.code == NOT_VALID, result
    assert result.headline.startswith("NOT VALID"), result
    assert "parse: not JSON" in result.out


def test_help_documents_the_exit_codes() -> None:
    result = CliRunner().invoke(app, ["verify", "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    for line in ("0: verified", "1: not valid", "2: usage error", "3: status not checked"):
        assert line in result.output, line
