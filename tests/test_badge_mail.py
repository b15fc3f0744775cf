"""The badge e-mail as the intern gets it, composed as a delivery composes it (the badge's provider,
the mailer, the MIME writer) and read back with the standard library's parser: in the HTML part a
button with words for every thing to do (the page, the download, LinkedIn, the shares, the wallet)
and the wallet offer's QR code, never an address as visible text; in the text part every address
on a line of its own under its label, and no other line too long for a phone."""

from __future__ import annotations

import email
import email.policy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import pytest

from badges.oid4vci import offer_qr_png
from i18n import gettext
from mail.providers import BADGE, StoredBadgeMail
from mail.sending import Mailer
from mail.wallet_offer import make_offer
from models.activities import Notification
from models.ids import credential_uuid_for, message_id_for
from runtime.settings import Settings
from runtime.wallet_codes import EMAIL_OFFER_VALIDITY
from tests.conftest import make_settings
from tests.helpers import sample_plan

pytestmark = pytest.mark.pure

LANGUAGES = ("en", "it", "de", "fr", "es")
#: An address as a reader would see it written out.
ADDRESS = re.compile(r"(?:https?://|mailto:|openid-credential-offer:|www\.)", re.IGNORECASE)
CREDENTIAL = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "id": "urn:uuid:7df75bb7-7d94-5f3c-a315-8ff118ac372a",
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "validFrom": "2027-06-30T10:00:00Z",
    "issuer": {"id": "https://school.example/issuers/1", "name": "Istituto Professionale Bassano"},
    "credentialSubject": {
        "achievement": {"name": "Work-based learning: web development"},
    },
}
#: The buttons and links of the HTML part, by the value that holds their address, and their words.
LABELS: dict[str, str] = {
    "link": "See and share your badge",
    "badge_image_url": "Download the badge image (PNG)",
    "share_linkedin_add": "Add to LinkedIn profile",
    "share_linkedin": "Share on LinkedIn",
    "share_x": "Share on X",
    "share_facebook": "Share on Facebook",
    "share_email": "Share by e-mail",
    "wallet_offer_url": "Open in a wallet app",
    "choices_url": "Your choices about your badge page",
    "verify_url": "Verification page",
}
#: What the intern reads on them in Italian and German (the other languages: their catalogues).
WORDS: dict[str, dict[str, str]] = {
    "it": {
        "link": "Veda e condivida il suo badge",
        "badge_image_url": "Scarica l'immagine del badge (PNG)",
        "share_linkedin_add": "Aggiungi al profilo LinkedIn",
        "share_linkedin": "Condividi su LinkedIn",
        "share_x": "Condividi su X",
        "share_facebook": "Condividi su Facebook",
        "share_email": "Condividi via e-mail",
        "wallet_offer_url": "Apri in un'app wallet",
        "choices_url": "Le sue scelte sulla pagina del badge",
        "verify_url": "Pagina di verifica",
    },
    "de": {
        "link": "Ihr Badge ansehen und teilen",
        "badge_image_url": "Badge-Bild herunterladen (PNG)",
        "share_linkedin_add": "Zum LinkedIn-Profil hinzufügen",
        "share_linkedin": "Auf LinkedIn teilen",
        "share_x": "Auf X teilen",
        "share_facebook": "Auf Facebook teilen",
        "share_email": "Per E-Mail teilen",
        "wallet_offer_url": "In einer Wallet-App öffnen",
        "choices_url": "Ihre Einstellungen zur Badge-Seite",
        "verify_url": "Prüfseite",
    },
}
#: Filled buttons (a table cell of colour around the link), the others outlined links.
FILLED = {"link", "share_linkedin_add", "wallet_offer_url"}


@dataclass
class Anchor:
    href: str
    text: str = ""
    in_cell: bool = False


