"""The `internflow` command: run the stack, start and inspect internships, verify badges."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit

import asyncpg
import structlog
import typer
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table
from rich.text import Text

from models.plan import InternshipPlan
from models.records import InternshipRow, TimelineRow
from models.status import Phase
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    Extension,
    MilestoneReport,
    Pause,
    Receipt,
    Resume,
    Validation,
    Withdrawal,
)
from operations import internships as ops
from operations.access import AccessError
from operations.credentials import CredentialConflict, CredentialNotFound, StatusAction
from operations.internships import OperationRejected
from runtime.clients import connect_records, connect_temporal
from runtime.deployment import Need, require_secrets
from runtime.deployment import problems as secret_problems
from runtime.errors import StackError
from runtime.logging import configure_logging
from runtime.settings import Settings

if TYPE_CHECKING:
    from badges.verify import VerificationReport


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
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (`internflow list | head`)
                pass
        os._exit(code or 0)


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
app.add_typer(badge_app, name="badge")
app.add_typer(keys_app, name="keys")

console = Console()
T = TypeVar("T")
USER_ERROR = 2

InternshipId = Annotated[
    str, typer.Argument(metavar="INTERNSHIP_ID", help="The internship's id, as in its plan.")
]
SubmissionIdOption = Annotated[
    str | None,
    typer.Option(
        "--id",
        help="Your id for this submission; sending the same id again is answered with the "
        "first receipt (default: a new id).",
    ),
]


_errors_as_json = False
"""With INTERNFLOW_LOG_FORMAT=json, errors are log lines too (`internflow worker` and `serve` in
the image): one JSON object each."""


def _fail(message: str, *details: str) -> typer.Exit:
    """Print `error: message` (and each detail on a line of its own below it) and return the
    exit to raise. The words are printed as written: never read as rich markup or emoji, so a
    pattern like '^[a-z0-9]{0,62}$' or a "[draft]" keeps its brackets."""
    if _errors_as_json:
        if details:
            structlog.get_logger("internflow").error("refused", error=message, problems=details)
        else:
            structlog.get_logger("internflow").error("refused", error=message)
    else:
        # One line each, however long: the terminal wraps them, copies and logs keep them whole.
        console.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
        for detail in details:
            console.print(Text(f"  {detail}"), soft_wrap=True)
    return typer.Exit(USER_ERROR)


def _problems(error: ValidationError, where: Callable[[tuple[Any, ...]], str]) -> list[str]:
    """Every problem pydantic found, one `field: message` each, in its order."""
    return [
        f"{where(tuple(e['loc']))}: {str(e['msg']).removeprefix('Value error, ')}"
        for e in error.errors()
    ]


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(plan)"


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; errors a user can cause end with a message, not a traceback."""
    try:
        return asyncio.run(coroutine)
    except (
        OperationRejected,
        StackError,
        CredentialNotFound,
        CredentialConflict,
        AccessError,
    ) as error:
        raise _fail(str(error)) from None
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InvalidCatalogNameError):
        raise _fail(
            "cannot reach PostgreSQL: start the stack with `internflow up` or set "
            "INTERNFLOW_DATABASE_URL"
        ) from None
    except asyncpg.UndefinedTableError:
        raise _fail(
            "the database is missing tables: start the stack once (`internflow up`) or apply "
            "db/migrations/"
        ) from None
    except RuntimeError as error:
        if "Failed client connect" in str(error):
            raise _fail(
                "cannot reach Temporal: start the stack with `internflow up` "
                "or set INTERNFLOW_TEMPORAL_ADDRESS"
            ) from None
        raise


def _settings(*needs: Need) -> Settings:
    """The settings, and logging configured; refused (exit 2, naming each variable) when a
    secret in `needs` is missing or public, unless this is a trial (INTERNFLOW_DEMO=true, or an
    embedded stack runs on the state dir: it made its own secrets)."""
    try:
        settings = Settings()
    except ValidationError as error:
        problems = _problems(
            error, lambda loc: f"INTERNFLOW_{'_'.join(str(p) for p in loc).upper()}"
        )
        raise _fail("invalid configuration:", *problems) from None
    configure_logging(settings)
    global _errors_as_json
    _errors_as_json = settings.log_format == "json"
    if needs and secret_problems(settings, needs):
        from runtime.stack import EmbeddedStack

        embedded = EmbeddedStack.find_running(settings) is not None
        try:
            require_secrets(
                settings,
                needs,
                trial_because="the embedded stack runs on this state dir" if embedded else None,
                command=True,
            )
        except StackError as error:
            raise _fail(str(error)) from None
    return settings


def _new_id(kind: str) -> str:
    return f"cli-{kind}-{uuid.uuid4().hex[:12]}"


