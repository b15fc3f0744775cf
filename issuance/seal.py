"""An institution's own electronic seal on a European Digital Credential: JAdES (ETSI TS 119 182-1),
the JWS profile the Europass issuer seals with, at its baseline level B-B.

The sealed credential has the form the Commission's sealed sample has: JWS JSON serialisation
(general), the credential as an unencoded payload (RFC 7797: `b64` false, so `payload` is the
credential's JSON text itself) and one signature whose protected header carries what JAdES asks of
a B-B signature: the algorithm, the signing certificate (`x5c`, leaf first), its SHA-256
thumbprint (`x5t#S256`), its issuer and serial number (`kid`: the DER of an IssuerSerial, in
base64, as JAdES defines it), the claimed signing time (`sigT`) and `crit` naming the extensions
a verifier must understand. joserfc signs and checks the JWS; what JAdES adds to the header is
built here.

Not here (docs/badges/europass.md): time-stamps (B-T), validation data (B-LT, B-LTA), and
whether the certificate is qualified: a qualified seal is a matter of the certificate and of the
device that holds its key, which a file cannot be.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from joserfc.jws import GeneralJSONSerialization
from joserfc.registry import HeaderParameter, is_str

__all__ = [
    "SealCertificate",
    "SealRefused",
    "load_seal",
    "open_seal",
    "payload_text",
    "seal",
]

#: The subject attribute of an eIDAS seal certificate that holds the organisation's identifier
#: (ETSI EN 319 412-1), e.g. VATIT-01234567890.
ORGANIZATION_IDENTIFIER: Final = x509.ObjectIdentifier("2.5.4.97")


class SealRefused(ValueError):
    """The seal cannot be made, or a sealed credential does not hold; the message says why."""


class _Registry(jws.JWSRegistry):
    """JWS with JAdES's header: `sigT` is understood, and the limits fit a credential (its
    display image inside) and a certificate chain in the header."""

    max_header_length = 64_000
    max_payload_length = 16_000_000
    max_signature_length = 2_048


_REGISTRY: Final = _Registry(
    header_registry={"sigT": HeaderParameter("Claimed signing time", is_str)},
    algorithms=["RS256", "PS256", "ES256", "ES384"],
)


@dataclass(frozen=True)
class SealCertificate:
    """A seal's private key and its certificate chain (the signing certificate first)."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def organisation_identifier(self) -> str | None:
        found = self.certificate.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)
        return str(found[0].value) if found else None

    @property
    def organisation_name(self) -> str | None:
        found = self.certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return str(found[0].value) if found else None

    @property
    def algorithm(self) -> str:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return "RS256"
        return {"secp256r1": "ES256", "secp384r1": "ES384"}[self.key.curve.name]

    def check(self, legal_identifier: str, at: datetime) -> None:
        """SealRefused unless the certificate can seal for the institution whose legal identifier
        is given, at `at`: its key is the certificate's, its subject's organizationIdentifier is
        that legal identifier, it is valid then, and its key usage allows signatures."""
        certificate = self.certificate
        public = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        held = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if public != held:
            raise SealRefused("the seal's private key is not the key of its certificate")
        if self.organisation_identifier != legal_identifier:
            raise SealRefused(
                f"the seal certificate is for organisation {self.organisation_identifier!r} "
                f"(its subject's organizationIdentifier), not for {legal_identifier!r}, the "
                "institution's legal identifier"
            )
        if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
            raise SealRefused(
                "the seal certificate is not valid now (valid "
                f"{certificate.not_valid_before_utc:%Y-%m-%d} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%d})"
            )
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            return
        if not (usage.digital_signature or usage.content_commitment):
            raise SealRefused("the seal certificate's key usage does not allow signatures")


def load_seal(path: Path, passphrase: bytes | None = None) -> SealCertificate:
    """The seal in a PKCS#12 file (the private key with its certificate and the chain up to its
    authority). SealRefused when it cannot be read or holds no usable key (RSA, or EC P-256 or
    P-384)."""
    try:
        key, certificate, more = pkcs12.load_key_and_certificates(path.read_bytes(), passphrase)
    except (OSError, ValueError) as error:
        raise SealRefused(f"cannot read the seal file {path.name}: {error}") from None
    if certificate is None or key is None:
        raise SealRefused(f"the seal file {path.name} holds no private key with its certificate")
    usable = isinstance(key, rsa.RSAPrivateKey) or (
        isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in ("secp256r1", "secp384r1")
    )
    if not usable:
        raise SealRefused(
            f"the seal file {path.name} holds a key of a kind JAdES seals here do not use"
        )
    return SealCertificate(key=key, chain=(certificate, *more))  # type: ignore[arg-type]


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def issuer_serial(certificate: x509.Certificate) -> bytes:
    """The DER of the certificate's IssuerSerial (RFC 5035): SEQUENCE { issuer GeneralNames
    (one directoryName), serialNumber INTEGER }, as JAdES's `kid` holds it."""
    name = certificate.issuer.public_bytes()
    general_names = _der(0x30, _der(0xA4, name))
    serial = certificate.serial_number
    serial_bytes = serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)
    return _der(0x30, general_names + _der(0x02, serial_bytes))


