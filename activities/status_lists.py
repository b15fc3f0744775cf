"""Status lists in PostgreSQL: places for new credentials, and the signed lists as published."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from badges.credential import issuer_id_for
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


def status_list_url(settings: Settings, institution_id: str, purpose: StatusPurpose) -> str:
    """Where an institution's status list of one purpose is published: under its issuer id, so
    the list's issuer is the credentials' issuer (`<issuer id>/status/<purpose>`)."""
    return f"{issuer_id_for(settings.public_base_url, institution_id)}/status/{purpose}"


def _issuer_of_list(list_id: str) -> str:
    issuer, found, _ = list_id.rpartition("/status/")
    if not found:
        raise ValueError(f"{list_id!r} is not a status list URL of this deployment")
    return issuer


@dataclass(frozen=True)
class StatusAssignment:
    """A new credential's places on its issuer's revocation and suspension lists."""

    revocation: tuple[str, int]
    suspension: tuple[str, int]

    def credential_status(self) -> list[dict[str, Any]]:
        """The credentialStatus entries to build the credential with."""
        return credential_status(self.revocation, self.suspension)


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
    """Random free places on the institution's revocation and suspension lists (created on first
    use) for a credential about to be signed. Store them in the credentials row with it: the
    row's unique constraints catch the rare race of two issuances drawing the same place."""
    places: dict[StatusPurpose, tuple[str, int]] = {}
    for purpose in ("revocation", "suspension"):
        list_id = status_list_url(settings, institution_id, purpose)
        await _ensure_list(conn, list_id, purpose)
        column = "revocation" if purpose == "revocation" else "suspension"
        used = await conn.fetch(
            f"SELECT {column}_index AS i FROM credentials WHERE {column}_list_id = $1",  # noqa: S608
            list_id,
        )
        places[purpose] = (list_id, allocate_index({row["i"] for row in used}))
    return StatusAssignment(places["revocation"], places["suspension"])


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
    issuer_id = _issuer_of_list(list_id)
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
        f"{issuer_id}#{key.public_key_multibase}",
        row["updated_at"],
    )
    _signed_lists[list_id] = (row["updated_at"], signed)
    return signed
