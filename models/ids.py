"""The ids internflow derives, in one place: each is a pure function of what it names, so a retry
or a replay derives the same id and writes nothing twice."""

from __future__ import annotations

import hashlib
import uuid
from typing import Final

#: The namespace of the UUIDs derived here (and of badges' achievement ids: the same value).
_ID_NAMESPACE: Final = uuid.UUID("5b0f6c56-7a53-4cf0-9d4e-2f1d3f1c8a10")


def workflow_id_for(internship_id: str) -> str:
    """One workflow per internship; continued-as-new runs share it."""
    return f"internship-{internship_id}"


def audit_event_id(workflow_id: str, kind: str, key: str) -> str:
    """`<workflow id>/<kind>/<key>`: the key is the phase, the submission id, the milestone id..."""
    return f"{workflow_id}/{kind}/{key}"


RECEIVER_UPDATE_PREFIX = "receiver-writes/"


def receiver_update_id(submission_id: str) -> str:
    """The id of an update whose sender writes the submission's audit row itself (the API):
    the workflow then answers with the row (see InternshipWorkflow._accept). Temporal also
    answers a repeated update id with the first outcome, as the workflow does a submission id."""
    return f"{RECEIVER_UPDATE_PREFIX}{submission_id}"


def is_receiver_update_id(update_id: str) -> bool:
    return update_id.startswith(RECEIVER_UPDATE_PREFIX)


def audit_event_key(event_id: str) -> str:
    """The key of an audit event id (for a submission: its id, which never contains a slash)."""
    return event_id.rpartition("/")[2]


def notification_id(workflow_id: str, kind: str, key: str, role: str) -> str:
    """One e-mail to one role: it also fixes the message's Message-ID."""
    return f"{workflow_id}/{kind}/{key}/{role}"


def notification_key(notification_id: str) -> str:
    """The key of a notification id (a milestone id, a submission id, `final`, `v<N>`, a count);
    empty for the badge e-mail's id, which has none."""
    parts = notification_id.split("/")
    return parts[-2] if len(parts) >= 3 else ""


def message_id_for(notification_id: str) -> str:
    """The e-mail's Message-ID: the same notification always gets the same one, so a resend is
    recognisable (mail clients show it once)."""
    digest = hashlib.sha256(notification_id.encode()).hexdigest()[:40]
    return f"<{digest}@internflow>"


def badge_mail_id(workflow_id: str) -> str:
    """The badge e-mail: one per internship, whoever sends it (its Message-ID is stored with the
    credential)."""
    return f"{workflow_id}/badge"


def status_notice_id(credential_id: str, change: int) -> str:
    """The workflow that tells the intern of their badge's `change`th status change
    (`notice-<credential uuid>-<n>`): one per change, so that starting it again for the same
    change starts nothing new."""
    return f"notice-{credential_uuid_from_id(credential_id)}-{change}"


#: A credential id is its UUID as a URN; pages, links and codes name it by the UUID alone.
_CREDENTIAL_URN: Final = "urn:uuid:"


def credential_id_for(internship_id: str) -> str:
    """The internship's credential: derived from the internship, so a retried issuance cannot
    mint a second, different credential."""
    return credential_id_from_uuid(str(uuid.uuid5(_ID_NAMESPACE, "credential:" + internship_id)))


def credential_uuid_for(internship_id: str) -> str:
    """The internship's credential by its UUID: how its pages (`/verify/<uuid>`,
    `/badges/<uuid>`), the intern's badge link and the wallet's codes name it."""
    return credential_uuid_from_id(credential_id_for(internship_id))


def credential_id_from_uuid(credential_uuid: str) -> str:
    """`urn:uuid:<uuid>`: the credential id of a UUID (not checked: see
    operations.credentials.credential_id_of for what a person typed)."""
    return f"{_CREDENTIAL_URN}{credential_uuid}"


def credential_uuid_from_id(credential_id: str) -> str:
    """The UUID of a credential id (`urn:uuid:<uuid>`); a bare UUID is returned as it is."""
    return credential_id.removeprefix(_CREDENTIAL_URN)
