"""Backup and restore at 100 internships: the archive's size, how long `internflow backup` and
`internflow restore` take (the commands as a user runs them, in processes of their own), how long
the workers and the API are paused, and whether the restored stack finishes every internship.

On an embedded stack with the HTTP API, N internships are started and approved (the lifecycle
benchmark's plans: compressed dates, windows that never expire) and played. Once a tenth of them
have their badge, a backup is taken while the others run (in flight); they all play to their
badges, and a second backup is taken of all N completed. The stack stops. The completed archive
is restored into a new state dir, then the in-flight one into another; a stack started on the
latter must finish every internship with exactly one badge.

    python -m bench.backup [--internships 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from bench.lifecycle import OPENERS, Opening, open_approved, play
from bench.part import Progress, main_for
from embedded.backup import read_manifest
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack, settings_environment
from models.plan import InternshipPlan
from models.status import Phase
from operations import internships as ops
from operations.internships import OperationRejected
from runtime.clients import connect_temporal, create_pool
from runtime.logging import configure_logging
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _environment(settings: Settings) -> dict[str, str]:
    return {**settings_environment(settings), "INTERNFLOW_LOG_LEVEL": "warning"}


async def internflow(settings: Settings, *args: str) -> dict[str, float]:
    """Run `internflow ARGS` for the stack of `settings`: its wall-clock seconds (`seconds`, the
    command's start-up included, as a user waits for it) and the seconds it reports for its own
    work (`work_seconds`). RuntimeError with its output if it fails."""
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env=_environment(settings),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    seconds = time.monotonic() - began
    text = output.decode()
    if process.returncode != 0:
        raise RuntimeError(f"internflow {args[0]} exited {process.returncode}: {text}")
    work = re.search(r"; ([0-9.]+) s\.", text)
    return {
        "seconds": round(seconds, 2),
        "work_seconds": float(work.group(1)) if work else float("nan"),
    }


def _badge_mails(outbox: Path) -> list[str]:
    """The Message-ID of every badge e-mail in a mail sink's outbox."""
    found = []
    for path in sorted(outbox.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["X-Internflow-Kind"] == "badge":
            found.append(str(message["Message-ID"]))
    return found


async def _completed(settings: Settings) -> int:
    conn = await asyncpg.connect(settings.database_url)
    try:
        done: int = await conn.fetchval(
            "SELECT count(*) FROM internships WHERE phase = $1", Phase.COMPLETED.value
        )
    finally:
        await conn.close()
    return done


async def _finish(client: Client, pool: asyncpg.Pool, plan: InternshipPlan) -> Phase:
    """Play the internship to its end; the phase it ended in. After a restore the records may
    lag the workflow (it knew more than PostgreSQL at the backup), so a party may act on a phase
    the internship has left: a call refused because it has ended meanwhile is its end."""
    try:
        return await play(client, pool, plan)
    except OperationRejected:
        outcome = await ops.handle_for(client, plan.internship_id).result()
        return outcome.phase


async def _play_all(settings: Settings, plans: list[InternshipPlan]) -> Counter[str]:
    client = await connect_temporal(settings)
    pool = await create_pool(settings)
    try:
        phases = await asyncio.gather(*(_finish(client, pool, plan) for plan in plans))
    finally:
        await pool.close()
    return Counter(phase.value for phase in phases)


async def run(count: int, progress: Progress) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="internflow-bench-backup-"))
    archives = root / "archives"
    archives.mkdir()
    first = throwaway_settings(root / "school", log_level="warning")
    configure_logging(first)  # this process's own lines: warnings and errors only
    try:
        progress.step(f"starting {count} internships")
        async with EmbeddedStack(first, start_api=True):
            client = await connect_temporal(first)
            gate, opening = asyncio.Semaphore(OPENERS), Opening()
            plans = list(
                await asyncio.gather(
                    *(open_approved(client, first, n, gate, opening) for n in range(count))
                )
            )
            playing = asyncio.create_task(_play_all(first, plans))
            progress.step(f"waiting for {count // 10} internships to have their badge")
            while await _completed(first) < max(1, count // 10):
                if playing.done():
                    playing.result()  # raises what ended it
                await asyncio.sleep(0.5)
            progress.step("backing up while the internships run")
            in_flight = archives / "in-flight.tar.gz"
            timing = await internflow(first, "backup", str(in_flight))
            manifest = read_manifest(in_flight)
            progress.record(
                in_flight={
                    "internships_by_phase": manifest.internships,
                    "credentials": manifest.credentials,
                    "archive_bytes": in_flight.stat().st_size,
                    "backup": timing,
                    "paused_seconds": manifest.paused_seconds,
                }
            )
            progress.step("playing every internship to its badge")
            ended = await playing
            if ended != Counter({Phase.COMPLETED.value: count}):
                raise RuntimeError(f"the internships ended {dict(ended)}")
            progress.step("backing up the completed internships")
            completed = archives / "completed.tar.gz"
            timing = await internflow(first, "backup", str(completed))
            manifest = read_manifest(completed)
            progress.record(
                completed={
                    "credentials": manifest.credentials,
                    "archive_bytes": completed.stat().st_size,
                    "backup": timing,
                    "paused_seconds": manifest.paused_seconds,
                    "members_bytes": {
                        name: member.bytes
                        for name, member in manifest.members.items()
                        if not name.startswith("keys/")
                    },
                }
            )
        sent_before = _badge_mails(first.outbox_path)  # in the interns' mailboxes by now
        shutil.rmtree(first.state_dir)

        progress.step("restoring the completed internships")
        elsewhere = throwaway_settings(root / "elsewhere", api_port=first.api_port)
        progress.record(restore_completed=await internflow(elsewhere, "restore", str(completed)))
        shutil.rmtree(elsewhere.state_dir)

        progress.step("restoring the internships in flight")
        again = throwaway_settings(root / "again", api_port=first.api_port)
        progress.record(restore_in_flight=await internflow(again, "restore", str(in_flight)))
        progress.step("finishing the restored internships")
        began = time.monotonic()
        async with EmbeddedStack(again, start_api=True):
            ended = await _play_all(again, plans)
            finished = time.monotonic() - began
            conn = await asyncpg.connect(again.database_url)
            try:
                credentials = await conn.fetchval(
                    "SELECT count(DISTINCT internship_id) FROM credentials"
                )
                rows = await conn.fetchval("SELECT count(*) FROM credentials")
            finally:
                await conn.close()
        sent_after = _badge_mails(again.outbox_path)
        progress.record(
            after_restore={
                "ended": dict(ended),
                "credentials": rows,
                "internships_with_a_credential": credentials,
                "badge_emails_sent": len(sent_after),
                "badge_emails_sent_twice": len(sent_after) - len(set(sent_after)),
                "badge_emails_sent_again_after_the_backup": len(set(sent_before) & set(sent_after)),
                "seconds_from_start_to_all_completed": round(finished, 1),
            }
        )
        if ended != Counter({Phase.COMPLETED.value: count}) or rows != count:
            raise RuntimeError(f"after the restore: {dict(ended)}, {rows} credentials")
        if len(sent_after) != len(set(sent_after)):
            raise RuntimeError("the restored stack sent a badge e-mail twice")
        done = progress.figures["completed"]
        summary = {
            "archive_mib": round(done["archive_bytes"] / 2**20, 2),
            "backup_seconds": done["backup"]["seconds"],
            "paused_seconds": done["paused_seconds"],
            "restore_seconds": progress.figures["restore_completed"]["seconds"],
        }
        return {"internships": count, "summary": summary, **progress.figures}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--internships", type=int, default=100)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    main_for("backup", lambda progress: run(args.internships, progress), args.json)


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
