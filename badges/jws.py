"""Compact JWS (RFC 7515) through joserfc: the one place where the product signs or verifies a
JWT, a VC-JWT badge (badges/vcjwt.py) as a wallet's proof of possession (badges/holder_proof.py).
Why joserfc: docs/decisions/0041-jose-through-joserfc.md.

Each caller names the algorithms it accepts; nothing else is ever taken, `none` and the HMAC
algorithms included, whatever the header says. A header with `crit` or `b64` (RFC 7797: an
unencoded payload) is refused: no JWT this product reads needs either. What the token means (its
claims, its `typ`, how its key is found) stays the caller's."""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import JoseError, UnsupportedAlgorithmError
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry
from joserfc.util import urlsafe_b64decode

__all__ = [
    "CompactJws",
    "JwsError",
    "JwsRules",
    "decode_compact",
    "public_jwk_key",
    "rsa_key",
    "sign_compact",
    "verify_compact",
]

Key = RSAKey | ECKey | OKPKey
_REFUSED_HEADERS: Final = ("crit", "b64")


class JwsError(ValueError):
    """Not a compact JWS this product takes: malformed, an algorithm or header it does not
    accept, or a key that does not fit the algorithm."""


class _Registry(JWSRegistry):
    """Exactly the algorithms given, nothing else. Unlike joserfc's own lookup it does not warn
    on 'EdDSA', which RFC 9864 deprecates in favour of 'Ed25519' but which OpenID4VCI wallets
    (and this issuer's metadata) name Ed25519 proofs with; the key check still asks for an
    Ed25519 key."""

    def get_alg(self, name: str) -> Any:
        if not self.allowed or name not in self.allowed or name not in self.algorithms:
            raise UnsupportedAlgorithmError(f"algorithm {name!r} is not accepted here")
        return self.algorithms[name]


@dataclass(frozen=True)
class JwsRules:
    """What one kind of token may be: its algorithms, its largest payload and header (base64url
    bytes), and whether a header member joserfc's registry does not know is refused."""

    algorithms: tuple[str, ...]
    max_payload: int = 128_000
    max_header: int = 2048
    strict_header: bool = True
    registry: JWSRegistry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.algorithms or "none" in self.algorithms:
            raise ValueError("name the algorithms a token may use ('none' is never one)")
        registry = _Registry(algorithms=self.algorithms, strict_check_header=self.strict_header)
        registry.max_payload_length = self.max_payload
        registry.max_header_length = self.max_header
        object.__setattr__(self, "registry", registry)


@dataclass(frozen=True)
class CompactJws:
    """A compact JWS, parsed but not verified: its protected header and its payload."""

    header: dict[str, Any]
    payload: bytes
    signature: bytes = field(repr=False)
    signing_input: bytes = field(repr=False)
    _parsed: Any = field(repr=False, compare=False)

    def payload_json(self) -> dict[str, Any]:
        """The payload as a JSON object; JwsError if it is not one."""
        try:
            value = json.loads(self.payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise JwsError("the payload is not JSON") from None
        if not isinstance(value, dict):
            raise JwsError("the payload is not a JSON object")
        return value


def decode_compact(token: str, rules: JwsRules) -> CompactJws:
    """Parse a compact JWS: three non-empty base64url parts, a JSON object header whose `alg` is
    one of `rules.algorithms`, no `crit` or `b64`, within the size limits. JwsError otherwise."""
    if not isinstance(token, str):
        raise JwsError("not a compact JWS (a string of three base64url parts)")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JwsError("not a compact JWS (three base64url parts separated by '.')")
    try:
        parsed = jws.extract_compact(token.encode("ascii"), registry=rules.registry)
    except (JoseError, ValueError, TypeError, binascii.Error, UnicodeError) as error:
        raise JwsError(f"not a compact JWS: {_reason(error)}") from None
    header = parsed.protected
    if not isinstance(header, dict):
        raise JwsError("the JWS header is not a JSON object")
    for name in _REFUSED_HEADERS:
        if name in header:
            raise JwsError(f"the JWS header has {name!r}, which is not supported here")
    if header.get("alg") not in rules.algorithms:
        raise JwsError(f"alg {header.get('alg')!r} is not one of {', '.join(rules.algorithms)}")
    try:
        rules.registry.check_header(header)
    except (JoseError, ValueError, TypeError) as error:
        raise JwsError(f"the JWS header is not acceptable: {_reason(error)}") from None
    segments = parsed.segments
    return CompactJws(
        header=dict(header),
        payload=bytes(parsed.payload),
        signature=_signature(segments["signature"]),
        signing_input=segments["header"] + b"." + segments["payload"],
        _parsed=parsed,
    )


def _signature(segment: bytes) -> bytes:
    try:
        return urlsafe_b64decode(segment)
    except (ValueError, binascii.Error):
        raise JwsError("the JWS signature is not base64url") from None


def verify_compact(token: CompactJws, key: Key, rules: JwsRules) -> bool:
    """Whether the signature verifies with `key` under the token's `alg` (one of the rules').
    JwsError if the key does not fit the algorithm (an RSA key for ES256, a P-384 key...)."""
    try:
        return bool(jws.validate_compact(token._parsed, key, registry=rules.registry))
    except (JoseError, ValueError, TypeError) as error:
        raise JwsError(f"the key does not fit the JWS: {_reason(error)}") from None


def sign_compact(header: Mapping[str, Any], payload: bytes, key: Key, rules: JwsRules) -> str:
    """The compact JWS of `payload` (bytes as given) under `header`, signed with `key`."""
    try:
        return jws.serialize_compact(dict(header), payload, key, registry=rules.registry)
    except (JoseError, ValueError, TypeError) as error:
        raise JwsError(f"cannot sign: {_reason(error)}") from None


def rsa_key(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> RSAKey:
    """An RSA key (private to sign, public to verify) as joserfc's key."""
    return RSAKey.import_key(key)


def public_jwk_key(jwk: Mapping[str, Any]) -> Key:
    """The public key of a JWK: OKP Ed25519, EC P-256 or RSA. JwsError for a private key, another
    type or curve, or values that are not a valid key (an EC point off the curve, ...)."""
    if "d" in jwk:
        raise JwsError("the JWK holds a private key: give the public key only")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    try:
        if kty == "OKP" and crv == "Ed25519":
            return OKPKey.import_key(dict(jwk))
        if kty == "EC" and crv == "P-256":
            return ECKey.import_key(dict(jwk))
        if kty == "RSA":
            return RSAKey.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError, binascii.Error) as error:
        raise JwsError(f"not a valid public key: {_reason(error)}") from None
    raise JwsError("the key is neither an Ed25519 (OKP), a P-256 (EC) nor an RSA key")


def _reason(error: BaseException) -> str:
    text = str(error) or getattr(error, "description", "") or type(error).__name__
    return str(text)