def _print_receipt(receipt: Receipt) -> None:
    line = Text.assemble(
        ("accepted", "green"),
        f" {receipt.kind} {receipt.submission_id} at {receipt.accepted_at:%Y-%m-%d %H:%M:%S %Z}",
    )
    if receipt.late:
        line.append(" (late)", style="yellow")
    console.print(line)


def _submit(call: Callable[[Any], Coroutine[Any, Any, Receipt]], *needs: Need) -> None:
    """Connect to Temporal, send one submission, print the workflow's receipt."""
    settings = _settings("codec_keys", *needs)

    async def go() -> Receipt:
        return await call(await connect_temporal(settings))

    _print_receipt(_run(go()))


def _pairs(values: list[str], option: str) -> dict[str, str]:
    """`outcome=level` options as a dict; a malformed one is refused naming `option`."""
    result = {}
    for value in values:
        outcome, sep, level = value.partition("=")
        if not sep or not outcome.strip() or not level.strip():
            raise _fail(f"{option} {value!r}: write OUTCOME=LEVEL, e.g. {option} lo-web=good")
        result[outcome.strip()] = level.strip()
    return result


_OPTION_OF_FIELD = {
    "submission_id": "--id",
    "milestone_id": "--milestone",
    "ratings": "--rating",
    "levels": "--level",
    "attendance_hours": "--hours",
    "plan_version": "--version",
    "new_end": "--to",
}
"""The option a submission's field comes from, where the two names differ."""


def _option_of(loc: tuple[Any, ...]) -> str:
    """Where a submission's problem is, named as the user typed it: `--rating lo-web=...`."""
    if not loc:
        return "(submission)"
    field, *rest = loc
    option = _OPTION_OF_FIELD.get(str(field), f"--{str(field).replace('_', '-')}")
    if rest and rest[-1] == "[key]":
        return f"{option} (the outcome {rest[0]!r})"
    if rest:
        return f"{option} (the level for {rest[0]!r})"
    return option


def _model(build: Callable[[], T]) -> T:
    """Build a submission; a pydantic error becomes a message naming each option at fault."""
    try:
        return build()
    except ValidationError as error:
        problems = _problems(error, _option_of)
        if len(problems) == 1:
            raise _fail(problems[0]) from None
        raise _fail("the submission was refused:", *problems) from None


# ---- the stack --------------------------------------------------------------------------------


@app.command()
def up() -> None:
    """Start the embedded stack (PostgreSQL, Temporal with its Web UI, mail sink, worker, HTTP
    API) and keep it running until Ctrl-C. If it is already running, say where."""
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


def _read_plan(plan_file: Path) -> InternshipPlan:
    try:
        return InternshipPlan.model_validate_json(plan_file.read_text())
    except OSError as error:
        raise _fail(f"cannot read {plan_file}: {error.strerror}") from None
    except ValidationError as error:
        problems = _problems(error, _dotted)
        count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
        raise _fail(f"{plan_file} is not a valid plan ({count}):", *problems) from None


@app.command()
def start(
    plan_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="PLAN_FILE",
            help="A plan as JSON, like examples/plan.json; with --batch CSV, the template that "
            "every row fills in.",
        ),
    ] = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch",
            help="Many internships: a JSON list of plans, or a CSV whose columns are plan fields "
            "(internship_id, intern.name, intern.email, period.start, ...) over PLAN_FILE.",
        ),
    ] = None,
) -> None:
    """Start an internship from a plan file, or many with --batch. Starting a running internship
    again with the same plan is harmless; a plan with a mistake is refused with the field and the
    reason, and so is a plan whose agreement_deadline has passed (nobody could approve it in time)
    or a different plan under the id of a running internship (amend that one instead, with
    `POST /api/internships/ID/amendments`, or choose a new internship_id).

    Examples: `internflow start examples/plan.json`;
    `internflow start examples/plan.json --batch interns.csv`; `internflow start --batch plans.json`
    """
    settings = _settings("codec_keys", "database")
    if batch is None:
        if plan_file is None:
            raise _fail("give a plan file, or --batch FILE (see --help)")
        plan = _read_plan(plan_file)

        async def go() -> ops.Started:
            client = await connect_temporal(settings)
            return await ops.start_plan(
                client, settings, plan, recorded_plans=_recorded_plans(settings)
            )

        started = _run(go())
        if started.created:
            console.print(Text(f"started {plan.internship_id} (workflow {started.handle.id})"))
        else:
            console.print(
                Text(
                    f"{plan.internship_id} is already running with this plan "
                    f"(workflow {started.handle.id})"
                )
            )
        return
    _start_batch(settings, plan_file, batch)


