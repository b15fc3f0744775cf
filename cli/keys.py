"""`internflow keys create|revoke|list`: API keys for the HTTP API."""

from __future__ import annotations

import sys
from typing import Annotated, Any, Literal

import typer
from rich import box
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text

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
    from operations.access import CLI_TERMS, create_key_as_asked, key_scope

    try:
        key_scope(role, institution or (), all_institutions, CLI_TERMS)
    except AccessError as error:
        raise _fail(str(error)) from None
    settings = _settings("database")

    async def go() -> Any:
        async with connect_records(settings) as conn:
            return await create_key_as_asked(
                conn, name, role, institution or (), all_institutions, terms=CLI_TERMS
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

    _print_keys(_run(go()))


def _print_keys(keys: list[Any]) -> None:
    """A table when it fits the terminal with every value whole; otherwise one block per key,
    its id on a line of its own and each long field (name, institutions) on its own line,
    folded at the terminal's width. Nothing is cut."""
    table = Table(
        Column("key id", no_wrap=True),
        Column("name", no_wrap=True),
        Column("role", no_wrap=True),
        Column("institutions", no_wrap=True),
        Column(Text("created\nrevoked"), no_wrap=True),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for key in keys:
        table.add_row(
            key.key_id,
            Text(key.name),
            key.role,
            Text(key.describe_scope()),
            f"{key.created_at:%Y-%m-%d %H:%M}"
            + (f"\n{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""),
        )
    unbounded = console.options.update(width=sys.maxsize)
    if console.measure(table, options=unbounded).maximum <= console.width:
        console.print(table)
    else:
        for key in keys:
            console.print(Text.assemble((key.key_id, "bold"), f" · {key.role}"), soft_wrap=True)
            dates = f"created {key.created_at:%Y-%m-%d %H:%M}" + (
                f" · revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else ""
            )
            for label, value in (("name", key.name), ("institutions", key.describe_scope())):
                if len(f"  {label}: {value}") <= console.width:
                    console.print(Padding(Text(f"{label}: {value}"), (0, 0, 0, 2)))
                else:  # a long field on lines of its own, under its label, folded
                    console.print(Padding(Text(f"{label}:"), (0, 0, 0, 2)))
                    console.print(Padding(Text(value, overflow="fold"), (0, 0, 0, 4)))
            console.print(Padding(Text(dates), (0, 0, 0, 2)))
    console.print(f"{len(keys)} key{'' if len(keys) == 1 else 's'}")
