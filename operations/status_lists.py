"""The status lists as published: each list signed by its issuer's key, once per change of the
list, and the key that signs for the deployment's issuers. (A new credential's place on a list
is drawn by the badge activity: issuance/status_places.py.)"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any, Final

import asyncpg

from badges.keyring import KeyRing
from badges.keys import SigningKey, load_or_create_signing_key
from badges.proof import sign
from badges.status import StatusList, build_status_list_credential
from issuance.issuers import institution_of_did, institution_ring, issuer_of_status_list
from operations.key_ring import current_ring
from runtime.settings import Settings


def signing_key(settings: Settings, issuer_id: str | None = None) -> SigningKey:
    """The key that signs for an issuer of the deployment: the active Ed25519 key of the
    institution's own ring for its DID, else of the deployment's key ring."""
    institution = institution_of_did(settings, issuer_id) if issuer_id else None
    if institution is not None:
        return institution_ring(settings, institution).signing_key
    ring = current_ring(settings.keys_path)
    if not ring.ed25519_keys:
        return load_or_create_signing_key(settings.keys_path)
    return ring.signing_key


#: How long a verifier may keep a status list before fetching it again: the lists' `ttl`, and
#: the `max-age` they are served with (decision 0038). A revocation reaches every verifier within
#: this time.
STATUS_LIST_TTL: Final = timedelta(minutes=5)

#: How many signed lists the process keeps. A deployment has one revocation list per issuer (and
#: the suspension lists of older badges), so this holds every list of an ordinary deployment.
SIGNED_LISTS_KEPT: Final = 64

# The signed lists, least recently used first: list id -> (the list's updated_at, the signed
# credential). One entry per list, replaced when the list changes (its updated_at moves on), so
# old versions never pile up; past SIGNED_LISTS_KEPT lists the least recently served is dropped
# and signed again when next asked for, so memory stays bounded however many issuers there are.
_signed_lists: OrderedDict[str, tuple[datetime, dict[str, Any]]] = OrderedDict()


async def signed_status_list(
    conn: asyncpg.Connection | asyncpg.Pool, settings: Settings, list_id: str
) -> dict[str, Any] | None:
    """The BitstringStatusListCredential published at `list_id`, signed by the issuer's key
    (validFrom: when the list last changed; ttl: STATUS_LIST_TTL), or None if there is no such
    list. Signed once per change of the list."""
    row = await conn.fetchrow(
        "SELECT purpose, bits, updated_at FROM status_lists WHERE list_id = $1", list_id
    )
    if row is None:
        return None
    cached = _signed_lists.get(list_id)
    if cached is not None and cached[0] == row["updated_at"]:
        _signed_lists.move_to_end(list_id)
        return cached[1]
    issuer_id = issuer_of_status_list(settings, list_id)
    key = signing_key(settings, issuer_id)
    unsigned = build_status_list_credential(
        list_id,
        issuer_id,
        row["purpose"],
        StatusList.from_bytes(row["bits"]),
        valid_from=row["updated_at"],
        ttl=STATUS_LIST_TTL,
    )
    signed = await asyncio.to_thread(
        sign,
        unsigned,
        key,
        KeyRing.verification_method(issuer_id, key),
        row["updated_at"],
    )
    _signed_lists[list_id] = (row["updated_at"], signed)
    _signed_lists.move_to_end(list_id)
    while len(_signed_lists) > SIGNED_LISTS_KEPT:
        _signed_lists.popitem(last=False)
    return signed
