"""MIME messages written straight to the bytes SMTP carries: a text and an HTML alternative, the
HTML part's inline images and the attachments, without building a tree of `email` objects.

What it writes (RFC 5322, 2045-2047, 2231, 6532):

- header values that are not plain printable ASCII as RFC 2047 encoded-words (UTF-8, base64),
  folded so that no header line passes 78 octets; a display name that is neither atoms nor
  printable ASCII likewise, and printable ASCII with specials as a quoted string;
- a carriage return, line feed or NUL in any header value is refused (`HeaderValueError`): it
  could end the header and start another one;
- text bodies as 7bit when they are ASCII with short lines, else quoted-printable (lines of at
  most 76 characters), binary bodies as base64 in lines of 76;
- CRLF at the end of every line.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

__all__ = [
    "Attachment",
    "HeaderValueError",
    "Mailbox",
    "format_date",
    "write_message",
]

CRLF = "\r\n"
#: The longest header line we write (RFC 5322 2.1.1: SHOULD be no more than 78 characters).
HEADER_WIDTH = 78
#: A text part longer than this in any line is quoted-printable (7bit lines must stay short).
TEXT_WIDTH = 76

_ATEXT = r"A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_ATOM = re.compile(rf"[{_ATEXT}]+\Z")
_DOT_ATOM = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*\Z")
#: A domain may be internationalised (RFC 6532: sent with SMTPUTF8).
_DOMAIN = re.compile(rf"[\u0080-\U0010ffff{_ATEXT}]+(?:\.[\u0080-\U0010ffff{_ATEXT}]+)*\Z")
#: A display name written as it is: atoms separated by single spaces.
_PHRASE = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*\Z")
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
_HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+\Z")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class HeaderValueError(ValueError):
    """A header value that cannot be written safely (a line break, NUL, an address that is not
    one). The message names the header, never the value: it may be a person's name."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """One address with its display name (which may hold any character but a line break)."""

    display_name: str
    addr_spec: str

    @property
    def needs_smtputf8(self) -> bool:
        """An internationalised address: its header is UTF-8, its envelope needs SMTPUTF8."""
        return not self.addr_spec.isascii()


@dataclass(frozen=True, slots=True)
class Attachment:
    """A part with bytes: a file the reader gets (`inline` False) or an image the HTML part
    shows (`inline` True, referred to as `cid:<content_id>`)."""

    data: bytes
    content_type: str
    filename: str
    inline: bool = False
    content_id: str | None = None


def format_date(timestamp: float | None = None) -> str:
    """An RFC 5322 date in UTC, as `email.utils.formatdate(localtime=False)` writes it."""
    t = time.gmtime(time.time() if timestamp is None else timestamp)
    return (
        f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year:04d} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} -0000"
    )


# ----------------------------------------------------------------- headers


def _refuse_breaks(name: str, value: str) -> None:
    if _FORBIDDEN.search(value):
        raise HeaderValueError(f"the {name} header may not contain a line break or NUL")


