"""Issuer keys: Ed25519 (Multikey, base58btc) and RSA (JWK) key pairs, stored on disk as PEM."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "RSA_KEY_SIZE",
    "RsaSigningKey",
    "SigningKey",
    "b58decode",
    "b58encode",
    "b64url_decode",
    "b64url_encode",
    "load_key_file",
    "load_or_create_rsa_key",
    "load_or_create_signing_key",
    "public_key_from_multibase",
    "public_key_to_multibase",
    "rsa_public_key_from_jwk",
    "rsa_public_key_to_jwk",
]

RSA_KEY_SIZE: Final = 3072
_MIN_RSA_KEY_SIZE: Final = 2048

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


_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of b64url_encode; ValueError on padding, other characters or a bad length."""
    if not isinstance(text, str) or not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError(f"not base64url: {error}") from None


def public_key_to_multibase(public_key: Ed25519PublicKey) -> str:
    """Multikey publicKeyMultibase: 'z' + base58btc(0xed 0x01 + 32 raw key bytes)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "z" + b58encode(_ED25519_PUB_PREFIX + raw)


def public_key_from_multibase(value: str) -> Ed25519PublicKey:
    """Parse an Ed25519 Multikey publicKeyMultibase ('z6Mk...'); ValueError if it is not one."""
    if not isinstance(value, str) or not value.startswith("z"):
        raise ValueError("publicKeyMultibase must be a base58btc multibase string ('z...')")
    return _ed25519_from_multibase(value)


@functools.lru_cache(maxsize=256)
def _ed25519_from_multibase(value: str) -> Ed25519PublicKey:
    """Kept for the last 256 values: an issuer's few keys are read for every badge verified."""
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


def rsa_public_key_to_jwk(public_key: rsa.RSAPublicKey, kid: str | None = None) -> dict[str, str]:
    """The public JWK of an RSA key for RS256 signatures (kty, n, e, and kid/alg/use)."""
    numbers = public_key.public_numbers()
    jwk = {
        "kty": "RSA",
        "n": b64url_encode(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
        "e": b64url_encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        "alg": "RS256",
        "use": "sig",
    }
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def rsa_public_key_from_jwk(jwk: Mapping[str, Any]) -> rsa.RSAPublicKey:
    """Parse a public RSA JWK; ValueError if it is not one (or carries private parameters)."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "RSA":
        raise ValueError("not an RSA JWK (kty must be 'RSA')")
    if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi")):
        raise ValueError("the JWK holds private key parameters; publish only the public key")
    if jwk.get("alg", "RS256") != "RS256":
        raise ValueError(f"the JWK is for {jwk.get('alg')!r}, not RS256")
    n = int.from_bytes(b64url_decode(jwk.get("n", "")), "big")
    e = int.from_bytes(b64url_decode(jwk.get("e", "")), "big")
    if n.bit_length() < _MIN_RSA_KEY_SIZE or e < 3 or e % 2 == 0:
        raise ValueError(f"unacceptable RSA public key (at least {_MIN_RSA_KEY_SIZE} bits)")
    return rsa.RSAPublicNumbers(e, n).public_key()


@dataclass(frozen=True, eq=False)
class RsaSigningKey:
    """An issuer's RSA private key for VC-JWT (RS256) and the id it is published under.

    Instances compare by identity; compare public_jwk() to compare keys.
    """

    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @classmethod
    def generate(cls, key_id: str = "rsa-1", key_size: int = RSA_KEY_SIZE) -> RsaSigningKey:
        if key_size < _MIN_RSA_KEY_SIZE:
            raise ValueError(f"RSA keys for RS256 need at least {_MIN_RSA_KEY_SIZE} bits")
        return cls(key_id, rsa.generate_private_key(public_exponent=65537, key_size=key_size))

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def public_jwk(self, kid: str | None = None) -> dict[str, str]:
        """The public JWK; kid defaults to this key's id."""
        return rsa_public_key_to_jwk(self.public_key, self.key_id if kid is None else kid)

    def sign(self, data: bytes) -> bytes:
        """RSASSA-PKCS1-v1_5 with SHA-256 (JWS 'RS256') signature of data."""
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def load_or_create_signing_key(key_dir: Path, key_id: str = "key-1") -> SigningKey:
    """Read key_dir/<key_id>.pem, creating the directory (0700) and the key (0600) if missing.

    The key is written as an unencrypted PKCS#8 PEM file. Creation is atomic: concurrent first
    runs end up sharing one key, and a reader never sees a half-written file.
    """
    path = _key_path(key_dir, key_id)
    if not path.exists():
        _create_key_file(path, Ed25519PrivateKey.generate())
    key = load_key_file(path)
    if not isinstance(key, SigningKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def load_or_create_rsa_key(key_dir: Path, key_id: str = "rsa-1") -> RsaSigningKey:
    """Like load_or_create_signing_key(), for an RSA key (3072 bits) used to sign VC-JWTs.

    RSA and Ed25519 keys live side by side in key_dir; their ids (file names) must differ.
    """
    path = _key_path(key_dir, key_id)
    if not path.exists():
        _create_key_file(
            path, rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_SIZE)
        )
    key = load_key_file(path)
    if not isinstance(key, RsaSigningKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def load_key_file(path: Path) -> SigningKey | RsaSigningKey:
    """The Ed25519 or RSA private key in a PEM file; its id is the file name without '.pem'."""
    path = Path(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if isinstance(key, Ed25519PrivateKey):
        return SigningKey(path.stem, key)
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < _MIN_RSA_KEY_SIZE:
            raise ValueError(f"{path}: RSA key of {key.key_size} bits is too small")
        return RsaSigningKey(path.stem, key)
    raise ValueError(f"{path} holds neither an Ed25519 nor an RSA private key")


def _key_path(key_dir: Path, key_id: str) -> Path:
    if not _KEY_ID.match(key_id):
        raise ValueError(f"invalid key id {key_id!r}: use letters, digits, '.', '_' or '-'")
    key_dir = Path(key_dir)
    if not key_dir.is_dir():
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(key_dir, 0o700)
    return key_dir / f"{key_id}.pem"


def _create_key_file(path: Path, private_key: Ed25519PrivateKey | rsa.RSAPrivateKey) -> None:
    pem = private_key.private_bytes(
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
