"""A new credential's place on its issuer's revocation list (PostgreSQL), drawn inside the badge
activity before the credential is signed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from badges.status import MIN_STATUS_LIST_SIZE, StatusPurpose, allocate_index, credential_status
from issuance.issuers import status_list_url
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
