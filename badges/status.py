"""Revocation and suspension with W3C Bitstring Status Lists: lists, entries, list credentials."""

from __future__ import annotations

import gzip
import secrets
import zlib
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from badges.keys import b64url_decode, b64url_encode
from badges.models import (
    BitstringStatusList,
    BitstringStatusListCredential,
    BitstringStatusListEntry,
)

__all__ = [
    "MIN_STATUS_LIST_SIZE",
    "STATUS_PURPOSES",
    "StatusList",
    "StatusPurpose",
    "allocate_index",
    "build_status_list_credential",
    "credential_status",
    "status_entry",
]

StatusPurpose = Literal["revocation", "suspension"]
STATUS_PURPOSES: Final[tuple[StatusPurpose, ...]] = ("revocation", "suspension")
MIN_STATUS_LIST_SIZE: Final = 131_072
"""At least 16 KiB of bits, so that one credential's index says little about who holds it."""
_MAX_DECODED_BYTES: Final = 16 * 1024 * 1024  # refuse decompression bombs
VC_CONTEXT: Final = "https://www.w3.org/ns/credentials/v2"


class StatusList:
    """A bitstring of credential statuses; bit 0 is the left-most (most significant) bit of
    byte 0. A set bit means the status (revoked, suspended) applies."""

    def __init__(self, size: int = MIN_STATUS_LIST_SIZE) -> None:
        if size < MIN_STATUS_LIST_SIZE or size % 8:
            raise ValueError(
                f"a status list has at least {MIN_STATUS_LIST_SIZE} entries, a multiple of 8"
            )
        self._bits = bytearray(size // 8)

    @classmethod
    def from_bytes(cls, data: bytes) -> StatusList:
        """A list over the given bitstring (its length in bits is the list's size)."""
        if len(data) * 8 < MIN_STATUS_LIST_SIZE:
            raise ValueError(
                f"a status list has at least {MIN_STATUS_LIST_SIZE} entries, got {len(data) * 8}"
            )
        status_list = cls(len(data) * 8)
        status_list._bits[:] = data
        return status_list

    @classmethod
    def decode(cls, encoded_list: str) -> StatusList:
        """Parse an encodedList: 'u' + base64url (no padding) of the GZIP of the bitstring."""
        if not isinstance(encoded_list, str) or not encoded_list.startswith("u"):
            raise ValueError("encodedList must be multibase base64url (starting with 'u')")
        compressed = b64url_decode(encoded_list[1:])
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing
        try:
            data = inflater.decompress(compressed, _MAX_DECODED_BYTES)
        except zlib.error as error:
            raise ValueError(f"encodedList is not GZIP data: {error}") from None
        if inflater.unconsumed_tail:
            raise ValueError("encodedList decompresses to more than 16 MiB")
        if not inflater.eof:
            raise ValueError("encodedList is truncated GZIP data")
        return cls.from_bytes(data)

    def encode(self) -> str:
        """The encodedList value: 'u' + base64url (no padding) of the GZIP of the bitstring."""
        return "u" + b64url_encode(gzip.compress(bytes(self._bits), mtime=0))

    def to_bytes(self) -> bytes:
        return bytes(self._bits)

    @property
    def size(self) -> int:
        """Number of entries (bits)."""
        return len(self._bits) * 8

    def __len__(self) -> int:
        return self.size

    def _position(self, index: int) -> tuple[int, int]:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("a status list index is an int")
        if not 0 <= index < self.size:
            raise IndexError(f"status list index {index} is outside 0..{self.size - 1}")
        return index // 8, 0x80 >> (index % 8)

    def get(self, index: int) -> bool:
        byte, mask = self._position(index)
        return bool(self._bits[byte] & mask)

    __getitem__ = get

    def set(self, index: int, value: bool = True) -> None:
        byte, mask = self._position(index)
        if value:
            self._bits[byte] |= mask
        else:
            self._bits[byte] &= ~mask & 0xFF

    def clear(self, index: int) -> None:
        self.set(index, False)

    def set_indexes(self) -> list[int]:
        """Every index whose bit is set, ascending."""
        found: list[int] = []
        for byte_index, byte in enumerate(self._bits):
            if byte:
                found.extend(byte_index * 8 + bit for bit in range(8) if byte & (0x80 >> bit))
        return found


def allocate_index(used: Collection[int], size: int = MIN_STATUS_LIST_SIZE) -> int:
    """A random index in 0..size-1 that is not in used (herd privacy: never sequential).

    Raises LookupError when every index is taken (start a new list then).
    """
    for _ in range(64):
        candidate = secrets.randbelow(size)
        if candidate not in used:
            return candidate
    # Nearly full: choose uniformly among what is left.
    taken = set(used)
    free = [index for index in range(size) if index not in taken]
    if not free:
        raise LookupError("the status list is full")
    return free[secrets.randbelow(len(free))]


def status_entry(list_url: str, index: int, purpose: StatusPurpose) -> BitstringStatusListEntry:
    """The credentialStatus entry pointing at index of the status list credential at list_url."""
    if purpose not in STATUS_PURPOSES:
        raise ValueError(f"status purpose must be one of {STATUS_PURPOSES}")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError("a status list index is a non-negative int")
    return BitstringStatusListEntry(
        id=f"{list_url}#{index}",
        status_purpose=purpose,
        status_list_index=str(index),
        status_list_credential=list_url,
    )


def credential_status(revocation: tuple[str, int]) -> dict[str, Any]:
    """The credentialStatus of a new credential, for build_credential(): ONE entry object, on the
    revocation list (list url, index). Open Badges 3.0 allows a single credentialStatus object
    (1EdTech's schema refuses an array), so a credential is not put on a suspension list: see
    the README ('Revocation and suspension') for why suspension is kept by the issuer instead."""
    return status_entry(*revocation, "revocation").to_json_ld()


def build_status_list_credential(
    list_url: str,
    issuer: str | Mapping[str, Any],
    purpose: StatusPurpose,
    status_list: StatusList,
    *,
    valid_from: datetime,
    valid_until: datetime | None = None,
    ttl: timedelta | None = None,
) -> dict[str, Any]:
    """The unsigned BitstringStatusListCredential published at list_url, ready for proof.sign().

    issuer is the issuer id (or its Profile object, which then needs the OB context: pass an id
    unless a verifier needs more); it must be the issuer of the credentials that point here.
    ttl: how long verifiers may keep the list before fetching it again (the list's `ttl`, in
    whole milliseconds as Bitstring Status List writes it); None leaves it out.
    """
    if purpose not in STATUS_PURPOSES:
        raise ValueError(f"status purpose must be one of {STATUS_PURPOSES}")
    contexts = [VC_CONTEXT]
    if isinstance(issuer, Mapping):
        contexts.append("https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json")
    model = BitstringStatusListCredential.model_validate(
        {
            "@context": contexts,
            "id": list_url,
            "issuer": issuer if isinstance(issuer, str) else dict(issuer),
            "validFrom": valid_from,
            "validUntil": valid_until,
            "credentialSubject": BitstringStatusList(
                id=f"{list_url}#list",
                status_purpose=purpose,
                encoded_list=status_list.encode(),
                ttl=None if ttl is None else int(ttl.total_seconds() * 1000),
            ),
        }
    )
    return model.to_json_ld()
