"""`internflow companies`: the school's view of its host companies, from the records."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from cli.app import app
from cli.common import _fail, _read_notice, _run, _settings, console
from cli.organisations import print_history
from operations import companies as host_companies
from runtime.clients import connect_records


def _rating(company: host_companies.CompanySummary) -> str:
    placement = company.placement
    if placement is None:
        return f"— ({company.ratings} of {host_companies.MIN_RATINGS} ratings needed)"
    return (
        f"{placement.rating:.2f}/5 (tasks {placement.tasks_matched:.2f}, support "
        f"{placement.mentor_support:.2f}, recommend {placement.would_recommend:.0%}; "
        f"{placement.ratings} interns)"
    )


def _figures(company: host_companies.CompanySummary) -> list[str]:
    phases = ", ".join(f"{phase.value} {count}" for phase, count in company.by_phase.items())
    completion = (
        f"{company.completion_rate:.0%}" if company.completion_rate is not None else "none ended"
    )
    return [
        f"internships  {company.internships} ({phases})",
        f"completed    {completion}",
        f"missed       {company.missed_milestones} milestones",
        f"placement    {_rating(company)}",
    ]


@app.command("companies")
def companies(
    company: Annotated[
        str | None,
        typer.Argument(metavar="[COMPANY_ID]", help="One company: its figures and internships."),
    ] = None,
    institution: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ID",
            help="Only the internships of this institution (repeat for several), as an "
            "institution's operator key sees them.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Host companies from the records: per company, its recorded name, internships by phase and
    outcome, completion rate, missed milestones and the interns' placement rating (only once at
    least three interns rated, so no one's answers can be told); one company also with its
    name's history (`internflow company rename` changes the name).

    Example: `internflow companies --institution ipsia-bassano`, `internflow companies acme-web`"""
    settings = _settings("database")
    _read_notice(settings)
    scope = list(institution) if institution else None

    if company is not None:

        async def one() -> host_companies.CompanyDetail | None:
            async with connect_records(settings) as conn:
                return await host_companies.company(conn, company, scope)

        found = _run(one())
        if found is None:
            raise _fail(f"no internship is recorded at company {company!r}", "check the id")
        if as_json:
            console.print_json(found.model_dump_json())
            return
        console.print(Text(f"{found.name} ({found.company_id})", style="bold"), soft_wrap=True)
        for line in _figures(found):
            console.print(Text("  " + line), soft_wrap=True)
        if found.name_history:
            console.print("  name")
            print_history(found.name_history)
        for item in found.internship_list:
            console.print(
                Text(
                    f"  {item.internship_id}  {item.phase.value}"
                    f"{' (overdue)' if item.overdue else ''}  {item.institution_id}  "
                    f"{item.start_at:%Y-%m-%d} to {item.end_at:%Y-%m-%d}  "
                    f"missed {item.missed_milestones}"
                ),
                soft_wrap=True,
            )
        return

    async def every() -> list[host_companies.CompanySummary]:
        async with connect_records(settings) as conn:
            return await host_companies.companies(conn, scope)

    found_all = _run(every())
    if as_json:
        console.print_json(json.dumps([c.model_dump(mode="json") for c in found_all]))
        return
    for summary in found_all:
        console.print(Text(f"{summary.name} ({summary.company_id})", style="bold"), soft_wrap=True)
        for line in _figures(summary):
            console.print(Text("  " + line), soft_wrap=True)
    console.print(f"{len(found_all)} compan{'y' if len(found_all) == 1 else 'ies'}")
