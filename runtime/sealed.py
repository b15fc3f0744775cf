"""Signed tokens, the one shape every link and code of internflow takes: `<payload>.<MAC>`, both
base64url, the payload compact JSON, the MAC an HMAC-SHA256 over a domain tag and the payload.
Each kind of token has its own domain tag, so a token of one kind never passes for another."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, domain: bytes, body: str) -> bytes:
    return hmac.new(secret, domain + body.encode(), hashlib.sha256).digest()


def seal(secret: bytes, domain: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_b64(_mac(secret, domain, body))}"


def unseal(secret: bytes, domain: bytes, token: str, max_length: int) -> dict[str, Any] | None:
    """The payload of a token sealed with `secret` under `domain`; None for anything else (not
    signed so, malformed, longer than `max_length`, or not a JSON object)."""
    body, dot, signature = token.partition(".")
    if not dot or not body or len(token) > max_length:
        return None
    try:
        if not hmac.compare_digest(_unb64(signature), _mac(secret, domain, body)):
            return None
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    return payload if isinstance(payload, dict) else None
