"""OpenID for Verifiable Credential Issuance 1.0 for Open Badges: the credential issuer's
metadata (one `ldp_vc` configuration, the OpenBadgeCredential with an eddsa-rdfc-2022 proof),
the authorization server's metadata (the pre-authorized code grant, anonymous), the credential
offer and its `openid-credential-offer://` URL, by value or by reference (section 4.1.3: the
wallet fetches the offer from `credential_offer_uri`), and its QR code."""

from __future__ import annotations

import io
import json
from typing import Any, Final
from urllib.parse import quote

import segno

from badges.credential import OB_CONTEXT, OB_EXTENSIONS_CONTEXT, VC_CONTEXT
from badges.holder_proof import PROOF_ALGORITHMS

__all__ = [
    "CONFIGURATION_ID",
    "PRE_AUTHORIZED_GRANT",
    "authorization_server_metadata",
    "credential_offer",
    "issuer_metadata",
    "offer_qr_png",
    "offer_qr_svg",
    "offer_reference_uri",
    "offer_uri_url",
    "offer_url",
]

CONFIGURATION_ID: Final = "OpenBadgeCredential_ldp_vc"
PRE_AUTHORIZED_GRANT: Final = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_SCHEME: Final = "openid-credential-offer://"
TOKEN_PATH: Final = "/oid4vci/token"  # noqa: S105 (a path, not a secret)
NONCE_PATH: Final = "/oid4vci/nonce"
CREDENTIAL_PATH: Final = "/oid4vci/credential"
#: Where a wallet fetches an offer by reference: OFFERS_PATH + "/" + the offer's reference.
OFFERS_PATH: Final = "/oid4vci/offers"


def issuer_metadata(base_url: str, display_name: str = "internflow") -> dict[str, Any]:
    """`/.well-known/openid-credential-issuer`: the issuer is the public base URL; it is its own
    authorization server (no `authorization_servers`)."""
    base = base_url.rstrip("/")
    return {
        "credential_issuer": base,
        "credential_endpoint": base + CREDENTIAL_PATH,
        "nonce_endpoint": base + NONCE_PATH,
        "display": [{"name": display_name, "locale": "en"}],
        "credential_configurations_supported": {
            CONFIGURATION_ID: {
                "format": "ldp_vc",
                "scope": "OpenBadgeCredential",
                "cryptographic_binding_methods_supported": ["did:key", "did:jwk"],
                "credential_signing_alg_values_supported": ["eddsa-rdfc-2022"],
                "proof_types_supported": {
                    "jwt": {"proof_signing_alg_values_supported": list(PROOF_ALGORITHMS)}
                },
                "credential_definition": {
                    "@context": [VC_CONTEXT, OB_CONTEXT, OB_EXTENSIONS_CONTEXT],
                    "type": ["VerifiableCredential", "OpenBadgeCredential"],
                },
                "credential_metadata": {
                    "display": [
                        {
                            "name": "Open Badge",
                            "locale": "en",
                            "description": "An Open Badges 3.0 credential (AchievementCredential)",
                        }
                    ]
                },
            }
        },
    }


def authorization_server_metadata(base_url: str) -> dict[str, Any]:
    """`/.well-known/oauth-authorization-server` (RFC 8414): a token endpoint for the
    pre-authorized code grant only, which needs no client authentication."""
    base = base_url.rstrip("/")
    return {
        "issuer": base,
        "token_endpoint": base + TOKEN_PATH,
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


def credential_offer(
    base_url: str, pre_authorized_code: str, tx_code_length: int | None, tx_code_description: str
) -> dict[str, Any]:
    """The offer of one badge; with `tx_code_length`, redeeming it asks for a numeric
    transaction code of that length, which the wallet shows `tx_code_description` for."""
    grant: dict[str, Any] = {"pre-authorized_code": pre_authorized_code}
    if tx_code_length is not None:
        grant["tx_code"] = {
            "input_mode": "numeric",
            "length": tx_code_length,
            "description": tx_code_description[:300],
        }
    return {
        "credential_issuer": base_url.rstrip("/"),
        "credential_configuration_ids": [CONFIGURATION_ID],
        "grants": {PRE_AUTHORIZED_GRANT: grant},
    }


def offer_url(offer: dict[str, Any]) -> str:
    """The offer by value: `openid-credential-offer://?credential_offer=<JSON, URL-encoded>`."""
    text = json.dumps(offer, separators=(",", ":"), ensure_ascii=False)
    return f"{OFFER_SCHEME}?credential_offer={quote(text, safe='')}"


def offer_reference_uri(base_url: str, reference: str) -> str:
    """The address a wallet fetches an offer by reference from (`credential_offer_uri`)."""
    return f"{base_url.rstrip('/')}{OFFERS_PATH}/{reference}"


def offer_uri_url(uri: str) -> str:
    """The offer by reference: `openid-credential-offer://?credential_offer_uri=<URL-encoded
    https URL>`; the wallet GETs that URL for the offer (a short URL: a small QR code)."""
    return f"{OFFER_SCHEME}?credential_offer_uri={quote(uri, safe='')}"


def offer_qr_png(url: str, scale: int = 4) -> bytes:
    """The offer URL as a QR code, a PNG (error correction M, quiet zone of 4 modules)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def offer_qr_svg(url: str, scale: int = 4) -> str:
    """The offer URL as a QR code, an inline SVG element (no XML declaration)."""
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(
        out, kind="svg", scale=scale, border=4, xmldecl=False, svgns=True, nl=False
    )
    return out.getvalue().decode()
