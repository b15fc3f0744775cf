"""Ed25519 issuer keys: generation, storage on disk, and Multikey/base58btc encodings."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "SigningKey",
    "b58decode",
    "b58encode",
    "load_or_create_signing_key",
    "public_key_from_multibase",
    "public_key_to_multibase",
]

_B58_ALPHABET: Final = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX: Final = {char: index for index, char in enumerate(_B58_ALPHABET)}
# Multicodec prefix of an Ed25519 public key (varint 0xed).
_ED25519_PUB_PREFIX: Final = b"\xed\x01"
_KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def b58encode(data: bytes) -> str:
    """Base58btc (Bitcoin alphabet); each leading zero byte becomes a leading '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_B58_ALPHABET[remainder])
    return "1" * zeros + "".join(reversed(digits))


def b58decode(text: str) -> bytes:
    """Inverse of b58encode; raises ValueError on a character outside the alphabet."""
    number = 0
    for position, char in enumerate(text):
        digit = _B58_INDEX.get(char)
        if digit is None:
            raise ValueError(f"invalid base58btc character {char!r} at position {position}")
        number = number * 58 + digit
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def public_key_to_multibase(public_key: Ed25519PublicKey) -> str:
    """Multikey publicKeyMultibase: 'z' + base58btc(0xed 0x01 + 32 raw key bytes)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + b58encode(_ED25519_PUB_PREFIX + raw)


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    """Parse an Ed25519 Multikey publicKeyMultibase ('z6Mk...'); ValueError if it is not one."""
    if not isinstance(value, str) or not value.startswith("z"):
        raise ValueError("publicKeyMultibase must be a base58btc multibase string ('z...')")
    decoded = b58decode(value[1:])
    if not decoded.startswith(_ED25519_PUB_PREFIX) or len(decoded) != 2 + 32:
        raise ValueError("publicKeyMultibase is not an Ed25519 key (expected 0xed01 + 32 bytes)")
    return Ed25519PublicKey.from_public_bytes(decoded[2:])


@dataclass(frozen=True, eq=False)
class SigningKey:
    """An issuer's Ed25519 private key and the id it is published under (e.g. 'key-1').

    Instances compare by identity; compare public_key_multibase to compare keys.
    """

    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, key_id: str = "key-1") -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, data: bytes, key_id: str = "key-1") -> SigningKey:
        """From the 32-byte raw Ed25519 private key (seed)."""
        if len(data) != 32:
            raise ValueError(f"an Ed25519 private key is 32 bytes, got {len(data)}")
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(data))

    @classmethod
    def from_private_hex(cls, hex_key: str, key_id: str = "key-1") -> SigningKey:
        """From the 32-byte raw private key as 64 hex digits."""
        return cls.from_private_bytes(bytes.fromhex(hex_key), key_id)

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def public_key_multibase(self) -> str:
        return public_key_to_multibase(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """64-byte Ed25519 signature of data."""
        return self.private_key.sign(data)


def load_or_create_signing_key(key_dir: Path, key_id: str = "key-1") -> SigningKey:
    """Read key_dir/<key_id>.pem, creating the directory (0700) and the key (0600) if missing.

    The key is written as an unencrypted PKCS#8 PEM file. Creation is atomic: concurrent first
    runs end up sharing one key, and a reader never sees a half-written file.
    """
    if not _KEY_ID.match(key_id):
        raise ValueError(f"invalid key id {key_id!r}: use letters, digits, '.', '_' or '-'")
    key_dir = Path(key_dir)
    if not key_dir.is_dir():
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(key_dir, 0o700)
    path = key_dir / f"{key_id}.pem"
    if not path.exists():
        _create_key_file(path)
    return SigningKey(key_id, _read_key_file(path))


def _create_key_file(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        # link() fails if the key appeared meanwhile: then the other process's key is used.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _read_key_file(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key
