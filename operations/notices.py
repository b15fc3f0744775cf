"""The intern's notice of a change to their badge's status, as a workflow of its own
(workflows/notice.py): started once the change is committed, idempotent by the change."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from models.activities import StatusNotice
from models.ids import status_notice_id
from workflows.notice import StatusNoticeWorkflow


async def start_status_notice(client: Client, task_queue: str, notice: StatusNotice) -> None:
    """Start the notice's workflow unless it was started before. Its id is the change's
    (`notice-<credential uuid>-<n>`), so starting it again for the same change (the request
    retried, the worker's sweep of pending notices) starts nothing new: while it runs, the
    running one is kept (`USE_EXISTING`); once it has closed, the id is refused
    (`REJECT_DUPLICATE`), which means it was told already (or given up and the operator told)."""
    try:
        await client.start_workflow(
            StatusNoticeWorkflow.run,
            notice,
            id=status_notice_id(notice.credential_id, notice.change),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
    except WorkflowAlreadyStartedError:
        return
