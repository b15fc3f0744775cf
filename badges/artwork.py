"""Badge images: a school's own PNG or SVG checked before it is accepted, and the image drawn for
a badge template that names none (SVG written here, PNG rendered with Pillow from the same
layout).

A school's image is judged by its content, never its name: a PNG by its signature and header
(200 to 2,048 pixels a side, at most 5:4 either way), an SVG parsed with defusedxml (no DTD, no
entities) and refused if it holds a script, an event handler, a foreignObject or any reference
outside itself. Either is at most MAX_BYTES."""

from __future__ import annotations

import functools
import hashlib
import io
import re
import struct
import textwrap
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import defusedxml.ElementTree as SafeTree
from defusedxml import DefusedXmlException

from badges.bake import BakeError, bake

__all__ = [
    "MAX_BYTES",
    "MAX_SIDE",
    "MIN_SIDE",
    "CheckedImage",
    "ImageRefused",
    "MediaType",
    "checked_image",
    "default_colour",
    "draw_png",
    "draw_svg",
    "image_from_data_uri",
]

MediaType = Literal["image/png", "image/svg+xml"]

MAX_BYTES: Final = 512 * 1024
MIN_SIDE: Final = 200
MAX_SIDE: Final = 2048
#: The longer side at most this many times the shorter: a badge is shown square-ish.
MAX_ASPECT: Final = 1.25

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_SVG_NS: Final = "http://www.w3.org/2000/svg"
_XLINK_HREF: Final = "{http://www.w3.org/1999/xlink}href"
_FORBIDDEN_ELEMENTS: Final = frozenset({"script", "foreignObject", "iframe", "embed", "object"})
_URL_IN_STYLE: Final = re.compile(r"url\(\s*['\"]?\s*(?!#)|@import", re.IGNORECASE)
_DATA_URI: Final = re.compile(
    r"^data:(?P<type>[a-z+/.-]+)(?:;[a-z-]+=[^;,]*)*;base64,(?P<data>.*)$"
)
_NUMBER: Final = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(px)?\s*$")


class ImageRefused(ValueError):
    """An image that may not be a badge image; the message says what to change."""


@dataclass(frozen=True)
class CheckedImage:
    media_type: MediaType
    content: bytes
    width: float
    height: float

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @property
    def extension(self) -> str:
        return "png" if self.media_type == "image/png" else "svg"


