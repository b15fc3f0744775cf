"""`internflow institutions`, `internflow institution add|rename|identify|linkedin`, `internflow
company rename`: the records of institutions and host companies, one name each, an institution's
legal identifier and its LinkedIn organization id (operations/organisations.py)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text

from cli.app import app, company_app, institution_app
from cli.common import CLI_ACTOR, _fail, _run, _settings, console
from operations import organisations as orgs
from runtime.clients import connect_records

NewName = Annotated[
    str, typer.Option("--name", help="The new name, as plans from now on must give it.")
]
Reason = Annotated[
    str, typer.Option(help="Why it is renamed: kept in the name's history with who and when.")
]
LegalId = Annotated[
    str | None,
    typer.Option(
        "--legal-identifier",
        help="The organisation identifier of its eIDAS seal certificate, e.g. VATIT-01234567890 "
        "(VAT, NTR or PSD, the country, a hyphen, the number): European Digital Credentials name "
        "their issuer by it.",
    ),
]


def print_history(history: list[orgs.NameEvent]) -> None:
    """A name's history, one step a line (oldest first)."""
    for event in history:
        when = f"{event.occurred_at:%Y-%m-%d %H:%M}"
        if event.event == "identified":
            why = f": {event.reason}" if event.reason else ""
            line = f"  {when}  legal identifier {event.legal_identifier} by {event.actor}{why}"
        elif event.event == "renamed":
            line = (
                f"  {when}  renamed {event.previous_name!r} -> {event.name!r} by {event.actor}: "
                f"{event.reason}"
            )
        else:
            started = f", starting {event.internship_id}" if event.internship_id else ""
            note = f" ({event.reason})" if event.reason else ""
            line = f"  {when}  recorded as {event.name!r} by {event.actor}{started}{note}"
        console.print(Text(line), soft_wrap=True)


