"""Verify an Open Badges 3.0 badge (JSON, VC-JWT, baked PNG or SVG) and report every check."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from pydantic import ValidationError

from badges.bake import BakeError, image_kind, unbake
from badges.credential import OB_CONTEXT, VC_CONTEXT
from badges.jsonld import DocumentError, ensure_all_terms_defined
from badges.keyring import KeyRing, PublicKeySet
from badges.keys import public_key_from_multibase
from badges.models import LENIENT, BitstringStatusListCredential, OpenBadgeCredential
from badges.proof import verify as verify_data_integrity
from badges.status import StatusList
from badges.vcjwt import DecodedJwt, decode_jwt, is_compact_jwt, verify_jwt

__all__ = [
    "CHECKS",
    "StatusListResolver",
    "VerificationReport",
    "local_issuer_keys",
    "local_public_keys",
    "verify_badge",
    "verify_credential",
]

CHECKS: Final = (
    "parse",
    "contexts",
    "type",
    "schema",
    "terms",
    "issuer",
    "proof",
    "validity",
    "status",
    "recipient",
)
"""Every check a report can hold, in the order they run; status and recipient only on request."""

OB2_CONTEXT: Final = "https://w3id.org/openbadges/v2"
StatusListResolver = Callable[[str], Mapping[str, Any] | str | bytes]
"""Given a statusListCredential URL, the status list credential (JSON object, JSON text or a
VC-JWT); raise if it cannot be had. The lead's code decides how (cache, HTTP, database)."""


@dataclass
class VerificationReport:
    """What verify_badge() found: verified only if every check ran and passed."""

    credential_id: str | None = None
    issuer_id: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    container: str | None = None
    """Where the credential came from: 'json', 'jwt', 'png' or 'svg'."""
    proof_format: str | None = None
    """'eddsa-rdfc-2022' (Data Integrity) or 'vc-jwt'."""
    revoked: bool | None = None
    suspended: bool | None = None
    recipient_matches: bool | None = None
    credential: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def verified(self) -> bool:
        return bool(self.checks) and all(self.checks.values()) and not self.errors

    def fail(self, check: str, message: str) -> None:
        self.checks[check] = False
        self.errors.append(f"{check}: {message}")

    def passed(self, check: str) -> None:
        self.checks.setdefault(check, True)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "credential_id": self.credential_id,
            "issuer": self.issuer_id,
            "container": self.container,
            "proof_format": self.proof_format,
            "checks": self.checks,
            "revoked": self.revoked,
            "suspended": self.suspended,
            "recipient_matches": self.recipient_matches,
            "errors": self.errors,
            "warnings": self.warnings,
        }


def local_issuer_keys(key_dir: Path) -> PublicKeySet:
    """The Ed25519 public keys of the signing keys kept in key_dir (RSA keys there are skipped),
    by publicKeyMultibase and by key id, for any issuer: the offline key store."""
    keys = KeyRing.load(key_dir).ed25519_keys
    return PublicKeySet(
        multikeys=frozenset(key.public_key_multibase for key in keys),
        ed25519_key_ids={key.key_id: key.public_key_multibase for key in keys},
    )


def local_public_keys(key_dir: Path) -> PublicKeySet:
    """Every public key (Ed25519 and RSA) of the key ring in key_dir, for any issuer id."""
    return KeyRing.load(key_dir).public_keys()


def verify_credential(
    text: str, issuer_keys: Iterable[str] | PublicKeySet, now: datetime | None = None
) -> VerificationReport:
    """Check a credential given as JSON text (or a VC-JWT). issuer_keys are the issuer's published
    public keys: a PublicKeySet (which knows key ids, as proofs name keys now), or bare multibase
    values (enough only for proofs that name the key '<issuer>#<multibase>'); a proof by any
    other key, or by a key whose controller is not the issuer, fails. Same as
    verify_badge(text, issuer_keys=..., now=...)."""
    return verify_badge(text, issuer_keys=issuer_keys, now=now)


