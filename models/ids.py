"""The ids internflow derives, in one place: each is a pure function of what it names, so a retry
or a replay derives the same id and writes nothing twice."""

from __future__ import annotations

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


def badge_mail_id(workflow_id: str) -> str:
    """The badge e-mail: one per internship, whoever sends it (its Message-ID is stored with the
    credential)."""
    return f"{workflow_id}/badge"


def credential_id_for(internship_id: str) -> str:
    """The internship's credential: derived from the internship, so a retried issuance cannot
    mint a second, different credential."""
    return f"urn:uuid:{uuid.uuid5(_ID_NAMESPACE, 'credential:' + internship_id)}"
