"""What the `internflow` commands share: the console, error exits, settings, running a
coroutine, submissions and their receipts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import asyncpg
import structlog
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from models.submissions import (
    Receipt,
)
from operations.access import AccessError
from operations.credentials import CredentialConflict, CredentialNotFound
from operations.internships import FieldRefused, OperationRejected
from records.read import records_as_of
from runtime.availability import RECORDS_UNREACHABLE, Outage, TemporalUnreachable, unreachable
from runtime.clients import (
    connect_records,
    connect_temporal,
    for_embedded_stack,
    temporal_answers,
)
from runtime.deployment import Need, require_secrets
from runtime.deployment import problems as secret_problems
from runtime.errors import StackError
from runtime.logging import configure_logging
from runtime.settings import Settings

console = Console()
T = TypeVar("T")
USER_ERROR = 2
CLI_ACTOR = "cli"
"""Who acted, in the records, when the command line did (it runs with the deployment's
database access: an operator of every institution)."""

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


_current: Settings | None = None
"""The command's settings, once read (to name a part of the embedded stack that is down)."""

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


EXIT_UNAVAILABLE = 75
"""A part the command needs is down (sysexits' EX_TEMPFAIL): nothing was done; try again."""


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; errors a user can cause end with a message, not a traceback;
    a part that is down is named in one sentence (exit 75: the same command can succeed later)."""
    try:
        return asyncio.run(coroutine)
    except FieldRefused as error:
        if len(error.problems) > 1:
            raise _fail(
                f"refused ({len(error.problems)} problems):", *(m for _, m in error.problems)
            ) from None
        raise _fail(str(error)) from None
    except (
        OperationRejected,
        StackError,
        CredentialNotFound,
        CredentialConflict,
        AccessError,
    ) as error:
        raise _fail(str(error)) from None
    except TemporalUnreachable as error:
        raise _down("temporal", str(error)) from None
    except (*RECORDS_UNREACHABLE, asyncpg.InvalidCatalogNameError):
        raise _down(
            "postgres",
            "cannot reach PostgreSQL: start the stack with `internflow up` or set "
            "INTERNFLOW_DATABASE_URL",
        ) from None
    except asyncpg.UndefinedTableError:
        raise _fail(
            "the database is missing tables: start the stack once (`internflow up`) or apply "
            "db/migrations/"
        ) from None
    except RuntimeError as error:
        if unreachable(error):
            raise _down(
                "temporal",
                "cannot reach Temporal: start the stack with `internflow up` or set "
                "INTERNFLOW_TEMPORAL_ADDRESS",
            ) from None
        raise


def _down(part: str, message: str) -> typer.Exit:
    """The exit for a part that is down: when the embedded stack runs on this state dir and
    that part (or another) is down in it, say so and that it comes back by itself."""
    if _current is not None:
        from embedded.stack import EmbeddedStack

        found = EmbeddedStack.find_running(_current)
        down = found.unreachable() if found is not None else []
        if found is not None and down:
            message = found.down_sentence(down, nothing_recorded=part == "temporal")
    _fail(message)
    return typer.Exit(EXIT_UNAVAILABLE)


def _read_notice(settings: Settings) -> None:
    """After a read from the records: one line (on stderr) if Temporal does not answer, saying
    that nothing moves meanwhile and what the records are as of."""

    async def outage() -> Outage | None:
        if await temporal_answers(settings):
            return None
        try:
            async with connect_records(settings) as conn:
                return Outage(await records_as_of(conn))
        except (*RECORDS_UNREACHABLE, asyncpg.PostgresError):
            return Outage(None)

    found = asyncio.run(outage())
    if found is None:
        return
    if _errors_as_json:
        structlog.get_logger("internflow").warning("temporal.unreachable", notice=found.line())
    else:
        Console(stderr=True).print(Text.assemble(("note:", "yellow"), " ", found.line()))


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
    global _errors_as_json, _current
    _errors_as_json = settings.log_format == "json"
    from embedded.stack import EmbeddedStack

    embedded = EmbeddedStack.find_running(settings) is not None
    if embedded and "temporal_client_config" not in settings.model_fields_set:
        # Beside the embedded stack its Temporal is the dev server, in clear text: not what
        # TEMPORAL_* or a Temporal config file may say about another cluster.
        settings = for_embedded_stack(settings)
    _current = settings
    if needs and secret_problems(settings, needs):
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
