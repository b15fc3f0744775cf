"""The `internflow` command: run the stack, start and inspect internships, verify badges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from models.plan import InternshipPlan
from operations import internships as ops
from operations.internships import OperationRejected
from runtime.clients import connect_temporal
from runtime.errors import StackError
from runtime.logging import configure_logging
from runtime.settings import Settings

app = typer.Typer(
    help="Durable internship workflows that end in a signed Open Badge. "
    "Configure with INTERNFLOW_* environment variables (see the README).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; errors a user can cause end with a message, not a traceback."""
    try:
        return asyncio.run(coroutine)
    except (OperationRejected, StackError) as error:
        console.print(f"[red]error:[/] {error}")
        raise typer.Exit(2) from None
    except RuntimeError as error:
        if "Failed client connect" in str(error):
            console.print(
                "[red]error:[/] cannot reach Temporal: start the stack with `internflow up` "
                "or set INTERNFLOW_TEMPORAL_ADDRESS"
            )
            raise typer.Exit(2) from None
        raise


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings)
    return settings


@app.command()
def up() -> None:
    """Start the embedded stack (PostgreSQL, Temporal with its Web UI, mail sink, worker) and
    keep it running until Ctrl-C. If it is already running, say where."""
    from runtime.stack import run_up

    _run(run_up(_settings()))


@app.command()
def demo() -> None:
    """Run the sample internship from examples/ to a signed, e-mailed, verified badge."""
    from cli.demo import run_demo

    if not _run(run_demo(_settings(), console)):
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run a worker process against the configured Temporal and PostgreSQL."""
    from worker import run_worker

    _run(run_worker(_settings()))


@app.command()
def start(
    plan_file: Annotated[Path, typer.Argument(help="A plan as JSON, like examples/plan.json.")],
) -> None:
    """Start an internship from a plan file. Starting a running internship again is harmless."""
    settings = _settings()
    try:
        plan = InternshipPlan.model_validate_json(plan_file.read_text())
    except OSError as error:
        console.print(f"[red]error:[/] cannot read {plan_file}: {error.strerror}")
        raise typer.Exit(2) from None
    except ValidationError as error:
        console.print(f"[red]error:[/] {plan_file} is not a valid plan:")
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "(plan)"
            console.print(f"  {where}: {problem['msg']}")
        raise typer.Exit(2) from None

    async def go() -> str:
        client = await connect_temporal(settings)
        handle = await ops.start_internship(client, settings, plan)
        return handle.id

    workflow_id = _run(go())
    console.print(f"started {plan.internship_id} (workflow {workflow_id})")


@app.command()
def status(internship_id: str) -> None:
    """Show an internship's phase, approvals, milestones and next deadline as JSON."""
    settings = _settings()

    async def go() -> str:
        client = await connect_temporal(settings)
        return (await ops.status(client, internship_id)).model_dump_json(indent=2)

    console.print_json(_run(go()))


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="A credential .json or a baked .png.")],
) -> None:
    """Verify a badge: its JSON-LD, its eddsa-rdfc-2022 proof against the issuer's key, and its
    validity window. Exit code 0 only when it is valid."""
    from badges.bake import BakeError, unbake_png
    from badges.verify import local_issuer_keys, verify_credential

    settings = _settings()
    try:
        data = file.read_bytes()
        text = unbake_png(data) if file.suffix.lower() == ".png" else data.decode()
    except (OSError, BakeError, UnicodeDecodeError) as error:
        console.print(f"[red]error:[/] cannot read a credential from {file}: {error}")
        raise typer.Exit(2) from None
    report = verify_credential(text, local_issuer_keys(settings.keys_path))
    console.print(json.dumps(report.as_dict(), indent=2))
    if not report.verified:
        raise typer.Exit(1)
