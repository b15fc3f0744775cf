"""`internflow badge revoke|suspend|reinstate`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from cli.app import badge_app
from cli.common import _fail, _run, _settings, console
from operations.credentials import CredentialNotFound, StatusAction


def _change_badge(badge_id: str, action: StatusAction, why: str) -> None:
    from operations.credentials import change_status, credential_for_internship, credential_id_of
    from runtime.clients import create_pool

    settings = _settings("database")

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
            return await change_status(pool, settings, credential_id, action, why, actor="cli")
        finally:
            await pool.close()

    try:
        record = _run(go())
    except ValueError as error:
        raise _fail(str(error)) from None
    console.print(Text.assemble(f"{record.credential_id}: ", (record.status, "bold"), f" ({why})"))


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
