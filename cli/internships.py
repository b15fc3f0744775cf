"""`internflow start`, `rehearse`, `list`, `status`, `history`, and the parties' and operators'
steps: approve, paper-signature, report, feedback, assess, self-assess, evaluate-placement,
validate, pause, resume, extend, withdraw."""

from __future__ import annotations

import base64
import json
import re
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import ValidationError
from rich import box
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table
from rich.text import Text

from badges.artwork import MAX_BYTES
from cli.app import app
from cli.common import (
    CLI_ACTOR,
    USER_ERROR,
    InternshipId,
    SubmissionIdOption,
    _dotted,
    _fail,
    _model,
    _new_id,
    _pairs,
    _problems,
    _read_notice,
    _run,
    _settings,
    _submit,
    console,
)
from cli.examples import plan_path
from models.plan import InternshipPlan, Signatory
from models.records import InternshipRow, TimelineRow
from models.status import Phase
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    Extension,
    MilestoneReport,
    PaperSignatureRequest,
    Pause,
    PlacementEvaluation,
    Receipt,
    Resume,
    SelfAssessment,
    Validation,
    Withdrawal,
)
from operations import internships as ops
from operations.organisations import NameBook
from runtime.clients import connect_records, connect_temporal
from runtime.settings import Settings


def _read_plan(plan_file: Path) -> InternshipPlan:
    plan_file = plan_path(plan_file)  # examples/NAME: the sample, where no such file is here
    try:
        text = plan_file.read_text()
        data = json.loads(text)
    except OSError as error:
        raise _fail(f"cannot read {plan_file}: {error.strerror}") from None
    except ValueError:
        data = None  # not JSON: said by the model below, with where
    try:
        if isinstance(data, dict):
            text = json.dumps(_with_image_file(data, plan_file.parent))
        return InternshipPlan.model_validate_json(text)
    except ValidationError as error:
        problems = _problems(error, _dotted)
        count = f"{len(problems)} problems" if len(problems) > 1 else "a problem"
        raise _fail(f"{plan_file} is not a valid plan ({count}):", *problems) from None


