"""What Temporal knows about an internship's workflow: its description, and its
raw event history page by page (kept only for the namespace's retention period)."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from google.protobuf.json_format import MessageToDict
from pydantic import BaseModel
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models.ids import workflow_id_for
from operations.internships import InternshipNotFound, handle_for
from runtime.availability import TemporalUnreachable, unreachable


class WorkflowDescription(BaseModel):
    workflow_id: str
    run_id: str | None
    first_run_id: str | None
    status: str
    start_time: datetime | None
    close_time: datetime | None
    history_length: int
    task_queue: str
    search_attributes: dict[str, Any]
    pending_activities: int
    temporal_ui_url: str


class EventPage(BaseModel):
    """One page of the raw history; pass `next_page_token` back for the next (None: the end)."""

    workflow_id: str
    events: list[dict[str, Any]]
    next_page_token: str | None


def temporal_ui_link(ui_url: str, namespace: str, internship_id: str) -> str:
    return f"{ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{workflow_id_for(internship_id)}"


async def describe(client: Client, internship_id: str, ui_url: str) -> WorkflowDescription:
    try:
        described = await handle_for(client, internship_id).describe()
    except RPCError as error:
        if unreachable(error):
            raise TemporalUnreachable() from None
        if error.status == RPCStatusCode.NOT_FOUND:
            raise InternshipNotFound(f"no internship {internship_id!r}: check the id") from None
        raise
    info = described.raw_description.workflow_execution_info
    attributes = {
        key.name: value
        for key, value in ((item.key, item.value) for item in described.typed_search_attributes)
    }
    return WorkflowDescription(
        workflow_id=described.id,
        run_id=described.run_id,
        first_run_id=info.first_run_id or None,
        status=described.status.name if described.status else "UNKNOWN",
        start_time=described.start_time,
        close_time=described.close_time,
        history_length=described.history_length,
        task_queue=described.task_queue,
        search_attributes={
            k: v.isoformat() if isinstance(v, datetime) else v for k, v in attributes.items()
        },
        pending_activities=len(described.raw_description.pending_activities),
        temporal_ui_url=temporal_ui_link(ui_url, client.namespace, internship_id),
    )


async def event_page(
    client: Client, internship_id: str, page_size: int = 100, page_token: str | None = None
) -> EventPage:
    """A page of the latest run's raw events, as Temporal's JSON (proto3 JSON mapping)."""
    workflow_id = workflow_id_for(internship_id)
    try:
        token = base64.b64decode(page_token, altchars=b"-_", validate=True) if page_token else b""
    except ValueError:
        raise ValueError("next_page_token is not one this API gave out") from None
    try:
        response = await client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=client.namespace,
                execution=WorkflowExecution(workflow_id=workflow_id),
                maximum_page_size=page_size,
                next_page_token=token,
            )
        )
    except RPCError as error:
        if unreachable(error):
            raise TemporalUnreachable() from None
        if error.status == RPCStatusCode.NOT_FOUND:
            raise InternshipNotFound(
                f"no Temporal history for internship {internship_id!r}: unknown id, or past "
                "the namespace's retention (the audit trail still has it)"
            ) from None
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            raise ValueError(f"Temporal refused the request: {error.message}") from None
        raise
    return EventPage(
        workflow_id=workflow_id,
        events=[MessageToDict(event) for event in response.history.events],
        next_page_token=(
            base64.urlsafe_b64encode(response.next_page_token).decode()
            if response.next_page_token
            else None
        ),
    )
