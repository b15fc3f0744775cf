"""`internflow backup` and `restore`: the embedded stack's state in one archive, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from cli.app import app
from cli.common import _run, _settings, console


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _phases(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "no internships"
    detail = ", ".join(f"{phase} {n}" for phase, n in sorted(counts.items()))
    return f"{total} internship{'s' if total != 1 else ''} ({detail})"


@app.command()
def backup(
    file: Annotated[
        Path,
        typer.Argument(help="The archive to write: a new file, e.g. internflow-2027-03-01.tar.gz"),
    ],
) -> None:
    """Back up the embedded stack into one archive: the application database (a PostgreSQL
    dump), Temporal's database, the signing keys, the secret key, the database password and the
    payload encryption keys (if any). The archive holds secrets: it is written readable by you
    only; keep it as safe as the keys themselves.

    While the stack runs, its workers and HTTP API pause for the moment it takes to copy
    Temporal's database and take PostgreSQL's snapshot (nothing is lost: they go on where they
    were); a stopped stack is backed up as it is. Restore it with `internflow restore`, into an
    empty state dir, on any machine.

    Example: internflow backup backups/internflow-2027-03-01.tar.gz"""
    from embedded.backup import backup as write_backup

    settings = _settings()
    report = _run(write_backup(settings, file))
    manifest = report.manifest
    how = (
        f"online (worker and API paused for {manifest.paused_seconds:.2f} s)"
        if manifest.online
        else "offline (no stack was running)"
    )
    console.print(
        Text(
            f"Backed up {settings.state_dir} to {report.path}: {_mib(report.bytes)}, "
            f"{_phases(manifest.internships)}, {manifest.credentials} badges; {how}; "
            f"{report.seconds:.1f} s."
        ),
        soft_wrap=True,
    )
    console.print(
        Text("The archive holds the signing keys and secrets: keep it where only you can read it."),
        soft_wrap=True,
    )


@app.command()
def restore(
    file: Annotated[Path, typer.Argument(help="An archive `internflow backup` wrote.")],
) -> None:
    """Restore a backup into an empty (or new) state dir (INTERNFLOW_STATE_DIR): checks every
    file against the archive's checksums, puts the keys and secrets in place (readable by you
    only), loads the database into a new embedded PostgreSQL and checks every table's rows.
    Then `internflow up` goes on with every internship from the moment of the backup.

    Example: INTERNFLOW_STATE_DIR=.internflow internflow restore internflow-2027-03-01.tar.gz"""
    from embedded.backup import restore as restore_backup

    settings = _settings()
    report = _run(restore_backup(settings, file))
    manifest = report.manifest
    console.print(
        Text(
            f"Restored {file} (backed up {manifest.created_at} by internflow "
            f"{manifest.internflow_version}) into {report.state_dir}: "
            f"{_phases(manifest.internships)}, {manifest.credentials} badges; "
            f"{report.seconds:.1f} s."
        ),
        soft_wrap=True,
    )
    for note in report.notes:
        console.print(Text(f"Note: {note}"), soft_wrap=True)
    console.print(
        Text("Start it with `internflow up`: every internship goes on from the backup's moment."),
        soft_wrap=True,
    )