def verify_badge(
    data: bytes | str | Mapping[str, Any],
    *,
    issuer_keys: Iterable[str] | PublicKeySet,
    status_lists: StatusListResolver | None = None,
    email: str | None = None,
    now: datetime | None = None,
) -> VerificationReport:
    """Verify a badge and report each check; never raises on bad input.

    data: credential JSON (text, bytes or an already parsed object), a compact VC-JWT, or a baked
    PNG or SVG image (Open Badges 3.0 baking; 2.0 bakes are read and reported as such).
    Checks: parse, contexts (VC 2.0 then OB 3.0), type, schema (the OB 3.0 data model's
    required parts), terms (JSON-LD safe mode), issuer (the key is the issuer's: the
    verification method's or kid's controller is the issuer id and the key is one of
    issuer_keys), proof (eddsa-rdfc-2022 Data Integrity proof or RS256 VC-JWT signature and
    claims), validity (validFrom <= now < validUntil); status (revocation and suspension,
    verified status list credentials fetched through status_lists) when status_lists is given;
    recipient (the e-mail matches a hashed IdentityObject) when email is given.
    """
    report = VerificationReport()
    keys = PublicKeySet.of(issuer_keys)
    moment = now or datetime.now(UTC)
    try:
        parsed = _parse(data, report)
        if parsed is None:
            return report
        credential, token = parsed
        report.credential = credential
        _check_content(credential, report)
        _check_security(credential, token, keys, report)
        _check_validity(credential, moment, report)
        if status_lists is not None:
            _check_status(credential, keys, status_lists, moment, report)
        elif credential.get("credentialStatus"):
            report.warnings.append("status not checked: no status list resolver was given")
        if email is not None:
            _check_recipient(credential, email, report)
    except Exception as error:  # a bad badge must produce a report, not an exception
        report.fail("parse", f"unexpected error: {type(error).__name__}: {error}")
    report.checks = {name: report.checks[name] for name in CHECKS if name in report.checks}
    return report


# ---------------------------------------------------------------------------------------------
# parse


def _parse(
    data: bytes | str | Mapping[str, Any], report: VerificationReport
) -> tuple[dict[str, Any], str | None] | None:
    """(credential, compact JWT or None), or None after reporting why it cannot be read."""
    if isinstance(data, Mapping):
        report.container = "json"
        return _credential_object(dict(data), None, report)
    kind = image_kind(data)
    if kind is not None:
        report.container = kind
        try:
            text = unbake(data)
        except BakeError as error:
            report.fail("parse", str(error))
            return None
    elif isinstance(data, str):
        text = data
    else:
        try:
            text = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            report.fail("parse", "neither a PNG, an SVG, nor UTF-8 text")
            return None
    text = text.strip()
    if is_compact_jwt(text):
        report.container = report.container or "jwt"
        report.proof_format = "vc-jwt"
        try:
            payload = _decoded_payload(text)
        except ValueError as error:
            report.fail("parse", str(error))
            return None
        return _credential_object(payload, text, report)
    if text.startswith("{"):
        report.container = report.container or "json"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            report.fail("parse", f"not JSON: {error}")
            return None
        return _credential_object(value, None, report)
    if text.startswith(("http://", "https://")):
        report.fail(
            "parse",
            "this is an Open Badges 2.0 hosted assertion (a URL); it is verified by fetching it "
            "from its issuer, which this offline verifier does not do",
        )
        return None
    report.fail("parse", "neither credential JSON nor a compact JWT")
    return None


def _decoded_payload(token: str) -> dict[str, Any]:
    return decode_jwt(token).payload


def _credential_object(
    value: Any, token: str | None, report: VerificationReport
) -> tuple[dict[str, Any], str | None] | None:
    if not isinstance(value, dict):
        report.fail("parse", "the credential is not a JSON object")
        return None
    report.passed("parse")
    credential_id = value.get("id")
    report.credential_id = credential_id if isinstance(credential_id, str) else None
    issuer = value.get("issuer")
    issuer_id = issuer.get("id") if isinstance(issuer, dict) else issuer
    report.issuer_id = issuer_id if isinstance(issuer_id, str) else None
    return value, token