def _with_image_file(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The plan with badge.image read from disk when it names a file (beside the plan, or by
    its path): the image as a data: URI, checked and kept where the plan starts. A name that is
    no file stays as it is (an image internflow ships)."""
    badge = data.get("badge")
    image = badge.get("image") if isinstance(badge, dict) else None
    if not isinstance(badge, dict) or not isinstance(image, str) or image.startswith("data:"):
        return data
    path = folder / Path(image).expanduser()
    if not path.is_file():
        if "/" in image or "\\" in image:
            raise _fail(f"badge.image: there is no file {path}: give the path of a PNG or SVG")
        return data
    if path.stat().st_size > MAX_BYTES:
        raise _fail(
            f"badge.image: {path} is larger than {MAX_BYTES // 1024} KiB: make the image smaller"
        )
    try:
        content = path.read_bytes()
    except OSError as error:
        raise _fail(f"badge.image: cannot read {path}: {error.strerror}") from None
    uri = "data:application/octet-stream;base64," + base64.b64encode(content).decode("ascii")
    return {**data, "badge": {**badge, "image": uri}}


@app.command()
def start(
    plan_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="PLAN_FILE",
            help="A plan as JSON, like examples/plan.json (a sample installed with internflow); "
            "with --batch CSV, the template that every row fills in.",
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
    reason, and so is a plan whose agreement_deadline has passed (nobody could approve it in time),
    whose period.time_zone is not an IANA time zone, that gives a recorded institution.id or
    company.id another name (rename it first: `internflow company rename`, `internflow institution
    rename`), or a different plan under the id of a running internship (amend that one instead,
    with `POST /api/internships/ID/amendments`, or choose a new internship_id). A new institution
    or company id is recorded with its name.

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
            async with connect_records(settings) as records:
                return await ops.start_plan(
                    client,
                    settings,
                    plan,
                    recorded_plans=_recorded_plans(settings),
                    names=NameBook(records, CLI_ACTOR),
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
            async with connect_records(settings) as records:
                return await start_batch(
                    client,
                    settings,
                    rows,
                    on_row=advance,
                    recorded_plans=_recorded_plans(settings),
                    names=NameBook(records, CLI_ACTOR),
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
        Path,
        typer.Argument(
            metavar="PLAN_FILE",
            help="A plan as JSON, like examples/plan.json (a sample installed with internflow).",
        ),
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
    from records.read import list_internships as read_list

    settings = _settings("database")
    _read_notice(settings)

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
    from records.read import internship_status

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
    else:
        _read_notice(settings)
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
    from records.read import internship_timeline

    _read_notice(settings)

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
        Signatory,
        typer.Option(help="Who approves: intern, tutor, mentor or another signer the plan names."),
    ],
    version: Annotated[
        int | None, typer.Option(help="The plan version approved (default: the current one).")
    ] = None,
    comment: Annotated[str | None, typer.Option(help="A comment kept with the approval.")] = None,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record a party's approval of the learning agreement on their behalf (e.g. given by
    e-mail or in person): it is recorded as not on paper (on_paper false). For a signature on
    paper, use `internflow paper-signature`: it records when the paper was signed and where it
    is, and shows as "on paper"."""

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


@app.command("paper-signature")
def paper_signature(
    internship_id: InternshipId,
    role: Annotated[
        Signatory,
        typer.Option(help="Who signed: a signer the plan names, e.g. guardian or mentor."),
    ],
    signed_at: Annotated[
        datetime,
        typer.Option(
            "--signed-at",
            formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d"],
            metavar="DATE",
            help="When the paper was signed, e.g. 2027-02-10 (midnight in the plan's time "
            "zone) or 2027-02-10T15:30+01:00; not in the future, nor before the plan existed.",
        ),
    ],
    note: Annotated[str, typer.Option(help="Where the paper is, or anything worth keeping.")],
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record a signature of the learning agreement given on paper: it counts as that signer's
    approval of the current plan version, and shows as "on paper" with when and the note. A
    date is taken as midnight in the plan's time zone; one in the future, or on a day before
    the plan was first recorded, is refused.

    Example: `internflow paper-signature it-2027-web-001 --role company_representative
    --signed-at 2027-02-10 --note "signed copy in the school's file 2027/41"`"""
    # Every format but the plain date carries an offset: a moment without one is a date.
    signed: date | datetime = signed_at if signed_at.tzinfo is not None else signed_at.date()
    paper = _model(
        lambda: PaperSignatureRequest(
            submission_id=submission_id or _new_id("paper-signature"),
            role=role,
            signed_at=signed,
            note=note,
        )
    )

    async def call(client: Any) -> Receipt:
        async with connect_records(_settings()) as reader:
            return await ops.sign_on_paper(
                client, internship_id, paper, reader, field="--signed-at"
            )

    _submit(call, "database")


@app.command()
def report(
    internship_id: InternshipId,
    milestone: Annotated[str, typer.Option(help="The milestone's id in the plan.")],
    summary: Annotated[str, typer.Option(help="What the intern did and learned.")],
    share_in_badge: Annotated[
        bool,
        typer.Option(
            "--share-in-badge",
            help="The intern agrees to show this report's text in the badge as evidence: "
            "whoever is shown the badge can read it (the report page's \"Show this report in my "
            'badge").',
        ),
    ] = False,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record the intern's report for a milestone. Its text appears in the badge only with
    --share-in-badge, as on the report page; nothing else the intern writes does.

    Example: `internflow report it-2027-web-001 --milestone final --summary "..."
    --share-in-badge`"""
    report = _model(
        lambda: MilestoneReport(
            submission_id=submission_id or _new_id("report"),
            milestone_id=milestone,
            summary=summary,
            share_in_badge=share_in_badge,
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


@app.command("self-assess")
def self_assess(
    internship_id: InternshipId,
    level: Annotated[
        list[str],
        typer.Option(
            metavar="OUTCOME=LEVEL",
            help="The intern's own rubric level for a learning outcome, e.g. lo-web=good; "
            "repeat for every learning outcome.",
        ),
    ],
    milestone: Annotated[
        str | None,
        typer.Option(help="The milestone that asks for it (default: the final one, at the end)."),
    ] = None,
    comment: Annotated[str | None, typer.Option(help="The intern's comment, kept with it.")] = None,
    share_in_badge: Annotated[
        bool,
        typer.Option(
            "--share-in-badge",
            help="The intern agrees to show the final self-assessment in the badge, labelled as "
            "theirs.",
        ),
    ] = False,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record the intern's self-assessment: at a milestone that asks for one, or at the end.
    It is shown beside the assessments and never counts in the result.

    Example: `internflow self-assess it-2027-web-001 --level lo-web=good --level lo-team=basic
    --share-in-badge`"""
    assessment = _model(
        lambda: SelfAssessment(
            submission_id=submission_id or _new_id("self-assessment"),
            milestone_id=milestone,
            levels=_pairs(level, "--level"),
            comment=comment,
            share_in_badge=share_in_badge,
        )
    )
    _submit(lambda client: ops.submit_self_assessment(client, internship_id, assessment))


@app.command("evaluate-placement")
def evaluate_placement(
    internship_id: InternshipId,
    tasks_matched: Annotated[
        int,
        typer.Option(min=1, max=5, help="Did the tasks match the agreement: 1 (not at all) to 5."),
    ],
    mentor_support: Annotated[
        int, typer.Option(min=1, max=5, help="The mentor's support: 1 (none) to 5 (full).")
    ],
    recommend: Annotated[
        bool,
        typer.Option(
            "--recommend/--not-recommend", help="Would the intern recommend the placement?"
        ),
    ],
    comments: Annotated[str | None, typer.Option(help="The intern's comments.")] = None,
    submission_id: SubmissionIdOption = None,
) -> None:
    """Record the intern's evaluation of the placement, at the end (never shown to the company
    one by one: see `internflow companies`)."""
    evaluation = _model(
        lambda: PlacementEvaluation(
            submission_id=submission_id or _new_id("placement"),
            tasks_matched=tasks_matched,
            mentor_support=mentor_support,
            would_recommend=recommend,
            comments=comments,
        )
    )
    _submit(lambda client: ops.evaluate_placement(client, internship_id, evaluation))


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
