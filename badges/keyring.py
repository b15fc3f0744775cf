"""An issuer's key ring (Ed25519 and RSA keys, rotated), controller document, JWKS, public keys."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from badges.keys import (
    RsaSigningKey,
    SigningKey,
    load_key_file,
    load_or_create_rsa_key,
    load_or_create_signing_key,
    public_key_from_multibase,
    rsa_public_key_from_jwk,
    rsa_public_key_to_jwk,
)

__all__ = [
    "CONTROLLER_DOCUMENT_CONTEXT",
    "KeyRing",
    "PublicKeySet",
]

CONTROLLER_DOCUMENT_CONTEXT: Final = (
    "https://www.w3.org/ns/cid/v1",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
)
"""@context of the issuer profile served as a controller document: W3C Controlled Identifiers
1.0 (verificationMethod, assertionMethod, Multikey, JsonWebKey) and Open Badges (Profile)."""

ED25519_PREFIX: Final = "key-"
RSA_PREFIX: Final = "rsa-"
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _natural(key_id: str) -> tuple[str, int, str]:
    match = _NUMBERED.match(key_id)
    if match is None:
        return (key_id, -1, key_id)
    return (match.group(1), int(match.group(2)), key_id)


def _split_method(method: str) -> tuple[str, str]:
    controller, separator, fragment = method.partition("#")
    if not separator or not controller or not fragment:
        raise ValueError(f"{method!r} is not '<controller>#<key>'")
    return controller, fragment


@dataclass(frozen=True)
class PublicKeySet:
    """The public keys a verifier trusts for one issuer (or for the issuers of one deployment).

    multikeys: Ed25519 publicKeyMultibase values; a proof's verification method
        '<issuer id>#<multibase>' is accepted for any of them.
    methods: verification method id -> publicKeyMultibase, for methods with other fragments
        (from a controller document); the id's controller part must be the issuer.
    rsa: JWS kid -> RSA public key ('<issuer id>#<key id>' for VC-JWTs).
    rsa_key_ids: key id -> RSA public key, accepted as kid '<issuer id>#<key id>' for any issuer
        (a deployment's own keys, which sign for every institution it hosts).
    controller: if set, only credentials whose issuer is this id are accepted.
    """

    multikeys: frozenset[str] = frozenset()
    methods: Mapping[str, str] = field(default_factory=dict)
    rsa: Mapping[str, RSAPublicKey] = field(default_factory=dict)
    rsa_key_ids: Mapping[str, RSAPublicKey] = field(default_factory=dict)
    controller: str | None = None

    @classmethod
    def of(cls, keys: PublicKeySet | Iterable[str]) -> PublicKeySet:
        """keys as a PublicKeySet: an iterable of strings is taken as Ed25519 multibase keys."""
        if isinstance(keys, PublicKeySet):
            return keys
        return cls(multikeys=frozenset(keys))

    @classmethod
    def from_controller_document(cls, document: Mapping[str, Any]) -> PublicKeySet:
        """The assertion keys an issuer publishes in its controller document (profile).

        Only verification methods that assertionMethod references and whose controller is the
        document's id count; Multikey (Ed25519) and JsonWebKey (RSA) are read, others ignored.
        """
        controller = document.get("id")
        if not isinstance(controller, str) or not controller:
            raise ValueError("controller document has no id")
        assertion = document.get("assertionMethod", [])
        assertion_ids = {
            item if isinstance(item, str) else item.get("id")
            for item in (assertion if isinstance(assertion, list) else [assertion])
            if isinstance(item, str | Mapping)
        }
        candidates = list(document.get("verificationMethod", []) or [])
        candidates += [item for item in assertion if isinstance(item, Mapping)]
        methods: dict[str, str] = {}
        rsa_keys: dict[str, RSAPublicKey] = {}
        for method in candidates:
            if not isinstance(method, Mapping):
                continue
            method_id = method.get("id")
            if method_id not in assertion_ids or method.get("controller") != controller:
                continue
            if not isinstance(method_id, str) or _split_method(method_id)[0] != controller:
                continue
            if method.get("type") == "Multikey":
                multibase = method.get("publicKeyMultibase")
                if isinstance(multibase, str):
                    public_key_from_multibase(multibase)  # must be an Ed25519 key
                    methods[method_id] = multibase
            elif method.get("type") == "JsonWebKey":
                jwk = method.get("publicKeyJwk")
                if isinstance(jwk, Mapping) and jwk.get("kty") == "RSA":
                    rsa_keys[method_id] = rsa_public_key_from_jwk(jwk)
        return cls(methods=methods, rsa=rsa_keys, controller=controller)

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any], controller: str | None = None) -> PublicKeySet:
        """The RSA keys of a JWKS ({'keys': [...]}), by their kid."""
        rsa_keys: dict[str, RSAPublicKey] = {}
        for jwk in jwks.get("keys", []):
            if isinstance(jwk, Mapping) and jwk.get("kty") == "RSA":
                kid = jwk.get("kid")
                if isinstance(kid, str) and kid:
                    rsa_keys[kid] = rsa_public_key_from_jwk(jwk)
        return cls(rsa=rsa_keys, controller=controller)

    def merged(self, other: PublicKeySet) -> PublicKeySet:
        """Both sets together (the controller must agree, or be unset on one side)."""
        if self.controller and other.controller and self.controller != other.controller:
            raise ValueError("cannot merge the keys of two different controllers")
        return PublicKeySet(
            multikeys=self.multikeys | other.multikeys,
            methods={**self.methods, **other.methods},
            rsa={**self.rsa, **other.rsa},
            rsa_key_ids={**self.rsa_key_ids, **other.rsa_key_ids},
            controller=self.controller or other.controller,
        )

    def ed25519_for(self, verification_method: str, issuer_id: str) -> Ed25519PublicKey:
        """The trusted key for a Data Integrity proof by issuer_id; ValueError if there is none."""
        controller, fragment = _split_method(verification_method)
        self._check_controller(controller, issuer_id)
        multibase = self.methods.get(verification_method)
        if multibase is None and fragment in self.multikeys:
            multibase = fragment
        if multibase is None:
            raise ValueError(
                f"{verification_method!r} is not one of the issuer's published assertion keys"
            )
        return public_key_from_multibase(multibase)

    def rsa_for(self, kid: str, issuer_id: str) -> RSAPublicKey:
        """The trusted RSA key with JWS kid for a VC-JWT by issuer_id; ValueError otherwise."""
        controller, key_id = _split_method(kid)
        self._check_controller(controller, issuer_id)
        key = self.rsa.get(kid) or self.rsa_key_ids.get(key_id)
        if key is None:
            raise ValueError(f"kid {kid!r} is not one of the issuer's published keys")
        return key

    def rsa_matching(self, jwk: Mapping[str, Any]) -> RSAPublicKey:
        """The trusted RSA key equal to an embedded JWK; ValueError if none is."""
        wanted = rsa_public_key_from_jwk(jwk).public_numbers()
        for key in [*self.rsa.values(), *self.rsa_key_ids.values()]:
            if key.public_numbers() == wanted:
                return key
        raise ValueError("the JWT's embedded jwk is not one of the issuer's published keys")

    def _check_controller(self, controller: str, issuer_id: str) -> None:
        if controller != issuer_id:
            raise ValueError(f"the key's controller {controller!r} is not the issuer {issuer_id!r}")
        if self.controller is not None and self.controller != issuer_id:
            raise ValueError(f"these keys are {self.controller!r}'s, not {issuer_id!r}'s")


class KeyRing:
    """All signing keys of a deployment, Ed25519 (Data Integrity) and RSA (VC-JWT), by key id.

    New credentials are signed with the active key of each kind (by default the one with the
    highest number, e.g. key-2 after key-1); older keys stay published so that credentials they
    signed keep verifying after a rotation. Key ids are shared by both kinds (file names).
    """

    def __init__(
        self,
        ed25519: Iterable[SigningKey] = (),
        rsa_keys: Iterable[RsaSigningKey] = (),
        *,
        active_ed25519: str | None = None,
        active_rsa: str | None = None,
    ) -> None:
        self._ed25519 = {key.key_id: key for key in ed25519}
        self._rsa = {key.key_id: key for key in rsa_keys}
        if set(self._ed25519) & set(self._rsa):
            raise ValueError("an Ed25519 key and an RSA key share an id")
        for active, keys in ((active_ed25519, self._ed25519), (active_rsa, self._rsa)):
            if active is not None and active not in keys:
                raise ValueError(f"no key {active!r} in the key ring")
        self._active_ed25519 = active_ed25519
        self._active_rsa = active_rsa

    @classmethod
    def load(
        cls,
        key_dir: Path,
        *,
        active_ed25519: str | None = None,
        active_rsa: str | None = None,
    ) -> KeyRing:
        """Every key in key_dir/*.pem (nothing is created; a missing directory is empty)."""
        ed25519: list[SigningKey] = []
        rsa_keys: list[RsaSigningKey] = []
        key_dir = Path(key_dir)
        paths = sorted(key_dir.glob("*.pem")) if key_dir.is_dir() else []
        for path in paths:
            key = load_key_file(path)
            if isinstance(key, SigningKey):
                ed25519.append(key)
            else:
                rsa_keys.append(key)
        return cls(ed25519, rsa_keys, active_ed25519=active_ed25519, active_rsa=active_rsa)

    @classmethod
    def load_or_create(cls, key_dir: Path, *, rsa: bool = True) -> KeyRing:
        """load(), creating key-1 (Ed25519) and rsa-1 (if rsa) where no key of that kind exists."""
        ring = cls.load(key_dir)
        if not ring._ed25519:
            load_or_create_signing_key(key_dir, f"{ED25519_PREFIX}1")
        if rsa and not ring._rsa:
            load_or_create_rsa_key(key_dir, f"{RSA_PREFIX}1")
        return cls.load(key_dir)

    def rotate(self, key_dir: Path, kind: Literal["ed25519", "rsa"] = "ed25519") -> KeyRing:
        """Create the next key of a kind in key_dir (key-N+1 / rsa-N+1) and return the new ring,
        in which it is the active key; the earlier keys stay in it and stay published."""
        prefix = ED25519_PREFIX if kind == "ed25519" else RSA_PREFIX
        taken = set(self._ed25519) | set(self._rsa)
        numbers = [_natural(key_id)[1] for key_id in taken if _natural(key_id)[0] == prefix]
        key_id = f"{prefix}{max(numbers, default=0) + 1}"
        while key_id in taken:  # pragma: no cover - only with odd manual names
            key_id = f"{key_id}-1"
        if kind == "ed25519":
            load_or_create_signing_key(key_dir, key_id)
        else:
            load_or_create_rsa_key(key_dir, key_id)
        ring = KeyRing.load(key_dir)
        if kind == "ed25519":
            ring._active_ed25519 = key_id
            ring._active_rsa = self._active_rsa if self._active_rsa in ring._rsa else None
        else:
            ring._active_rsa = key_id
            ring._active_ed25519 = (
                self._active_ed25519 if self._active_ed25519 in ring._ed25519 else None
            )
        return ring

    @property
    def ed25519_keys(self) -> list[SigningKey]:
        return [self._ed25519[key_id] for key_id in sorted(self._ed25519, key=_natural)]

    @property
    def rsa_keys(self) -> list[RsaSigningKey]:
        return [self._rsa[key_id] for key_id in sorted(self._rsa, key=_natural)]

    @property
    def signing_key(self) -> SigningKey:
        """The active Ed25519 key, for Data Integrity proofs."""
        if self._active_ed25519 is not None:
            return self._ed25519[self._active_ed25519]
        keys = self.ed25519_keys
        if not keys:
            raise LookupError("the key ring has no Ed25519 key")
        return keys[-1]

    @property
    def rsa_key(self) -> RsaSigningKey:
        """The active RSA key, for VC-JWTs."""
        if self._active_rsa is not None:
            return self._rsa[self._active_rsa]
        keys = self.rsa_keys
        if not keys:
            raise LookupError("the key ring has no RSA key")
        return keys[-1]

    @staticmethod
    def verification_method(issuer_id: str, key: SigningKey) -> str:
        """'<issuer id>#<publicKeyMultibase>': the id of an Ed25519 key as a Multikey."""
        return f"{issuer_id}#{key.public_key_multibase}"

    @staticmethod
    def kid(issuer_id: str, key: RsaSigningKey) -> str:
        """'<issuer id>#<key id>': the JWS kid of an RSA key (a JsonWebKey method id)."""
        return f"{issuer_id}#{key.key_id}"

    def public_keys(self, issuer_id: str | None = None) -> PublicKeySet:
        """Every public key of the ring. With issuer_id the RSA keys are listed under their kid
        for that issuer and the set is bound to it; without, RSA keys match any issuer id."""
        multikeys = frozenset(key.public_key_multibase for key in self._ed25519.values())
        if issuer_id is None:
            return PublicKeySet(multikeys=multikeys, rsa_key_ids=self._rsa_public())
        return PublicKeySet(
            multikeys=multikeys,
            rsa={self.kid(issuer_id, key): key.public_key for key in self._rsa.values()},
            controller=issuer_id,
        )

    def _rsa_public(self) -> dict[str, RSAPublicKey]:
        return {key_id: key.public_key for key_id, key in self._rsa.items()}

    def verification_methods(self, issuer_id: str) -> list[dict[str, Any]]:
        """Every public key as a verification method controlled by issuer_id: Ed25519 keys as
        Multikey (publicKeyMultibase), RSA keys as JsonWebKey (publicKeyJwk), oldest first."""
        methods: list[dict[str, Any]] = [
            {
                "id": self.verification_method(issuer_id, key),
                "type": "Multikey",
                "controller": issuer_id,
                "publicKeyMultibase": key.public_key_multibase,
            }
            for key in self.ed25519_keys
        ]
        methods += [
            {
                "id": self.kid(issuer_id, key),
                "type": "JsonWebKey",
                "controller": issuer_id,
                "publicKeyJwk": key.public_jwk(self.kid(issuer_id, key)),
            }
            for key in self.rsa_keys
        ]
        return methods

    def controller_document(
        self,
        issuer_id: str,
        *,
        name: str,
        url: str | None = None,
        email: str | None = None,
        image: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """The issuer's profile as a controller document: every key as a verification method
        (Ed25519 as Multikey, RSA as JsonWebKey) controlled by the issuer, all of them listed
        under assertionMethod. Serve it at issuer_id (as application/ld+json or JSON)."""
        methods = self.verification_methods(issuer_id)
        document: dict[str, Any] = {
            "@context": list(CONTROLLER_DOCUMENT_CONTEXT),
            "id": issuer_id,
            "type": ["Profile"],
            "name": name,
        }
        optional = {"url": url, "email": email, "description": description}
        document.update({key: value for key, value in optional.items() if value is not None})
        if image is not None:
            document["image"] = {"id": image, "type": "Image"}
        document["verificationMethod"] = methods
        document["assertionMethod"] = [method["id"] for method in methods]
        return document

    def jwks(self, issuer_id: str) -> dict[str, Any]:
        """The RSA public keys as a JWKS ({'keys': [...]}) with kid '<issuer id>#<key id>'."""
        return {
            "keys": [
                rsa_public_key_to_jwk(key.public_key, self.kid(issuer_id, key))
                for key in self.rsa_keys
            ]
        }
