"""Certification: build the Open Badge, sign it and store it once (`store_badge`); its e-mail is
an ordinary notification that attaches the stored credential, baked into the badge image
(activities/notify.py)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.liveness import heartbeating
from activities.notify import deliver
from badges.jsonld import ensure_all_terms_defined
from badges.keyring import KeyRing
from badges.proof import sign
from badges.vcjwt import sign_jwt
from issuance.award import build_credential
from issuance.issuers import institution_of_did, institution_ring, issuer_id
from issuance.status_places import assign_status
from mail.badge import drawn_image_name, published_image
from mail.sending import Mailer
from models.activities import BadgeRequest, IssuedBadge, Notification, StoredBadge
from models.ids import badge_mail_id, credential_id_for, message_id_for
from runtime.settings import Settings

log = structlog.get_logger(__name__)

#: Runs recorded before the badge was issued in two steps still call `issue_badge`, which signs,
#: stores and e-mails in one activity with no give-up time of the workflow's: it stops retrying
#: the e-mail this long after it was first scheduled.
LEGACY_MAIL_GIVE_UP_AFTER = timedelta(days=1)


def badge_notification(request: BadgeRequest) -> Notification:
    """The badge e-mail to the intern, as the workflow asks for it."""
    plan = request.plan
    return Notification(
        notification_id=badge_mail_id(request.workflow_id),
        internship_id=plan.internship_id,
        kind="badge",
        recipient_role="intern",
        recipient_email=plan.intern.email,
        recipient_name=plan.intern.name,
        language=plan.intern.language,
        planned_at=request.issued_at,
        values={"internship": plan.internship_id, "badge": plan.badge.name},
    )


class BadgeActivities:
    """`ring`: the deployment's keys, loaded once when the worker starts (a key added to the ring
    on disk signs after the worker's next start; badges signed before keep verifying). An
    institution on did:web signs with its own keys instead, read from its key directory at each
    badge (created on first use), so a key it rotates in signs its next badge."""

    def __init__(
        self, pool: asyncpg.Pool, mailer: Mailer, ring: KeyRing, settings: Settings
    ) -> None:
        self._pool = pool
        self._mailer = mailer
        self._ring = ring
        self._settings = settings
        self._base_url = settings.public_base_url.rstrip("/")

    @activity.defn(name="store_badge")
    async def store_badge(self, request: BadgeRequest) -> StoredBadge:
        """Build, sign and store the credential, once: a retry finds it stored and returns it
        (never re-signs a different credential)."""
        plan = request.plan
        credential_id = credential_id_for(plan.internship_id)
        async with self._pool.acquire() as conn, conn.transaction():
            stored = await conn.fetchval(
                "SELECT true FROM credentials WHERE credential_id = $1", credential_id
            )
            if stored is None:
                # A place on the issuer's revocation list, so that anyone can check later
                # whether the badge still stands (suspension is kept by the issuer: README).
                places = await assign_status(conn, self._settings, plan.institution.id)
                image = await published_image(conn, plan)
                signed = self._sign(request, places.credential_status(), image)
                await conn.execute(
                    """
                    INSERT INTO credentials (credential_id, internship_id, format, credential,
                                             issued_at, message_id,
                                             revocation_list_id, revocation_index,
                                             suspension_list_id, suspension_index)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                    ON CONFLICT (credential_id) DO NOTHING
                    """,
                    credential_id,
                    plan.internship_id,
                    "ob3+vc-jwt" if isinstance(signed, str) else "ob3+eddsa-rdfc-2022",
                    json.dumps(signed),
                    request.issued_at,
                    message_id_for(badge_mail_id(request.workflow_id)),
                    *places.revocation,
                    *(places.suspension or (None, None)),
                )
                log.info("badge stored", internship_id=plan.internship_id)
        return StoredBadge(credential_id=credential_id)

    @activity.defn(name="issue_badge")
    async def issue_badge(self, request: BadgeRequest) -> IssuedBadge:
        """For runs recorded before the two steps: store the badge, then send its e-mail as the
        notification does. A refused e-mail is recorded (`notifications`, the credential's
        `email_error`) and the internship completes; a transient failure is retried until
        LEGACY_MAIL_GIVE_UP_AFTER after the first attempt."""
        stored = await self.store_badge(request)
        info = activity.info()
        give_up_at = info.scheduled_time + LEGACY_MAIL_GIVE_UP_AFTER
        last = info.current_attempt_scheduled_time >= give_up_at
        async with heartbeating(), self._pool.acquire() as conn:
            try:
                emailed = await deliver(
                    conn, self._mailer, badge_notification(request), last_attempt=last
                )
            except ApplicationError:
                emailed = False  # refused for good, or given up: deliver recorded why
        return IssuedBadge(credential_id=stored.credential_id, emailed=emailed)

    def _sign(
        self, request: BadgeRequest, credential_status: dict[str, Any], image: str | None = None
    ) -> dict[str, object] | str:
        """The signed credential: a document with its Data Integrity proof, or a compact VC-JWT
        when the badge template asks for one. The proof names the key by the URL (or DID URL)
        where the issuer publishes it (KeyRing.verification_method / kid)."""
        plan = request.plan
        image = image or plan.badge.image or drawn_image_name(plan)
        issuer = issuer_id(self._settings, plan.institution.id)
        credential = build_credential(
            plan,
            request.achieved_levels,
            issuer_id=issuer,
            image_url=f"{self._base_url}/images/{image}",
            issued_at=request.issued_at,
            salt=secrets.token_hex(16),
            credential_status=credential_status,
            evidence=request.evidence,
            self_assessed_levels=request.self_assessed_levels,
        )
        ensure_all_terms_defined(credential)
        jwt = plan.badge.proof_format == "vc-jwt"
        ring = self._ring
        institution = institution_of_did(self._settings, issuer)
        if institution is not None:
            ring = institution_ring(self._settings, institution, rsa=jwt)
        if jwt:
            rsa = ring.rsa_key
            return sign_jwt(credential, rsa, KeyRing.kid(issuer, rsa))
        key = ring.signing_key
        return sign(
            credential,
            key,
            verification_method=KeyRing.verification_method(issuer, key),
            created=request.issued_at,
        )
