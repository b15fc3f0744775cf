"""Tests for badges.bake: baking a credential into a PNG or an SVG and reading it back."""

from __future__ import annotations

import io
import json
import struct
import zlib
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring
from PIL import Image, PngImagePlugin

from badges.bake import (
    KEYWORD,
    OB2_KEYWORD,
    BakeError,
    bake,
    bake_png,
    bake_svg,
    image_kind,
    unbake,
    unbake_png,
    unbake_svg,
)

pytestmark = pytest.mark.pure

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


# --- SVG ------------------------------------------------------------------------------------

SVG = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<!-- made by hand -->\n"
    b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<title>Badge "A" &amp; more</title><rect width="10" height="10" fill="#f00"/></svg>\n'
)
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3guZXhhbXBsZSJ9.c2lnbmF0dXJl"
OB3_NS = "https://purl.imsglobal.org/ob/v3p0"
SVG_NS = "http://www.w3.org/2000/svg"


def parse(svg: bytes) -> Element:
    root: Element = fromstring(svg)
    return root


def test_svg_bake_unbake_json_round_trip() -> None:
    baked = bake_svg(SVG, CREDENTIAL)
    assert unbake_svg(baked) == CREDENTIAL
    assert unbake(baked) == CREDENTIAL
    root = parse(baked)
    first = root[0]
    assert first.tag == f"{{{OB3_NS}}}credential"
    assert first.text == CREDENTIAL
    assert b"<openbadges:credential><![CDATA[" in baked
    assert b'xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0"' in baked
    # The rest of the image is kept as it was.
    assert baked.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- made by hand -->\n')
    assert b'<title>Badge "A" &amp; more</title><rect width="10" height="10" fill="#f00"/>' in baked
    assert [child.tag for child in root][1:] == [f"{{{SVG_NS}}}title", f"{{{SVG_NS}}}rect"]


def test_svg_bake_jwt_goes_in_the_verify_attribute() -> None:
    baked = bake_svg(SVG, JWT)
    element = parse(baked)[0]
    assert element.tag == f"{{{OB3_NS}}}credential"
    assert element.get("verify") == JWT
    assert element.text is None
    assert unbake_svg(baked) == JWT


def test_svg_json_with_cdata_terminator_survives() -> None:
    tricky = json.dumps({"narrative": "a ]]> b <c> & d", "name": "Zoë"}, ensure_ascii=False)
    baked = bake_svg(SVG, tricky)
    assert unbake_svg(baked) == tricky
    assert json.loads(unbake_svg(baked))["narrative"] == "a ]]> b <c> & d"


def test_svg_rebaking_leaves_exactly_one_credential() -> None:
    twice = bake_svg(bake_svg(SVG, CREDENTIAL), JWT)
    root = parse(twice)
    assert [child.tag for child in root].count(f"{{{OB3_NS}}}credential") == 1
    assert unbake_svg(twice) == JWT
    assert twice.count(b"xmlns:openbadges=") == 1


def test_svg_open_badges_2_is_read_and_replaced() -> None:
    ob2 = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:openbadges="http://openbadges.org">'
        b'<openbadges:assertion verify="https://example.org/assertions/1"/><circle r="1"/></svg>'
    )
    assert unbake_svg(ob2) == "https://example.org/assertions/1"
    ob2_json = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:openbadges="http://openbadges.org">'
        b'<openbadges:assertion><![CDATA[{"type": "Assertion"}]]></openbadges:assertion></svg>'
    )
    assert unbake_svg(ob2_json) == '{"type": "Assertion"}'
    baked = bake_svg(ob2, CREDENTIAL)
    root = parse(baked)
    assert root[0].tag == f"{{{OB3_NS}}}credential"
    assert not [child for child in root if child.tag == "{http://openbadges.org}assertion"]
    assert unbake_svg(baked) == CREDENTIAL


@pytest.mark.parametrize(
    "svg",
    [
        b'<svg xmlns="http://www.w3.org/2000/svg"/>',
        b'<svg:svg xmlns:svg="http://www.w3.org/2000/svg"><svg:g/></svg:svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" data-x="a>b"><g/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><text>Zoë</text></svg>'.encode(),
        b"\xef\xbb\xbf<svg xmlns='http://www.w3.org/2000/svg'><g/></svg>",
        b'<?xml version="1.0"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        b'<svg xmlns="http://www.w3.org/2000/svg"><g/></svg>',
    ],
)
def test_svg_variants_bake(svg: bytes) -> None:
    for credential in (CREDENTIAL, JWT):
        baked = bake_svg(svg, credential)
        root = parse(baked.removeprefix(b"\xef\xbb\xbf"))
        assert root[0].tag == f"{{{OB3_NS}}}credential"
        assert unbake_svg(baked) == credential


def test_svg_as_text_with_another_declared_encoding() -> None:
    text = SVG.decode().replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    baked = bake_svg(text, CREDENTIAL)
    assert b'encoding="UTF-8"' in baked
    assert unbake_svg(baked) == CREDENTIAL
    with pytest.raises(BakeError, match="UTF-8"):
        bake_svg(text.encode("latin-1"), CREDENTIAL)


@pytest.mark.parametrize(
    ("svg", "message"),
    [
        (b"<svg", "well-formed"),
        (b"<html xmlns='http://www.w3.org/1999/xhtml'/>", "not an SVG"),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY lol "lol">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg">&lol;</svg>',
            "unsafe XML",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg">&x;</svg>',
            "unsafe XML",
        ),
        ("<svg xmlns='http://www.w3.org/2000/svg'/>".encode("utf-16"), "UTF-16"),
    ],
)
def test_bad_or_unsafe_svg_is_refused(svg: bytes, message: str) -> None:
    with pytest.raises(BakeError, match=message):
        unbake_svg(svg)
    with pytest.raises(BakeError, match=message):
        bake_svg(svg, CREDENTIAL)


def test_svg_without_or_with_two_credentials() -> None:
    with pytest.raises(BakeError, match="no baked credential"):
        unbake_svg(SVG)
    two = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:openbadges="{OB3_NS}">'
        '<openbadges:credential verify="a.b.c"/><openbadges:credential verify="d.e.f"/></svg>'
    ).encode()
    with pytest.raises(BakeError, match="at most one"):
        unbake_svg(two)
    assert unbake_svg(bake_svg(two, JWT)) == JWT
    with pytest.raises(BakeError, match="empty"):
        bake_svg(SVG, "  ")


def test_png_carries_a_jwt_too() -> None:
    baked = bake_png(make_png(), JWT)
    assert unbake_png(baked) == JWT
    assert unbake(baked) == JWT
    (data,) = badge_chunks(baked)
    assert data == b"openbadgecredential\0\0\0\0\0" + JWT.encode()


def test_generic_bake_dispatches_on_content() -> None:
    assert image_kind(make_png()) == "png"
    assert image_kind(SVG) == "svg"
    assert image_kind(b"GIF89a") is None
    assert unbake(bake(make_png(), CREDENTIAL)) == CREDENTIAL
    assert unbake(bake(SVG, CREDENTIAL)) == CREDENTIAL
    with pytest.raises(BakeError, match="not a PNG or SVG"):
        bake(b"GIF89a", CREDENTIAL)