def _encoded_words(text: str, first: int) -> list[str]:
    """`text` as RFC 2047 encoded-words (UTF-8, base64), whole characters in each; the first
    fits in `first` columns, the others on a line of their own after a space."""
    data = text.encode()
    words: list[str] = []
    start, room = 0, first
    while start < len(data):
        # "=?utf-8?b?" and "?=" take 12 columns; 4 columns of base64 carry 3 octets.
        end = min(start + max((room - 12) // 4 * 3, 6), len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # not inside a character
            end -= 1
        chunk = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"=?utf-8?b?{chunk}?=")
        start, room = end, HEADER_WIDTH - 1
    return words


def _fold_words(words: list[str], used: int) -> str:
    """ASCII words joined by single spaces, a line folded before a word that would pass the
    width; `used` columns of the first line are taken (the header name)."""
    lines: list[str] = []
    line = ""
    for word in words:
        if line and used + len(line) + 1 + len(word) > HEADER_WIDTH:
            lines.append(line)
            line, used = word, 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return (CRLF + " ").join(lines)


def _unstructured(name: str, value: str) -> str:
    """An unstructured header's value (Subject, the X- headers...): as it is when it is plain
    printable ASCII, else encoded-words; folded at spaces."""
    _refuse_breaks(name, value)
    used = len(name) + 2
    words = value.split(" ")
    plain = (
        _PRINTABLE.match(value)
        and "=?" not in value
        and value == value.strip()
        and "" not in words  # no runs of spaces (folding keeps one)
        and all(len(word) < 900 for word in words)
    )
    if plain:
        return _fold_words(words, used)
    if not value:
        return ""
    return (CRLF + " ").join(_encoded_words(value, HEADER_WIDTH - used))


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _addr_spec(name: str, addr_spec: str) -> str:
    local, at, domain = addr_spec.rpartition("@")
    if not at or not _DOT_ATOM.match(local) or not _DOMAIN.match(domain):
        raise HeaderValueError(f"the {name} header's address is not a valid address")
    return addr_spec


def _phrase_tokens(display: str) -> list[str]:
    """A display name as atoms and encoded-words. Each run of words that are not atoms becomes
    one encoded-word, spaces included: between two encoded-words a space is dropped by RFC 2047
    decoders and kept by others, so two never meet."""
    words = display.split(" ")
    if display != display.strip() or "" in words:
        words = [display]  # spaces that must stay as they are: all of it encoded
    tokens: list[str] = []
    run: list[str] = []
    for word in [*words, None]:
        if word is not None and not (_ATOM.match(word) and "=?" not in word):
            run.append(word)
            continue
        if run:
            data = " ".join(run).encode()
            tokens.append(f"=?utf-8?b?{binascii.b2a_base64(data, newline=False).decode()}?=")
            run = []
        if word is not None:
            tokens.append(word)
    if any(len(token) > 900 for token in tokens):
        raise HeaderValueError("a display name too long for one header line")
    return tokens


def _mailbox(name: str, mailbox: Mailbox) -> str:
    """`Name <local@domain>`, the name as atoms, a quoted string or atoms and encoded-words;
    folded at spaces."""
    _refuse_breaks(name, mailbox.display_name)
    _refuse_breaks(name, mailbox.addr_spec)
    address = f"<{_addr_spec(name, mailbox.addr_spec)}>"
    display = mailbox.display_name
    if not display:
        return address
    if _PHRASE.match(display) and "=?" not in display:
        tokens = display.split(" ")
    elif _PRINTABLE.match(display) and "=?" not in display and len(display) < 900:
        tokens = [_quoted(display)]
    else:
        tokens = _phrase_tokens(display)
    return _fold_words([*tokens, address], len(name) + 2)


def _header(name: str, value: str | Mailbox) -> str:
    if not _HEADER_NAME.match(name):
        raise HeaderValueError(f"{name!r} is not a header name")
    if isinstance(value, Mailbox):
        return f"{name}: {_mailbox(name, value)}{CRLF}"
    return f"{name}: {_unstructured(name, value)}{CRLF}"


# ----------------------------------------------------------------- bodies


def _text_body(text: str) -> tuple[str, bytes]:
    """The transfer encoding and the encoded body of a text, every line ending in CRLF (a last
    line without one gets one, as the standard library does)."""
    data = text.encode().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    if data.isascii() and max(map(len, data.split(b"\n"))) <= TEXT_WIDTH:
        return "7bit", data.replace(b"\n", b"\r\n")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return "quoted-printable", encoded.replace(b"\n", b"\r\n")


def _base64_body(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _text_part(text: str, subtype: str, language: str | None) -> bytes:
    cte, body = _text_body(text)
    head = f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
    head += f"Content-Transfer-Encoding: {cte}{CRLF}"
    if language:
        head += _header("Content-Language", language)
    return (head + CRLF).encode("ascii") + body


def _parameter(name: str, value: str) -> str:
    """`; name="value"`, or RFC 2231's `name*=utf-8''...` for a value that is not plain ASCII."""
    _refuse_breaks(f"{name} parameter", value)
    if _PRINTABLE.match(value) and '"' not in value and "\\" not in value and len(value) < 60:
        return f'; {name}="{value}"'
    return f"; {name}*=utf-8''{quote(value, safe='')}"


def _attachment_part(attachment: Attachment) -> bytes:
    maintype, _, subtype = attachment.content_type.partition("/")
    if not (_DOT_ATOM.match(maintype) and _DOT_ATOM.match(subtype)):
        raise HeaderValueError(f"{attachment.content_type!r} is not a content type")
    disposition = "inline" if attachment.inline else "attachment"
    head = f"Content-Type: {maintype}/{subtype}{CRLF}"
    head += f"Content-Transfer-Encoding: base64{CRLF}"
    head += f"Content-Disposition: {disposition}{_parameter('filename', attachment.filename)}{CRLF}"
    if attachment.content_id is not None:
        cid = attachment.content_id
        _refuse_breaks("Content-ID", cid)
        if not re.fullmatch(r"[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+", cid):
            raise HeaderValueError("the Content-ID header is not a message id")
        head += f"Content-ID: <{cid}>{CRLF}"
    return (head + CRLF).encode("ascii") + _base64_body(attachment.data)


def _multipart(subtype: str, parts: Sequence[bytes], headers: str = "") -> bytes:
    """`Content-Type: multipart/<subtype>` with its boundary, `headers`, then the parts. The
    boundary is random and never occurs in a part (checked: a 7bit text could hold anything)."""
    while True:
        boundary = f"=_{secrets.token_hex(16)}"
        marker = boundary.encode("ascii")
        if not any(marker in part for part in parts):
            break
    head = f'Content-Type: multipart/{subtype};{CRLF} boundary="{boundary}"{CRLF}{headers}{CRLF}'
    delimiter = b"--" + marker
    out = [head.encode("ascii")]
    for part in parts:
        out += [delimiter, b"\r\n", part, b"\r\n"]
    out += [delimiter, b"--\r\n"]
    return b"".join(out)


def write_message(
    headers: Sequence[tuple[str, str | Mailbox]],
    text: str,
    html: str,
    *,
    language: str | None = None,
    related: Sequence[Attachment] = (),
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """The message as SMTP carries it: `headers` in their order, then `MIME-Version` and the
    body: multipart/alternative of `text` and `html` (the HTML part multipart/related with the
    `related` images when there are any), inside multipart/mixed with the `attachments` when
    there are any. `language` is the Content-Language of the message and of both text parts."""
    head = "".join(_header(name, value) for name, value in headers)
    head += f"MIME-Version: 1.0{CRLF}"
    text_part = _text_part(text, "plain", language)
    html_part = _text_part(html, "html", language)
    if related:
        html_part = _multipart("related", [html_part, *map(_attachment_part, related)])
    language_header = _header("Content-Language", language) if language else ""
    if not attachments:
        body = _multipart("alternative", [text_part, html_part], language_header)
    else:
        alternative = _multipart("alternative", [text_part, html_part])
        parts = [alternative, *map(_attachment_part, attachments)]
        body = _multipart("mixed", parts, language_header)
    return head.encode("utf-8") + body