def _recorded_plans(settings: Settings) -> ops.RecordedPlans:
    """The plan versions in the records, read only when a start needs them (a running
    internship's plan may have been amended)."""

    async def read(internship_id: str) -> list[InternshipPlan]:
        async with connect_records(settings) as conn:
            return await ops.recorded_plan_versions(conn, internship_id)

    return read


def _start_batch(settings: Settings, template_file: Path | None, batch: Path) -> None:
    from operations.batch import BatchError, RowResult, rows_from_csv, rows_from_json, start_batch

    try:
        text = batch.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise _fail(f"cannot read {batch}: {error}") from None
    try:
        if batch.suffix.lower() == ".csv":
            if template_file is None:
                raise _fail("a CSV batch fills in a template plan: give PLAN_FILE before --batch")
            rows = rows_from_csv(text, _read_plan(template_file))
        else:
            rows = rows_from_json(text)
    except BatchError as error:
        raise _fail(f"{batch}: {error}") from None

    with Progress(
        TextColumn("starting"), BarColumn(), MofNCompleteColumn(), console=console
    ) as progress:
        task = progress.add_task("batch", total=len(rows))

        def advance(result: RowResult) -> None:
            progress.advance(task)

        async def go() -> Any:
            client = await connect_temporal(settings)
            return await start_batch(
                client, settings, rows, on_row=advance, recorded_plans=_recorded_plans(settings)
            )

        result = _run(go())
    table = Table(
        "row",
        Column("internship", no_wrap=True),
        Column("result", no_wrap=True),
        Column("problems", overflow="fold"),
    )
    for row in result.rows:
        colour = {"started": "green", "already_running": "cyan"}.get(row.status, "red")
        table.add_row(
            str(row.row),
            Text(row.internship_id or "-"),
            Text(row.status, style=colour),
            Text("\n".join(row.errors)),
        )
    console.print(table)
    console.print(
        f"{result.started} started, {result.already_running} already running, "
        f"{result.failed} failed"
    )
    if result.failed:
        raise typer.Exit(USER_ERROR)


