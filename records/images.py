"""The badge images kept in PostgreSQL (`badge_images`), each under the SHA-256 of its content."""

from __future__ import annotations

import hashlib

import asyncpg


async def keep_image(
    conn: asyncpg.Connection | asyncpg.Pool, media_type: str, content: bytes
) -> str:
    """Keep an image (once: the same content again changes nothing); its digest."""
    digest = hashlib.sha256(content).hexdigest()
    await conn.execute(
        """
        INSERT INTO badge_images (digest, media_type, content) VALUES ($1, $2, $3)
        ON CONFLICT (digest) DO NOTHING
        """,
        digest,
        media_type,
        content,
    )
    return digest


async def kept_image(
    conn: asyncpg.Connection | asyncpg.Pool, digest: str
) -> tuple[str, bytes] | None:
    """The media type and content of the image kept under `digest`, if any."""
    row = await conn.fetchrow(
        "SELECT media_type, content FROM badge_images WHERE digest = $1", digest
    )
    return None if row is None else (row["media_type"], bytes(row["content"]))
