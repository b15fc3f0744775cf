"""API keys for operators and admins: created and revoked with the CLI, kept only as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

import asyncpg

Role = Literal["operator", "admin"]
ROLES: Final[tuple[Role, ...]] = get_args(Role)
KEY_PREFIX: Final = "ifk_"
_KEY_SHAPE: Final = re.compile(r"^ifk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")
_NAME_SHAPE: Final = re.compile(r"^[\w .@:-]{1,80}$")


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

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, role: Role) -> bool:
        """Admins may do everything operators may."""
        return self.active and (self.role == "admin" or self.role == role)


def key_hash(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _row(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        role=row["role"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


async def create_api_key(
    conn: asyncpg.Connection | asyncpg.Pool, name: str, role: Role
) -> tuple[ApiKey, str]:
    """A new key: `ifk_<key id>_<32 random bytes, base64url>`. Returns the stored record and the
    key, which exists nowhere else afterwards: show it once."""
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    if not _NAME_SHAPE.match(name):
        raise AccessError(
            "a key's name is 1-80 letters, digits, spaces or . @ : _ - (e.g. 'registry-office')"
        )
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    row = await conn.fetchrow(
        """
        INSERT INTO api_keys (key_id, name, role, key_hash) VALUES ($1, $2, $3, $4)
        RETURNING key_id, name, role, created_at, revoked_at
        """,
        key_id,
        name,
        role,
        key_hash(key),
    )
    return _row(row), key


async def revoke_api_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> ApiKey:
    """Revoke a key for good; AccessError if there is no such key or it is already revoked."""
    row = await conn.fetchrow(
        """
        UPDATE api_keys SET revoked_at = now() WHERE key_id = $1 AND revoked_at IS NULL
        RETURNING key_id, name, role, created_at, revoked_at
        """,
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
        "SELECT key_id, name, role, created_at, revoked_at FROM api_keys ORDER BY created_at"
    )
    return [_row(row) for row in rows]


async def get_api_key(conn: asyncpg.Connection | asyncpg.Pool, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(
        "SELECT key_id, name, role, created_at, revoked_at FROM api_keys WHERE key_id = $1",
        key_id,
    )
    return _row(row) if row is not None else None


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, presented: str) -> ApiKey | None:
    """The active key `presented` is, or None (unknown, malformed or revoked)."""
    if not _KEY_SHAPE.match(presented):
        return None
    row = await conn.fetchrow(
        """
        SELECT key_id, name, role, created_at, revoked_at FROM api_keys
        WHERE key_hash = $1 AND revoked_at IS NULL
        """,
        key_hash(presented),
    )
    return _row(row) if row is not None else None