@app.command("institutions")
def institutions(
    institution: Annotated[
        str | None,
        typer.Argument(
            metavar="[INSTITUTION_ID]", help="One institution, with its name's history."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The recorded institutions, each with its one name (plans must give it as recorded). An
    institution is recorded by its first internship's start, or by `internflow institution add`.

    Example: `internflow institutions`, `internflow institutions ipsia-bassano`"""
    settings = _settings("database")

    if institution is not None:

        async def one() -> tuple[orgs.Organisation | None, list[orgs.NameEvent]]:
            async with connect_records(settings) as conn:
                found = await orgs.organisation(conn, "institution", institution)
                return found, await orgs.name_history(conn, "institution", institution)

        found, history = _run(one())
        if found is None:
            raise _fail(str(orgs.not_recorded("institution", institution)))
        if as_json:
            data = {
                **found.model_dump(mode="json"),
                "name_history": [e.model_dump(mode="json") for e in history],
            }
            print(json.dumps(data, ensure_ascii=False, indent=2))
            return
        console.print(Text(f"{found.name} ({found.id})", style="bold"), soft_wrap=True)
        if found.legal_identifier:
            console.print(Text(f"  legal identifier: {found.legal_identifier}"), soft_wrap=True)
        print_history(history)
        if found.europass_needs:
            console.print(Text(f"note: {found.europass_needs}"), soft_wrap=True)
        return

    async def every() -> list[orgs.Organisation]:
        async with connect_records(settings) as conn:
            return await orgs.organisations(conn, "institution")

    found_all = _run(every())
    if as_json:
        print(json.dumps([o.model_dump(mode="json") for o in found_all], ensure_ascii=False))
        return
    for item in found_all:
        renamed = f", renamed {item.renamed_at:%Y-%m-%d}" if item.renamed_at else ""
        legal = f"  {item.legal_identifier}" if item.legal_identifier else ""
        linkedin = (
            f", LinkedIn organization {item.linkedin_organization_id}"
            if item.linkedin_organization_id
            else ""
        )
        console.print(
            Text(
                f"{item.id}  {item.name}{legal}  (recorded {item.recorded_at:%Y-%m-%d}{renamed}"
                f"{linkedin})"
            ),
            soft_wrap=True,
        )
    console.print(f"{len(found_all)} institution{'' if len(found_all) == 1 else 's'}")
    for item in found_all:
        if item.europass_needs:
            console.print(Text(f"note: {item.europass_needs}"), soft_wrap=True)


@institution_app.command("add")
def institution_add(
    institution_id: Annotated[
        str, typer.Argument(metavar="INSTITUTION_ID", help="Its id, as plans give institution.id.")
    ],
    name: Annotated[
        str, typer.Option("--name", help="Its name, as plans must give institution.name.")
    ],
    legal_identifier: LegalId = None,
) -> None:
    """Record an institution before its first internship, e.g. to give it an operator key
    (`internflow keys create NAME --institution ID` refuses an institution with no record). A
    start records a new institution by itself.

    Example: `internflow institution add ipsia-bassano --name "Istituto Professionale Bassano"`"""
    settings = _settings("database")

    async def go() -> orgs.Organisation:
        async with connect_records(settings) as conn:
            return await orgs.add_institution(
                conn,
                institution_id,
                name,
                CLI_ACTOR,
                legal_identifier=legal_identifier,
                id_field="INSTITUTION_ID",
                name_field="--name",
                legal_identifier_field="--legal-identifier",
            )

    added = _run(go())
    legal = f", legal identifier {added.legal_identifier}" if added.legal_identifier else ""
    console.print(Text(f"recorded institution {added.id} as {added.name!r}{legal}"), soft_wrap=True)
    if added.europass_needs:
        console.print(Text(f"note: {added.europass_needs}"), soft_wrap=True)


def _rename(kind: orgs.Kind, organisation_id: str, name: str, reason: str) -> None:
    settings = _settings("database")

    async def go() -> tuple[str | None, orgs.Organisation]:
        async with connect_records(settings) as conn:
            before = await orgs.organisation(conn, kind, organisation_id)
            renamed = await orgs.rename(
                conn,
                kind,
                organisation_id,
                name,
                reason,
                CLI_ACTOR,
                name_field="--name",
                reason_field="--reason",
            )
            return (before.name if before else None), renamed

    before, renamed = _run(go())
    console.print(
        Text(f"renamed {kind} {renamed.id}: {before!r} -> {renamed.name!r}"), soft_wrap=True
    )


@institution_app.command("rename")
def institution_rename(
    institution_id: Annotated[
        str, typer.Argument(metavar="INSTITUTION_ID", help="Its id, as plans give it.")
    ],
    name: NewName,
    reason: Reason,
) -> None:
    """Give an institution its new name: plans from now on must give it (running internships
    keep the name their plan was written with). Kept in its history, with the old name, when,
    and your reason.

    Example: `internflow institution rename ipsia-bassano --name "IPSIA Bassano del Grappa"
    --reason "new name from 1 September"`"""
    _rename("institution", institution_id, name, reason)


@institution_app.command("identify")
def institution_identify(
    institution_id: Annotated[
        str, typer.Argument(metavar="INSTITUTION_ID", help="Its id, as plans give it.")
    ],
    legal_identifier: Annotated[
        str,
        typer.Option(
            "--legal-identifier",
            help="The organisation identifier of its eIDAS seal certificate (its subject's "
            "organizationIdentifier), e.g. VATIT-01234567890.",
        ),
    ],
    reason: Annotated[
        str | None,
        typer.Option(help="Why it replaces the one recorded (needed then; kept in its history)."),
    ] = None,
) -> None:
    """Set an institution's legal identifier: European Digital Credentials name their issuer by
    it, and an institution without one cannot issue them. Kept in its history with when (and,
    when it replaces one, your reason).

    Example: `internflow institution identify ipsia-bassano --legal-identifier VATIT-01234567890`"""
    settings = _settings("database")

    async def go() -> orgs.Organisation:
        async with connect_records(settings) as conn:
            return await orgs.identify_institution(
                conn,
                institution_id,
                legal_identifier,
                CLI_ACTOR,
                reason,
                field="--legal-identifier",
                reason_field="--reason",
            )

    done = _run(go())
    console.print(
        Text(f"institution {done.id}: legal identifier {done.legal_identifier}"), soft_wrap=True
    )


@institution_app.command("linkedin")
def institution_linkedin(
    institution_id: Annotated[
        str, typer.Argument(metavar="INSTITUTION_ID", help="Its id, as plans give it.")
    ],
    organization_id: Annotated[
        str | None,
        typer.Argument(
            metavar="ORGANIZATION_ID",
            help="The number in the address of its LinkedIn page as the page's admins see it "
            "(linkedin.com/company/<number>/admin/).",
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Forget it: the link names the institution again.")
    ] = False,
) -> None:
    """Give an institution its LinkedIn organization id: the "Add to LinkedIn profile" link of
    its badges (on the badge page and in badge e-mails from now on, earlier badges included)
    then names it by `organizationId`, so that LinkedIn shows its page and logo, instead of by
    its name.

    Example: `internflow institution linkedin ipsia-bassano 2414183`, and to undo it
    `internflow institution linkedin ipsia-bassano --clear`"""
    if (organization_id is None) == (not clear):
        raise _fail("give ORGANIZATION_ID, or --clear to forget it (not both)")
    settings = _settings("database")

    async def go() -> orgs.Organisation:
        async with connect_records(settings) as conn:
            return await orgs.set_linkedin_organization(
                conn, institution_id, organization_id, CLI_ACTOR, field="ORGANIZATION_ID"
            )

    done = _run(go())
    said = (
        f"LinkedIn organization {done.linkedin_organization_id}"
        if done.linkedin_organization_id
        else "no LinkedIn organization (the link names it by its name)"
    )
    console.print(Text(f"institution {done.id}: {said}"), soft_wrap=True)


@company_app.command("rename")
def company_rename(
    company_id: Annotated[
        str, typer.Argument(metavar="COMPANY_ID", help="Its id, as plans give company.id.")
    ],
    name: NewName,
    reason: Reason,
) -> None:
    """Give a host company its new name: `internflow companies` and the school's view of its
    companies show it, and plans from now on must give it (running internships keep the name
    their plan was written with). Kept in its history, with the old name, when, and your reason.

    Example: `internflow company rename northwind-freight --name "Northwind Freight GmbH"
    --reason "legal name after the merger"`"""
    _rename("company", company_id, name, reason)