# ---------------------------------------------------------------------------------------------
# content


def _check_content(credential: dict[str, Any], report: VerificationReport) -> None:
    contexts = credential.get("@context")
    if isinstance(contexts, list) and contexts[:2] == [VC_CONTEXT, OB_CONTEXT]:
        report.passed("contexts")
    elif contexts == OB2_CONTEXT or (isinstance(contexts, list) and OB2_CONTEXT in contexts):
        report.fail(
            "contexts",
            "this is an Open Badges 2.0 assertion; only Open Badges 3.0 credentials are verified",
        )
    else:
        report.fail("contexts", f"@context must start with {VC_CONTEXT} and {OB_CONTEXT}")

    types = credential.get("type", [])
    types = [types] if isinstance(types, str) else types
    if (
        isinstance(types, list)
        and "VerifiableCredential" in types
        and ("OpenBadgeCredential" in types or "AchievementCredential" in types)
    ):
        report.passed("type")
    else:
        report.fail("type", "type must include VerifiableCredential and OpenBadgeCredential")

    try:
        OpenBadgeCredential.model_validate(credential, context=LENIENT)
    except ValidationError as error:
        for problem in error.errors()[:5]:
            where = ".".join(str(part) for part in problem["loc"]) or "credential"
            report.fail("schema", f"{where}: {problem['msg']}")
    else:
        report.passed("schema")


# ---------------------------------------------------------------------------------------------
# issuer key, proof and JSON-LD terms


def _check_security(
    credential: dict[str, Any],
    token: str | None,
    keys: PublicKeySet,
    report: VerificationReport,
) -> None:
    issuer_id = report.issuer_id
    if token is not None:
        _check_jwt(token, credential, keys, issuer_id, report)
    else:
        report.proof_format = "eddsa-rdfc-2022"
        _check_data_integrity(credential, keys, issuer_id, report)


def _check_data_integrity(
    credential: dict[str, Any],
    keys: PublicKeySet,
    issuer_id: str | None,
    report: VerificationReport,
) -> None:
    problems: list[str] = []
    bound = _bind_data_integrity_key(credential, keys, issuer_id, problems)
    for problem in problems:
        report.fail("issuer", problem)
    if not problems:
        report.passed("issuer")

    def resolve(method: str) -> Ed25519PublicKey:
        if bound is not None:
            return bound
        # Not the issuer's key (reported above); still say whether the signature holds.
        _, _, fragment = method.partition("#")
        return public_key_from_multibase(fragment)

    result = verify_data_integrity(credential, resolve)
    for error in result.errors:
        check = "terms" if error.startswith("credential cannot be canonicalized") else "proof"
        report.fail(check, error)
    if result.safe_json_ld is None:
        _check_terms({name: value for name, value in credential.items() if name != "proof"}, report)
    else:
        report.passed("terms")
    report.passed("proof")


def _bind_data_integrity_key(
    credential: dict[str, Any],
    keys: PublicKeySet,
    issuer_id: str | None,
    problems: list[str],
) -> Ed25519PublicKey | None:
    proof = credential.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    method = proof.get("verificationMethod") if isinstance(proof, dict) else None
    if not isinstance(method, str):
        problems.append("no verification method names the signing key")
        return None
    if not issuer_id:
        problems.append("the credential has no issuer id")
        return None
    try:
        return keys.ed25519_for(method, issuer_id)
    except ValueError as error:
        problems.append(str(error))
        return None


