"""Baking: carry a credential inside a PNG badge image (iTXt chunk) and read it back."""

from __future__ import annotations

import struct
import zlib
from typing import Final

__all__ = ["KEYWORD", "OB2_KEYWORD", "BakeError", "bake_png", "unbake_png"]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
KEYWORD: Final = "openbadgecredential"  # Open Badges 3.0
OB2_KEYWORD: Final = "openbadges"  # Open Badges 2.0, read for compatibility
_BADGE_KEYWORDS: Final = frozenset({KEYWORD.encode("latin-1"), OB2_KEYWORD.encode("latin-1")})
_MAX_CHUNK_LENGTH: Final = 2**31 - 1


class BakeError(ValueError):
    """The bytes are not a usable PNG, or a PNG carries no (or an unreadable) credential."""


def bake_png(png: bytes, credential_json: str) -> bytes:
    """Return png with credential_json in one uncompressed iTXt chunk 'openbadgecredential'.

    credential_json is the signed credential as JSON (or a compact JWT). Any existing baked
    credential (keyword 'openbadgecredential' or Open Badges 2.0 'openbadges') is removed
    first; the new chunk goes right before IEND.
    """
    if not credential_json:
        raise BakeError("nothing to bake: the credential is empty")
    chunks = _read_chunks(png)
    kept = [
        (kind, data)
        for kind, data in chunks
        if not (kind == b"iTXt" and _keyword(data) in _BADGE_KEYWORDS)
    ]
    itxt = (
        KEYWORD.encode("latin-1")
        + b"\0"  # end of keyword
        + b"\0\0"  # compression flag 0 (uncompressed), compression method 0
        + b"\0"  # empty language tag
        + b"\0"  # empty translated keyword
        + credential_json.encode("utf-8")
    )
    kept.insert(len(kept) - 1, (b"iTXt", itxt))  # the last chunk is IEND
    return PNG_SIGNATURE + b"".join(_chunk_bytes(kind, data) for kind, data in kept)


def unbake_png(png: bytes) -> str:
    """The credential baked into png ('openbadgecredential', else Open Badges 2.0 'openbadges')."""
    found: dict[str, list[str]] = {KEYWORD: [], OB2_KEYWORD: []}
    for kind, data in _read_chunks(png):
        if kind == b"iTXt" and _keyword(data) in _BADGE_KEYWORDS:
            keyword, text = _parse_itxt(data)
            found[keyword].append(text)
    for keyword in (KEYWORD, OB2_KEYWORD):
        texts = found[keyword]
        if len(texts) > 1:
            raise BakeError(
                f"PNG has {len(texts)} iTXt chunks with keyword {keyword!r}; at most one is allowed"
            )
        if texts:
            return texts[0]
    raise BakeError(f"PNG carries no baked credential (no iTXt chunk with keyword {KEYWORD!r})")


def _read_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """All chunks up to and including IEND, with lengths and CRCs checked."""
    if not isinstance(png, bytes | bytearray | memoryview):
        raise BakeError("expected the PNG as bytes")
    png = bytes(png)
    if not png.startswith(PNG_SIGNATURE):
        raise BakeError("not a PNG image (bad signature)")
    chunks: list[tuple[bytes, bytes]] = []
    offset = len(PNG_SIGNATURE)
    while True:
        if offset + 12 > len(png):
            raise BakeError("truncated PNG: it ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", png[offset : offset + 8])
        if length > _MAX_CHUNK_LENGTH:
            raise BakeError(f"invalid PNG: chunk length {length} is too large")
        if not kind.isalpha():
            raise BakeError(f"invalid PNG: bad chunk type {kind!r}")
        end = offset + 8 + length
        if end + 4 > len(png):
            raise BakeError(f"truncated PNG: chunk {kind.decode('ascii')} runs past the end")
        data = png[offset + 8 : end]
        (crc,) = struct.unpack(">I", png[end : end + 4])
        if zlib.crc32(kind + data) != crc:
            raise BakeError(f"corrupt PNG: CRC mismatch in chunk {kind.decode('ascii')}")
        if not chunks and kind != b"IHDR":
            raise BakeError("invalid PNG: the first chunk is not IHDR")
        chunks.append((kind, data))
        offset = end + 4
        if kind == b"IEND":
            return chunks


def _chunk_bytes(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _keyword(itxt: bytes) -> bytes:
    return itxt.split(b"\0", 1)[0]


def _parse_itxt(data: bytes) -> tuple[str, str]:
    try:
        keyword, rest = data.split(b"\0", 1)
        compressed, method = rest[0], rest[1]
        _language, _translated, payload = rest[2:].split(b"\0", 2)
    except (ValueError, IndexError):
        raise BakeError("malformed iTXt chunk") from None
    if compressed:
        if method != 0:
            raise BakeError(f"iTXt chunk uses unknown compression method {method}")
        try:
            payload = zlib.decompress(payload)
        except zlib.error as error:
            raise BakeError(f"iTXt chunk does not decompress: {error}") from None
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise BakeError("iTXt chunk text is not valid UTF-8") from None
    return keyword.decode("latin-1"), text
