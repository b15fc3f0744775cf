"""Certification: build the Open Badge, sign it, bake it, store it and e-mail it exactly once."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from email.message import EmailMessage
from importlib import resources
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.award import build_credential
from activities.issuers import issuer_id
from activities.liveness import heartbeating
from activities.mail_context import about
from activities.notify import (
    Mailer,
    PermanentDeliveryError,
    TransientDeliveryError,
    deliver,
    is_last_attempt,
    message_id_for,
    set_language,
    verify_url_for,
)
from activities.status_places import assign_status
from activities.templates import TemplateError
from badges.bake import bake_png
from badges.credential import credential_id_for
from badges.jsonld import ensure_all_terms_defined
from badges.keyring import KeyRing
from badges.keys import SigningKey
from badges.proof import sign
from badges.vcjwt import sign_jwt
from models.activities import BadgeRequest, IssuedBadge, Notification
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: How long the badge e-mail is retried through transient failures (the workflow's activity
#: options set no give-up time for it; ordinary e-mail gets the same day).
BADGE_MAIL_GIVE_UP_AFTER = timedelta(days=1)


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
        self._settings = settings
        self._base_url = settings.public_base_url.rstrip("/")

    @activity.defn(name="issue_badge")
    async def issue_badge(self, request: BadgeRequest) -> IssuedBadge:
        """Exactly-once issuance: the credential is stored before it is e-mailed, and a retry
        reuses the stored one (never re-signs a different credential) and skips a sent e-mail.
        The one unavoidable window — a crash after the SMTP server accepted the message and before
        `emailed_at` is written — resends once, with the same Message-ID.

        A badge e-mail the server refuses for good (or that still fails when the give-up time has
        passed) is not retried: the reason is kept in `credentials.email_error`, the operator is
        told, and the internship completes with its credential stored. `emailed` is True only
        when this call handed the e-mail to the SMTP server."""
        plan = request.plan
        credential_id = credential_id_for(plan.internship_id)
        message_id = message_id_for(f"{request.workflow_id}/badge")
        async with heartbeating(), self._pool.acquire() as conn:
            row = await self._stored(conn, credential_id)
            if row is None:
                # A place on the issuer's revocation list, so that anyone can check later
                # whether the badge still stands (suspension is kept by the issuer: README).
                places = await assign_status(conn, self._settings, plan.institution.id)
                signed = self._sign(request, places.credential_status())
                await conn.execute(
                    """
                    INSERT INTO credentials (credential_id, internship_id, format, credential,
                                             issued_at, message_id,
                                             revocation_list_id, revocation_index,
                                             suspension_list_id, suspension_index)
                    VALUES ($1, $2, $10, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (credential_id) DO NOTHING
                    """,
                    credential_id,
                    plan.internship_id,
                    json.dumps(signed),
                    request.issued_at,
                    message_id,
                    *places.revocation,
                    *(places.suspension or (None, None)),
                    "ob3+vc-jwt" if isinstance(signed, str) else "ob3+eddsa-rdfc-2022",
                )
                row = await self._stored(conn, credential_id)
                assert row is not None
            if row["emailed_at"] is not None:
                return IssuedBadge(credential_id=credential_id, emailed=False)
            if row["email_error"] is not None:
                # Given up in an earlier attempt that then failed: make sure the operator knows.
                await self._tell_operator(conn, request, row["email_error"])
                return IssuedBadge(credential_id=credential_id, emailed=False)
            credential_json: str = row["credential"]
            try:
                message = self._badge_message(request, credential_json, message_id)
            except TemplateError as broken:
                await self._give_up(conn, request, f"the badge template failed: {broken}")
                return IssuedBadge(credential_id=credential_id, emailed=False)
            except Exception as broken:  # composing does no I/O: retrying cannot mend it
                reason = f"the badge e-mail could not be composed ({type(broken).__name__})"
                await self._give_up(conn, request, reason)
                return IssuedBadge(credential_id=credential_id, emailed=False)
            try:
                await self._mailer.send(message)
            except PermanentDeliveryError as refused:
                await self._give_up(conn, request, str(refused))
                return IssuedBadge(credential_id=credential_id, emailed=False)
            except TransientDeliveryError as failure:
                if not is_last_attempt(activity.info(), BADGE_MAIL_GIVE_UP_AFTER):
                    log.info(
                        "badge e-mail deferred",
                        internship_id=plan.internship_id,
                        error=str(failure),
                    )
                    raise
                await self._give_up(conn, request, f"gave up: {failure}")
                return IssuedBadge(credential_id=credential_id, emailed=False)
            await conn.execute(
                "UPDATE credentials SET emailed_at = now() WHERE credential_id = $1",
                credential_id,
            )
        log.info("badge issued", internship_id=plan.internship_id, credential_id=credential_id)
        return IssuedBadge(credential_id=credential_id, emailed=True)

    @staticmethod
    async def _stored(conn: asyncpg.Connection, credential_id: str) -> asyncpg.Record | None:
        return await conn.fetchrow(
            "SELECT credential, emailed_at, email_error FROM credentials WHERE credential_id = $1",
            credential_id,
        )

    async def _give_up(self, conn: asyncpg.Connection, request: BadgeRequest, reason: str) -> None:
        """Stop trying to e-mail the badge: keep the reason and tell the operator."""
        plan = request.plan
        await conn.execute(
            "UPDATE credentials SET email_error = $2 "
            "WHERE credential_id = $1 AND emailed_at IS NULL",
            credential_id_for(plan.internship_id),
            reason,
        )
        log.warning("badge e-mail not delivered", internship_id=plan.internship_id, error=reason)
        await self._tell_operator(conn, request, reason)

    async def _tell_operator(
        self, conn: asyncpg.Connection, request: BadgeRequest, reason: str
    ) -> None:
        """One `delivery_failed` e-mail to the institution (once, like every notification); if
        that fails too, the failure stays recorded in `notifications` and the badge goes on."""
        plan = request.plan
        notice = Notification(
            notification_id=f"{request.workflow_id}/delivery_failed/badge/operator",
            internship_id=plan.internship_id,
            kind="delivery_failed",
            recipient_role="operator",
            recipient_email=plan.institution.email,
            recipient_name=plan.institution.name,
            language=plan.tutor.language,
            planned_at=request.issued_at,
            values={
                "internship": plan.internship_id,
                "failed_kind": "badge",
                "failed_role": "intern",
                "error": reason,
            },
        )
        try:
            await deliver(conn, self._mailer, notice, last_attempt=True)
        except ApplicationError as failed:
            log.warning(
                "operator not told of the badge e-mail",
                internship_id=plan.internship_id,
                error=failed.message,
            )

    def _sign(
        self, request: BadgeRequest, credential_status: dict[str, Any]
    ) -> dict[str, object] | str:
        """The signed credential: a document with its Data Integrity proof, or a compact VC-JWT
        when the badge template asks for one. The proof names the key by the URL (or DID URL)
        where the issuer publishes it (KeyRing.verification_method / kid)."""
        plan = request.plan
        issuer = issuer_id(self._settings, plan.institution.id)
        credential = build_credential(
            plan,
            request.achieved_levels,
            issuer_id=issuer,
            image_url=f"{self._base_url}/images/{plan.badge.image}",
            issued_at=request.issued_at,
            salt=secrets.token_hex(16),
            credential_status=credential_status,
            evidence=request.evidence,
        )
        ensure_all_terms_defined(credential)
        if plan.badge.proof_format == "vc-jwt":
            ring = KeyRing.load_or_create(self._settings.keys_path)
            return sign_jwt(credential, ring.rsa_key, KeyRing.kid(issuer, ring.rsa_key))
        return sign(
            credential,
            self._key,
            verification_method=KeyRing.verification_method(issuer, self._key),
            created=request.issued_at,
        )

    def _badge_message(
        self, request: BadgeRequest, credential_json: str, message_id: str
    ) -> EmailMessage:
        plan = request.plan
        verify_url = verify_url_for(self._base_url, plan.internship_id)
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
                **about(plan, notification),
                "badge": plan.badge.name,
                "verify_url": verify_url,
                "link": verify_url,
            },
        )
        stored = json.loads(credential_json)
        if isinstance(stored, str):  # a VC-JWT: the image and the file carry the compact JWT
            baked = bake_png(badge_image(plan.badge.image), stored)
            attachment, subtype, filename = stored.encode(), "jwt", "credential.jwt"
        else:
            baked = bake_png(badge_image(plan.badge.image), credential_json)
            attachment, subtype, filename = credential_json.encode(), "json", "credential.json"
        message.add_attachment(baked, maintype="image", subtype="png", filename="badge.png")
        message.add_attachment(
            attachment, maintype="application", subtype=subtype, filename=filename
        )
        set_language(message, plan.intern.language)
        return message
