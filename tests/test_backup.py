"""`internflow backup` and `restore` as a school would use them, on the real embedded stack:
back up while internships run, lose the state dir, restore it elsewhere (another directory, other
ports), start again; every internship finishes with exactly one badge, the badges issued before
still verify with the restored keys, and nothing is recorded or sent twice."""

from __future__ import annotations

import asyncio
import email
import email.policy
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest
from rich.console import Console
from temporalio.client import Client

from badges.keyring import KeyRing
from cli.demo import EXAMPLE_PLAN, PartyPlayer, compress_plan
from embedded.backup import read_manifest
from embedded.ports import free_port, throwaway_settings
from embedded.postgres import EmbeddedPostgres
from embedded.stack import EmbeddedStack
from issuance.issuers import institution_key_dir, institution_ring
from models.ids import badge_mail_id, message_id_for
from models.plan import InternshipPlan
from models.status import Phase
from operations import internships as ops
from records.read import recorded_phase
from runtime.clients import connect_temporal
from runtime.codec import new_key
from runtime.settings import Settings
from workflows.internship import workflow_id_for

ROOT = Path(__file__).resolve().parent.parent
BADGED = 3
"""Internships that have their badge before the backup."""
IN_FLIGHT = 20
"""Internships running when the backup is taken: approved, not yet in their evaluation."""
PHASES = ["planning", "awaiting_start", "in_progress", "evaluation", "certification", "completed"]


# ---- the command line and the stack, as a user runs them ---------------------------------------


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an `internflow` command for the stack of `settings`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTERNFLOW_")}
    env.update(
        {
            "INTERNFLOW_STATE_DIR": str(settings.state_dir),
            "INTERNFLOW_TEMPORAL_ADDRESS": settings.temporal_address,
            "INTERNFLOW_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
            "INTERNFLOW_DATABASE_URL": settings.database_url,
            "INTERNFLOW_SMTP_PORT": str(settings.smtp_port),
            "INTERNFLOW_API_PORT": str(settings.api_port),
            "INTERNFLOW_LOG_LEVEL": "warning",
            "COLUMNS": "400",
            **extra,
        }
    )
    return env


async def internflow(env: dict[str, str], *args: str, within: float = 120) -> tuple[int, str]:
    """Run `internflow ARGS` (python -m cli); its exit code and output. Never a traceback."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), within)
    text = output.decode()
    assert "Traceback" not in text, text
    assert process.returncode is not None
    return process.returncode, text


class Up:
    """`internflow up` in a process of its own, stopped with Ctrl-C (SIGINT)."""

    def __init__(self, settings: Settings, env: dict[str, str], log: Path) -> None:
        self.settings = settings
        self.env = env
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Up:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "cli", "up", env=self.env, cwd=ROOT, stdout=out, stderr=out
            )
        deadline = time.monotonic() + 90
        while EmbeddedStack.find_running(self.settings) is None:
            if self.process.returncode is not None:
                raise AssertionError(f"internflow up exited: {self.log.read_text()[-3000:]}")
            assert time.monotonic() < deadline, "internflow up did not start within 90 s"
            await asyncio.sleep(0.2)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(self.process.wait(), 60)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise AssertionError("internflow up did not stop within 60 s on Ctrl-C") from None
        assert self.process.returncode == 0, self.log.read_text()[-3000:]


async def play(
    settings: Settings,
    client: Client,
    plans: Sequence[InternshipPlan],
    until: Callable[[dict[str, Phase | None]], bool],
    within: float,
) -> dict[str, Phase | None]:
    """Play every internship's parties (as the demo does) until `until(phases)` holds."""
    players = {plan.internship_id: PartyPlayer(client, plan, Console(quiet=True)) for plan in plans}
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(settings.database_url)
    try:
        while True:
            phases = {iid: await recorded_phase(conn, iid) for iid in players}
            if until(phases):
                return phases
            assert time.monotonic() < deadline, f"not there after {within} s: {phases}"
            now = datetime.now().astimezone()
            for iid, phase in phases.items():
                if phase is not None and not phase.is_final:
                    await players[iid].play(phase, now)
            await asyncio.sleep(0.25)
    finally:
        await conn.close()


