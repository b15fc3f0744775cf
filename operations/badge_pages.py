"""A badge's public page: what the intern chose for it (their name shown or not, the page up or
down), and the files it offers (the baked PNG and SVG, the credential)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, get_args

import asyncpg

from badges.bake import bake_png, bake_svg
from badges.vcjwt import decode_jwt
from mail.badge import Artwork
from operations.credentials import CredentialNotFound, CredentialRecord, get_credential

Choice = Literal["show_name", "hide_name", "take_down", "publish"]
CHOICES: Final[tuple[Choice, ...]] = get_args(Choice)


@dataclass(frozen=True)
class PageChoices:
    """The choices in force: by default the page is up and does not name the intern."""

    show_name: bool = False
    published: bool = True
    history: tuple[tuple[Choice, datetime], ...] = ()


async def page_choices(conn: asyncpg.Connection | asyncpg.Pool, credential_id: str) -> PageChoices:
    rows = await conn.fetch(
        "SELECT choice, chosen_at FROM badge_page_choices WHERE credential_id = $1 ORDER BY seq",
        credential_id,
    )
    show_name, published = False, True
    for row in rows:
        choice = row["choice"]
        if choice in ("show_name", "hide_name"):
            show_name = choice == "show_name"
        else:
            published = choice == "publish"
    return PageChoices(
        show_name=show_name,
        published=published,
        history=tuple((row["choice"], row["chosen_at"]) for row in rows),
    )


async def record_choice(
    conn: asyncpg.Connection | asyncpg.Pool, credential_id: str, choice: Choice
) -> PageChoices:
    """Append the intern's choice (a new row; the earlier ones stay) and return those in force."""
    if choice not in CHOICES:
        raise ValueError(f"unknown choice {choice!r}; use one of {', '.join(CHOICES)}")
    await conn.execute(
        "INSERT INTO badge_page_choices (credential_id, choice) VALUES ($1, $2)",
        credential_id,
        choice,
    )
    return await page_choices(conn, credential_id)


async def public_credential(
    conn: asyncpg.Connection | asyncpg.Pool, credential_uuid: str
) -> CredentialRecord:
    """The credential as anyone may fetch it by its id (its verification page, its JSON): once
    its earner has taken the badge page down, CredentialNotFound exactly as for a credential never
    issued here. The status list, the per-credential status and the issuer's keys stay public,
    so whoever holds the credential can still check its signature and status."""
    record = await get_credential(conn, credential_uuid)
    if not (await page_choices(conn, record.credential_id)).published:
        raise CredentialNotFound.of(credential_uuid)
    return record


def credential_document(record: CredentialRecord) -> dict[str, Any]:
    """The credential as a document: itself, or a VC-JWT's payload (not verified here)."""
    stored: Any = record.credential
    if isinstance(stored, str):
        return decode_jwt(stored).payload
    return dict(stored)


def stored_text(record: CredentialRecord) -> str:
    """What is baked into the images: the signed JSON, or the compact VC-JWT."""
    stored: Any = record.credential
    return stored if isinstance(stored, str) else json.dumps(stored, ensure_ascii=False)


def baked_png(record: CredentialRecord, artwork: Artwork) -> bytes | None:
    """The badge's PNG with the credential baked in; None when the school's image is an SVG."""
    if artwork.png is None:
        return None
    return bake_png(artwork.png, stored_text(record))


def baked_svg(record: CredentialRecord, artwork: Artwork, title: str) -> bytes:
    """The badge image as an SVG (drawn, the school's, or the PNG inside one) with the
    credential baked in as Open Badges 3.0 says: `<openbadges:credential>` right inside the root
    element."""
    return bake_svg(artwork.svg_or_wrapped(title), stored_text(record))
