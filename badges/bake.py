"""Baking: carry a credential (JSON or a VC-JWT) inside a PNG or SVG badge image, read it back."""

from __future__ import annotations

import re
import struct
import zlib
from typing import Final, Literal
from xml.etree.ElementTree import Element, ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _parse_untrusted_xml

__all__ = [
    "KEYWORD",
    "OB2_KEYWORD",
    "OB2_SVG_NAMESPACE",
    "OB3_SVG_NAMESPACE",
    "BakeError",
    "bake",
    "bake_png",
    "bake_svg",
    "image_kind",
    "unbake",
    "unbake_png",
    "unbake_svg",
]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
KEYWORD: Final = "openbadgecredential"  # Open Badges 3.0
OB2_KEYWORD: Final = "openbadges"  # Open Badges 2.0, read for compatibility
_BADGE_KEYWORDS: Final = frozenset({KEYWORD.encode("latin-1"), OB2_KEYWORD.encode("latin-1")})
_MAX_CHUNK_LENGTH: Final = 2**31 - 1


class BakeError(ValueError):
    """The bytes are not a usable PNG, or a PNG carries no (or an unreadable) credential."""


def image_kind(data: bytes | str) -> Literal["png", "svg"] | None:
    """'png' or 'svg' by content (PNG signature; an XML document), None for anything else."""
    if isinstance(data, str):
        return "svg" if data.lstrip("\ufeff \t\r\n").startswith("<") else None
    if bytes(data[:8]) == PNG_SIGNATURE:
        return "png"
    head = bytes(data[:64]).lstrip(b"\xef\xbb\xbf \t\r\n")
    return "svg" if head.startswith(b"<") else None


def bake(image: bytes, credential: str) -> bytes:
    """Bake credential (signed JSON or compact VC-JWT) into a PNG or SVG image, by content."""
    kind = image_kind(image)
    if kind == "png":
        return bake_png(image, credential)
    if kind == "svg":
        return bake_svg(image, credential)
    raise BakeError("not a PNG or SVG image")


def unbake(image: bytes | str) -> str:
    """The credential baked into a PNG or SVG image (Open Badges 3.0, else 2.0 baking)."""
    kind = image_kind(image)
    if kind == "png" and isinstance(image, bytes | bytearray | memoryview):
        return unbake_png(bytes(image))
    if kind == "svg":
        return unbake_svg(image)
    raise BakeError("not a PNG or SVG image")


def bake_png(png: bytes, credential_json: str) -> bytes:
    """Return png with credential_json in one uncompressed iTXt chunk 'openbadgecredential'.

    credential_json is the signed credential as JSON, or a compact VC-JWT. Any existing baked
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


# ---------------------------------------------------------------------------------------------
# SVG

OB3_SVG_NAMESPACE: Final = "https://purl.imsglobal.org/ob/v3p0"
OB2_SVG_NAMESPACE: Final = "http://openbadges.org"  # Open Badges 2.0, read for compatibility
SVG_NAMESPACE: Final = "http://www.w3.org/2000/svg"
_BAKED = {(OB3_SVG_NAMESPACE, "credential"), (OB2_SVG_NAMESPACE, "assertion")}
_COMPACT_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_XML_DECLARATION = re.compile(rb"^(?:\xef\xbb\xbf)?\s*<\?xml\b[^>]*?\?>")
_DECLARED_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_OB_PREFIX_DECLARATION = re.compile(r"""\sxmlns:openbadges\s*=\s*("[^"]*"|'[^']*')""")


def bake_svg(svg: bytes | str, credential: str) -> bytes:
    """Return the SVG (UTF-8) with credential baked in as Open Badges 3.0 prescribes.

    The root svg element declares xmlns:openbadges="https://purl.imsglobal.org/ob/v3p0" and its
    first child is one <openbadges:credential>: a compact VC-JWT goes in its verify attribute,
    JSON in a CDATA section. Earlier baked credentials (3.0 or 2.0) are removed; the rest of
    the file is kept byte for byte.
    """
    if not credential or not credential.strip():
        raise BakeError("nothing to bake: the credential is empty")
    data = _svg_bytes(svg)
    _parse_svg(data)
    layout = _SvgLayout.scan(data)
    start, tag_end = layout.root_start, layout.root_tag_end
    root_tag = data[start : tag_end + 1].decode("utf-8")
    self_closing = root_tag.endswith("/>")
    body = root_tag[:-2] if self_closing else root_tag[:-1]
    declaration = f' xmlns:openbadges="{OB3_SVG_NAMESPACE}"'
    if _OB_PREFIX_DECLARATION.search(body):
        body = _OB_PREFIX_DECLARATION.sub(declaration, body, count=1)
    else:
        body += declaration
    token = credential.strip()
    if _COMPACT_JWT.match(token):
        element = f'<openbadges:credential verify="{token}"/>'
    else:
        cdata = credential.replace("]]>", "]]]]><![CDATA[>")
        element = f"<openbadges:credential><![CDATA[{cdata}]]></openbadges:credential>"
    pieces = [data[:start].decode("utf-8"), body, ">", element]
    position = tag_end + 1
    if self_closing:
        pieces.append(f"</{layout.root_name}>")
    else:
        for span_start, span_end in layout.baked:
            pieces.append(data[position:span_start].decode("utf-8"))
            position = span_end
    pieces.append(data[position:].decode("utf-8"))
    baked = "".join(pieces).encode("utf-8")
    try:
        check = unbake_svg(baked)
    except BakeError as error:  # pragma: no cover - would be a bug in this function
        raise BakeError(f"baking produced an unreadable SVG: {error}") from None
    if check != token:
        raise BakeError("baking produced an SVG that does not read back the credential")
    return baked


