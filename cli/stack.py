"""`internflow up`, `demo`, `worker`, `serve` and `migrate`: run the stack and its parts."""

from __future__ import annotations

import os
from typing import Annotated

import structlog
import typer
from rich.text import Text

from cli.app import app
from cli.common import _fail, _run, _settings, console
from runtime.errors import StackError


@app.command()
def up(
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            metavar="N",
            help="Worker processes polling the same task queue (1 to 16); more use more cores.",
        ),
    ] = 1,
) -> None:
    """Start the embedded stack (PostgreSQL, Temporal with its Web UI, mail sink, worker, HTTP
    API) and keep it running until Ctrl-C. If it is already running, say where.

    A part whose process exits is logged and started again with backoff; if one cannot be
    kept running, `up` stops everything and exits 1.

    Example: internflow up --workers 2"""
    from embedded.supervisor import PartFailed, run_up

    try:
        _run(run_up(_settings(), workers=workers))
    except PartFailed as error:
        console.print(Text.assemble(("error:", "red"), " ", str(error)), soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def demo(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log every line, debug ones too, here and in the stack's logs (as "
            "INTERNFLOW_LOG_LEVEL=debug does); by default info and above.",
        ),
    ] = False,
) -> None:
    """Run the sample internship from examples/ to a signed, e-mailed, verified badge."""
    from cli.demo import run_demo

    if debug:
        os.environ["INTERNFLOW_LOG_LEVEL"] = "debug"  # this process and the stack it starts
    if not _run(run_demo(_settings(), console)):
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run a worker process against the configured Temporal and PostgreSQL."""
    from worker import run_worker

    _run(run_worker(_settings()))


@app.command()
def serve() -> None:
    """Serve the HTTP API (operators, parties, admins, public verification) on
    INTERNFLOW_API_HOST:INTERNFLOW_API_PORT (default 127.0.0.1:8000); OpenAPI at /docs.
    `internflow up` already runs one."""
    from api.server import serve as serve_api

    settings = _settings()
    try:
        serve_api(settings)
    except StackError as error:
        raise _fail(str(error)) from None


@app.command()
def migrate() -> None:
    """Apply the database migrations (db/migrations/) not applied yet, as the tables' owner
    (INTERNFLOW_DATABASE_OWNER_URL), each once, under a lock: what the production shape's
    `migrate` step runs. The embedded stack migrates itself. Prints the files applied (as log
    lines: JSON with INTERNFLOW_LOG_FORMAT=json)."""
    from runtime.database import owner_dsn
    from runtime.migrations import apply_migrations

    settings = _settings("database_owner")
    log = structlog.get_logger("migrate")
    applied = _run(apply_migrations(owner_dsn(settings)))
    log.info("migrations.done", applied=len(applied), files=applied)


# ---- internships ------------------------------------------------------------------------------
