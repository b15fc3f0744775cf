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
)

__all__ = [
    "CONTROLLER_DOCUMENT_CONTEXT",
    "DID_DOCUMENT_CONTEXT",
    "KEYS_PATH",
    "KeyRing",
    "PublicKeySet",
    "method_parts",
]

DID_V1_CONTEXT: Final = "https://www.w3.org/ns/did/v1"
MULTIKEY_CONTEXT: Final = "https://w3id.org/security/multikey/v1"
JWK_TERMS: Final[Mapping[str, Any]] = {
    "JsonWebKey": "https://w3id.org/security#JsonWebKey",
    "publicKeyJwk": {"@id": "https://w3id.org/security#publicKeyJwk", "@type": "@json"},
}
"""The two terms an RSA verification method needs that the DID v1 and Multikey contexts do not
define, with the Security Vocabulary IRIs the W3C Controlled Identifiers context gives them."""
CONTROLLER_DOCUMENT_CONTEXT: Final = (
    DID_V1_CONTEXT,
    MULTIKEY_CONTEXT,
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json",
    JWK_TERMS,
)
"""@context of the issuer profile served as a controller document: DID v1 first (verification
methods, assertionMethod: verifiers such as jsonld-signatures read a document that starts with it
as it is, and fetch no further context to check assertionMethod), Multikey, Open Badges
(Profile), and the JsonWebKey terms."""
DID_DOCUMENT_CONTEXT: Final = (DID_V1_CONTEXT, MULTIKEY_CONTEXT, JWK_TERMS)
"""@context of a did:web DID document."""
KEYS_PATH: Final = "/keys/"
"""An HTTPS issuer's keys are served at '<issuer id>/keys/<key id>', each as its own document."""

ED25519_PREFIX: Final = "key-"
RSA_PREFIX: Final = "rsa-"
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def _natural(key_id: str) -> tuple[str, int, str]:
    match = _NUMBERED.match(key_id)
    if match is None:
        return (key_id, -1, key_id)
    return (match.group(1), int(match.group(2)), key_id)


def method_parts(method: str) -> tuple[str, str]:
    """(controller, key reference) of a verification method id or JWS kid, in the three forms
    badges name keys: '<issuer id>/keys/<key id>' (an HTTPS key document), '<DID>#<key id>'
    (a did:web verification method), and '<issuer id>#<publicKeyMultibase or key id>' (badges
    issued before keys had their own documents). ValueError for anything else."""
    controller, separator, fragment = method.partition("#")
    if separator:
        if not controller or not fragment:
            raise ValueError(f"{method!r} is not '<controller>#<key>'")
        return controller, fragment
    controller, separator, key_id = method.rpartition(KEYS_PATH)
    if not separator or not controller or not key_id or "/" in key_id:
        raise ValueError(f"{method!r} is neither '<controller>#<key>' nor '<issuer>/keys/<key id>'")
    return controller, key_id


def _controller_of(method: str) -> str | None:
    try:
        return method_parts(method)[0]
    except ValueError:
        return None


