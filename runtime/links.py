"""Party links: signed, expiring tokens that let one party do one thing on one internship."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, cast

from models.activities import Notification
from models.ids import notification_key
from models.kinds import PURPOSES, Purpose, who_may
from models.plan import SIGNATORIES, Signatory
from runtime.sealed import seal, unseal
from runtime.secret import load_or_create_secret
from runtime.settings import Settings

WHO_MAY: Final[dict[Purpose, frozenset[Signatory]]] = {
    purpose: cast(frozenset[Signatory], who_may(purpose)) for purpose in PURPOSES
}
"""Who may hold a link of each purpose: whoever sends a kind of submission through it (the
registry, models/kinds.py)."""
DEFAULT_VALIDITY: Final = timedelta(days=30)
_DOMAIN: Final = b"internflow/party-link/v1\x00"


class LinkRefused(Exception):
    """A party token that cannot be used; `status` is the HTTP status that says why."""

    status = 401


class LinkInvalid(LinkRefused):
    """Malformed or tampered with: not a token this deployment signed."""


class LinkExpired(LinkRefused):
    """A genuine token whose time is up."""


class LinkMismatch(LinkRefused):
    """A genuine token used for another internship, party or purpose."""

    status = 403


@dataclass(frozen=True)
class PartyGrant:
    """What a valid token allows: one party, one purpose, one internship (and milestone)."""

    internship_id: str
    party: Signatory
    purpose: Purpose
    milestone_id: str | None
    expires_at: datetime

    def require(
        self,
        internship_id: str,
        purpose: Purpose | tuple[Purpose, ...],
        party: str | None = None,
        milestone_id: str | None = None,
    ) -> None:
        """Raise LinkMismatch unless this grant covers the request."""
        purposes = (purpose,) if isinstance(purpose, str) else purpose
        if internship_id != self.internship_id:
            raise LinkMismatch("this link belongs to another internship")
        if self.purpose not in purposes:
            raise LinkMismatch(f"this link is for {self.purpose}, not for {' or '.join(purposes)}")
        if party is not None and party != self.party:
            raise LinkMismatch(f"this link is the {self.party}'s, not the {party}'s")
        if self.milestone_id is not None and milestone_id != self.milestone_id:
            raise LinkMismatch(f"this link is for milestone {self.milestone_id!r}")


def make_token(
    secret: bytes,
    internship_id: str,
    party: Signatory,
    purpose: Purpose,
    milestone_id: str | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
) -> str:
    """`<payload>.<HMAC-SHA256>`, both base64url: the payload names internship, party, purpose,
    milestone and expiry (Unix seconds). Refuses a party the purpose does not ask anything of."""
    if purpose not in WHO_MAY:
        raise ValueError(f"unknown purpose {purpose!r}; use one of {', '.join(PURPOSES)}")
    if party not in WHO_MAY[purpose]:
        raise ValueError(f"the {party} has no {purpose} to do")
    if purpose == "report" and milestone_id is None:
        raise ValueError("a report link names its milestone")
    expires = (now or datetime.now(UTC)) + valid_for
    payload = {
        "i": internship_id,
        "p": party,
        "u": purpose,
        "m": milestone_id,
        "e": int(expires.timestamp()),
    }
    return seal(secret, _DOMAIN, payload)


def read_token(secret: bytes, token: str, now: datetime | None = None) -> PartyGrant:
    """The grant a token carries; LinkInvalid if it was not signed with `secret` (or is
    malformed), LinkExpired once its time is up."""
    payload = unseal(secret, _DOMAIN, token, max_length=2048)
    if payload is None:
        raise LinkInvalid("this link is not valid: open the latest link from your e-mail")
    try:
        grant = PartyGrant(
            internship_id=str(payload["i"]),
            party=payload["p"],
            purpose=payload["u"],
            milestone_id=payload["m"],
            expires_at=datetime.fromtimestamp(int(payload["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError):
        raise LinkInvalid("this link is not valid: open the latest link from your e-mail") from None
    if grant.purpose not in WHO_MAY or grant.party not in WHO_MAY[grant.purpose]:
        raise LinkInvalid("this link is not valid: open the latest link from your e-mail")
    if (now or datetime.now(UTC)) >= grant.expires_at:
        raise LinkExpired(
            "this link has expired: ask the institution for a new one, or use the link in a "
            "more recent e-mail"
        )
    return grant


def party_link(
    settings: Settings,
    internship_id: str,
    party: Signatory,
    purpose: Purpose,
    milestone_id: str | None = None,
    valid_for: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
) -> str:
    """The URL of the page where `party` does `purpose` on the internship (`/p/<token>` under
    the public base URL), valid for `valid_for`."""
    token = make_token(
        load_or_create_secret(settings),
        internship_id,
        party,
        purpose,
        milestone_id=milestone_id,
        valid_for=valid_for,
        now=now,
    )
    return f"{settings.public_base_url.rstrip('/')}/p/{token}"


_LINKED_KINDS: Final[dict[str, Purpose]] = {
    "approval_request": "approve",
    "agreement_reminder": "approve",
    "milestone_request": "report",
    "reminder": "report",
    "assessment_request": "assess",
    "assessment_reminder": "assess",
    "validation_request": "validate",
    "final_review": "self_assess",
}


def notification_link(
    settings: Settings,
    notification: Notification,
    valid_for: timedelta = DEFAULT_VALIDITY,
    now: datetime | None = None,
) -> str | None:
    """The party link an e-mail should carry, or None for e-mails that ask nothing of their
    recipient. A milestone's request and reminder link the intern to the report form and the
    mentor to the company feedback form; the milestone is the notification's key
    (`<workflow id>/<kind>/<key>/<role>`)."""
    purpose = _LINKED_KINDS.get(notification.kind)
    role = notification.recipient_role
    if purpose is None or role not in SIGNATORIES:
        return None
    party: Signatory = role
    milestone_id = None
    if purpose == "report":
        milestone_id = notification_key(notification.notification_id)
        if party == "mentor":
            purpose = "feedback"
    if party not in WHO_MAY[purpose]:
        return None
    return party_link(
        settings,
        notification.internship_id,
        party,
        purpose,
        milestone_id=milestone_id,
        valid_for=valid_for,
        now=now,
    )


def intern_links(
    settings: Settings, notification: Notification, now: datetime | None = None
) -> dict[str, str]:
    """The intern's further links an e-mail carries besides its button: the self-assessment a
    milestone asks for (in its request and reminder), and the evaluation of the placement (in
    the end's `final_review`, whose button is the final self-assessment)."""
    if notification.recipient_role != "intern":
        return {}
    links: dict[str, str] = {}
    if notification.kind in ("milestone_request", "reminder") and (
        notification.values.get("self_assessment") == "yes"
    ):
        links["self_assessment_url"] = party_link(
            settings,
            notification.internship_id,
            "intern",
            "self_assess",
            milestone_id=notification_key(notification.notification_id),
            now=now,
        )
    if notification.kind == "final_review":
        links["placement_url"] = party_link(
            settings, notification.internship_id, "intern", "evaluate_placement", now=now
        )
    return links