def outbox(directory: Path) -> list[EmailMessage]:
    messages = []
    for path in sorted(directory.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def attachment(message: EmailMessage, filename: str) -> bytes:
    for part in message.iter_attachments():
        if part.get_filename() == filename:
            content: bytes = part.get_payload(decode=True)
            return content
    raise AssertionError(f"no {filename} in the e-mail")


def damaged_copy(archive: Path, target: Path) -> None:
    """The archive with one byte of its database dump changed, its manifest as it was."""
    with tarfile.open(archive, "r:gz") as source, tarfile.open(target, "w:gz") as out:
        for member in source.getmembers():
            extracted = source.extractfile(member)
            assert extracted is not None
            data = bytearray(extracted.read())
            if member.name == "postgres/internflow.dump":
                data[len(data) // 2] ^= 0xFF
            out.addfile(member, io.BytesIO(bytes(data)))


def changed(settings: Settings, **changes: object) -> Settings:
    values = {name: getattr(settings, name) for name in Settings.model_fields}
    return Settings(**{**values, **changes})


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def sent_in_backup(settings: Settings) -> set[str]:
    """The Message-IDs the restored database records as sent: what the backup knew went out.
    Read from the restored data dir by a PostgreSQL of the test's own, before the stack starts."""
    _, port = settings.database_host_port
    own = changed(
        settings, database_url=settings.database_url.replace(f":{port}/", f":{free_port()}/")
    )
    async with EmbeddedPostgres(own):
        conn = await asyncpg.connect(own.database_owner_dsn)
        try:
            rows = await conn.fetch("SELECT message_id FROM notifications WHERE status = 'sent'")
        finally:
            await conn.close()
    return {row["message_id"] for row in rows}


# ---- the drill ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(420)
async def test_backup_while_running_restore_elsewhere_and_every_internship_finishes(
    tmp_path: Path,
) -> None:
    codec_keys = json.dumps({"backup-test": new_key()})
    first = throwaway_settings(tmp_path / "school" / "state", codec_keys=codec_keys)
    first_env = environment(first, INTERNFLOW_CODEC_KEYS=codec_keys)
    archive = tmp_path / "usb" / "internflow.tar.gz"
    archive.parent.mkdir()
    outputs: list[str] = []

    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    async with Up(first, first_env, tmp_path / "up-1.log"):
        client = await connect_temporal(first)
        now = datetime.now().astimezone()
        badged = [
            compress_plan(example, now, 40, f"badged-{n}", lead_seconds=6) for n in range(BADGED)
        ]
        flying = [
            compress_plan(example, now, 130, f"flying-{n:02d}", lead_seconds=20)
            for n in range(IN_FLIGHT)
        ]
        for plan in [*badged, *flying]:
            await ops.start_internship(client, first, plan)
        agreed = {Phase.AWAITING_START, Phase.IN_PROGRESS}
        await play(
            first,
            client,
            [*badged, *flying],
            lambda phases: (
                all(phases[p.internship_id] == Phase.COMPLETED for p in badged)
                and all(phases[p.internship_id] in agreed for p in flying)
            ),
            within=120,
        )

        # A backup never overwrites, and nothing is restored onto a running stack.
        archive.write_bytes(b"an older file")
        code, out = await internflow(first_env, "backup", str(archive))
        assert code == 2 and "exists" in out and len(out.strip().splitlines()) == 1, out
        archive.unlink()
        code, out = await internflow(first_env, "restore", str(archive))
        assert code == 2 and "does not exist" in out, out

        # An institution on did:web has keys of its own: they are in the backup too.
        own_key = institution_ring(first, "school-x").signing_key.public_key_multibase
        code, out = await internflow(first_env, "backup", str(archive))
        outputs.append(out)
        assert code == 0, out
        # The stack goes on: its worker and API were resumed, and the API answers.
        stack = EmbeddedStack.find_running(first)
        assert stack is not None
        for name, record in stack.processes.items():
            if name in ("worker", "api"):
                assert psutil.Process(record.pid).status() != psutil.STATUS_STOPPED, name
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{stack.api_url}/healthz", timeout=10)).status_code == 200
        assert "online" in out and f"{BADGED + IN_FLIGHT} internships" in out, out
        assert f"{BADGED} badges" in out, out
        code, out = await internflow(first_env, "restore", str(archive))
        assert code == 2 and "running" in out and len(out.strip().splitlines()) == 1, out

    assert mode(archive) == 0o600
    manifest = read_manifest(archive)
    assert manifest.online and manifest.paused_seconds is not None
    assert manifest.credentials == BADGED
    assert sum(manifest.internships.values()) == BADGED + IN_FLIGHT
    assert manifest.internships[Phase.COMPLETED.value] == BADGED
    assert set(manifest.members) >= {
        "postgres/internflow.dump",
        "temporal/temporal.sqlite",
        "keys/key-1.pem",
        "keys/issuers/school-x/key-1.pem",
        "secret",
        "codec-keys.json",
    }
    secrets = [
        (first.state_dir / "secret").read_text().strip(),
        json.loads(codec_keys)["backup-test"],
        first.database_url.split(":")[2].split("@")[0],  # the application role's password
    ]

    # The machine is lost; the mail the stack sent is in its recipients' mailboxes.
    mailboxes = tmp_path / "mailboxes"
    shutil.move(first.outbox_path, mailboxes)
    shutil.rmtree(first.state_dir)
    sent_before = outbox(mailboxes)
    badge_mails = {
        plan.internship_id: [
            m for m in sent_before if m["X-Internflow-Internship"] == plan.internship_id
        ]
        for plan in badged
    }
    for plan in badged:
        badge = [m for m in badge_mails[plan.internship_id] if m["X-Internflow-Kind"] == "badge"]
        assert len(badge) == 1
        (tmp_path / f"{plan.internship_id}.json").write_bytes(
            attachment(badge[0], "credential.json")
        )
    party_link = next(
        match.group(0)
        for message in sent_before
        if message["X-Internflow-Kind"] == "milestone_request"
        and (body := message.get_body(("plain",))) is not None
        and (match := re.search(r"http://\S+/p/[^\s<>\"]+", body.get_content()))
    )

    # Another machine: another directory, other ports (the same public address: the badges
    # name it), no codec keys in the environment.
    second = throwaway_settings(tmp_path / "elsewhere" / "state", api_port=first.api_port)
    second_env = environment(second)
    damaged = tmp_path / "damaged.tar.gz"
    damaged_copy(archive, damaged)
    code, out = await internflow(second_env, "restore", str(damaged))
    assert code == 2 and "damaged" in out and len(out.strip().splitlines()) == 1, out
    assert not second.state_dir.exists(), "a failed restore leaves nothing behind"
    second.state_dir.mkdir(parents=True)
    (second.state_dir / "notes.txt").write_text("someone's file")
    code, out = await internflow(second_env, "restore", str(archive))
    assert code == 2 and "not empty" in out, out
    (second.state_dir / "notes.txt").unlink()

    began = time.monotonic()
    code, out = await internflow(second_env, "restore", str(archive))
    restore_seconds = time.monotonic() - began
    outputs.append(out)
    assert code == 0, out
    assert f"{BADGED + IN_FLIGHT} internships" in out and f"{BADGED} badges" in out, out
    codec_file = re.search(r"INTERNFLOW_CODEC_KEYS_FILE=(\S+)", out)
    assert codec_file is not None, out
    assert Path(codec_file.group(1)) == second.state_dir / "codec-keys.json"
    assert mode(second.state_dir / "keys") == 0o700
    restored = institution_key_dir(second, "school-x")
    assert mode(restored) == mode(restored.parent) == 0o700
    assert institution_ring(second, "school-x").signing_key.public_key_multibase == own_key
    for private in [
        *(second.state_dir / "keys").glob("*.pem"),
        *restored.iterdir(),
        second.state_dir / "secret",
        second.state_dir / "codec-keys.json",
        second.state_dir / "temporal" / "temporal.sqlite",
    ]:
        assert mode(private) == 0o600, private
    for text in outputs:
        for secret in secrets:
            assert secret not in text
    print(f"restore of {archive.stat().st_size} bytes took {restore_seconds:.1f} s")
    known_sent = await sent_in_backup(second)

    second = changed(second, codec_keys_file=codec_file.group(1))
    second_env = environment(second, INTERNFLOW_CODEC_KEYS_FILE=codec_file.group(1))
    async with Up(second, second_env, tmp_path / "up-2.log"):
        client = await connect_temporal(second)
        # A link a party got before the backup still opens: the secret that signs it came back.
        async with httpx.AsyncClient() as http:
            assert (await http.get(party_link)).status_code == 200
        phases = await play(
            second,
            client,
            flying,
            lambda phases: all(phase is not None and phase.is_final for phase in phases.values()),
            within=240,
        )
        assert set(phases.values()) == {Phase.COMPLETED}, phases
        # The badges issued before the backup verify against the restored keys, and their
        # status is read from the restored stack's status lists.
        for plan in badged[:2]:
            code, out = await internflow(
                second_env, "verify", str(tmp_path / f"{plan.internship_id}.json")
            )
            assert code == 0, out
        conn = await asyncpg.connect(second.database_owner_dsn)  # every table: the owner
        try:
            credentials = await conn.fetch(
                "SELECT internship_id, credential FROM credentials ORDER BY internship_id"
            )
            phase_rows = await conn.fetch(
                "SELECT internship_id, phase FROM audit_events WHERE kind = 'phase' "
                "ORDER BY internship_id, occurred_at, seq"
            )
            submissions = await conn.fetch(
                "SELECT internship_id, kind, submission_id FROM submissions"
            )
            tables = {
                name: await conn.fetchval(f'SELECT count(*) FROM "{name}"')  # noqa: S608
                for name in await conn.fetchval(
                    "SELECT array_agg(tablename::text) FROM pg_tables WHERE schemaname = 'public'"
                )
            }
        finally:
            await conn.close()
        flying_credential = tmp_path / "flying.json"
        flying_credential.write_text(credentials[-1]["credential"])
        code, out = await internflow(second_env, "verify", str(flying_credential))
        assert code == 0, out

    # Exactly one badge per internship, and every phase recorded once.
    everyone = [plan.internship_id for plan in [*badged, *flying]]
    assert [row["internship_id"] for row in credentials] == sorted(everyone)
    recorded: dict[str, list[str]] = {iid: [] for iid in everyone}
    for row in phase_rows:
        recorded[row["internship_id"]].append(row["phase"])
    assert recorded == {iid: PHASES for iid in everyone}
    # No submission twice; each party's one-off steps exactly once.
    kinds = Counter((row["internship_id"], row["kind"]) for row in submissions)
    assert len({(r["internship_id"], r["submission_id"]) for r in submissions}) == len(submissions)
    for iid in everyone:
        assert (kinds[iid, "approval"], kinds[iid, "assessment"], kinds[iid, "validation"]) == (
            3,
            2,
            1,
        ), iid
    # The mail: nothing the backup knew as sent went out again; the new stack sent each message
    # once, and each badge once.
    sent_after = outbox(second.outbox_path)
    ids_after = [str(m["Message-ID"]) for m in sent_after]
    assert len(ids_after) == len(set(ids_after))
    assert not known_sent & set(ids_after)
    resent = {str(m["Message-ID"]) for m in sent_before} & set(ids_after)
    print(f"{len(resent)} e-mails sent between the backup and the loss were sent again")
    badged_ids = {plan.internship_id for plan in badged}
    assert not [m for m in sent_after if m["X-Internflow-Internship"] in badged_ids]
    badges_after = Counter(
        m["X-Internflow-Internship"] for m in sent_after if m["X-Internflow-Kind"] == "badge"
    )
    assert badges_after == {plan.internship_id: 1 for plan in flying}
    for message in sent_after:
        if message["X-Internflow-Kind"] == "badge":
            wid = workflow_id_for(str(message["X-Internflow-Internship"]))
            assert str(message["Message-ID"]) == message_id_for(badge_mail_id(wid))

    # Cold: the stopped stack backs up as it is, and that archive restores with every row.
    cold = tmp_path / "usb" / "cold.tar.gz"
    code, out = await internflow(second_env, "backup", str(cold))
    assert code == 0 and "offline" in out, out
    assert read_manifest(cold).tables == tables
    third = throwaway_settings(tmp_path / "third" / "state", codec_keys_file=codec_file.group(1))
    code, out = await internflow(
        environment(third, INTERNFLOW_CODEC_KEYS_FILE=codec_file.group(1)), "restore", str(cold)
    )
    assert code == 0 and f"{BADGED + IN_FLIGHT} badges" in out, out
    assert "INTERNFLOW_CODEC_KEYS_FILE" not in out, "the configured keys already decrypt"


def test_backup_and_restore_explain_themselves() -> None:
    from typer.testing import CliRunner

    from cli.main import app

    for command in ("backup", "restore"):
        result = CliRunner().invoke(app, [command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage" in result.output


def test_paused_writers_go_on_when_the_backup_is_killed() -> None:
    """The backup pauses the stack's writers; killed (SIGKILL: no `finally` runs) while they are
    paused, its guard process resumes them."""
    writer = subprocess.Popen(
        [sys.executable, "-c", "import time\nwhile True: time.sleep(0.01)"], process_group=0
    )
    backup = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom embedded.backup import WriterPause\n"
            f"WriterPause().pause({{{writer.pid}}})\nprint('paused', flush=True)\ntime.sleep(600)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        assert backup.stdout is not None
        assert backup.stdout.readline() == b"paused\n"
        assert psutil.Process(writer.pid).status() == psutil.STATUS_STOPPED
        backup.kill()
        backup.wait()
        deadline = time.monotonic() + 10
        while psutil.Process(writer.pid).status() == psutil.STATUS_STOPPED:
            assert time.monotonic() < deadline, "the writer stayed paused"
            time.sleep(0.02)
    finally:
        for process in (backup, writer):
            process.kill()
            process.wait()


def test_each_institutions_own_keys_are_backed_up_and_put_back(tmp_path: Path) -> None:
    """The keys of an institution on did:web (keys/issuers/<id>/) are members of the archive
    under names the restore reads back, and are put back owner-only: without them its badges
    could not be verified after a restore. (The whole round trip through `internflow backup`
    and `restore` is the test above; this one needs no stack.)"""
    from embedded.backup import Manifest, _collect_files, _member_path, _place

    first = throwaway_settings(tmp_path / "first")
    KeyRing.load_or_create(first.keys_path, rsa=False)
    own_key = institution_ring(first, "school-x").signing_key.public_key_multibase
    staging = tmp_path / "staging"
    staging.mkdir()
    manifest = Manifest(
        created_at="now",
        internflow_version="test",
        postgresql_major="18",
        online=False,
        public_base_url=first.public_base_url,
    )
    names = _collect_files(first, staging, manifest)
    assert set(names) == {"keys/key-1.pem", "keys/issuers/school-x/key-1.pem"}
    for name in names:
        assert (staging / _member_path(name)).read_bytes() == (first.state_dir / name).read_bytes()
    for foreign in ("keys/issuers/../key-1.pem", "keys/issuers/a/b/key-1.pem", "keys/a/b.pem"):
        with pytest.raises(ValueError):
            _member_path(foreign)
    (staging / "temporal").mkdir()
    (staging / "temporal" / "temporal.sqlite").write_bytes(b"")
    second = throwaway_settings(tmp_path / "second")
    second.state_dir.mkdir()
    _place(staging, second, manifest)
    restored = institution_key_dir(second, "school-x")
    assert mode(restored) == mode(restored.parent) == mode(second.keys_path) == 0o700
    assert mode(restored / "key-1.pem") == 0o600
    assert institution_ring(second, "school-x").signing_key.public_key_multibase == own_key
