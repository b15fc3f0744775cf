"""Issued badges after issuance: status lists, revocation, suspension and reinstatement (each
told to the intern by a notice of its own: operations/notices.py), lookup."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import asyncpg
import structlog

from badges.status import (
    StatusList,
    StatusPurpose,
)
from badges.vcjwt import decode_jwt
from badges.verify import VerificationReport, verify_badge
from issuance.issuers import public_keys
from models.activities import AuditEvent, NotificationKind
from models.ids import (
    audit_event_id,
    credential_id_from_uuid,
    credential_uuid_from_id,
    workflow_id_for,
)
from operations.notices import ConnectTemporal, record_status_notice, start_recorded_notice
from operations.status_lists import signed_status_list
from records.write import append_audit_event
from runtime.settings import Settings

log = structlog.get_logger(__name__)

StatusAction = Literal["revoke", "suspend", "reinstate"]
STATUS_ACTIONS: Final[tuple[StatusAction, ...]] = ("revoke", "suspend", "reinstate")
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


class CredentialNotFound(Exception):
    """No credential with that id was issued here."""

    @classmethod
    def of(cls, credential_id: str) -> CredentialNotFound:
        """The refusal for `credential_id` as the caller gave it: the same words whether no such
        credential was issued or (`badge_pages.public_credential`) its earner took it down."""
        return cls(f"no credential {credential_id!r} was issued here")


class CredentialConflict(Exception):
    """The change does not fit the credential's status (e.g. reinstating a revoked badge)."""


def credential_id_of(value: str) -> str:
    """`urn:uuid:<uuid>` from either that or the bare uuid; CredentialNotFound if neither."""
    bare = credential_uuid_from_id(value.strip().lower())
    if not _UUID.match(bare):
        raise CredentialNotFound(f"{value!r} is not a credential id (urn:uuid:… or a UUID)")
    return credential_id_from_uuid(bare)


# ---- credentials ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CredentialRecord:
    """An issued credential as stored, with its status."""

    credential_id: str
    internship_id: str
    credential: dict[str, Any] | str
    """As stored: the signed document, or a compact VC-JWT."""
    issued_at: datetime
    revoked_at: datetime | None
    suspended_at: datetime | None
    reason: str | None
    status_entries: dict[str, tuple[str, int]] = field(default_factory=dict)

    @property
    def document(self) -> dict[str, Any]:
        """The credential's claims: the stored document, or a VC-JWT's payload (not verified
        here; verify_issued does that)."""
        if isinstance(self.credential, str):
            return decode_jwt(self.credential).payload
        return self.credential

    @property
    def credential_uuid(self) -> str:
        """The credential id without `urn:uuid:`, as its pages name it."""
        return credential_uuid_from_id(self.credential_id)

    @property
    def status(self) -> Literal["active", "suspended", "revoked"]:
        if self.revoked_at is not None:
            return "revoked"
        return "suspended" if self.suspended_at is not None else "active"

    def as_dict(self) -> dict[str, Any]:
        return {
            "credential_id": self.credential_id,
            "internship_id": self.internship_id,
            "issued_at": self.issued_at.isoformat(),
            "status": self.status,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "suspended_at": self.suspended_at.isoformat() if self.suspended_at else None,
            "reason": self.reason,
            "on_status_lists": bool(self.status_entries),
        }


_COLUMNS: Final = """credential_id, internship_id, credential, issued_at, revoked_at, suspended_at,
    reason, revocation_list_id, revocation_index, suspension_list_id, suspension_index"""
_SELECT_CREDENTIAL: Final = f"SELECT {_COLUMNS} FROM credentials WHERE credential_id = $1"  # noqa: S608


