"""Certification: build the Open Badge, sign it, bake it, store it and e-mail it exactly once."""

from __future__ import annotations

import json
import secrets
from email.message import EmailMessage
from importlib import resources

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import Mailer, PermanentDeliveryError, message_id_for
from badges.bake import bake_png
from badges.credential import build_credential, credential_id_for, issuer_id_for
from badges.jsonld import ensure_all_terms_defined
from badges.keys import SigningKey
from badges.proof import sign
from models.activities import BadgeRequest, IssuedBadge, Notification
from runtime.settings import Settings

log = structlog.get_logger(__name__)


def badge_image(name: str) -> bytes:
    image = resources.files("badges") / "images" / name
    if not image.is_file():
        raise ApplicationError(
            f"badge image {name!r} is not among the shipped images: fix badge.image in the plan",
            type="BadImage",
            non_retryable=True,
        )
    return image.read_bytes()


class BadgeActivities:
    def __init__(
        self, pool: asyncpg.Pool, mailer: Mailer, signing_key: SigningKey, settings: Settings
    ) -> None:
        self._pool = pool
        self._mailer = mailer
        self._key = signing_key
        self._base_url = settings.public_base_url.rstrip("/")

    @activity.defn(name="issue_badge")
    async def issue_badge(self, request: BadgeRequest) -> IssuedBadge:
        """Exactly-once issuance: the credential is stored before it is e-mailed, and a retry
        reuses the stored one (never re-signs a different credential) and skips a sent e-mail.
        The one unavoidable window — a crash after the SMTP server accepted the message and before
        `emailed_at` is written — resends once, with the same Message-ID."""
        plan = request.plan
        credential_id = credential_id_for(plan.internship_id)
        message_id = message_id_for(f"{request.workflow_id}/badge")
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT credential, emailed_at FROM credentials WHERE credential_id = $1",
                credential_id,
            )
            if row is None:
                signed = self._sign(request)
                await conn.execute(
                    """
                    INSERT INTO credentials (credential_id, internship_id, format, credential,
                                             issued_at, message_id)
                    VALUES ($1, $2, 'ob3+eddsa-rdfc-2022', $3, $4, $5)
                    ON CONFLICT (credential_id) DO NOTHING
                    """,
                    credential_id,
                    plan.internship_id,
                    json.dumps(signed),
                    request.issued_at,
                    message_id,
                )
                row = await conn.fetchrow(
                    "SELECT credential, emailed_at FROM credentials WHERE credential_id = $1",
                    credential_id,
                )
            if row["emailed_at"] is not None:
                return IssuedBadge(credential_id=credential_id, emailed=False)
            credential_json: str = row["credential"]
            try:
                await self._mailer.send(self._badge_message(request, credential_json, message_id))
            except PermanentDeliveryError as refused:
                raise ApplicationError(
                    str(refused), type="PermanentDeliveryError", non_retryable=True
                ) from None
            await conn.execute(
                "UPDATE credentials SET emailed_at = now() WHERE credential_id = $1",
                credential_id,
            )
        log.info("badge issued", internship_id=plan.internship_id, credential_id=credential_id)
        return IssuedBadge(credential_id=credential_id, emailed=True)

    def _sign(self, request: BadgeRequest) -> dict[str, object]:
        plan = request.plan
        issuer_id = issuer_id_for(self._base_url, plan.institution.id)
        credential = build_credential(
            plan,
            request.achieved_levels,
            issuer_id=issuer_id,
            image_url=f"{self._base_url}/images/{plan.badge.image}",
            issued_at=request.issued_at,
            salt=secrets.token_hex(16),
        )
        ensure_all_terms_defined(credential)
        return sign(
            credential,
            self._key,
            verification_method=f"{issuer_id}#{self._key.public_key_multibase}",
            created=request.issued_at,
        )

    def _badge_message(
        self, request: BadgeRequest, credential_json: str, message_id: str
    ) -> EmailMessage:
        plan = request.plan
        credential_uuid = credential_id_for(plan.internship_id).removeprefix("urn:uuid:")
        notification = Notification(
            notification_id=f"{request.workflow_id}/badge",
            internship_id=plan.internship_id,
            kind="badge",
            recipient_role="intern",
            recipient_email=plan.intern.email,
            recipient_name=plan.intern.name,
            language=plan.intern.language,
            planned_at=request.issued_at,
            values={"internship": plan.internship_id},
        )
        message = self._mailer.compose(
            notification,
            message_id,
            extra={
                "badge": plan.badge.name,
                "verify_url": f"{self._base_url}/verify/{credential_uuid}",
            },
        )
        baked = bake_png(badge_image(plan.badge.image), credential_json)
        message.add_attachment(baked, maintype="image", subtype="png", filename="badge.png")
        message.add_attachment(
            credential_json.encode(),
            maintype="application",
            subtype="json",
            filename="credential.json",
        )
        return message