def image_from_data_uri(uri: str) -> bytes:
    """The bytes of a `data:<type>;base64,<data>` URI (the type is not trusted: the content is
    judged by checked_image)."""
    import base64
    import binascii

    found = _DATA_URI.match(uri.strip())
    if found is None:
        raise ImageRefused("is not a data: URI with base64 content (data:image/png;base64,...)")
    if len(found["data"]) > MAX_BYTES * 4 // 3 + 4:
        raise ImageRefused(f"is larger than {MAX_BYTES // 1024} KiB: make the image smaller")
    try:
        return base64.b64decode(found["data"], validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("has base64 content that does not decode") from None


def checked_image(content: bytes) -> CheckedImage:
    """The image if it may be a badge image (PNG or SVG by its content), else ImageRefused."""
    if len(content) > MAX_BYTES:
        raise ImageRefused(
            f"is {len(content) // 1024} KiB, more than {MAX_BYTES // 1024} KiB: make it smaller"
        )
    width: float
    height: float
    if content.startswith(_PNG_SIGNATURE):
        width, height = _png_size(content)
        media: MediaType = "image/png"
        if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
            raise ImageRefused(
                f"is {width}x{height} pixels: each side must be {MIN_SIDE} to {MAX_SIDE} pixels"
            )
    elif _looks_like_xml(content):
        width, height = _svg_size(content)
        media = "image/svg+xml"
    else:
        raise ImageRefused("is neither a PNG nor an SVG image (judged by its content)")
    if media == "image/svg+xml":
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            raise ImageRefused("is an SVG not in UTF-8: save it as UTF-8") from None
    try:
        bake(content, "{}")
    except BakeError as error:
        raise ImageRefused(f"cannot carry a credential: {error}") from None
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageRefused(
            f"is {width:g}x{height:g}: a badge image must be square or nearly "
            f"(at most {MAX_ASPECT:g} times as wide as high, or as high as wide)"
        )
    return CheckedImage(media, content, width, height)


def _png_size(content: bytes) -> tuple[int, int]:
    header = content[8:33]
    if len(header) < 25 or header[4:8] != b"IHDR":
        raise ImageRefused("is a damaged PNG (no IHDR header)")
    width, height = struct.unpack(">II", header[8:16])
    return width, height


def _looks_like_xml(content: bytes) -> bool:
    head = content[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<")


def _svg_size(content: bytes) -> tuple[float, float]:
    try:
        root = SafeTree.fromstring(content, forbid_dtd=True)
    except DefusedXmlException:
        raise ImageRefused("is an SVG with a DTD or entities: remove them") from None
    except SafeTree.ParseError as error:
        raise ImageRefused(f"is not well-formed XML ({error})") from None
    if root.tag != f"{{{_SVG_NS}}}svg":
        raise ImageRefused("is XML but not an SVG (its root must be <svg> in the SVG namespace)")
    for element in root.iter():
        _check_element(element)
    view_box = (root.get("viewBox") or "").replace(",", " ").split()
    if len(view_box) == 4:
        try:
            width, height = float(view_box[2]), float(view_box[3])
        except ValueError:
            raise ImageRefused("is an SVG whose viewBox is not four numbers") from None
    else:
        sizes = [_NUMBER.match(root.get(name) or "") for name in ("width", "height")]
        if sizes[0] is None or sizes[1] is None:
            raise ImageRefused("is an SVG with neither a viewBox nor a width and height in px")
        width, height = float(sizes[0][1]), float(sizes[1][1])
    if width <= 0 or height <= 0:
        raise ImageRefused("is an SVG with an empty viewBox")
    return width, height


def _check_element(element: Element) -> None:
    tag = element.tag.rpartition("}")[2] if isinstance(element.tag, str) else ""
    if tag in _FORBIDDEN_ELEMENTS:
        raise ImageRefused(f"is an SVG with a <{tag}> element: badge images may hold no scripts")
    for name, value in element.attrib.items():
        local = name.rpartition("}")[2]
        if local.lower().startswith("on"):
            raise ImageRefused(f"is an SVG with an event handler ({local}): remove it")
        if (name in (_XLINK_HREF, "href")) and not value.strip().startswith("#"):
            raise ImageRefused(
                "is an SVG that refers to something outside itself "
                f"({local}={value[:60]!r}): embed it, badge images are one file"
            )
        if _URL_IN_STYLE.search(value):
            raise ImageRefused("is an SVG whose style loads something outside itself: remove it")
    if tag == "style" and _URL_IN_STYLE.search(element.text or ""):
        raise ImageRefused("is an SVG whose style loads something outside itself: remove it")


# -- The drawn image -------------------------------------------------------------------------

SIZE: Final = 512
#: The SVG's fonts: the PNG's own first (its metrics fit the lines), then narrower ones.
_FONT_STACK: Final = "'DejaVu Sans', Verdana, 'Helvetica Neue', Helvetica, Arial, sans-serif"
#: The font the PNG is drawn with and every line is measured in: bundled (fonts/SOURCES.md), so
#: that a name with accents is drawn as written whatever fonts the machine has.
_FONT_FILE: Final = Path(__file__).resolve().parent / "fonts" / "DejaVuSans.ttf"


def default_colour(institution_id: str) -> str:
    """A colour of the institution's own, the same every time: its hue from a hash of its id, the
    saturation and lightness fixed so that white text reads on it."""
    digest = hashlib.sha256(institution_id.encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    saturation = 0.50 + digest[2] / 255 * 0.20
    lightness = 0.30 + digest[3] / 255 * 0.08
    return _hsl_hex(hue, saturation, lightness)


def _hsl_hex(hue: float, saturation: float, lightness: float) -> str:
    import colorsys

    red, green, blue = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in (red, green, blue)))


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _shade(colour: str, factor: float) -> str:
    """The colour darker (factor < 1) or towards white (factor > 1)."""
    rgb = _rgb(colour)
    if factor <= 1:
        mixed = [round(c * factor) for c in rgb]
    else:
        mixed = [round(c + (255 - c) * (factor - 1)) for c in rgb]
    return "#{:02x}{:02x}{:02x}".format(*mixed)


@dataclass(frozen=True)
class _Line:
    text: str
    y: float
    size: int
    bold: bool


@functools.cache
def _font(size: int):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    return ImageFont.truetype(_FONT_FILE, size=size)


def _width(text: str, size: int) -> float:
    return float(_font(size).getlength(_drawn_text(text)))


def _wrapped(text: str, size: int, width: float, most: int) -> list[str] | None:
    """`text` in at most `most` lines of at most `width` at `size`, or None if it does not fit."""
    words = text.split()
    for columns in range(max(len(text), 1), 0, -1):
        lines = textwrap.wrap(text, columns, break_long_words=True) if words else [""]
        if len(lines) > most:
            return None
        if all(_width(line, size) <= width for line in lines):
            return lines
    return None


def _fitted(text: str, sizes: tuple[int, ...], width: float, most: int) -> tuple[list[str], int]:
    """The largest of `sizes` at which `text` fits; at the smallest, cut short with an ellipsis."""
    for size in sizes:
        lines = _wrapped(text, size, width, most)
        if lines is not None:
            return lines, size
    size = sizes[-1]
    cut = text
    while cut:
        cut = cut[:-1].rstrip()
        lines = _wrapped(cut + "…", size, width, most)
        if lines is not None:
            return lines, size
    return ["…"], size


def _layout(institution: str, title: str, eqf_level: int | None) -> list[_Line]:
    """Where each line of text goes on the 512 x 512 badge: the school's name at the top of the
    inner disc, the achievement's title in the middle, the EQF level on the ribbon."""
    institution, title = _one_line(institution), _one_line(title)
    lines: list[_Line] = []
    school, school_size = _fitted(institution.upper(), (26, 22, 19, 16), 280, 2)
    top = 150
    for n, text in enumerate(school):
        lines.append(_Line(text, top + n * school_size * 1.15, school_size, False))
    name, name_size = _fitted(title, (44, 38, 33, 28, 24, 21), 330, 4)
    middle = 262
    first = middle - (len(name) - 1) * name_size * 1.12 / 2 + name_size * 0.35
    for n, text in enumerate(name):
        lines.append(_Line(text, first + n * name_size * 1.12, name_size, True))
    if eqf_level is not None:
        lines.append(_Line(f"EQF {eqf_level}", 421, 30, True))
    return lines


def _one_line(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


_SPELLED: Final = {
    "ß": "ss",
    "ø": "o",
    "Ø": "O",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "\u2014": "-",
    "\u2013": "-",
    "\u2019": "'",
}


def _drawn_text(text: str) -> str:
    """Text as the bundled font can draw it: a letter it lacks as its base letter or spelled
    out (ß: ss), any other as '?'. The SVG keeps the text as written."""
    return "".join(_drawable(c) for c in text)


@functools.cache
def _drawable(character: str) -> str:
    if _has_glyph(character):
        return character
    if character in _SPELLED:
        return _SPELLED[character]
    base = "".join(
        c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c)
    )
    if base and all(_has_glyph(c) for c in base):
        return base
    return "?"


@functools.cache
def _has_glyph(character: str) -> bool:
    if character.isspace():
        return True
    font = _font(40)
    return bytes(font.getmask(character)) != bytes(font.getmask("\U000f0000"))


def draw_svg(institution: str, title: str, eqf_level: int | None, colour: str) -> bytes:
    """The drawn badge as an SVG: a disc in `colour` with a lighter ring, the school's name, the
    achievement's title (wrapped, shrunk or cut short to fit) and a ribbon with the EQF level."""
    dark, light, pale = _shade(colour, 0.7), _shade(colour, 1.35), _shade(colour, 1.85)
    institution, title = _one_line(institution), _one_line(title)
    text = []
    for line in _layout(institution, title, eqf_level):
        weight = ' font-weight="bold"' if line.bold else ""
        text.append(
            f'<text x="256" y="{line.y:.1f}" font-size="{line.size}"{weight}>'
            f"{escape(line.text)}</text>"
        )
    label = escape(f"{title} ({institution})", {'"': "&quot;"})
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" \
viewBox="0 0 {SIZE} {SIZE}" role="img" aria-label="{label}">
<title>{escape(title)}</title>
<circle cx="256" cy="256" r="250" fill="{dark}"/>
<circle cx="256" cy="256" r="236" fill="{pale}"/>
<circle cx="256" cy="256" r="222" fill="{colour}"/>
<circle cx="256" cy="256" r="204" fill="none" stroke="{light}" stroke-width="3"/>
<path d="M96 382 H416 L440 412 L416 442 H96 L72 412 Z" fill="{dark}" stroke="{pale}" \
stroke-width="4"/>
<g fill="#ffffff" text-anchor="middle" font-family="{_FONT_STACK}">
{chr(10).join(text)}
</g>
</svg>
"""
    return svg.encode()


def draw_png(institution: str, title: str, eqf_level: int | None, colour: str) -> bytes:
    """The drawn badge as a PNG (512 x 512, transparent outside the disc): the same layout as
    draw_svg, rendered with the bundled font."""
    from PIL import Image, ImageDraw

    scale = 2  # drawn at twice the size and scaled down: smooth edges
    dark, light, pale = _shade(colour, 0.7), _shade(colour, 1.35), _shade(colour, 1.85)
    image = Image.new("RGBA", (SIZE * scale, SIZE * scale), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)

    def disc(radius: float, **style: object) -> None:
        box = [(256 - radius) * scale, (256 - radius) * scale]
        box += [(256 + radius) * scale, (256 + radius) * scale]
        draw.ellipse(box, **style)  # type: ignore[arg-type]

    disc(250, fill=dark)
    disc(236, fill=pale)
    disc(222, fill=colour)
    disc(204, outline=light, width=3 * scale)
    ribbon = [(96, 382), (416, 382), (440, 412), (416, 442), (96, 442), (72, 412)]
    draw.polygon([(x * scale, y * scale) for x, y in ribbon], fill=dark, outline=pale)
    draw.line([(x * scale, y * scale) for x, y in [*ribbon, ribbon[0]]], fill=pale, width=4 * scale)
    for line in _layout(institution, title, eqf_level):
        font = _font(line.size * scale)
        draw.text(
            (256 * scale, line.y * scale),
            _drawn_text(line.text),
            font=font,
            fill="#ffffff",
            anchor="ms",  # middle, baseline: as the SVG's text-anchor="middle" at y
            stroke_width=scale if line.bold and line.size >= 28 else 0,
            stroke_fill="#ffffff",
        )
    image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # zlib's default level, without `optimize`: as small (96 KB for a typical badge; `optimize`
    # made it 0.6 % larger) in a quarter of the time (19 against 71 ms, bench.mail).
    image.save(out, "PNG", compress_level=6)
    return out.getvalue()
