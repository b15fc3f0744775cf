"""The offer of a badge to a wallet (OpenID for Verifiable Credential Issuance 1.0, pre-authorized
code flow): made for the badge e-mail (a link, its QR code as an inline image, and the badge's
transaction code in a paragraph of its own) and for the badge's public page (a fresh offer at
every view, for a short while, without the transaction code).

Both show the offer by reference (section 4.1.3): `openid-credential-offer://?credential_offer_uri=`
and the address of the stored offer, which the wallet fetches once (`store_offer`; served by
operations/wallet_claims.py). The URL stays short, so its QR code is small and quick to draw."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg

from badges.oid4vci import (
    credential_offer,
    offer_qr_png,
    offer_reference_uri,
    offer_uri_url,
    offer_url,
)
from i18n import gettext
from mail.mime import Attachment
from models.ids import credential_uuid_for
from runtime import wallet_codes as codes
from runtime.settings import Settings


def N_(message: str) -> str:
    """Marks a message for the catalogues; it is translated where it is used."""
    return message


#: What a wallet shows when it asks for the transaction code.
TX_CODE_DESCRIPTION: Final = N_("The transaction code in your badge e-mail")


@dataclass(frozen=True)
class Offer:
    """A credential offer of one badge: the offer object and its URL by value (`url`); its
    random `reference`, the address a wallet fetches it from once it is stored (`uri`) and the
    offer by reference (`uri_url`, what the e-mail and the pages show); when its code expires."""

    url: str
    offer: dict[str, Any]
    credential_uuid: str
    reference: str
    uri: str
    uri_url: str
    expires_at: datetime


def make_offer(
    settings: Settings, credential_uuid: str, valid_for: timedelta, language: str = "en"
) -> Offer:
    """A fresh offer of the badge: a new pre-authorized code, valid for `valid_for`, whose
    redemption asks for the badge's transaction code. Nothing is stored: `store_offer` keeps
    it for a wallet to fetch by reference."""
    # The code carries whole seconds; the stored offer expires with it.
    now = datetime.fromtimestamp(int(datetime.now(UTC).timestamp()), UTC)
    code = codes.make_code(codes.claim_secret(settings), credential_uuid, valid_for, now=now)
    offer = credential_offer(
        settings.public_base_url,
        code,
        codes.TX_CODE_LENGTH,
        gettext(language, TX_CODE_DESCRIPTION),
    )
    reference = codes.make_offer_reference()
    uri = offer_reference_uri(settings.public_base_url, reference)
    return Offer(
        url=offer_url(offer),
        offer=offer,
        credential_uuid=credential_uuid,
        reference=reference,
        uri=uri,
        uri_url=offer_uri_url(uri),
        expires_at=now + valid_for,
    )


async def store_offer(conn: asyncpg.Connection | asyncpg.Pool, offer: Offer) -> None:
    """Keep the offer for a wallet to fetch once by its reference, until its code expires
    (`wallet_offers`, migration 0027; under a hash of the reference, never the reference).

    Expired offers are deleted here, opportunistically, before the new one is stored: no job
    sweeps the table, and every new offer (each view of a badge's page, each badge e-mail)
    clears what has expired, the served rows and the never-fetched ones alike."""
    await conn.execute("DELETE FROM wallet_offers WHERE expires_at <= now()")
    await conn.execute(
        "INSERT INTO wallet_offers (offer_id, credential_uuid, offer, expires_at) "
        "VALUES ($1, $2, $3, $4)",
        codes.offer_id_of(offer.reference),
        offer.credential_uuid,
        json.dumps(offer.offer, separators=(",", ":"), ensure_ascii=False),
        offer.expires_at,
    )


async def stored_mail_offer(
    conn: asyncpg.Connection, settings: Settings, internship_id: str, language: str
) -> str:
    """The badge e-mail's offer, made and stored (valid for EMAIL_OFFER_VALIDITY): the offer by
    reference that the e-mail shows. Each attempt at the e-mail stores a new one (a retried
    delivery too); an offer of an attempt that was not sent expires unused."""
    credential_uuid = credential_uuid_for(internship_id)
    offer = make_offer(settings, credential_uuid, codes.EMAIL_OFFER_VALIDITY, language)
    await store_offer(conn, offer)
    return offer.uri_url


def wallet_mail_values(settings: Settings, internship_id: str, offer_link: str) -> dict[str, Any]:
    """The badge e-mail's offer: its link (`offer_link`, the stored offer by reference), the
    badge's transaction code, how long the offer lasts, and the Content-ID its QR code gets
    (wallet_qr_images)."""
    credential_uuid = credential_uuid_for(internship_id)
    return {
        "wallet_offer_url": offer_link,
        "wallet_tx_code": codes.transaction_code(codes.claim_secret(settings), credential_uuid),
        "wallet_offer_days": codes.EMAIL_OFFER_VALIDITY.days,
        "wallet_qr_cid": f"{secrets.token_hex(16)}@internflow.invalid",
    }


def wallet_qr_images(values: dict[str, Any]) -> list[Attachment]:
    """The offer's QR code as an inline image of the HTML part (`cid:` in layout.html.j2);
    none without an offer."""
    url, cid = values.get("wallet_offer_url"), values.get("wallet_qr_cid")
    if not url or not cid:
        return []
    return [Attachment(offer_qr_png(url), "image/png", "wallet-offer.png", True, cid)]
