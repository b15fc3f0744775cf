"""The offer of a badge to a wallet (OpenID for Verifiable Credential Issuance 1.0, pre-authorized
code flow): made for the badge e-mail (a link, its QR code as an inline image, and the badge's
transaction code in a paragraph of its own) and for the badge's public page (a fresh offer at
every view, for a short while, without the transaction code)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from badges.oid4vci import credential_offer, offer_qr_png, offer_url
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
    """A credential offer of one badge: its URL (by value) and the offer object."""

    url: str
    offer: dict[str, Any]


def make_offer(
    settings: Settings, credential_uuid: str, valid_for: timedelta, language: str = "en"
) -> Offer:
    """A fresh offer of the badge: a new pre-authorized code, valid for `valid_for`, whose
    redemption asks for the badge's transaction code."""
    code = codes.make_code(codes.claim_secret(settings), credential_uuid, valid_for)
    offer = credential_offer(
        settings.public_base_url,
        code,
        codes.TX_CODE_LENGTH,
        gettext(language, TX_CODE_DESCRIPTION),
    )
    return Offer(url=offer_url(offer), offer=offer)


def wallet_mail_values(settings: Settings, internship_id: str, language: str) -> dict[str, Any]:
    """The badge e-mail's offer: its link, the badge's transaction code, how long the offer
    lasts, and the Content-ID its QR code gets (attach_wallet_qr)."""
    credential_uuid = credential_uuid_for(internship_id)
    offer = make_offer(settings, credential_uuid, codes.EMAIL_OFFER_VALIDITY, language)
    return {
        "wallet_offer_url": offer.url,
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