@app.command()
def rehearse(
    plan_file: Annotated[
        Path, typer.Argument(metavar="PLAN_FILE", help="A plan as JSON, like examples/plan.json.")
    ],
    everyone_on_time: Annotated[
        bool,
        typer.Option(
            "--everyone-on-time",
            help="Every party acts on time: approvals at once, each milestone's report and "
            "feedback before it is due, both assessments at the required levels, a pass "
            "validation. Without it, nobody acts.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Rehearse a plan before anyone receives anything: the real internship workflow runs on a
    private Temporal server that skips through time, from now to the end, and every e-mail
    (kind, to whom, when) and phase is printed in the plan's time zone. Nothing is sent or
    recorded; no PostgreSQL, SMTP server or running stack is needed. The plan is checked as
    `start` checks it (a plan whose agreement_deadline has passed is refused).

    Examples: `internflow rehearse examples/plan.json`;
    `internflow rehearse examples/plan.json --everyone-on-time --json`
    """
    from operations.rehearsal import rehearse as run_rehearsal
    from operations.rehearsal import render_text

    settings = _settings()
    plan = _read_plan(plan_file)
    result = _run(run_rehearsal(plan, settings, everyone_on_time=everyone_on_time))
    if as_json:
        print(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    print("\n".join(render_text(result)))


@app.command("list")
def list_internships(
    phase: Annotated[
        Phase | None,
        typer.Option(
            metavar="PHASE",
            help=f"Only this phase: {', '.join(phase.value for phase in Phase)}.",
        ),
    ] = None,
    company: Annotated[
        str | None, typer.Option(metavar="ID", help="Only this company (its id).")
    ] = None,
    institution: Annotated[
        str | None, typer.Option(metavar="ID", help="Only this institution (its id).")
    ] = None,
    overdue: Annotated[
        bool | None,
        typer.Option(
            "--overdue/--not-overdue",
            help="Only those with (or without) a milestone past its reminder.",
        ),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            "-s",
            metavar="TEXT",
            help="Text in the internship's, company's or institution's id, or in a party's "
            "name or e-mail address.",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=200, metavar="N", help="At most this many.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List internships from the records (PostgreSQL), latest start first."""
    from operations.records import list_internships as read_list

    settings = _settings("database")

    async def go() -> list[InternshipRow]:
        async with connect_records(settings) as conn:
            return await read_list(
                conn,
                phase=phase,
                company_id=company,
                institution_id=institution,
                overdue=overdue,
                text=search,
                limit=limit,
            )

    items = _run(go())
    if as_json:
        console.print_json(json.dumps([item.model_dump(mode="json") for item in items]))
        return
    _print_internships(items)
    console.print(
        f"{len(items)} internship{'' if len(items) == 1 else 's'}"
        + (" (more with --limit)" if len(items) == limit else "")
    )


def _print_internships(items: list[InternshipRow]) -> None:
    """A table when it fits the terminal with every id whole; otherwise one block per
    internship, its id on a line of its own. Ids are never cut, folded or shortened."""
    table = Table(
        Column("internship", no_wrap=True),
        Column("phase", no_wrap=True),
        Column(Text("company\ninstitution"), no_wrap=True),
        Column(Text("start\nend"), no_wrap=True),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for item in items:
        phase = Text(item.phase.value)
        if item.overdue:
            phase.append("\noverdue", style="yellow")
        table.add_row(
            Text(item.internship_id),
            phase,
            Text(f"{item.company_id}\n{item.institution_id}"),
            Text(f"{item.start_at:%Y-%m-%d}\n{item.end_at:%Y-%m-%d}"),
        )
    unbounded = console.options.update(width=sys.maxsize)
    if console.measure(table, options=unbounded).maximum <= console.width:
        console.print(table)
        return
    for item in items:
        console.print(Text(item.internship_id, style="bold"), soft_wrap=True)
        details = Text.assemble(
            item.phase.value,
            (" (overdue)", "yellow") if item.overdue else "",
            f" · company {item.company_id} · institution {item.institution_id} · "
            f"{item.start_at:%Y-%m-%d} to {item.end_at:%Y-%m-%d}",
        )
        console.print(Padding(details, (0, 0, 0, 2), expand=False))


@app.command()
def status(
    internship_id: InternshipId,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Admins, for debugging: ask the running workflow instead of the records. A "
            "query that reaches a worker while it recovers the workflow can leave a history "
            "that no longer replays; avoid it while workers crash or restart.",
        ),
    ] = False,
) -> None:
    """Show an internship's phase, dates in force, approvals, milestones (what is owed, late,
    overdue or missed) and next deadline as JSON, from the records (no workflow is asked; they
    are as of the latest recorded step, `as_of`)."""
    from operations.records import internship_status

    settings = _settings("codec_keys") if live else _settings("database")

    async def from_records() -> str:
        async with connect_records(settings) as conn:
            found = await internship_status(conn, internship_id)
        if found is None:
            raise ops.InternshipNotFound(f"no internship {internship_id!r}: check the id")
        return found.model_dump_json(indent=2)

    async def from_workflow() -> str:
        client = await connect_temporal(settings)
        return (await ops.status(client, internship_id)).model_dump_json(indent=2)

    if live:
        print("warning: asking the running workflow (--live), a debugging aid", file=sys.stderr)
    print(_run(from_workflow() if live else from_records()))


@app.command()
def history(
    internship_id: InternshipId,
    as_json: Annotated[bool, typer.Option("--json", help="Print the audit trail as JSON.")] = False,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Print Temporal's raw event history instead (JSON lines; kept only for the "
            "namespace's retention period).",
        ),
    ] = False,
) -> None:
    """What happened to an internship, step by step, from the audit trail (which outlives
    Temporal's history)."""
    settings = _settings("codec_keys") if raw else _settings("database")
    if raw:
        from operations.history import event_page

        async def events() -> int:
            client = await connect_temporal(settings)
            token: str | None = None
            count = 0
            while True:
                page = await event_page(client, internship_id, 200, token)
                for event in page.events:
                    print(json.dumps(event))
                    count += 1
                token = page.next_page_token
                if token is None:
                    return count

        _run(events())
        return
    from operations.records import internship_timeline

    async def history_rows() -> list[TimelineRow]:
        async with connect_records(settings) as conn:
            return await internship_timeline(conn, internship_id)

    entries = _run(history_rows())
    if not entries:
        raise _fail(f"no recorded history for {internship_id!r}: check the id")
    if as_json:
        # Plain print: rich would wrap long lines (and break the JSON) and read [brackets].
        print(
            json.dumps([e.model_dump(mode="json") for e in entries], indent=2, ensure_ascii=False)
        )
        return
    console.print(_history_table(internship_id, entries))


def _history_table(internship_id: str, entries: list[TimelineRow]) -> Table:
    """The audit trail as a table that wraps to the terminal: when, what and who on the left,
    the detail's labelled fields on the right with every text in full. People's words go in as
    rich Text, so "[urgent]" or ":warning:" print as written, never as markup or emoji."""
    table = Table(
        Column("when, what, who", overflow="fold", max_width=22),
        Column("details", overflow="fold"),
        title=Text(f"internship {internship_id}"),
        show_lines=True,
    )
    for entry in entries:
        what = Text.assemble(f"{entry.occurred_at:%Y-%m-%d %H:%M:%S}\n", (entry.kind, "bold"))
        if entry.key and entry.key != entry.phase:
            what.append(f"\n{_printable(entry.key)}")
        what.append(f"\n{entry.actor} · {entry.phase}", style="dim")
        fields = Table.grid(padding=(0, 1))
        fields.add_column(style="bold", no_wrap=True)
        fields.add_column(overflow="fold")
        for field in entry.fields:
            fields.add_row(Text(f"{field.label}:"), Text(_printable(field.value)))
        table.add_row(what, fields)
    return table


