"""A change of an issued badge's status told to its intern: one short workflow per change
(`notice-<credential uuid>-<n>`, models/ids.py), started once the change is committed
(operations/notices.py), so that the admin's request does not wait for a mail server.

Its e-mail goes the way every e-mail of the internship workflow goes: the `send_notification`
activity with the same retry policy and give-up time (`effects.send`: deferred, retried up to
five minutes apart for a day; refused for good, not retried). Given up, the e-mail is recorded
(`notification_failed`, in the internship's audit trail, which marks its `notifications` row
failed) and the operator is told with a `delivery_failed` e-mail; that one, given up in turn, is
recorded and told to nobody. The records are appended to the audit trail only: the read model is
the internship workflow's. Workflow code (deterministic).
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.activities import AuditEvent, Notification, StatusNotice
    from models.ids import audit_event_id, notification_id, notification_key
    from workflows import effects


# Not sandboxed, like the internship workflow (workflows/internship.py says why): it imports only
# deterministic code, and the replay tests replay its recorded histories.
@workflow.defn(sandboxed=False)
class StatusNoticeWorkflow:
    @workflow.run
    async def run(self, notice: StatusNotice) -> bool:
        """True once the intern's e-mail is sent (or was before); False when it was given up
        (recorded, and the operator told)."""
        mail = notice.notification
        error = await self._send(notice, mail)
        if error is None:
            return True
        key = f"{mail.kind}-{notification_key(mail.notification_id)}-{mail.recipient_role}"
        await self._send(
            notice,
            Notification(
                notification_id=notification_id(
                    notice.internship_workflow_id, "delivery_failed", key, "operator"
                ),
                internship_id=mail.internship_id,
                kind="delivery_failed",
                recipient_role="operator",
                recipient_email=notice.operator_email,
                recipient_name=notice.operator_name,
                language=notice.operator_language,
                planned_at=workflow.now(),
                values={
                    "internship": mail.internship_id,
                    "failed_kind": mail.kind,
                    "failed_role": mail.recipient_role,
                    "error": error,
                },
            ),
        )
        return False

    async def _send(self, notice: StatusNotice, mail: Notification) -> str | None:
        """Send one e-mail; None once sent, else why it was given up (after it is recorded)."""
        try:
            await effects.send(mail)
        except ActivityError as failure:
            error = str(failure.cause)
            await self._record_failure(notice, mail, error)
            return error
        return None

    async def _record_failure(self, notice: StatusNotice, mail: Notification, error: str) -> None:
        kind = "notification_failed"
        event = AuditEvent(
            event_id=audit_event_id(notice.internship_workflow_id, kind, mail.notification_id),
            internship_id=mail.internship_id,
            workflow_id=notice.internship_workflow_id,
            run_id=workflow.info().run_id,
            plan_version=notice.plan_version,
            actor="system",
            kind=kind,
            phase=notice.phase,
            occurred_at=workflow.now(),
            detail={"error": error},
        )
        try:
            await effects.append(event)
        except ActivityError as refused:
            # Only a write PostgreSQL refused for its data ends here (outages are retried).
            workflow.logger.error("record %s refused: %s", kind, refused.cause)