@dataclass(frozen=True)
class PublicKeySet:
    """The public keys a verifier trusts for one issuer (or for the issuers of one deployment).

    multikeys: Ed25519 publicKeyMultibase values; a proof's verification method
        '<issuer id>#<multibase>' is accepted for any of them.
    ed25519_key_ids: key id -> publicKeyMultibase, accepted as '<issuer id>/keys/<key id>' or
        '<DID>#<key id>' (a deployment's own keys, which sign for every institution it hosts).
    methods: verification method id -> publicKeyMultibase, for methods with other fragments
        (from a controller document); the id's controller part must be the issuer.
    rsa: JWS kid -> RSA public key ('<issuer id>#<key id>' for VC-JWTs).
    rsa_key_ids: key id -> RSA public key, accepted as kid '<issuer id>#<key id>' for any issuer
        (a deployment's own keys, which sign for every institution it hosts).
    controller: if set, only credentials whose issuer is this id are accepted.
    issuers: issuer id -> the only keys accepted for that issuer (an issuer with keys of its
        own, such as an institution's did:web DID): for an issuer listed here, none of the
        other keys of the set count.
    """

    multikeys: frozenset[str] = frozenset()
    ed25519_key_ids: Mapping[str, str] = field(default_factory=dict)
    methods: Mapping[str, str] = field(default_factory=dict)
    rsa: Mapping[str, RSAPublicKey] = field(default_factory=dict)
    rsa_key_ids: Mapping[str, RSAPublicKey] = field(default_factory=dict)
    controller: str | None = None
    issuers: Mapping[str, PublicKeySet] = field(default_factory=dict)

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
            if not isinstance(method_id, str) or _controller_of(method_id) != controller:
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
            ed25519_key_ids={**self.ed25519_key_ids, **other.ed25519_key_ids},
            methods={**self.methods, **other.methods},
            rsa={**self.rsa, **other.rsa},
            rsa_key_ids={**self.rsa_key_ids, **other.rsa_key_ids},
            controller=self.controller or other.controller,
            issuers={**self.issuers, **other.issuers},
        )

    def with_issuer(self, issuer_id: str, keys: PublicKeySet) -> PublicKeySet:
        """This set, with `keys` as the only keys accepted for issuer_id."""
        return PublicKeySet(
            multikeys=self.multikeys,
            ed25519_key_ids=self.ed25519_key_ids,
            methods=self.methods,
            rsa=self.rsa,
            rsa_key_ids=self.rsa_key_ids,
            controller=self.controller,
            issuers={**self.issuers, issuer_id: keys},
        )

    def ed25519_for(self, verification_method: str, issuer_id: str) -> Ed25519PublicKey:
        """The trusted key for a Data Integrity proof by issuer_id; ValueError if there is none."""
        if issuer_id in self.issuers:
            return self.issuers[issuer_id].ed25519_for(verification_method, issuer_id)
        controller, fragment = method_parts(verification_method)
        self._check_controller(controller, issuer_id)
        multibase = self.methods.get(verification_method)
        if multibase is None and fragment in self.multikeys:
            multibase = fragment
        if multibase is None:
            multibase = self.ed25519_key_ids.get(fragment)
        if multibase is None:
            raise ValueError(
                f"{verification_method!r} is not one of the issuer's published assertion keys"
            )
        return public_key_from_multibase(multibase)

    def rsa_for(self, kid: str, issuer_id: str) -> RSAPublicKey:
        """The trusted RSA key with JWS kid for a VC-JWT by issuer_id; ValueError otherwise."""
        if issuer_id in self.issuers:
            return self.issuers[issuer_id].rsa_for(kid, issuer_id)
        controller, key_id = method_parts(kid)
        self._check_controller(controller, issuer_id)
        key = self.rsa.get(kid) or self.rsa_key_ids.get(key_id)
        if key is None:
            raise ValueError(f"kid {kid!r} is not one of the issuer's published keys")
        return key

    def rsa_matching(self, jwk: Mapping[str, Any], issuer_id: str | None = None) -> RSAPublicKey:
        """The trusted RSA key (of issuer_id, if given) equal to an embedded JWK; ValueError if
        none is."""
        if issuer_id is not None and issuer_id in self.issuers:
            return self.issuers[issuer_id].rsa_matching(jwk)
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
    def method_id(issuer_id: str, key_id: str) -> str:
        """The id under which an issuer publishes one of its keys: '<DID>#<key id>' for a DID
        issuer, else '<issuer id>/keys/<key id>', a URL that answers with the key itself."""
        if issuer_id.startswith("did:"):
            return f"{issuer_id}#{key_id}"
        return f"{issuer_id.rstrip('/')}{KEYS_PATH}{key_id}"

    @classmethod
    def verification_method(cls, issuer_id: str, key: SigningKey) -> str:
        """The verification method of an Ed25519 key (a Multikey) for Data Integrity proofs."""
        return cls.method_id(issuer_id, key.key_id)

    @classmethod
    def kid(cls, issuer_id: str, key: RsaSigningKey) -> str:
        """The JWS kid of an RSA key: a URL (or DID URL) that dereferences to its JWK."""
        return cls.method_id(issuer_id, key.key_id)

    @staticmethod
    def legacy_verification_method(issuer_id: str, key: SigningKey) -> str:
        """'<issuer id>#<publicKeyMultibase>': how badges issued before keys had their own
        documents name an Ed25519 key (still listed, so that those badges keep verifying)."""
        return f"{issuer_id}#{key.public_key_multibase}"

    @staticmethod
    def legacy_kid(issuer_id: str, key: RsaSigningKey) -> str:
        """'<issuer id>#<key id>': the kid of VC-JWTs issued before keys had their own URLs."""
        return f"{issuer_id}#{key.key_id}"

    def public_keys(self, issuer_id: str | None = None) -> PublicKeySet:
        """Every public key of the ring, under every name a badge may give it. With issuer_id the
        set is bound to that issuer; without, the keys are accepted for any issuer id."""
        multikeys = frozenset(key.public_key_multibase for key in self._ed25519.values())
        key_ids = {key.key_id: key.public_key_multibase for key in self._ed25519.values()}
        if issuer_id is None:
            return PublicKeySet(
                multikeys=multikeys, ed25519_key_ids=key_ids, rsa_key_ids=self._rsa_public()
            )
        rsa_keys: dict[str, RSAPublicKey] = {}
        for key in self._rsa.values():
            rsa_keys[self.kid(issuer_id, key)] = key.public_key
            rsa_keys[self.legacy_kid(issuer_id, key)] = key.public_key
        return PublicKeySet(
            multikeys=multikeys, ed25519_key_ids=key_ids, rsa=rsa_keys, controller=issuer_id
        )

    def _rsa_public(self) -> dict[str, RSAPublicKey]:
        return {key_id: key.public_key for key_id, key in self._rsa.items()}

    def key_document(self, issuer_id: str, key_id: str) -> dict[str, Any] | None:
        """What '<issuer id>/keys/<key id>' answers: an Ed25519 key as a Multikey document (with
        the Multikey context, its controller the issuer), an RSA key as its public JWK (kid =
        that URL). None if the ring has no such key."""
        method = self.method_id(issuer_id, key_id)
        if key_id in self._ed25519:
            return {
                "@context": [MULTIKEY_CONTEXT],
                "id": method,
                "type": "Multikey",
                "controller": issuer_id,
                "publicKeyMultibase": self._ed25519[key_id].public_key_multibase,
            }
        if key_id in self._rsa:
            return self._rsa[key_id].public_jwk(method)
        return None

    def verification_methods(self, issuer_id: str, *, legacy: bool = False) -> list[dict[str, Any]]:
        """Every public key as a verification method controlled by issuer_id: Ed25519 keys as
        Multikey (publicKeyMultibase), RSA keys as JsonWebKey (publicKeyJwk), oldest first. With
        legacy, each key also under the id badges issued before this form gave it."""
        methods: list[dict[str, Any]] = []
        for key in self.ed25519_keys:
            ids = [self.verification_method(issuer_id, key)]
            if legacy:
                ids.append(self.legacy_verification_method(issuer_id, key))
            methods += [
                {
                    "id": method,
                    "type": "Multikey",
                    "controller": issuer_id,
                    "publicKeyMultibase": key.public_key_multibase,
                }
                for method in ids
            ]
        for rsa_key in self.rsa_keys:
            ids = [self.kid(issuer_id, rsa_key)]
            if legacy:
                ids.append(self.legacy_kid(issuer_id, rsa_key))
            methods += [
                {
                    "id": kid,
                    "type": "JsonWebKey",
                    "controller": issuer_id,
                    "publicKeyJwk": rsa_key.public_jwk(kid),
                }
                for kid in ids
            ]
        return methods

    def did_document(self, did: str) -> dict[str, Any]:
        """The DID document of a did:web issuer: every key as a verification method '<DID>#<key
        id>', all of them under assertionMethod. Serve it where did:web resolves the DID."""
        if not did.startswith("did:web:"):
            raise ValueError(f"{did!r} is not a did:web DID")
        methods = self.verification_methods(did)
        return {
            "@context": [
                item if isinstance(item, str) else dict(item) for item in DID_DOCUMENT_CONTEXT
            ],
            "id": did,
            "verificationMethod": methods,
            "assertionMethod": [method["id"] for method in methods],
        }

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
        under assertionMethod (each also under the id that badges issued before keys had their
        own documents gave it). Serve it at issuer_id (as application/ld+json or JSON)."""
        methods = self.verification_methods(issuer_id, legacy=True)
        document: dict[str, Any] = {
            "@context": [
                item if isinstance(item, str) else dict(item)
                for item in CONTROLLER_DOCUMENT_CONTEXT
            ],
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

    def jwks(self, issuer_ids: Iterable[str]) -> dict[str, Any]:
        """The RSA public keys as a JWKS ({'keys': [...]}): each key once per issuer id, with the
        kid that issuer's VC-JWTs carry (see kid()), and for an HTTPS issuer once more with the
        kid of VC-JWTs issued before keys had their own URLs."""
        keys: list[dict[str, Any]] = []
        for issuer_id in issuer_ids:
            for key in self.rsa_keys:
                keys.append(key.public_jwk(self.kid(issuer_id, key)))
                if not issuer_id.startswith("did:"):
                    keys.append(key.public_jwk(self.legacy_kid(issuer_id, key)))
        return {"keys": keys}