def _check_jwt(
    token: str,
    credential: dict[str, Any],
    keys: PublicKeySet,
    issuer_id: str | None,
    report: VerificationReport,
) -> None:
    report.proof_format = "vc-jwt"
    attempted: list[bool] = []
    binding: list[str] = []

    def resolve(decoded: DecodedJwt) -> RSAPublicKey:
        attempted.append(True)
        try:
            if not issuer_id:
                raise ValueError("the credential has no issuer id")
            kid = decoded.header.get("kid")
            if isinstance(kid, str):
                return keys.rsa_for(kid, issuer_id)
            return keys.rsa_matching(decoded.header["jwk"], issuer_id)
        except ValueError as error:
            binding.append(str(error))
            raise

    result = verify_jwt(token, resolve)
    if binding:
        for problem in binding:
            report.fail("issuer", problem)
        report.fail("proof", "the JWT signature was not checked: its key is not the issuer's")
    elif attempted:
        report.passed("issuer")
    else:
        report.fail("issuer", "not checked: the JWT header is unusable")
    for error in result.errors:
        if not (binding and error.startswith("could not resolve the JWT's key")):
            report.fail("proof", error)
    report.passed("proof")
    if "proof" in credential:
        report.warnings.append("the VC-JWT payload also carries an embedded proof (ignored)")
    _check_terms(credential, report)


def _check_terms(document: Mapping[str, Any], report: VerificationReport) -> None:
    try:
        ensure_all_terms_defined(document)
    except DocumentError as error:
        report.fail("terms", str(error))
    else:
        report.passed("terms")


# ---------------------------------------------------------------------------------------------
# validity window


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def _window_errors(document: Mapping[str, Any], now: datetime) -> list[str]:
    try:
        valid_from = _parse_time(document.get("validFrom"))
        raw_until = document.get("validUntil")
        valid_until = None if raw_until is None else _parse_time(raw_until)
    except ValueError:
        return ["validFrom/validUntil missing or not a date-time with a time zone"]
    if now < valid_from:
        return [f"not valid before {document.get('validFrom')}"]
    if valid_until is not None and now >= valid_until:
        return [f"expired at {document.get('validUntil')}"]
    return []


def _check_validity(credential: dict[str, Any], now: datetime, report: VerificationReport) -> None:
    errors = _window_errors(credential, now)
    for error in errors:
        report.fail("validity", error)
    report.passed("validity")


# ---------------------------------------------------------------------------------------------
# revocation and suspension


def _check_status(
    credential: dict[str, Any],
    keys: PublicKeySet,
    resolver: StatusListResolver,
    now: datetime,
    report: VerificationReport,
) -> None:
    entries = credential.get("credentialStatus")
    if entries is None:
        report.passed("status")
        return
    entries = entries if isinstance(entries, list) else [entries]
    lists: dict[str, StatusList | str] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("type") != "BitstringStatusListEntry":
            kind = entry.get("type") if isinstance(entry, dict) else type(entry).__name__
            report.fail("status", f"unsupported credentialStatus entry of type {kind!r}")
            continue
        purpose = entry.get("statusPurpose")
        url = entry.get("statusListCredential")
        raw_index = entry.get("statusListIndex")
        if not isinstance(url, str) or not isinstance(raw_index, str) or not raw_index.isdigit():
            report.fail("status", "credentialStatus entry lacks a list URL or a numeric index")
            continue
        if purpose not in ("revocation", "suspension"):
            report.warnings.append(f"status purpose {purpose!r} is not checked")
            continue
        key = f"{url}\n{purpose}"
        if key not in lists:
            lists[key] = _load_status_list(url, purpose, report.issuer_id, keys, resolver, now)
        status_list = lists[key]
        if isinstance(status_list, str):
            report.fail("status", status_list)
            continue
        index = int(raw_index)
        if index >= status_list.size:
            report.fail("status", f"statusListIndex {index} is outside the list at {url}")
            continue
        flagged = status_list.get(index)
        if purpose == "revocation":
            report.revoked = flagged
            if flagged:
                report.fail("status", "the credential has been revoked by its issuer")
        else:
            report.suspended = flagged
            if flagged:
                report.fail("status", "the credential is suspended by its issuer")
    report.passed("status")


