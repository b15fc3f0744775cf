"""API keys for operators and admins: created and revoked with the CLI, kept only as hashes.

An operator key belongs to institutions: it sees, lists, starts and changes only their
internships (another institution's internship is to it as an unknown id), unless it was made for
every institution. Admin keys are global."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

import asyncpg

from operations.organisations import require_institutions

Role = Literal["operator", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
KEY_PREFIX: Final = "ifk_"
_KEY_SHAPE: Final = re.compile(r"^ifk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
_NAME_SHAPE: Final = re.compile(r"^[\w .@:-]{1,80}$")
#: An institution id, as a plan's `institution.id` (models.base.Identifier).
_INSTITUTION_SHAPE: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_COLUMNS: Final = "key_id, name, role, created_at, revoked_at, all_institutions, institutions"


class AccessError(Exception):
    """A key operation that cannot be done; the message says what to change."""


@dataclass(frozen=True)
class ApiKey:
    """A key as stored (never the key itself)."""

    key_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None
    all_institutions: bool
    institutions: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: Role) -> bool:
        """Admins may do everything operators may."""
        return self.active and (self.role == "admin" or self.role == role)

    @property
    def is_global(self) -> bool:
        """Whether the key sees every institution (admin keys, all-institutions keys)."""
        return self.role == "admin" or self.all_institutions

    def sees(self, institution_id: str) -> bool:
        """Whether the key may see and act on the internships of `institution_id`."""
        return self.is_global or institution_id in self.institutions

    @property
    def institution_scope(self) -> list[str] | None:
        """The institutions a list is limited to, or None for every one."""
        return None if self.is_global else list(self.institutions)

    def describe_scope(self) -> str:
        return "all institutions" if self.is_global else ", ".join(self.institutions)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _row(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        role=row["role"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        all_institutions=row["all_institutions"],
        institutions=tuple(row["institutions"]),
    )


@dataclass(frozen=True)
class ScopeTerms:
    """How the asker names a key's scope in a message: the API's JSON fields, or the CLI's
    options."""

    institutions: str
    """How to name the institutions, e.g. the field or the option with its value."""
    all_institutions: str
    """How to say every institution."""
    field: str
    """The field or option a refused institution id is named by."""


#: The admin API's body (`POST /api/admin/keys`).
API_TERMS: Final = ScopeTerms(
    institutions='"institutions", a list of institution ids',
    all_institutions='"all_institutions": true',
    field="institutions",
)
#: `internflow keys create`.
CLI_TERMS: Final = ScopeTerms(
    institutions="`--institution ID`, repeated for several",
    all_institutions="`--all-institutions`",
    field="--institution",
)


def key_scope(
    role: Role,
    institutions: Sequence[str] = (),
    all_institutions: bool = False,
    terms: ScopeTerms = API_TERMS,
) -> tuple[str, ...] | None:
    """What a person asked for a new key (the CLI, the admin API), as `create_api_key` takes it:
    the institutions, or None for every one. AccessError says what to give, in the asker's
    `terms`: an operator key names its institutions or says, explicitly, that it is for all of
    them; an admin key is global."""
    chosen = tuple(dict.fromkeys(i.strip() for i in institutions))
    if role == "admin":
        if chosen:
            raise AccessError(
                f"admin keys see every institution: leave out {terms.institutions} (or make an "
                "operator key)"
            )
        return None
    if all_institutions and chosen:
        raise AccessError(f"give either {terms.institutions} or {terms.all_institutions}, not both")
    if not all_institutions and not chosen:
        raise AccessError(
            f"an operator key belongs to institutions: name each ({terms.institutions}) or say "
            f"it is for every institution ({terms.all_institutions})"
        )
    return None if all_institutions else chosen


async def create_api_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    role: Role,
    *,
    institutions: Sequence[str] | None = None,
) -> tuple[ApiKey, str]:
    """A new key: `ifk_<key id>_<32 random bytes, base64url>`. Returns the stored record and the
    key, which exists nowhere else afterwards: show it once. An operator key belongs to
    `institutions` (None: every institution; what people ask for is checked by `key_scope`); an
    admin key to every institution."""
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    if not _NAME_SHAPE.match(name):
        raise AccessError(
            "a key's name is 1-80 letters, digits, spaces or . @ : _ - (e.g. 'registry-office')"
        )
    chosen = tuple(dict.fromkeys(i.strip() for i in institutions or ()))
    if role == "admin" and chosen:
        raise AccessError("admin keys see every institution: leave out the institutions")
    if institutions is not None and not chosen and role == "operator":
        raise AccessError("name at least one institution, or make a key for every institution")
    for institution in chosen:
        if not _INSTITUTION_SHAPE.match(institution):
            raise AccessError(
                f"{institution!r} is not an institution id (lowercase letters, digits, . _ -; "
                "as the plan's institution.id)"
            )
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = await conn.fetchrow(
        f"""
        INSERT INTO api_keys (key_id, name, role, key_hash, all_institutions, institutions)
        VALUES ($1, $2, $3, $4, $5, $6)
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - a constant column list
        key_id,
        name,
        role,
        key_hash(key),
        not chosen,
        list(chosen),
    )
    return _row(row), key


async def create_key_as_asked(
    conn: asyncpg.Connection | asyncpg.Pool,
    name: str,
    role: Role,
    institutions: Sequence[str] = (),
    all_institutions: bool = False,
    *,
    terms: ScopeTerms = API_TERMS,
) -> tuple[ApiKey, str]:
    """A new key as a person asks for one (the CLI, the admin API): its scope checked by
    `key_scope`, and every institution it names recorded (see operations/organisations.py),
    else refused naming `terms.field` (the option or the body's field): a key for a misspelt
    institution would see nothing, without a word."""
    field = terms.field
    scope = key_scope(role, institutions, all_institutions, terms)
    if scope:
        for institution in scope:
            if not _INSTITUTION_SHAPE.match(institution):
                raise AccessError(
                    f"{field} {institution!r} is not an institution id (lowercase letters, "
                    "digits, . _ -; as the plan's institution.id)"
                )
        await require_institutions(conn, scope, field)
    return await create_api_key(conn, name, role, institutions=scope)


async def revoke_api_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> ApiKey:
    """Revoke a key for good; AccessError if there is no such key or it is already revoked."""
    row = await conn.fetchrow(
        f"""
        UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL
        RETURNING {_COLUMNS}
        """,  # noqa: S608 - a constant column list
        key_id,
    )
    if row is None:
        exists = await conn.fetchval("SELECT true FROM api_keys WHERE key_id = $1", key_id)
        if exists:
            raise AccessError(f"key {key_id} is already revoked")
        raise AccessError(f"no key {key_id}: `internflow keys list` shows the keys")
    return _row(row)


async def list_api_keys(conn: asyncpg.Connection | asyncpg.Pool) -> list[ApiKey]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at"  # noqa: S608 - constant columns
    )
    return [_row(row) for row in rows]


async def get_api_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1",  # noqa: S608 - constant columns
        key_id,
    )
    return _row(row) if row is not None else None


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, presented: str) -> ApiKey | None:
    """The active key `presented` is, or None (unknown, malformed or revoked)."""
    if not _KEY_SHAPE.match(presented):
        return None
    row = await conn.fetchrow(
        f"""
        SELECT {_COLUMNS} FROM api_keys
        WHERE key_hash = $1 AND revoked_at IS NULL
        """,  # noqa: S608 - a constant column list
        key_hash(presented),
    )
    return _row(row) if row is not None else None
