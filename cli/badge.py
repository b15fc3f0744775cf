"""`internflow badge revoke|suspend|reinstate`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.text import Text

from cli.app import badge_app
from cli.common import _fail, _run, _settings, console
from operations.credentials import CredentialNotFound, StatusAction

if TYPE_CHECKING:
    from temporalio.client import Client


def _change_badge(badge_id: str, action: StatusAction, why: str) -> None:
    from operations.credentials import change_status, credential_for_internship, credential_id_of
    from runtime.availability import TemporalUnreachable
    from runtime.clients import connect_temporal, create_pool, temporal_answers

    settings = _settings("codec_keys", "database")

    async def temporal() -> Client:
        # Asked first (two seconds at most): an unreachable server would be retried for ten.
        if not await temporal_answers(settings):
            raise TemporalUnreachable()
        return await connect_temporal(settings)

    async def go() -> Any:
        pool = await create_pool(settings)
        try:
            try:
                credential_id = credential_id_of(badge_id)
            except CredentialNotFound:
                record = await credential_for_internship(pool, badge_id)
                if record is None:
                    raise CredentialNotFound(
                        f"{badge_id!r} is neither a credential id nor an internship with a badge"
                    ) from None
                credential_id = record.credential_id
            return await change_status(
                pool, settings, credential_id, action, why, actor="cli", temporal=temporal
            )
        finally:
            await pool.close()

    try:
        changed = _run(go())
    except ValueError as error:
        raise _fail(str(error)) from None
    record = changed.record
    console.print(Text.assemble(f"{record.credential_id}: ", (record.status, "bold"), f" ({why})"))
    if changed.notice == "started":
        console.print(
            "The intern's e-mail follows (retried for a day; the institution is told if it fails)."
        )
    elif changed.notice == "pending":
        Console(stderr=True).print(
            Text.assemble(
                ("note:", "yellow"),
                " Temporal is not reachable: the intern's e-mail is recorded and a worker sends "
                "it once Temporal is back",
            )
        )


BadgeId = Annotated[
    str,
    typer.Argument(
        metavar="BADGE_ID", help="The credential id (urn:uuid:...) or the internship's id."
    ),
]
Reason = Annotated[str, typer.Option(help="Why: kept in the audit trail and shown to verifiers.")]


@badge_app.command("revoke")
def badge_revoke(badge_id: BadgeId, reason: Reason) -> None:
    """Revoke a badge for good: verifiers see it revoked from now on."""
    _change_badge(badge_id, "revoke", reason)


@badge_app.command("suspend")
def badge_suspend(badge_id: BadgeId, reason: Reason) -> None:
    """Suspend a badge until it is reinstated."""
    _change_badge(badge_id, "suspend", reason)


@badge_app.command("reinstate")
def badge_reinstate(badge_id: BadgeId, reason: Reason) -> None:
    """Lift a suspension (a revoked badge stays revoked)."""
    _change_badge(badge_id, "reinstate", reason)


# ---- API keys ---------------------------------------------------------------------------------


# ---- European Digital Credentials ----------------------------------------------------------


@badge_app.command("europass")
def badge_europass(
    internship_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="INTERNSHIP_ID...", help="One or more certified internships, by their ids."
        ),
    ],
    form: Annotated[
        str,
        typer.Option(
            "--form",
            help="uploadable: the Europass issuer's unsigned upload, for the institution to seal "
            "there with its eIDAS seal; unsigned: the credential itself (JSON-LD); sealed: sealed "
            "here with the institution's own seal certificate (INTERNFLOW_SEAL_DIR).",
        ),
    ] = "uploadable",
    out: Annotated[
        Path,
        typer.Option("--out", help="The folder the files are written to (one per internship)."),
    ] = Path("."),
) -> None:
    """Each certified internship's badge as a European Digital Credential (ELM v3), a file each
    (`europass-<id>.json`, `.jsonld` unsigned, `-sealed.json` sealed). An internship that has
    none (no badge, a revoked or suspended one, an institution without its legal identifier,
    no seal for `--form sealed`) is named with the reason, and the others are written; the exit
    code is then 1.

    Example: `internflow badge europass it-2027-web-001 it-2027-web-002 --out europass/`"""
    from operations import europass
    from runtime.clients import connect_records

    if form not in europass.FORMS:
        raise _fail(f"--form {form!r}: choose one of {', '.join(europass.FORMS)}")
    chosen = cast(europass.Form, form)
    settings = _settings("database")

    async def go() -> europass.Batch:
        async with connect_records(settings) as conn:
            return await europass.europass_files(conn, settings, internship_ids, chosen)

    made = _run(go())
    out.mkdir(parents=True, exist_ok=True)
    for file in made.files:
        target = out / file.file_name
        target.write_text(file.text(), encoding="utf-8")
        console.print(Text(f"{file.internship_id}: {target}"), soft_wrap=True)
    for internship_id, reason in made.refused.items():
        console.print(
            Text.assemble(("refused:", "red"), f" {internship_id}: {reason}"), soft_wrap=True
        )
    if made.refused:
        raise typer.Exit(1)