def payload_text(credential: Mapping[str, Any]) -> str:
    """The credential as the JSON text that is sealed (compact, as the Europass issuer writes
    it)."""
    return json.dumps(credential, ensure_ascii=False, separators=(",", ":"))


def _key(certificate: SealCertificate) -> RSAKey | ECKey:
    if isinstance(certificate.key, rsa.RSAPrivateKey):
        return RSAKey.import_key(certificate.key)
    return ECKey.import_key(certificate.key)


def seal(
    credential: Mapping[str, Any], certificate: SealCertificate, signed_at: datetime
) -> dict[str, Any]:
    """The credential sealed with the certificate's key: `{"payload": <the credential's JSON
    text>, "signatures": [{"protected": ..., "signature": ...}]}` (see the module)."""
    leaf = certificate.certificate
    der = leaf.public_bytes(serialization.Encoding.DER)
    protected = {
        "alg": certificate.algorithm,
        "typ": "jose+json",
        "cty": "octet-stream",
        "b64": False,
        "crit": ["b64", "sigT"],
        "sigT": signed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kid": base64.b64encode(issuer_serial(leaf)).decode("ascii"),
        "x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest())
        .rstrip(b"=")
        .decode("ascii"),
        "x5c": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in certificate.chain
        ],
    }
    sealed = jws.serialize_json(
        [{"protected": protected}], payload_text(credential), _key(certificate), registry=_REGISTRY
    )
    return dict(sealed)


@dataclass(frozen=True)
class OpenedSeal:
    """A sealed credential whose signature holds: the credential, the signing certificate and
    the claimed signing time."""

    credential: dict[str, Any]
    certificate: x509.Certificate
    signed_at: datetime


def _public_key(certificate: x509.Certificate) -> RSAKey | ECKey:
    public = certificate.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        return RSAKey.import_key(public)
    if isinstance(public, ec.EllipticCurvePublicKey):
        return ECKey.import_key(public)
    raise SealRefused("the signing certificate's key is neither RSA nor EC")


def open_seal(sealed: Mapping[str, Any], understood: Sequence[str] = ()) -> OpenedSeal:
    """Check a sealed credential's one signature against the certificate it names (`x5c`, whose
    thumbprint and issuer-serial must match `x5t#S256` and `kid`) and return what it seals.
    SealRefused when it does not hold. Whether the certificate is trusted (its chain to a trusted
    list, its revocation) is not checked here, nor time-stamps: a seal of a higher JAdES level
    names them in `crit` (`adoTst`, ...), and is refused unless they are in `understood`, which
    accepts those header parameters without processing them."""
    signatures = sealed.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1:
        raise SealRefused("a sealed credential has exactly one signature")
    try:
        encoded = signatures[0]["protected"]
        header = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise SealRefused(f"the seal's header cannot be read: {error}") from None
    if header.get("b64") is not False or "sigT" not in header.get("crit", []):
        raise SealRefused("not a JAdES seal over an unencoded payload (b64 false, sigT critical)")
    der = leaf.public_bytes(serialization.Encoding.DER)
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
    if header.get("x5t#S256") != thumbprint:
        raise SealRefused("x5t#S256 is not the thumbprint of the signing certificate")
    if header.get("kid") is not None and header["kid"] != base64.b64encode(
        issuer_serial(leaf)
    ).decode("ascii"):
        raise SealRefused("kid is not the signing certificate's issuer and serial number")
    registry = _REGISTRY
    if understood:
        registry = _Registry(
            header_registry={
                "sigT": HeaderParameter("Claimed signing time", is_str),
                **{name: HeaderParameter(name, lambda value: None) for name in understood},
            },
            algorithms=["RS256", "PS256", "ES256", "ES384"],
        )
    try:
        opened = jws.deserialize_json(
            cast(GeneralJSONSerialization, dict(sealed)), _public_key(leaf), registry=registry
        )
    except JoseError as error:
        raise SealRefused(f"the seal does not hold: {error.description or error.error}") from None
    try:
        signed_at = datetime.strptime(header["sigT"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        credential = json.loads(opened.payload)
    except (KeyError, ValueError) as error:
        raise SealRefused(f"the sealed content cannot be read: {error}") from None
    return OpenedSeal(credential=credential, certificate=leaf, signed_at=signed_at)
