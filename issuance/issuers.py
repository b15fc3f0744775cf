"""Who issues a deployment's badges: each institution's issuer id (its HTTPS profile URL, or the
deployment's did:web DID), where its status lists live, and which issuer signs a list."""

from __future__ import annotations

from typing import Final
from urllib.parse import quote, urlsplit

from badges.credential import issuer_id_for
from badges.status import StatusPurpose
from runtime.settings import Settings

__all__ = [
    "DID_DOCUMENT_PATH",
    "did_web_id",
    "issuer_id",
    "issuer_of_status_list",
    "status_list_url",
    "uses_did_web",
]

DID_DOCUMENT_PATH: Final = "/.well-known/did.json"


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


def uses_did_web(settings: Settings, institution_id: str) -> bool:
    """Whether the institution's new badges name the did:web DID as their issuer."""
    listed = {item.strip() for item in (settings.did_web_institutions or "").split(",")}
    return "*" in listed or institution_id in listed


def issuer_id(settings: Settings, institution_id: str) -> str:
    """The issuer id new badges of the institution carry: the deployment's did:web DID if the
    institution is configured for it, else the URL of its profile (`<base>/issuers/<id>`)."""
    if uses_did_web(settings, institution_id):
        return did_web_id(settings.public_base_url)
    return issuer_id_for(settings.public_base_url, institution_id)


def status_list_url(settings: Settings, institution_id: str, purpose: StatusPurpose) -> str:
    """Where the status list of one purpose for the institution's new badges is published. A list
    is signed by its credentials' issuer (verifiers check that they match): under the HTTPS
    profile for a profile issuer (`<issuer id>/status/<purpose>`); for the did:web issuer, which
    every did:web institution of the deployment shares, one list at `<base>/status/<purpose>`."""
    if uses_did_web(settings, institution_id):
        return f"{settings.public_base_url.rstrip('/')}/status/{purpose}"
    return f"{issuer_id_for(settings.public_base_url, institution_id)}/status/{purpose}"


def issuer_of_status_list(settings: Settings, list_id: str) -> str:
    """The issuer that signs the status list published at list_id (see status_list_url())."""
    base = settings.public_base_url.rstrip("/")
    prefix, found, _ = list_id.rpartition("/status/")
    if not found:
        raise ValueError(f"{list_id!r} is not a status list URL of this deployment")
    if prefix == base:
        return did_web_id(settings.public_base_url)
    if not prefix.startswith(f"{base}/issuers/"):
        raise ValueError(f"{list_id!r} is not a status list URL of this deployment")
    return prefix
