"""`internflow badge revoke|suspend|reinstate`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

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
