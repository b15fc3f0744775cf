"""Institutions and host companies as records, one name each.

A plan names its institution and its host company by id and name. The first start of an id
records its name; a later plan (a start, a batch row, an amendment) that gives a recorded id
another name is refused with both names and how to rename, and nothing starts. A name changes
only by an explicit rename with a reason (an operator for the institutions of their key and the
companies that host their internships, an admin for any, the CLI for any), kept with who and
when in `organisation_events`, which nobody may change. An institution is recorded by its first
internship's start or, before it has any (to give it an operator key), by `add_institution`.

Company ids are global, as the school's view of its companies is: one company's name is the same
for every institution that sends interns there."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Final, Literal, TypeAlias

import asyncpg
import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from issuance.edc import LegalIdentifierRefused, legal_identifier_country
from models.base import Identifier, Name, Text
from models.plan import InternshipPlan
from operations.internships import FieldRefused, OperationRejected, PlanRefused

log = structlog.get_logger(__name__)

Kind = Literal["institution", "company"]
Connection: TypeAlias = asyncpg.Connection | asyncpg.Pool

#: Each kind's table and id column (constants: never taken from input).
_TABLES: Final[dict[Kind, tuple[str, str]]] = {
    "institution": ("institutions", "institution_id"),
    "company": ("companies", "company_id"),
}

_IDENTIFIER: Final = TypeAdapter(Identifier)
_NAME: Final = TypeAdapter(Name)
_REASON: Final = TypeAdapter(Text)


class OrganisationNotFound(OperationRejected):
    """No institution or company is recorded under the id (or the caller may not see it)."""


class OrganisationExists(OperationRejected):
    """An institution to add is recorded already."""


class Organisation(BaseModel):
    """An institution or a host company as recorded: its one name (and an institution's legal
    identifier once set, and its LinkedIn page's organization id if it gave one)."""

    kind: Kind
    id: str
    name: str
    recorded_at: datetime
    renamed_at: datetime | None
    legal_identifier: str | None = None
    """An institution's organisation identifier, as its eIDAS seal certificate gives it (e.g.
    VATIT-01234567890): a European Digital Credential names its issuer by it."""
    europass_needs: str | None = None
    """For an institution without a legal identifier: that it cannot issue European Digital
    Credentials until one is set, and how to set it."""
    linkedin_organization_id: str | None = None


class NameEvent(BaseModel):
    """One step of a name's history: recorded (by a start, an explicit addition or the migration
    that began the records), renamed (by whom, when, from which name, why), or, for an
    institution, identified (its legal identifier set: by whom, when, and why when it replaced
    another)."""

    event: Literal["recorded", "renamed", "identified"]
    name: str
    previous_name: str | None
    reason: str | None
    actor: str
    internship_id: str | None
    occurred_at: datetime
    legal_identifier: str | None = None


def identify_hint(institution_id: str) -> str:
    """How to set an institution's legal identifier, on the command line and over HTTP."""
    return (
        f"`internflow institution identify {institution_id} --legal-identifier VATxx-...`, or "
        f"POST /api/admin/institutions/{institution_id}/legal-identifier"
    )


def europass_needs(institution_id: str) -> str:
    """What an institution without a legal identifier is told, word for word."""
    return (
        f"institution {institution_id!r} has no legal identifier recorded, so it cannot issue "
        "European Digital Credentials: set the organisation identifier of its eIDAS seal "
        f"certificate (e.g. VATIT-01234567890) with {identify_hint(institution_id)}"
    )


def rename_hint(kind: Kind, organisation_id: str, name: str) -> str:
    """How to give a recorded id a new name, on the command line and over HTTP."""
    path = "institutions" if kind == "institution" else "companies"
    return (
        f"`internflow {kind} rename {organisation_id} --name {_quoted(name)} --reason ...`, or "
        f"POST /api/admin/{path}/{organisation_id}/rename with name and reason"
    )


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _differs(kind: Kind, organisation_id: str, recorded: str, given: str) -> tuple[str, str]:
    return (
        f"{kind}.name",
        f"{kind}.id {organisation_id!r} is recorded as {recorded!r}, but this plan names it "
        f"{given!r}: write {kind}.name as recorded, or rename the {kind} first "
        f"({rename_hint(kind, organisation_id, given)})",
    )


def _plan_names(plan: InternshipPlan) -> list[tuple[Kind, str, str]]:
    return [
        ("institution", plan.institution.id, plan.institution.name),
        ("company", plan.company.id, plan.company.name),
    ]


async def claim_names(conn: asyncpg.Connection, plan: InternshipPlan, actor: str) -> None:
    """Within the caller's transaction: record the plan's institution and company ids seen for
    the first time (with their names, `actor` and the internship), and hold the recorded ones
    (a rename waits) while they are compared. PlanRefused naming every name that differs from
    the records; the caller's rollback then takes back what was recorded here."""
    problems = []
    for kind, organisation_id, name in _plan_names(plan):
        table, column = _TABLES[kind]
        inserted = await conn.fetchval(
            f"INSERT INTO {table} ({column}, name) VALUES ($1, $2) "  # noqa: S608 - constants
            f"ON CONFLICT ({column}) DO NOTHING RETURNING {column}",
            organisation_id,
            name,
        )
        if inserted is not None:
            await _event(conn, kind, organisation_id, "recorded", name, actor, plan.internship_id)
            continue
        recorded = await conn.fetchval(
            f"SELECT name FROM {table} WHERE {column} = $1 FOR SHARE",  # noqa: S608 - constants
            organisation_id,
        )
        if recorded != name:
            problems.append(_differs(kind, organisation_id, recorded, name))
    if problems:
        (field, message), *more = problems
        raise PlanRefused(message, field, *more)


class NameBook:
    """The records of institutions and companies, as a start consults them
    (`operations.internships.NameHolder`): on a pool (a connection per start) or on one
    connection (the CLI's), recording as `actor`."""

    def __init__(self, records: Connection, actor: str) -> None:
        self._records = records
        self._actor = actor

    @asynccontextmanager
    async def held(self, plan: InternshipPlan) -> AsyncIterator[None]:
        """Claim the plan's names (`claim_names`) in a transaction that lasts while the caller
        starts the plan: committed when the block ends, rolled back when it raises, so a start
        refused later records no name."""
        async with self._connection() as conn, conn.transaction():
            await claim_names(conn, plan, self._actor)
            yield

    async def with_kept_image(self, plan: InternshipPlan) -> InternshipPlan:
        """The plan with the school's own badge image kept (`keep_plan_image`)."""
        from operations.badge_images import keep_plan_image

        async with self._connection() as conn:
            return await keep_plan_image(conn, plan)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        if isinstance(self._records, asyncpg.Pool):
            async with self._records.acquire() as conn:
                yield conn
        else:
            yield self._records


async def _event(
    conn: Connection,
    kind: Kind,
    organisation_id: str,
    event: Literal["recorded", "renamed", "identified"],
    name: str,
    actor: str,
    internship_id: str | None = None,
    previous_name: str | None = None,
    reason: str | None = None,
    legal_identifier: str | None = None,
) -> None:
    await conn.execute(
        """
        INSERT INTO organisation_events (organisation, organisation_id, event, name,
                                         previous_name, reason, actor, internship_id,
                                         legal_identifier)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        """,
        kind,
        organisation_id,
        event,
        name,
        previous_name,
        reason,
        actor,
        internship_id,
        legal_identifier,
    )


def _valid(adapter: TypeAdapter[str], value: str, field: str, what: str) -> str:
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        said = str(error.errors()[0]["msg"]).removeprefix("Value error, ")
        raise FieldRefused(f"{field}: {said} ({what})", field) from None


def valid_legal_identifier(value: str, field: str) -> str:
    """The legal identifier as given (surrounding blanks dropped); FieldRefused naming `field`
    and the form expected."""
    value = value.strip()
    try:
        legal_identifier_country(value)
    except LegalIdentifierRefused as refused:
        raise FieldRefused(f"{field}: {refused}", field) from None
    return value


async def add_institution(
    conn: Connection,
    institution_id: str,
    name: str,
    actor: str,
    *,
    legal_identifier: str | None = None,
    id_field: str = "institution_id",
    name_field: str = "name",
    legal_identifier_field: str = "legal_identifier",
) -> Organisation:
    """Record an institution before its first internship (so that an operator key can belong to
    it), with its legal identifier if given. FieldRefused for an id, a name or a legal
    identifier that is not one (naming `id_field`, `name_field`, `legal_identifier_field`);
    OrganisationExists when the id is recorded already."""
    institution_id = _valid(_IDENTIFIER, institution_id, id_field, "as a plan's institution.id")
    name = _valid(_NAME, name, name_field, "the institution's name, as plans will give it")
    if legal_identifier is not None:
        legal_identifier = valid_legal_identifier(legal_identifier, legal_identifier_field)
    async with _transaction(conn) as tx:
        row = await tx.fetchrow(
            """
            INSERT INTO institutions (institution_id, name, legal_identifier) VALUES ($1, $2, $3)
            ON CONFLICT (institution_id) DO NOTHING
            RETURNING institution_id, name, recorded_at, renamed_at, legal_identifier,
                linkedin_organization_id
            """,
            institution_id,
            name,
            legal_identifier,
        )
        if row is None:
            recorded = await tx.fetchval(
                "SELECT name FROM institutions WHERE institution_id = $1", institution_id
            )
            raise OrganisationExists(
                f"institution {institution_id!r} is recorded already, as {recorded!r}: there is "
                "nothing to add (to change its name: "
                f"{rename_hint('institution', institution_id, name)})"
            )
        await _event(tx, "institution", institution_id, "recorded", name, actor)
        if legal_identifier is not None:
            await _event(
                tx,
                "institution",
                institution_id,
                "identified",
                name,
                actor,
                legal_identifier=legal_identifier,
            )
    log.info("organisation.recorded", kind="institution", organisation_id=institution_id)
    return _organisation("institution", row)


async def identify_institution(
    conn: Connection,
    institution_id: str,
    legal_identifier: str,
    actor: str,
    reason: str | None = None,
    *,
    field: str = "legal_identifier",
    reason_field: str = "reason",
) -> Organisation:
    """Set a recorded institution's legal identifier (the organisation identifier of its eIDAS
    seal certificate), kept in its history with `actor`. Replacing one already set needs a
    reason. OrganisationNotFound for an id not recorded; FieldRefused for an identifier that is
    not one, the same as the recorded one, or a replacement without a reason."""
    legal_identifier = valid_legal_identifier(legal_identifier, field)
    if reason is not None:
        reason = _valid(_REASON, reason, reason_field, "why it is replaced: kept in its history")
    async with _transaction(conn) as tx:
        current = await tx.fetchrow(
            "SELECT name, legal_identifier FROM institutions WHERE institution_id = $1 FOR UPDATE",
            institution_id,
        )
        if current is None:
            raise not_recorded("institution", institution_id)
        if current["legal_identifier"] == legal_identifier:
            raise FieldRefused(
                f"{field}: institution {institution_id!r} has this legal identifier already",
                field,
            )
        if current["legal_identifier"] is not None and reason is None:
            raise FieldRefused(
                f"{reason_field}: institution {institution_id!r} has the legal identifier "
                f"{current['legal_identifier']!r}: give a reason to replace it (kept in its "
                "history; credentials issued before keep the one they name)",
                reason_field,
            )
        row = await tx.fetchrow(
            """
            UPDATE institutions SET legal_identifier = $2 WHERE institution_id = $1
            RETURNING institution_id, name, recorded_at, renamed_at, legal_identifier,
                linkedin_organization_id
            """,
            institution_id,
            legal_identifier,
        )
        await _event(
            tx,
            "institution",
            institution_id,
            "identified",
            current["name"],
            actor,
            reason=reason,
            legal_identifier=legal_identifier,
        )
    log.info("organisation.identified", organisation_id=institution_id, actor=actor)
    return _organisation("institution", row)


async def rename(
    conn: Connection,
    kind: Kind,
    organisation_id: str,
    name: str,
    reason: str,
    actor: str,
    *,
    name_field: str = "name",
    reason_field: str = "reason",
) -> Organisation:
    """Give a recorded institution or company a new name, kept in its history with `actor`, the
    old name and `reason`. Plans started before keep the name they were written with; plans from
    now on must give the new one. OrganisationNotFound for an id not recorded; FieldRefused for a
    name or a reason that is not one, or a name the same as the recorded one."""
    name = _valid(_NAME, name, name_field, f"the {kind}'s new name")
    reason = _valid(_REASON, reason, reason_field, "why it is renamed: kept in its history")
    table, column = _TABLES[kind]
    async with _transaction(conn) as tx:
        previous = await tx.fetchval(
            f"SELECT name FROM {table} WHERE {column} = $1 FOR UPDATE",  # noqa: S608 - constants
            organisation_id,
        )
        if previous is None:
            raise not_recorded(kind, organisation_id)
        if previous == name:
            raise FieldRefused(
                f"{name_field}: {kind} {organisation_id!r} is already named {name!r}: give the "
                "new name",
                name_field,
            )
        row = await tx.fetchrow(
            f"""
            UPDATE {table} SET name = $2, renamed_at = now() WHERE {column} = $1
            RETURNING {column}, name, recorded_at, renamed_at, {_EXTRA[kind]}
            """,  # noqa: S608 - constants
            organisation_id,
            name,
        )
        await _event(
            tx, kind, organisation_id, "renamed", name, actor, previous_name=previous, reason=reason
        )
    log.info("organisation.renamed", kind=kind, organisation_id=organisation_id, actor=actor)
    return _organisation(kind, row)


def not_recorded(kind: Kind, organisation_id: str) -> OrganisationNotFound:
    """What an unknown id (or one the caller may not see) gets, word for word."""
    listing = "internflow institutions" if kind == "institution" else "internflow companies"
    return OrganisationNotFound(
        f"no {kind} {organisation_id!r} is recorded: check the id (`{listing}` lists them)"
    )


@asynccontextmanager
async def _transaction(conn: Connection) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired, acquired.transaction():
            yield acquired
    else:
        async with conn.transaction():
            yield conn


#: The columns beyond the name of each kind's table (a company has neither).
_EXTRA: Final[dict[Kind, str]] = {
    "institution": "legal_identifier, linkedin_organization_id",
    "company": "NULL::text AS legal_identifier, NULL::text AS linkedin_organization_id",
}


def _organisation(kind: Kind, row: asyncpg.Record) -> Organisation:
    legal_identifier = row["legal_identifier"]
    return Organisation(
        kind=kind,
        id=row[0],
        name=row["name"],
        recorded_at=row["recorded_at"],
        renamed_at=row["renamed_at"],
        legal_identifier=legal_identifier,
        europass_needs=(
            europass_needs(row[0]) if kind == "institution" and legal_identifier is None else None
        ),
        linkedin_organization_id=row["linkedin_organization_id"],
    )


async def organisations(
    conn: Connection, kind: Kind, ids: Sequence[str] | None = None
) -> list[Organisation]:
    """The recorded institutions or companies, by id (`ids`: only these)."""
    table, column = _TABLES[kind]
    rows = await conn.fetch(
        f"""
        SELECT {column}, name, recorded_at, renamed_at, {_EXTRA[kind]} FROM {table}
        WHERE $1::text[] IS NULL OR {column} = ANY($1::text[])
        ORDER BY {column}
        """,  # noqa: S608 - constants
        list(ids) if ids is not None else None,
    )
    return [_organisation(kind, row) for row in rows]


async def organisation(conn: Connection, kind: Kind, organisation_id: str) -> Organisation | None:
    found = await organisations(conn, kind, [organisation_id])
    return found[0] if found else None


async def name_history(conn: Connection, kind: Kind, organisation_id: str) -> list[NameEvent]:
    """Every step of the id's name, oldest first."""
    rows = await conn.fetch(
        """
        SELECT event, name, previous_name, reason, actor, internship_id, occurred_at,
               legal_identifier
        FROM organisation_events WHERE organisation = $1 AND organisation_id = $2
        ORDER BY seq
        """,
        kind,
        organisation_id,
    )
    return [NameEvent(**dict(row)) for row in rows]


#: A LinkedIn organization id: the number in the address of the organization's page as its
#: admins see it (linkedin.com/company/<number>/admin/).
_LINKEDIN_ORGANIZATION: Final = re.compile(r"^[1-9][0-9]{0,18}$")


async def set_linkedin_organization(
    conn: Connection,
    institution_id: str,
    organization_id: str | None,
    actor: str,
    *,
    field: str = "organization_id",
) -> Organisation:
    """Give a recorded institution its LinkedIn organization id (None clears it): from now on
    the "Add to LinkedIn profile" link of its badges, already issued ones included, names it by
    `organizationId` instead of `organizationName` (it is in no signed document).
    FieldRefused naming `field` for anything but a LinkedIn organization id (digits);
    OrganisationNotFound for an institution not recorded."""
    if organization_id is not None:
        organization_id = organization_id.strip()
        if not _LINKEDIN_ORGANIZATION.match(organization_id):
            raise FieldRefused(
                f"{field}: {organization_id!r} is not a LinkedIn organization id: give the number "
                "in the address of the institution's LinkedIn page as its admins see it "
                "(linkedin.com/company/<number>/admin/)",
                field,
            )
    row = await conn.fetchrow(
        """
        UPDATE institutions SET linkedin_organization_id = $2 WHERE institution_id = $1
        RETURNING institution_id, name, recorded_at, renamed_at, legal_identifier,
            linkedin_organization_id
        """,
        institution_id,
        organization_id,
    )
    if row is None:
        raise not_recorded("institution", institution_id)
    log.info(
        "organisation.linkedin_organization",
        organisation_id=institution_id,
        linkedin_organization_id=organization_id,
        actor=actor,
    )
    return _organisation("institution", row)


async def linkedin_organization(conn: Connection, institution_id: str) -> str | None:
    """The institution's LinkedIn organization id, if it gave one."""
    value = await conn.fetchval(
        "SELECT linkedin_organization_id FROM institutions WHERE institution_id = $1",
        institution_id,
    )
    return str(value) if value is not None else None


async def require_institutions(conn: Connection, ids: Sequence[str], field: str) -> None:
    """FieldRefused naming `field` (the option or the body's field) for each id no institution
    is recorded under: a key for a misspelt institution would see nothing, without a word."""
    recorded = {o.id for o in await organisations(conn, "institution", ids)}
    missing = [i for i in dict.fromkeys(ids) if i not in recorded]
    if not missing:
        return
    # Said in the asker's terms: a CLI option (`--institution`) or a field of the API's body.
    if field.startswith("--"):
        hint = (
            "check it (`internflow institutions` lists them), or record a new one first "
            '(`internflow institution add {id} --name "..."`)'
        )
    else:
        hint = (
            "check it (GET /api/admin/institutions lists them), or record a new one first "
            "(POST /api/admin/institutions)"
        )
    problems = [
        (
            field,
            f"{field} {i!r}: no institution is recorded under this id; " + hint.replace("{id}", i),
        )
        for i in missing
    ]
    (first, message), *more = problems
    raise FieldRefused(message, first, *more)
