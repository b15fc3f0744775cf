"""The `internflow` typer application and its sub-command groups (commands register on them)."""

from __future__ import annotations

import sys
from typing import Any

import typer

from runtime.process_exit import exit_now


class _Command(typer.Typer):
    """The `internflow` command. Once a command is done (its output written, its exit code
    known), the process ends at once, without interpreter teardown: there, threads of Temporal's
    client can abort a process whose work is done, printing "Fatal Python error:
    PyGILState_Release" after its answer and exiting 134 (temporalio/sdk-python#300). Tests that
    invoke the command in-process (typer's CliRunner) do not pass through here."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            super().__call__(*args, **kwargs)
            code: object = 0
        except SystemExit as done:
            code = done.code
        if code is not None and not isinstance(code, int):
            print(code, file=sys.stderr)
            code = 1
        exit_now(code or 0)


app = _Command(
    help="Durable internship workflows that end in a signed Open Badge.\n\n"
    "Start with `internflow up` (the embedded stack and the HTTP API), then "
    "`internflow start examples/plan.json` and `internflow status ID`. "
    "Configure with INTERNFLOW_* environment variables (see the README).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
badge_app = typer.Typer(
    help="Revoke, suspend or reinstate an issued badge (the public status list and the audit "
    "trail record it, with your reason).",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys for the HTTP API: operators start and change internships, admins also see "
    "history and manage badges and keys.",
    no_args_is_help=True,
)
institution_app = typer.Typer(
    help="An institution's record: add one before its first internship (to give it an operator "
    "key), or rename it, with a reason kept in its history. `internflow institutions` lists them.",
    no_args_is_help=True,
)
company_app = typer.Typer(
    help="A host company's record: rename it, with a reason kept in its history. "
    "`internflow companies` lists them.",
    no_args_is_help=True,
)
app.add_typer(institution_app, name="institution")
app.add_typer(company_app, name="company")
app.add_typer(badge_app, name="badge")
app.add_typer(keys_app, name="keys")
