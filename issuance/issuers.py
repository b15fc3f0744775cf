"""Who issues a deployment's badges: each institution's issuer id (its HTTPS profile URL, or its
own did:web DID), the keys that sign for it, where its status lists live, and which issuer signs
a list.

An institution on did:web (INTERNFLOW_DID_WEB_INSTITUTIONS) is `did:web:<host>:issuers:<id>`,
its DID document at `<public base>/issuers/<id>/did.json`, with keys of its own in
`<key dir>/issuers/<id>/` (created on first use); decision 0042. Badges issued before under the
deployment's one DID (`did:web:<host>`, `/.well-known/did.json`, the deployment's keys) keep
verifying: that document and its status list stay served."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlsplit

from badges.credential import issuer_id_for
from badges.keyring import KeyRing, PublicKeySet
from badges.status import StatusPurpose
from runtime.settings import Settings

__all__ = [
    "DID_DOCUMENT_PATH",
    "INSTITUTION_KEYS",
    "did_status_list_url",
    "did_web_id",
    "institution_did",
    "institution_key_dir",
    "institution_of_did",
    "institution_ring",
    "institutions_with_keys",
    "issuer_id",
    "issuer_of_status_list",
    "public_keys",
    "signing_ring",
    "status_list_url",
    "uses_did_web",
]

DID_DOCUMENT_PATH: Final = "/.well-known/did.json"
#: Under the key dir: one directory of keys per institution on did:web.
INSTITUTION_KEYS: Final = "issuers"
#: An institution's did:web status lists: `<base>/issuers/<id>/did/status/<purpose>` (its HTTPS
#: profile's are `<base>/issuers/<id>/status/<purpose>`; a list is signed by its badges' issuer).
_DID_LISTS: Final = "/did"


def did_web_id(public_base_url: str) -> str:
    """The did:web DID that resolves to this deployment: 'did:web:<host>' (its document at
    https://<host>/.well-known/did.json), with the port percent-encoded ('did:web:host%3A8443')
    and a base path as further ':'-separated segments (its document then at <path>/did.json)."""
    parts = urlsplit(public_base_url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"did:web needs an https:// base URL, not {public_base_url!r}")
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    segments = [quote(host, safe="")]
    segments += [quote(part, safe="") for part in parts.path.split("/") if part]
    return "did:web:" + ":".join(segments)


def institution_did(public_base_url: str, institution_id: str) -> str:
    """The institution's own did:web DID, 'did:web:<host>[:<base path>]:issuers:<id>': did:web
    resolves it to <public base>/issuers/<id>/did.json."""
    return f"{did_web_id(public_base_url)}:{INSTITUTION_KEYS}:{quote(institution_id, safe='')}"


def institution_of_did(settings: Settings, did: str) -> str | None:
    """The institution whose own DID `did` is, on this deployment; None for any other DID."""
    try:
        prefix = f"{did_web_id(settings.public_base_url)}:{INSTITUTION_KEYS}:"
    except ValueError:
        return None
    rest = did.removeprefix(prefix)
    if rest == did or not rest or ":" in rest or "%" in rest or "/" in rest:
        return None
    return rest


def uses_did_web(settings: Settings, institution_id: str) -> bool:
    """Whether the institution's new badges name its did:web DID as their issuer."""
    listed = {item.strip() for item in (settings.did_web_institutions or "").split(",")}
    return "*" in listed or institution_id in listed


def institution_key_dir(settings: Settings, institution_id: str) -> Path:
    """Where the institution's own keys are kept: <key dir>/issuers/<institution id>/."""
    if not institution_id or "/" in institution_id or institution_id.startswith("."):
        raise ValueError(f"{institution_id!r} cannot name a key directory")
    return settings.keys_path / INSTITUTION_KEYS / institution_id


def institution_ring(settings: Settings, institution_id: str, *, rsa: bool = False) -> KeyRing:
    """The institution's own key ring, its first Ed25519 key (and, with rsa, its first RSA key)
    created on first use, as the deployment's are (each directory on the way owner-only)."""
    directory = institution_key_dir(settings, institution_id)
    for parent in (settings.keys_path, directory.parent):
        if not parent.is_dir():
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(parent, 0o700)
    return KeyRing.load_or_create(directory, rsa=rsa)


def institutions_with_keys(settings: Settings) -> list[str]:
    """The institutions that have keys of their own (their directories under the key dir)."""
    root = settings.keys_path / INSTITUTION_KEYS
    if not root.is_dir():
        return []
    return sorted(path.name for path in root.iterdir() if path.is_dir() and any(path.glob("*.pem")))


def issuer_id(settings: Settings, institution_id: str) -> str:
    """The issuer id new badges of the institution carry: its own did:web DID if the institution
    is configured for it, else the URL of its profile (`<base>/issuers/<id>`)."""
    if uses_did_web(settings, institution_id):
        return institution_did(settings.public_base_url, institution_id)
    return issuer_id_for(settings.public_base_url, institution_id)


def signing_ring(settings: Settings, issuer: str, *, rsa: bool = False) -> KeyRing:
    """The keys that sign for `issuer`: an institution's own ring for its DID, the
    deployment's ring for everything else (HTTPS profiles, the deployment's DID)."""
    institution = institution_of_did(settings, issuer)
    if institution is not None:
        return institution_ring(settings, institution, rsa=rsa)
    return KeyRing.load_or_create(settings.keys_path, rsa=rsa)


def public_keys(settings: Settings) -> PublicKeySet:
    """Every public key of the deployment, as its own verifier trusts them: the deployment's keys
    for any issuer id it hosts, and each institution's own keys for its DID only."""
    keys = KeyRing.load(settings.keys_path).public_keys()
    try:
        did_web_id(settings.public_base_url)
    except ValueError:
        return keys  # no did:web on a plain-http (loopback) deployment
    for institution in institutions_with_keys(settings):
        did = institution_did(settings.public_base_url, institution)
        ring = KeyRing.load(institution_key_dir(settings, institution))
        keys = keys.with_issuer(did, ring.public_keys(did))
    return keys


def status_list_url(settings: Settings, institution_id: str, purpose: StatusPurpose) -> str:
    """Where the status list of one purpose for the institution's new badges is published. A list
    is signed by its credentials' issuer (verifiers check that they match): under the HTTPS
    profile for a profile issuer (`<issuer id>/status/<purpose>`); for the institution's DID,
    `<base>/issuers/<id>/did/status/<purpose>`."""
    if uses_did_web(settings, institution_id):
        return did_status_list_url(settings.public_base_url, institution_id, purpose)
    return f"{issuer_id_for(settings.public_base_url, institution_id)}/status/{purpose}"


def did_status_list_url(public_base_url: str, institution_id: str, purpose: StatusPurpose) -> str:
    """The status list of one purpose for the badges of the institution's own DID."""
    return f"{issuer_id_for(public_base_url, institution_id)}{_DID_LISTS}/status/{purpose}"


def issuer_of_status_list(settings: Settings, list_id: str) -> str:
    """The issuer that signs the status list published at list_id (see status_list_url(); the
    lists at `<base>/status/<purpose>` are those of the deployment's DID, which institutions on
    did:web shared before each had its own)."""
    base = settings.public_base_url.rstrip("/")
    prefix, found, _ = list_id.rpartition("/status/")
    if not found:
        raise ValueError(f"{list_id!r} is not a status list URL of this deployment")
    if prefix == base:
        return did_web_id(settings.public_base_url)
    if not prefix.startswith(f"{base}/issuers/"):
        raise ValueError(f"{list_id!r} is not a status list URL of this deployment")
    institution = prefix.removeprefix(f"{base}/issuers/")
    if institution.endswith(_DID_LISTS) and "/" not in institution.removesuffix(_DID_LISTS):
        return institution_did(settings.public_base_url, institution.removesuffix(_DID_LISTS))
    if "/" in institution or not institution:
        raise ValueError(f"{list_id!r} is not a status list URL of this deployment")
    return prefix
