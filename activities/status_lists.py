"""Status lists in PostgreSQL: places for new credentials, and the signed lists as published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from activities.issuers import issuer_of_status_list
from activities.issuers import status_list_url as status_list_url
from badges.keyring import KeyRing
from badges.keys import SigningKey, load_or_create_signing_key
from badges.proof import sign
from badges.status import (
    MIN_STATUS_LIST_SIZE,
    StatusList,
    StatusPurpose,
    allocate_index,
    build_status_list_credential,
    credential_status,
)
from runtime.settings import Settings


@dataclass(frozen=True)
class StatusAssignment:
    """A new credential's place on its issuer's revocation list. Suspension has no list of its
    own any more (a credential carries one credentialStatus entry): it is kept by the issuer.
    Badges issued before that also sit on a suspension list, which is still published."""

    revocation: tuple[str, int]
    suspension: tuple[str, int] | None = None

    def credential_status(self) -> dict[str, Any]:
        """The one credentialStatus entry to build the credential with."""
        return credential_status(self.revocation)


async def _ensure_list(conn: asyncpg.Connection, list_id: str, purpose: StatusPurpose) -> None:
    await conn.execute(
        """
        INSERT INTO status_lists (list_id, purpose, size, bits) VALUES ($1, $2, $3, $4)
        ON CONFLICT (list_id) DO NOTHING
        """,
        list_id,
        purpose,
        MIN_STATUS_LIST_SIZE,
        bytes(MIN_STATUS_LIST_SIZE // 8),
    )


async def assign_status(
    conn: asyncpg.Connection, settings: Settings, institution_id: str
) -> StatusAssignment:
    """A random free place on the institution's revocation list (created on first use) for a
    credential about to be signed. Store it in the credentials row with it: the row's unique
    constraint catches the rare race of two issuances drawing the same place."""
    list_id = status_list_url(settings, institution_id, "revocation")
    await _ensure_list(conn, list_id, "revocation")
    used = await conn.fetch(
        "SELECT revocation_index AS i FROM credentials WHERE revocation_list_id = $1", list_id
    )
    return StatusAssignment((list_id, allocate_index({row["i"] for row in used})))


def signing_key(settings: Settings) -> SigningKey:
    """The key that signs for the deployment's issuers: the key ring's active Ed25519 key."""
    ring = KeyRing.load(settings.keys_path)
    if not ring.ed25519_keys:
        return load_or_create_signing_key(settings.keys_path)
    return ring.signing_key


_signed_lists: dict[str, tuple[datetime, dict[str, Any]]] = {}


async def signed_status_list(
    conn: asyncpg.Connection | asyncpg.Pool, settings: Settings, list_id: str
) -> dict[str, Any] | None:
    """The BitstringStatusListCredential published at `list_id`, signed by the issuer's key
    (validFrom: when the list last changed), or None if there is no such list. Signed once per
    change of the list."""
    row = await conn.fetchrow(
        "SELECT purpose, bits, updated_at FROM status_lists WHERE list_id = $1", list_id
    )
    if row is None:
        return None
    cached = _signed_lists.get(list_id)
    if cached is not None and cached[0] == row["updated_at"]:
        return cached[1]
    issuer_id = issuer_of_status_list(settings, list_id)
    key = signing_key(settings)
    unsigned = build_status_list_credential(
        list_id,
        issuer_id,
        row["purpose"],
        StatusList.from_bytes(row["bits"]),
        valid_from=row["updated_at"],
    )
    signed = await asyncio.to_thread(
        sign,
        unsigned,
        key,
        KeyRing.verification_method(issuer_id, key),
        row["updated_at"],
    )
    _signed_lists[list_id] = (row["updated_at"], signed)
    return signed
