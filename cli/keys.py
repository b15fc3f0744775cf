"""`internflow keys create|revoke|list`: API keys for the HTTP API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from cli.app import keys_app
from cli.common import _fail, _run, _settings, console
from operations.access import AccessError
from runtime.clients import connect_records


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for, e.g. registry-office.")],
    role: Annotated[
        Literal["operator", "admin"], typer.Option(help="operator or admin.")
    ] = "operator",
    institution: Annotated[
        list[str] | None,
        typer.Option(
            "--institution",
            help="An institution the operator key belongs to (its id, as in plans; recorded: "
            "see `internflow institutions`); repeat for several. The key sees, lists, starts "
            "and changes only their internships.",
        ),
    ] = None,
    all_institutions: Annotated[
        bool,
        typer.Option(
            "--all-institutions",
            help="An operator key for every institution (instead of --institution).",
        ),
    ] = False,
) -> None:
    """Create a key and print it once: it is stored only as a hash. Use it as
    `Authorization: Bearer <key>`. An operator key belongs to institutions: give
    `--institution ID` (repeat for several; each must be recorded: by its first internship, or
    by `internflow institution add`) or, explicitly, `--all-institutions`; an admin key sees
    every institution.

    Examples: `internflow keys create registry-office --institution school-a`;
    `internflow keys create head-office --all-institutions`;
    `internflow keys create ops --role admin`"""
    from operations.access import create_key_as_asked, key_scope

    try:
        key_scope(role, institution or (), all_institutions)
    except AccessError as error:
        raise _fail(str(error)) from None
    settings = _settings("database")

    async def go() -> Any:
        async with connect_records(settings) as conn:
            return await create_key_as_asked(
                conn, name, role, institution or (), all_institutions, field="--institution"
            )

    record, key = _run(go())
    console.print(
        f"created {record.role} key {record.key_id} ({record.name}, "
        f"{record.describe_scope()}); the key is:"
    )
    print(key)
    console.print("[yellow]Copy it now: it cannot be shown again.[/]")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, from `internflow keys list`.")],
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from operations.access import revoke_api_key

    settings = _settings("database")

    async def go() -> Any:
        async with connect_records(settings) as conn:
            return await revoke_api_key(conn, key_id)

    record = _run(go())
    console.print(f"revoked {record.role} key {record.key_id} ({record.name})")


@keys_app.command("list")
def keys_list() -> None:
    """The keys (ids, names, roles, institutions, dates; never the keys themselves)."""
    from operations.access import list_api_keys

    settings = _settings("database")

    async def go() -> Any:
        async with connect_records(settings) as conn:
            return await list_api_keys(conn)

    table = Table("key id", "name", "role", "institutions", "created", "revoked")
    for key in _run(go()):
        table.add_row(
            key.key_id,
            key.name,
            key.role,
            key.describe_scope(),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)