class HtmlPart(HTMLParser):
    """What a reader sees of an HTML part (its text, an image's alternative text) and where its
    links and images lead."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.anchors: list[Anchor] = []
        self.images: list[dict[str, str]] = []
        self.visible: list[str] = []
        self.elements: set[str] = set()
        self.attributes: list[tuple[str, str]] = []
        self._anchor: Anchor | None = None
        self._cells = 0
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        self.elements.add(tag)
        self.attributes += list(values.items())
        if tag in ("head", "title", "style", "script"):
            self._hidden += 1
        elif tag == "td":
            self._cells += 1
        elif tag == "a":
            self._anchor = Anchor(values.get("href", ""), in_cell=self._cells > 0)
            self.anchors.append(self._anchor)
        elif tag == "img":
            self.images.append(values)
            self.visible.append(values.get("alt", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("head", "title", "style", "script"):
            self._hidden -= 1
        elif tag == "td":
            self._cells -= 1
        elif tag == "a":
            self._anchor = None

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        self.visible.append(data)
        if self._anchor is not None:
            self._anchor.text += data


@pytest.fixture(scope="module")
def mail_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_settings(tmp_path_factory.mktemp("badge-mail"))


def badge_notification(language: str) -> Notification:
    return Notification.model_validate(
        {
            "notification_id": "internship-t-1/badge/final/intern",
            "internship_id": "t-1",
            "kind": "badge",
            "recipient_role": "intern",
            "recipient_email": "giulia.esposito@students.example.org",
            "recipient_name": "Giulia Esposito",
            "language": language,
            "planned_at": datetime(2027, 6, 30, 10, tzinfo=UTC),
            "values": {
                "internship": "t-1",
                "badge": "Work-based learning: web development",
            },
        }
    )


def compose_badge_mail(settings: Settings, language: str) -> tuple[EmailMessage, dict[str, Any]]:
    """The badge e-mail as a delivery writes it (the records' context aside), parsed; and the
    values it was rendered with."""
    notification = badge_notification(language)
    plan = sample_plan(datetime(2027, 2, 15, 18, tzinfo=UTC))
    # The offer by reference, as the provider stores it (not stored here: nothing fetches it).
    offer = make_offer(settings, credential_uuid_for("t-1"), EMAIL_OFFER_VALIDITY, language)
    carried = StoredBadgeMail(plan, json.dumps(CREDENTIAL), wallet_offer_url=offer.uri_url)
    parts = BADGE.parts(settings, notification, carried)
    mailer = Mailer(settings)
    context = {"intern": plan.intern.name, "company": plan.company.name, **parts.values}
    rendered = mailer.render(notification, context)
    written = mailer.assemble(
        notification,
        message_id_for(notification.notification_id),
        rendered,
        related=parts.related,
        attachments=parts.attachments,
    )
    message = email.message_from_bytes(written.data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    values = {
        **parts.values,
        "link": mailer.default_link(notification),
        **BADGE.fixed_values(settings, notification),
    }
    return message, values


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def text_of(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_address_is_a_button_or_a_link_with_words_never_text(
    mail_settings: Settings, language: str
) -> None:
    message, values = compose_badge_mail(mail_settings, language)
    html = HtmlPart()
    html.feed(html_of(message))
    html.close()

    # Not one address a reader sees: neither in the text nor in an image's alternative text.
    seen = " ".join(html.visible)
    assert not ADDRESS.search(seen), ADDRESS.findall(seen)
    # An address is only ever where a link or an image points.
    for name, value in html.attributes:
        if name not in ("href", "src"):
            assert not ADDRESS.search(value), (name, value)
    # Nothing a mail reader strips or runs.
    assert not html.elements & {"script", "style", "link", "iframe", "form", "svg"}
    assert not [name for name, _ in html.attributes if name.startswith("on") or name == "class"]

    # One link for each thing to do, worded in the reader's language, none without words.
    by_href = {anchor.href: anchor for anchor in html.anchors}
    assert len(html.anchors) == len(by_href) == len(LABELS)
    for key, english in LABELS.items():
        anchor = by_href[values[key]]
        words = " ".join(anchor.text.split())
        assert words == gettext(language, english), (key, words)
        if language in WORDS:
            assert words == WORDS[language][key]
        assert (key in FILLED) == anchor.in_cell, key
    assert values["share_email"].startswith("mailto:")
    # The offer by reference: a short URL, whose offer the wallet fetches.
    assert values["wallet_offer_url"].startswith(
        "openid-credential-offer://?credential_offer_uri="
        + quote(mail_settings.public_base_url, safe="")
        + "%2Foid4vci%2Foffers%2F"
    )
    assert len(values["wallet_offer_url"]) < 160
    assert values["badge_image_url"] == f"{values['link']}/badge.png"

    # The offer's QR code: the inline image of the HTML part, of that very offer.
    [image] = html.images
    [qr] = [part for part in message.walk() if part.get_filename() == "wallet-offer.png"]
    assert image["src"] == f"cid:{str(qr['Content-ID']).strip('<>')}"
    assert qr.get_content() == offer_qr_png(values["wallet_offer_url"])
    assert image["alt"] == gettext(language, "QR code: your badge, offered to a wallet app")
    # The transaction code is in the HTML part's text, as in the text part's.
    assert values["wallet_tx_code"] in seen


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_text_part_gives_every_address_under_its_label(
    mail_settings: Settings, language: str
) -> None:
    message, values = compose_badge_mail(mail_settings, language)
    lines = text_of(message).splitlines()
    colon = "\u00a0:" if language == "fr" else ":"
    for key, english in LABELS.items():
        address = values[key]
        assert lines.count(address) == 1, key
        label = lines[lines.index(address) - 1]
        assert label == gettext(language, english) + colon, (key, label)
    # Every address alone on its line; no other line longer than a phone's mail reader shows.
    for line in lines:
        if ADDRESS.search(line):
            assert line in {str(values[key]) for key in LABELS}, line
        else:
            assert len(line) <= 76, line
    assert values["wallet_tx_code"] in " ".join(lines)