def _record(row: asyncpg.Record) -> CredentialRecord:
    entries: dict[str, tuple[str, int]] = {}
    for purpose in ("revocation", "suspension"):
        if row[f"{purpose}_list_id"] is not None:
            entries[purpose] = (row[f"{purpose}_list_id"], row[f"{purpose}_index"])
    document = row["credential"]
    return CredentialRecord(
        credential_id=row["credential_id"],
        internship_id=row["internship_id"],
        credential=json.loads(document) if isinstance(document, str) else dict(document),
        issued_at=row["issued_at"],
        revoked_at=row["revoked_at"],
        suspended_at=row["suspended_at"],
        reason=row["reason"],
        status_entries=entries,
    )


async def get_credential(
    conn: asyncpg.Connection | asyncpg.Pool, credential_id: str
) -> CredentialRecord:
    row = await conn.fetchrow(_SELECT_CREDENTIAL, credential_id_of(credential_id))
    if row is None:
        raise CredentialNotFound.of(credential_id)
    return _record(row)


async def credential_for_internship(
    conn: asyncpg.Connection | asyncpg.Pool, internship_id: str
) -> CredentialRecord | None:
    credential_id = await conn.fetchval(
        "SELECT credential_id FROM credentials WHERE internship_id = $1", internship_id
    )
    return await get_credential(conn, credential_id) if credential_id is not None else None


_PAST: Final[dict[StatusAction, str]] = {
    "revoke": "revoked",
    "suspend": "suspended",
    "reinstate": "reinstated",
}


_NOTICE: Final[dict[StatusAction, NotificationKind]] = {
    "revoke": "revocation",
    "suspend": "suspension",
    "reinstate": "reinstatement",
}
"""The e-mail that tells the intern of each change."""

NoticeState = Literal["started", "pending", "none"]
"""The intern's notice of a status change: its workflow `started` (the e-mail is sent, retried
and given up like every e-mail); `pending` (Temporal could not be reached: a worker starts it
once it answers); `none` (no plan recorded, so nobody to tell)."""


@dataclass(frozen=True)
class StatusChanged:
    """A committed status change and what became of the intern's notice of it."""

    record: CredentialRecord
    notice: NoticeState