def _printable(text: str) -> str:
    """Text as written, except control characters (a terminal escape in an old record) shown as
    escapes; line breaks and tabs stay."""
    return _CONTROL.sub(
        lambda found: found[0].encode("unicode_escape").decode("ascii"),
        text.replace("\r\n", "\n"),
    )


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# ---- what parties and operators send ----------------------------------------------------------


async def _recorded_plan_version(internship_id: str) -> int:
    """The current plan version, from the records."""
    async with connect_records(_settings()) as conn:
        found = await conn.fetchval(
            "SELECT plan_version FROM internships WHERE internship_id = $1", internship_id
        )
    if found is None:
        raise ops.InternshipNotFound(f"no internship {internship_id!r}: check the id")
    return int(found)


@app.command()
def approve(
    internship_id: InternshipId,
    party: Annotated[
        Literal["intern", "tutor", "mentor"],
        typer.Option(help="Who approves: intern, tutor or mentor."),
    ],
    version: Annotated[
        int | None, typer.Option(help="The plan version approved (default: the current one).")
    ] = None,
    comment: Annotated[str | None, typer.Option(help="A comment kept with the approval.")] = None,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record a party's approval of the learning agreement (e.g. one given on paper)."""

    async def call(client: Any) -> Receipt:
        plan_version = version or await _recorded_plan_version(internship_id)
        approval = _model(
            lambda: Approval(
                submission_id=submission_id or _new_id("approval"),
                party=party,
                plan_version=plan_version,
                comment=comment,
            )
        )
        return await ops.approve(client, internship_id, approval)

    _submit(call, "database")


@app.command()
def report(
    internship_id: InternshipId,
    milestone: Annotated[str, typer.Option(help="The milestone's id in the plan.")],
    summary: Annotated[str, typer.Option(help="What the intern did and learned.")],
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record the intern's report for a milestone."""
    report = _model(
        lambda: MilestoneReport(
            submission_id=submission_id or _new_id("report"),
            milestone_id=milestone,
            summary=summary,
        )
    )
    _submit(lambda client: ops.submit_report(client, internship_id, report))


@app.command()
def feedback(
    internship_id: InternshipId,
    hours: Annotated[float, typer.Option(help="Hours the intern attended.")],
    milestone: Annotated[
        str | None, typer.Option(help="The milestone this answers (default: none).")
    ] = None,
    rating: Annotated[
        list[str] | None,
        typer.Option(
            metavar="OUTCOME=LEVEL",
            help="A learning outcome's rubric level, e.g. lo-web=good; repeat for each outcome "
            "rated.",
        ),
    ] = None,
    comments: Annotated[
        str | None, typer.Option(help="The company's comments, kept with the feedback.")
    ] = None,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record the company's feedback: ratings on the rubric, attendance, comments.

    Example: `internflow feedback it-2027-web-001 --milestone mid-term --hours 72
    --rating lo-web=good --rating lo-team=basic`"""
    feedback = _model(
        lambda: CompanyFeedback(
            submission_id=submission_id or _new_id("feedback"),
            milestone_id=milestone,
            ratings=_pairs(rating or [], "--rating"),
            attendance_hours=hours,
            comments=comments,
        )
    )
    _submit(lambda client: ops.submit_feedback(client, internship_id, feedback))


@app.command()
def assess(
    internship_id: InternshipId,
    assessor: Annotated[
        Literal["mentor", "tutor"], typer.Option(help="Who assesses: mentor or tutor.")
    ],
    level: Annotated[
        list[str],
        typer.Option(
            metavar="OUTCOME=LEVEL",
            help="A learning outcome's rubric level, e.g. lo-web=good; repeat for every "
            "learning outcome.",
        ),
    ],
    comment: Annotated[str | None, typer.Option(help="A comment kept with the assessment.")] = None,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record a final assessment: a rubric level for every learning outcome."""
    assessment = _model(
        lambda: Assessment(
            submission_id=submission_id or _new_id("assessment"),
            assessor=assessor,
            levels=_pairs(level, "--level"),
            comment=comment,
        )
    )
    _submit(lambda client: ops.submit_assessment(client, internship_id, assessment))


@app.command()
def validate(
    internship_id: InternshipId,
    decision: Annotated[Literal["pass", "fail"], typer.Option(help="pass or fail.")],
    reason: Annotated[str | None, typer.Option(help="Why (shown to the intern on fail).")] = None,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Validate the result for the institution, once both assessments are in."""
    validation = _model(
        lambda: Validation(
            submission_id=submission_id or _new_id("validation"), decision=decision, reason=reason
        )
    )
    _submit(lambda client: ops.validate(client, internship_id, validation))


@app.command()
def pause(
    internship_id: InternshipId,
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")],
    submission_id: SubmissionIdOption = None,
) -> None:
    """Stop the internship's clock: every deadline ahead moves by the time paused."""
    request = _model(lambda: Pause(submission_id=submission_id or _new_id("pause"), reason=reason))
    _submit(lambda client: ops.pause(client, internship_id, request))


@app.command()
def resume(internship_id: InternshipId, submission_id: SubmissionIdOption = None) -> None:
    """Start the clock again after a pause."""
    request = _model(lambda: Resume(submission_id=submission_id or _new_id("resume")))
    _submit(lambda client: ops.resume(client, internship_id, request))


@app.command()
def extend(
    internship_id: InternshipId,
    to: Annotated[
        datetime,
        typer.Option(
            "--to",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d"],
            metavar="DATE",
            help="The new end, e.g. 2027-06-30 (local midnight) or 2027-06-30T17:00+02:00.",
        ),
    ],
    reason: Annotated[str, typer.Option(help="Why (kept in the audit trail).")],
    submission_id: SubmissionIdOption = None,
) -> None:
    """Move the internship's end later (never earlier); evaluation starts from the new end."""
    new_end = to if to.tzinfo is not None else to.astimezone()
    extension = _model(
        lambda: Extension(
            submission_id=submission_id or _new_id("extension"), new_end=new_end, reason=reason
        )
    )
    _submit(lambda client: ops.extend(client, internship_id, extension))


@app.command()
def withdraw(
    internship_id: InternshipId,
    reason: Annotated[str, typer.Option(help="Why (sent to the intern and the mentor).")],
    submission_id: SubmissionIdOption = None,
) -> None:
    """Withdraw the internship: it ends without a badge."""
    withdrawal = _model(
        lambda: Withdrawal(submission_id=submission_id or _new_id("withdrawal"), reason=reason)
    )
    _submit(lambda client: ops.withdraw(client, internship_id, withdrawal))


# ---- badges -----------------------------------------------------------------------------------


@app.command()
def verify(
    file: Annotated[
        Path, typer.Argument(help="A credential .json or .jwt, or a baked .png or .svg.")
    ],
    email: Annotated[
        str | None, typer.Option(help="Also check that the badge was awarded to this address.")
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the result as one JSON object (with `verdict` and `status_checked`).",
        ),
    ] = False,
) -> None:
    """Verify a badge: its JSON-LD terms, its proof (eddsa-rdfc-2022 or VC-JWT) against this
    deployment's issuer keys, its validity window, with --email its recipient and, once all of
    that holds, its revocation and suspension status, fetched over HTTP from the status list URLs
    the badge names (the issuer's API: `internflow up` or `serve`, or the deployment's public
    URL). A badge carries one status entry, its revocation; whether an internflow issuer has
    suspended it is asked of that issuer's API (`/credentials/<id>/status`).

    Exit codes:

    * **0**: verified: valid, and the issuer says it is neither revoked nor suspended.
    * **1**: not valid: unreadable as a badge, tampered or wrong proof, not yet valid or
    expired, revoked, suspended, or (with --email) awarded to someone else.
    * **2**: usage error: e.g. the file cannot be read.
    * **3**: status not checked: signature and content are valid, but the issuer's status list
    could not be had (e.g. the issuer cannot be reached), so the badge may be revoked.

    Example: internflow verify badge.png --email giulia@example.org"""
    from badges.verify import local_public_keys, verify_badge

    settings = _settings()
    try:
        data = file.read_bytes()
    except OSError as error:
        print(f"error: cannot read {file}: {error.strerror or error}", file=sys.stderr)
        raise typer.Exit(USER_ERROR) from None
    try:
        keys = local_public_keys(settings.keys_path)
    except (OSError, ValueError) as error:
        print(
            f"error: cannot read the issuer keys in {settings.keys_path}: {error}", file=sys.stderr
        )
        raise typer.Exit(USER_ERROR) from None
    moment = datetime.now(UTC)
    report = verify_badge(data, issuer_keys=keys, email=email, now=moment)
    fetcher: _StatusListFetcher | None = None
    if report.verified and report.credential and report.credential.get("credentialStatus"):
        # Only a badge whose proof holds is worth asking its issuer about (and only then is the
        # status list URL the issuer's own).
        fetcher = _StatusListFetcher(STATUS_FETCH_TIMEOUT)
        report = verify_badge(data, issuer_keys=keys, status_lists=fetcher, email=email, now=moment)
        if report.verified and report.suspended is None:
            _ask_issuer_about_suspension(report, fetcher)
    outcome = _judge(report, fetcher)
    if as_json:
        print(json.dumps(outcome.as_dict(), indent=2))
    else:
        _print_verification(file, outcome)
    raise typer.Exit(outcome.exit_code)


VERIFY_NOT_VALID = 1
VERIFY_STATUS_NOT_CHECKED = 3
STATUS_FETCH_TIMEOUT = 5.0
"""Seconds to wait for the issuer when fetching a status list."""
STATUS_LIST_MAX_BYTES = 8 * 1024 * 1024
_NO_RESOLVER_WARNING = "status not checked: no status list resolver was given"


class _StatusListFetcher:
    """Status list credentials fetched over HTTP(S) from the URLs a badge names, as any verifier
    fetches them; remembers, in plain words, why a fetch failed."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.failures: list[str] = []
        self._unreachable: dict[str, str] = {}

    def __call__(self, url: str) -> bytes:
        import urllib.error
        import urllib.request

        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:
            usable = False
        if not usable:
            raise self._failed(f"its status list URL {url!r} is not an http(s) URL")
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin in self._unreachable:
            raise self._failed(self._unreachable[origin])
        opener = urllib.request.OpenerDirector()  # http(s) only: no file:, ftp: or data:
        for handler in (
            urllib.request.ProxyHandler(),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPRedirectHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            opener.add_handler(handler)
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
            url,
            headers={
                "Accept": "application/ld+json, application/json;q=0.9, application/vc+jwt;q=0.8",
                "User-Agent": "internflow-verify",
            },
        )
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body: bytes = response.read(STATUS_LIST_MAX_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            raise self._failed(
                f"the issuer at {origin} answered HTTP {error.code} for its status list {url}"
            ) from None
        except Exception as error:  # any network failure: the status is unknown
            why = _network_reason(error, self.timeout)
            reason = f"the issuer at {origin} could not be reached ({why})"
            self._unreachable[origin] = reason
            raise self._failed(reason) from None
        if len(body) > STATUS_LIST_MAX_BYTES:
            raise self._failed(f"the status list at {url} is larger than a status list can be")
        return body

    def _failed(self, reason: str) -> LookupError:
        if reason not in self.failures:
            self.failures.append(reason)
        return LookupError(reason)


def _ask_issuer_about_suspension(report: VerificationReport, fetcher: _StatusListFetcher) -> None:
    """A badge whose one status entry is its revocation: ask the issuer's API whether it is
    suspended (an internflow issuer keeps suspension itself). Any issuer that does not answer
    this question leaves the report as it was."""
    entry = (report.credential or {}).get("credentialStatus")
    url = entry.get("statusListCredential") if isinstance(entry, dict) else None
    credential_id = report.credential_id or ""
    if not isinstance(url, str) or not credential_id.startswith("urn:uuid:"):
        return
    parts = urlsplit(url)
    question = f"{parts.scheme}://{parts.netloc}/credentials/{credential_id[9:]}/status"
    try:
        answer = json.loads(fetcher(question))
    except (LookupError, ValueError):
        fetcher.failures.clear()  # not a question every issuer answers: not a failure
        return
    if isinstance(answer, dict) and answer.get("credential_id") == credential_id:
        report.suspended = answer.get("status") == "suspended"
        if report.suspended:
            report.fail("status", "the credential is suspended by its issuer")


def _network_reason(error: BaseException, timeout: float) -> str:
    import socket
    import ssl
    import urllib.error

    cause = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(cause, socket.gaierror):
        return "its host name could not be resolved"
    if isinstance(cause, ssl.SSLError):
        return f"TLS failed: {cause}"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__


@dataclass(frozen=True)
class _Outcome:
    """What `verify` concludes from a report: the verdict, its exit code, and why the status
    could not be checked (if so)."""

    verdict: Literal["verified", "not valid", "revoked", "suspended", "status not checked"]
    exit_code: int
    status_checked: bool
    unchecked_because: list[str]
    report: VerificationReport

    def as_dict(self) -> dict[str, Any]:
        details = self.report.as_dict()
        del details["verified"]
        if not self.status_checked:
            details["checks"] = {k: v for k, v in details["checks"].items() if k != "status"}
            details["errors"] = [e for e in details["errors"] if not e.startswith("status:")]
        details["warnings"] = [w for w in details["warnings"] if w != _NO_RESOLVER_WARNING]
        return {
            "verdict": self.verdict,
            "verified": self.verdict == "verified",
            "status_checked": self.status_checked,
            "status_not_checked_because": self.unchecked_because,
            **details,
            "exit_code": self.exit_code,
        }


def _judge(report: VerificationReport, fetcher: _StatusListFetcher | None) -> _Outcome:
    """The verdict: revoked or suspended is never verified, and a badge whose status could not be
    had is "status not checked" (exit 3), not verified."""
    other_checks = [ok for check, ok in report.checks.items() if check != "status"]
    content_ok = bool(other_checks) and all(other_checks)
    status_errors = [e.removeprefix("status: ") for e in report.errors if e.startswith("status:")]
    if not content_ok or len(status_errors) < len(report.errors):
        return _Outcome("not valid", VERIFY_NOT_VALID, False, [], report)
    if fetcher is None:  # nothing to check: the badge names no status list
        return _Outcome("verified", 0, True, [], report)
    if report.revoked:
        return _Outcome("revoked", VERIFY_NOT_VALID, True, [], report)
    if report.suspended:
        return _Outcome("suspended", VERIFY_NOT_VALID, True, [], report)
    if report.verified:
        return _Outcome("verified", 0, True, [], report)
    fetched = "could not get the status list "
    because = fetcher.failures + [e for e in status_errors if not e.startswith(fetched)]
    return _Outcome(
        "status not checked", VERIFY_STATUS_NOT_CHECKED, False, because or status_errors, report
    )


def _plain(value: object) -> str:
    """Text from a badge, safe to print: control characters (terminal escapes) made visible."""
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(value)
    )


def _print_verification(file: Path, outcome: _Outcome) -> None:
    report = outcome.report
    unchecked = "; ".join(outcome.unchecked_because) or "no reason was given"
    status_named = bool(report.credential and report.credential.get("credentialStatus"))
    headline = {
        "verified": "VERIFIED: the badge is authentic and valid, and its issuer says it is "
        "neither revoked nor suspended."
        if status_named
        else "VERIFIED: the badge is authentic and valid (it names no status list: its issuer "
        "cannot revoke it).",
        "not valid": "NOT VALID: the badge does not verify (see the problems below).",
        "revoked": "NOT VALID: the badge has been revoked by its issuer.",
        "suspended": "NOT VALID: the badge is suspended by its issuer.",
        "status not checked": "STATUS NOT CHECKED: the badge's signature and content are valid, "
        "but whether its issuer has revoked or suspended it could not be checked.",
    }[outcome.verdict]
    print(_plain(headline))
    rows = [
        ("file", str(file)),
        ("credential", report.credential_id),
        ("issuer", report.issuer_id),
        ("format", ", ".join(p for p in (report.container, report.proof_format) if p)),
    ]
    if report.recipient_matches is not None:
        rows.append(("recipient", "matches" if report.recipient_matches else "does NOT match"))
    if outcome.verdict == "status not checked":
        rows.append(("status", f"NOT CHECKED: {unchecked}"))
    elif outcome.status_checked and status_named:
        flags = [("revoked", report.revoked), ("suspended", report.suspended)]
        said = [
            name if flag else f"not {name}" if flag is False else f"{name}: not listed"
            for name, flag in flags
        ]
        rows.append(("status", "checked with the issuer: " + ", ".join(said)))
    for name, value in rows:
        if value:
            print(f"  {name + ':':<12}{_plain(value)}")
    shown = outcome.as_dict()
    if shown["errors"]:
        print("problems:")
        for error in shown["errors"]:
            print(f"  - {_plain(error)}")
    if shown["warnings"]:
        print("warnings:")
        for warning in shown["warnings"]:
            print(f"  - {_plain(warning)}")
    if outcome.verdict == "status not checked":
        print(
            "Do not rely on this badge until its status can be checked (for this deployment's "
            "badges, `internflow up` or `internflow serve` publishes the status lists)."
        )


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
            help="An institution the operator key belongs to (its id, as in plans); repeat for "
            "several. The key sees, lists, starts and changes only their internships.",
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
    `--institution ID` (repeat for several) or, explicitly, `--all-institutions`; an admin key
    sees every institution.

    Examples: `internflow keys create registry-office --institution school-a`;
    `internflow keys create head-office --all-institutions`;
    `internflow keys create ops --role admin`"""
    from operations.access import AccessError, create_api_key, key_scope

    try:
        scope = key_scope(role, institution or (), all_institutions)
    except AccessError as error:
        raise _fail(str(error)) from None
    settings = _settings("database")

    async def go() -> Any:
        async with connect_records(settings) as conn:
            return await create_api_key(conn, name, role, institutions=scope)

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