def _load_status_list(
    url: str,
    purpose: str,
    issuer_id: str | None,
    keys: PublicKeySet,
    resolver: StatusListResolver,
    now: datetime,
) -> StatusList | str:
    """The verified status list at url, or an error message."""
    try:
        fetched = resolver(url)
    except Exception as error:
        return f"could not get the status list {url}: {error}"
    nested = _verified_status_list(fetched, keys, issuer_id, now)
    if isinstance(nested, str):
        return f"status list {url}: {nested}"
    document = nested
    if document.get("id") != url:
        return f"status list {url}: its id is {document.get('id')!r}"
    subject = document.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("statusPurpose") != purpose:
        return f"status list {url} is not a {purpose} list"
    try:
        return StatusList.decode(subject.get("encodedList", ""))
    except ValueError as error:
        return f"status list {url}: {error}"


def _verified_status_list(
    fetched: Mapping[str, Any] | str | bytes,
    keys: PublicKeySet,
    issuer_id: str | None,
    now: datetime,
) -> dict[str, Any] | str:
    """A fetched BitstringStatusListCredential after checking its issuer, proof and expiry (with
    the same keys as the credential's), or an error message."""
    token: str | None = None
    if isinstance(fetched, bytes):
        fetched = fetched.decode("utf-8", errors="replace")
    if isinstance(fetched, str):
        text = fetched.strip()
        try:
            if is_compact_jwt(text):
                token = text
                document: Any = _decoded_payload(text)
            else:
                document = json.loads(text)
        except ValueError as error:
            return f"unreadable: {error}"
    else:
        document = dict(fetched)
    if not isinstance(document, dict):
        return "not a JSON object"
    try:
        model = BitstringStatusListCredential.model_validate(document, context=LENIENT)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"not a BitstringStatusListCredential ({where}: {first['msg']})"
    list_issuer = model.issuer if isinstance(model.issuer, str) else model.issuer.id
    if issuer_id is None or list_issuer != issuer_id:
        return f"issued by {list_issuer!r}, not by the credential's issuer {issuer_id!r}"
    inner = VerificationReport(issuer_id=list_issuer)
    if token is not None:
        _check_jwt(token, document, keys, list_issuer, inner)
    else:
        _check_data_integrity(document, keys, list_issuer, inner)
    if inner.errors:
        return "; ".join(inner.errors)
    # Only expiry counts: a list whose validFrom is later than `now` is simply newer news (the
    # issuer re-signs its list whenever it changes; a verifier may ask about an earlier time).
    if model.valid_until is not None and now >= model.valid_until:
        return f"expired at {document.get('validUntil')}; the issuer must publish a fresh list"
    return document


# ---------------------------------------------------------------------------------------------
# recipient


def _check_recipient(credential: dict[str, Any], email: str, report: VerificationReport) -> None:
    subject = credential.get("credentialSubject")
    identifiers = subject.get("identifier") if isinstance(subject, dict) else None
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    candidates = {email.strip(), email.strip().lower()}
    matched = False
    considered = False
    for identity in identifiers if isinstance(identifiers, list) else []:
        if not isinstance(identity, dict) or identity.get("identityType") != "emailAddress":
            continue
        considered = True
        expected = identity.get("identityHash")
        if not isinstance(expected, str):
            continue
        if identity.get("hashed") is True:
            algorithm, _, digest = expected.partition("$")
            salt = identity.get("salt") or ""
            for candidate in candidates:
                if algorithm.lower() == "sha256":
                    actual = hashlib.sha256((candidate + salt).encode("utf-8")).hexdigest()
                elif algorithm.lower() == "md5":
                    actual = hashlib.md5((candidate + salt).encode("utf-8")).hexdigest()  # noqa: S324
                else:
                    continue
                matched = matched or hmac.compare_digest(actual, digest.lower())
        else:
            matched = matched or expected.strip().lower() == email.strip().lower()
    report.recipient_matches = matched
    if not considered:
        report.fail("recipient", "the credential identifies no recipient by e-mail address")
    elif not matched:
        report.fail("recipient", "the e-mail address is not the credential's recipient")
    else:
        report.passed("recipient")