def unbake_svg(svg: bytes | str) -> str:
    """The credential baked into an SVG: <openbadges:credential> (Open Badges 3.0; its verify
    attribute or text), else <openbadges:assertion> in namespace http://openbadges.org (2.0).

    The SVG is parsed as untrusted input: entity declarations and external references are
    refused.
    """
    root = _parse_svg(_svg_bytes(svg))
    for namespace, name in ((OB3_SVG_NAMESPACE, "credential"), (OB2_SVG_NAMESPACE, "assertion")):
        found = [child for child in root if child.tag == f"{{{namespace}}}{name}"]
        if len(found) > 1:
            raise BakeError(f"SVG has {len(found)} <{name}> elements of {namespace}; at most one")
        if found:
            element = found[0]
            verify = element.get("verify")
            if verify is not None and verify.strip():
                return verify.strip()
            text = "".join(element.itertext()).strip()
            if text:
                return text
            raise BakeError(f"the SVG's <{name}> element is empty")
    raise BakeError(
        f"SVG carries no baked credential (no <credential> element of {OB3_SVG_NAMESPACE})"
    )


def _svg_bytes(svg: bytes | str) -> bytes:
    if isinstance(svg, str):
        data = svg.encode("utf-8")
        declaration = _XML_DECLARATION.match(data)
        if declaration is not None:
            # The text is now UTF-8 whatever the declaration said; say so.
            encoding = _DECLARED_ENCODING.search(declaration.group(0))
            if encoding is not None and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
                fixed = _DECLARED_ENCODING.sub(b'encoding="UTF-8"', declaration.group(0))
                data = fixed + data[declaration.end() :]
        return data
    if not isinstance(svg, bytes | bytearray | memoryview):
        raise BakeError("expected the SVG as bytes or text")
    data = bytes(svg)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BakeError("only UTF-8 SVG files are supported (this one is UTF-16)")
    declaration = _XML_DECLARATION.match(data)
    if declaration is not None:
        encoding = _DECLARED_ENCODING.search(declaration.group(0))
        if encoding is not None and encoding.group(1).lower() not in (
            b"utf-8",
            b"utf8",
            b"us-ascii",
            b"ascii",
        ):
            raise BakeError(
                f"only UTF-8 SVG files are supported (this one declares "
                f"{encoding.group(1).decode('ascii')})"
            )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise BakeError("the SVG is not valid UTF-8") from None
    return data


def _parse_svg(data: bytes) -> Element:
    try:
        root = _parse_untrusted_xml(data)
    except DefusedXmlException as error:
        raise BakeError(f"refusing unsafe XML in the SVG: {error}") from None
    except (ParseError, ValueError) as error:
        raise BakeError(f"not a well-formed SVG document: {error}") from None
    if root.tag not in (f"{{{SVG_NAMESPACE}}}svg", "svg"):
        raise BakeError(f"not an SVG image: the root element is {root.tag!r}")
    return root


class _SvgLayout:
    """Byte positions in an SVG: the root start tag and the baked elements among its children."""

    def __init__(self) -> None:
        self.root_start = -1
        self.root_tag_end = -1  # index of the '>' that ends the root start tag
        self.root_name = "svg"
        self.baked: list[tuple[int, int]] = []  # [start, end) of each baked child element

    @classmethod
    def scan(cls, data: bytes) -> _SvgLayout:
        layout = cls()
        parser = expat.ParserCreate(namespace_separator=" ")
        # The document already passed defusedxml, so it declares no entities; still, do not
        # let expat read external DTD parts.
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        depth = 0
        open_baked: list[int] = []

        def start(name: str, _attributes: dict[str, str]) -> None:
            nonlocal depth
            index = parser.CurrentByteIndex
            tag_end = _tag_end(data, index)
            if depth == 0:
                layout.root_start, layout.root_tag_end = index, tag_end
                layout.root_name = _qualified_name(data, index)
            elif depth == 1 and tuple(name.split(" ", 1)) in _BAKED:
                if data[tag_end - 1 : tag_end] == b"/":
                    layout.baked.append((index, tag_end + 1))
                else:
                    open_baked.append(index)
            depth += 1

        def end(name: str) -> None:
            nonlocal depth
            depth -= 1
            if depth == 1 and open_baked and tuple(name.split(" ", 1)) in _BAKED:
                index = parser.CurrentByteIndex
                if data[index : index + 2] == b"</":
                    layout.baked.append((open_baked.pop(), _tag_end(data, index) + 1))

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        try:
            parser.Parse(data, True)
        except expat.ExpatError as error:
            raise BakeError(f"not a well-formed SVG document: {error}") from None
        if layout.root_start < 0:
            raise BakeError("the SVG has no root element")
        layout.baked.sort()
        return layout


def _tag_end(data: bytes, start: int) -> int:
    """Index of the '>' that closes the tag starting at data[start] == '<' (quote-aware)."""
    quote = 0
    for index in range(start + 1, len(data)):
        char = data[index]
        if quote:
            if char == quote:
                quote = 0
        elif char in (0x22, 0x27):  # " or '
            quote = char
        elif char == 0x3E:  # >
            return index
    raise BakeError("malformed SVG: a tag is not closed")


def _qualified_name(data: bytes, start: int) -> str:
    match = re.match(rb"<([^\s/>]+)", data[start:])
    if match is None:
        raise BakeError("malformed SVG: cannot read the root element's name")
    return match.group(1).decode("utf-8")