async def change_status(
    pool: asyncpg.Pool,
    settings: Settings,
    credential_id: str,
    action: StatusAction,
    reason: str,
    actor: str,
    temporal: ConnectTemporal,
) -> StatusChanged:
    """Revoke (for good), suspend, or reinstate (lift a suspension) a credential, in one
    transaction: its bit on the issuer's status list (revocation; and suspension for badges
    issued before a credential carried one status entry: a newer badge's suspension is the
    issuer's own state, shown on its verification page and by the API), its row (time and
    reason), an append-only audit event (`<workflow id>/credential_<action>/<n>`, n counting
    this credential's status changes) and the intern's notice to send (`status_notices`).
    CredentialConflict when the change does not fit.

    Once committed, the notice's workflow is started (`temporal` gives the client): the e-mail
    follows, retried and given up like every e-mail, and this returns without waiting for it.
    With Temporal unreachable the change stands and the notice waits, recorded, for a worker
    to start it (operations/notices.py)."""
    reason = reason.strip()
    if not reason or len(reason) > 2000:
        raise ValueError("give a reason (1-2000 characters): it is kept in the audit trail")
    wanted = credential_id_of(credential_id)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(_SELECT_CREDENTIAL + " FOR UPDATE", wanted)
        if row is None:
            raise CredentialNotFound.of(credential_id)
        current = _record(row)
        purpose: StatusPurpose = "revocation" if action == "revoke" else "suspension"
        if current.revoked_at is not None:
            raise CredentialConflict("this credential is revoked; revocation cannot be undone")
        if action == "suspend" and current.suspended_at is not None:
            raise CredentialConflict("this credential is already suspended")
        if action == "reinstate" and current.suspended_at is None:
            raise CredentialConflict("this credential is not suspended: nothing to reinstate")
        entry = current.status_entries.get(purpose)
        if entry is not None:
            list_id, index = entry
            bits = await conn.fetchval(
                "SELECT bits FROM status_lists WHERE list_id = $1 FOR UPDATE", list_id
            )
            status_list = StatusList.from_bytes(bits)
            status_list.set(index, action != "reinstate")
            await conn.execute(
                "UPDATE status_lists SET bits = $2, updated_at = now() WHERE list_id = $1",
                list_id,
                status_list.to_bytes(),
            )
        elif purpose == "revocation":
            log.warning(
                "credential.status_not_published",
                credential_id=wanted,
                action=action,
                why="the credential carries no status list entry",
            )
        updated = await conn.fetchrow(
            f"""
            UPDATE credentials SET
                revoked_at = CASE WHEN $2 = 'revoke' THEN now() ELSE revoked_at END,
                suspended_at = CASE $2 WHEN 'suspend' THEN now()
                                       WHEN 'reinstate' THEN NULL ELSE suspended_at END,
                reason = $3
            WHERE credential_id = $1
            RETURNING {_COLUMNS}
            """,  # noqa: S608
            wanted,
            action,
            reason,
        )
        internship = await conn.fetchrow(
            "SELECT workflow_id, phase, plan_version FROM internships WHERE internship_id = $1",
            current.internship_id,
        )
        workflow_id = (
            internship["workflow_id"] if internship else workflow_id_for(current.internship_id)
        )
        count = await conn.fetchval(
            """
            SELECT count(*) FROM audit_events
            WHERE internship_id = $1 AND kind LIKE 'credential\\_%'
              AND detail->>'credential_id' = $2
            """,
            current.internship_id,
            wanted,
        )
        kind = f"credential_{_PAST[action]}"
        event_id = audit_event_id(workflow_id, kind, str(count + 1))
        await append_audit_event(
            conn,
            AuditEvent(
                event_id=event_id,
                internship_id=current.internship_id,
                workflow_id=workflow_id,
                run_id="",
                plan_version=internship["plan_version"] if internship else 1,
                actor=actor,
                kind=kind,
                phase=internship["phase"] if internship else "completed",
                occurred_at=datetime.now(UTC),
                detail={
                    "credential_id": wanted,
                    "reason": reason,
                    "status_list": entry[0] if entry else None,
                    "published": entry is not None,
                },
            ),
        )
        notice_id = await record_status_notice(
            conn,
            event_id=event_id,
            internship_id=current.internship_id,
            credential_id=wanted,
            change=count + 1,
            kind=_NOTICE[action],
        )
    log.info(
        "credential.status_changed",
        credential_id=wanted,
        internship_id=current.internship_id,
        action=action,
    )
    notice: NoticeState = "none"
    if notice_id is not None:
        try:
            started = await start_recorded_notice(pool, settings, notice_id, temporal)
        except Exception as failed:  # the change is committed: it stands, the notice waits
            log.error("status notice not started", notice_id=notice_id, error=type(failed).__name__)
            started = False
        notice = "started" if started else "pending"
        if not started:
            log.warning("status notice waits for a worker to start it", notice_id=notice_id)
    return StatusChanged(_record(updated), notice)


async def verify_issued(
    conn: asyncpg.Connection | asyncpg.Pool, settings: Settings, record: CredentialRecord
) -> VerificationReport:
    """Verify a stored credential as a relying party would: contexts, proof by the issuer's key,
    validity window, and its status on the (signed) status lists it points at."""
    lists: dict[str, dict[str, Any]] = {}
    entries = record.document.get("credentialStatus") or []
    for entry in entries if isinstance(entries, list) else [entries]:
        url = entry.get("statusListCredential") if isinstance(entry, dict) else None
        if isinstance(url, str) and url not in lists:
            document = await signed_status_list(conn, settings, url)
            if document is not None:
                lists[url] = document

    def resolve(url: str) -> dict[str, Any]:
        if url not in lists:
            raise LookupError("this deployment publishes no such status list")
        return lists[url]

    keys = public_keys(settings)
    return await asyncio.to_thread(
        verify_badge,
        record.credential,
        issuer_keys=keys,
        status_lists=resolve,
        now=datetime.now(UTC),
    )
