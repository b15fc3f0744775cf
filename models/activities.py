"""Messages between the workflow and its activities: audit events, notifications, badge issuance."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime

from models.base import StrictModel
from models.plan import InternshipPlan, Language
from models.status import InternshipStatus
from models.submissions import Receipt

NotificationKind = Literal[
    "approval_request",
    "agreement_reminder",
    "change_request",
    "milestone_request",
    "reminder",
    "escalation",
    "missed",
    "assessment_request",
    "assessment_reminder",
    "validation_request",
    "outcome",
    "withdrawal",
    "cancellation",
    "badge",
    "revocation",
    "suspension",
    "reinstatement",
    "delivery_failed",
    "final_review",
]
"""What an e-mail is about. `revocation`, `suspension` and `reinstatement` tell the intern of a
change to their badge's status (sent by a workflow of its own per change, `StatusNotice`);
`delivery_failed` tells the operator that an e-mail to someone else was refused for good or given
up."""


class AuditEvent(StrictModel):
    """One step in an internship's life. `event_id` is derived from the workflow, so an activity
    retry records it once."""

    event_id: str
    internship_id: str
    workflow_id: str
    run_id: str
    plan_version: int
    actor: str
    kind: str
    phase: str
    occurred_at: AwareDatetime
    detail: dict[str, Any] = {}
    seq: int = 0
    """The record's position in the internship's timeline: orders records made at one time."""
    status: InternshipStatus | None = None
    """The internship's status as the workflow sees it right after this event: the read model
    people read (status, dashboard) instead of asking the workflow."""


class Notification(StrictModel):
    """One e-mail to one person. `notification_id` is derived from the workflow and gives the
    message its deterministic Message-ID."""

    notification_id: str
    internship_id: str
    kind: NotificationKind
    recipient_role: str
    recipient_email: str
    recipient_name: str
    language: Language
    planned_at: AwareDatetime
    """The workflow's time when it decided to send: the plan time the e-mail belongs to."""
    values: dict[str, str] = {}


class StatusNotice(StrictModel):
    """A change of an issued badge's status told to its intern by a workflow of its own
    (workflows/notice.py): the e-mail, and what its records and the operator's notice need if it
    is given up. Built from the records once the change is committed (operations/notices.py)."""

    credential_id: str
    change: int
    """Which of the credential's status changes (1, 2, ...), counted as its audit event ids count
    them: with the credential, it names the notice's workflow (`status_notice_id`)."""
    notification: Notification
    internship_workflow_id: str
    """The internship's workflow id: a failure is recorded in its audit trail."""
    plan_version: int
    phase: str
    """The internship's plan version and phase when the change was made (its audit event's)."""
    operator_name: str
    operator_email: str
    operator_language: Language
    """Who is told when the e-mail is given up: the institution, in its tutor's language."""


class BadgeRequest(StrictModel):
    plan: InternshipPlan
    achieved_levels: dict[str, str]
    issued_at: AwareDatetime
    workflow_id: str
    evidence: tuple[tuple[str, str], ...] = ()
    """(name, narrative) per milestone report the intern agreed to share."""
    self_assessed_levels: dict[str, str] = {}
    """Learning outcome id -> level of the intern's final self-assessment, when they agreed to
    show it in the badge (beside the assessed level, labelled as theirs)."""


class IssuedBadge(StrictModel):
    """What the one-step `issue_badge` of runs recorded before the badge was issued in two steps
    returned (see workflows/effects.py)."""

    credential_id: str
    emailed: bool


class StoredBadge(StrictModel):
    """The credential built, signed and stored (`store_badge`): its e-mail is a notification."""

    credential_id: str


class Accepted(Receipt):
    """The answer to a submission whose receiver writes its audit row: the receipt and the row
    (None for a duplicate: the first one's row is written already, or confirmed by the
    workflow). The receiver passes on only the receipt."""

    record: AuditEvent | None = None

    def receipt(self) -> Receipt:
        return Receipt.model_validate(self.model_dump(exclude={"record"}))
