"""Tests for badges.bake: baking a credential into a PNG and reading it back."""

from __future__ import annotations

import io
import json
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from badges.bake import KEYWORD, OB2_KEYWORD, BakeError, bake_png, unbake_png

CREDENTIAL = json.dumps(
    {
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
        ],
        "id": "urn:uuid:2f1d1c7e-7d8a-4c5e-9f0a-3b6f1c2d4e5f",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Zoë's badge 🎓",
    },
    ensure_ascii=False,
)


def make_png(text_chunks: dict[str, str] | None = None, *, compress: bool = False) -> bytes:
    image = Image.new("RGBA", (8, 8), (30, 120, 200, 255))
    info = PngImagePlugin.PngInfo()
    for keyword, text in (text_chunks or {}).items():
        info.add_itxt(keyword, text, zip=compress)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    found: list[tuple[bytes, bytes]] = []
    offset = 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        found.append((kind, png[offset + 8 : offset + 8 + length]))
        offset += 12 + length
    return found


def badge_chunks(png: bytes) -> list[bytes]:
    return [
        data
        for kind, data in chunks(png)
        if kind == b"iTXt" and data.split(b"\0", 1)[0] in (b"openbadgecredential", b"openbadges")
    ]


def test_bake_unbake_round_trip() -> None:
    baked = bake_png(make_png(), CREDENTIAL)
    assert unbake_png(baked) == CREDENTIAL


def test_baked_chunk_is_uncompressed_itxt_before_iend() -> None:
    baked = bake_png(make_png(), CREDENTIAL)
    kinds = [kind for kind, _ in chunks(baked)]
    assert kinds[0] == b"IHDR"
    assert kinds[-2:] == [b"iTXt", b"IEND"]
    (data,) = badge_chunks(baked)
    assert data == b"openbadgecredential\0\0\0\0\0" + CREDENTIAL.encode("utf-8")


def test_baked_png_is_a_valid_png_for_pillow() -> None:
    baked = bake_png(make_png(), CREDENTIAL)
    with Image.open(io.BytesIO(baked)) as image:
        image.verify()  # checks chunk CRCs and structure
    with Image.open(io.BytesIO(baked)) as image:
        image.load()
        assert image.size == (8, 8)
        assert image.getpixel((0, 0)) == (30, 120, 200, 255)
        assert image.info[KEYWORD] == CREDENTIAL


def test_baking_twice_leaves_exactly_one_chunk() -> None:
    once = bake_png(make_png(), CREDENTIAL)
    twice = bake_png(once, '{"second": true}')
    assert len(badge_chunks(twice)) == 1
    assert unbake_png(twice) == '{"second": true}'
    with Image.open(io.BytesIO(twice)) as image:
        image.verify()


def test_other_chunks_are_kept() -> None:
    png = make_png({"Description": "a badge"})
    baked = bake_png(png, CREDENTIAL)
    with Image.open(io.BytesIO(baked)) as image:
        image.load()
        assert image.info["Description"] == "a badge"
        assert image.info[KEYWORD] == CREDENTIAL


def test_open_badges_2_keyword_is_read_and_replaced() -> None:
    ob2 = make_png({OB2_KEYWORD: "https://example.org/assertions/1"})
    assert unbake_png(ob2) == "https://example.org/assertions/1"
    baked = bake_png(ob2, CREDENTIAL)
    assert len(badge_chunks(baked)) == 1
    assert unbake_png(baked) == CREDENTIAL


def test_compressed_itxt_is_read() -> None:
    png = make_png({KEYWORD: CREDENTIAL}, compress=True)
    assert unbake_png(png) == CREDENTIAL


def test_unbake_without_chunk_raises() -> None:
    with pytest.raises(BakeError, match="no baked credential"):
        unbake_png(make_png({"Description": "not a badge"}))


def test_two_credential_chunks_are_refused() -> None:
    png = make_png()
    itxt = b"openbadgecredential\0\0\0\0\0{}"
    chunk = struct.pack(">I", len(itxt)) + b"iTXt" + itxt
    chunk += struct.pack(">I", zlib.crc32(b"iTXt" + itxt))
    iend = png.rindex(b"IEND") - 4
    doubled = png[:iend] + chunk + chunk + png[iend:]
    with pytest.raises(BakeError, match="at most one"):
        unbake_png(doubled)
    assert len(badge_chunks(bake_png(doubled, CREDENTIAL))) == 1


@pytest.mark.parametrize(
    "data",
    [b"", b"GIF89a....", b"\x89PNG\r\n\x1a", b"<svg xmlns='http://www.w3.org/2000/svg'/>"],
)
def test_non_png_raises(data: bytes) -> None:
    with pytest.raises(BakeError, match="not a PNG"):
        unbake_png(data)
    with pytest.raises(BakeError, match="not a PNG"):
        bake_png(data, CREDENTIAL)


def test_truncated_or_corrupt_png_raises() -> None:
    png = make_png()
    with pytest.raises(BakeError, match="truncated"):
        bake_png(png[:-6], CREDENTIAL)
    corrupt = bytearray(png)
    corrupt[20] ^= 0xFF  # inside IHDR's data
    with pytest.raises(BakeError, match="CRC"):
        bake_png(bytes(corrupt), CREDENTIAL)


def test_empty_credential_is_refused() -> None:
    with pytest.raises(BakeError):
        bake_png(make_png(), "")
    assert issubclass(BakeError, ValueError)
