"""Start internships and send their submissions to the running workflow as Temporal updates."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.plan import InternshipPlan
from models.state import InternshipInput, InternshipState
from models.status import InternshipStatus, TimelineEntry
from models.submissions import (
    Amendment,
    Approval,
    Assessment,
    ChangeRequest,
    CompanyFeedback,
    Extension,
    MilestoneReport,
    Pause,
    Receipt,
    Resume,
    Validation,
    Withdrawal,
)
from runtime.settings import Settings
from workflows.internship import InternshipWorkflow, workflow_id_for


class OperationRejected(Exception):
    """The internship refused the request; the message says why and what to change."""


class InternshipNotFound(OperationRejected):
    pass


async def start_internship(
    client: Client,
    settings: Settings,
    plan: InternshipPlan,
    state: InternshipState | None = None,
) -> WorkflowHandle[InternshipWorkflow, Any]:
    """Start the internship's workflow. Starting a running internship again returns it; an
    internship id that already ran to its end is refused (ids are never reused)."""
    try:
        return await client.start_workflow(
            InternshipWorkflow.run,
            InternshipInput(plan=plan, state=state or InternshipState()),
            id=workflow_id_for(plan.internship_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        raise OperationRejected(
            f"internship {plan.internship_id!r} has already run: choose a new internship_id"
        ) from None


def handle_for(client: Client, internship_id: str) -> WorkflowHandle[InternshipWorkflow, Any]:
    return client.get_workflow_handle_for(InternshipWorkflow.run, workflow_id_for(internship_id))


async def status(client: Client, internship_id: str) -> InternshipStatus:
    result: InternshipStatus = await _query(client, internship_id, InternshipWorkflow.status)
    return result


async def _query(client: Client, internship_id: str, query: Any) -> Any:
    """Ask the workflow; a run that just continued as new has no task yet, so try again."""
    for attempt in range(20):
        try:
            return await handle_for(client, internship_id).query(query)
        except RPCError as error:
            if error.status != RPCStatusCode.FAILED_PRECONDITION or attempt == 19:
                raise _rejection(internship_id, error) from None
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def approve(client: Client, internship_id: str, approval: Approval) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.approve, approval)


async def request_changes(client: Client, internship_id: str, request: ChangeRequest) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.request_changes, request)


async def amend(client: Client, internship_id: str, amendment: Amendment) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.amend, amendment)


async def pause(client: Client, internship_id: str, request: Pause) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.pause, request)


async def resume(client: Client, internship_id: str, request: Resume) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.resume, request)


async def extend(client: Client, internship_id: str, extension: Extension) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.extend, extension)


async def timeline(client: Client, internship_id: str) -> list[TimelineEntry]:
    result: list[TimelineEntry] = await _query(client, internship_id, InternshipWorkflow.timeline)
    return result


async def submit_report(client: Client, internship_id: str, report: MilestoneReport) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.submit_report, report)


async def submit_feedback(client: Client, internship_id: str, feedback: CompanyFeedback) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.submit_feedback, feedback)


async def signal_feedback(client: Client, internship_id: str, feedback: CompanyFeedback) -> None:
    """Fire-and-forget feedback (a signal): duplicates are absorbed, invalid ones dropped."""
    try:
        await handle_for(client, internship_id).signal(
            InternshipWorkflow.company_feedback, feedback
        )
    except RPCError as error:
        raise _rejection(internship_id, error) from None


async def submit_assessment(client: Client, internship_id: str, assessment: Assessment) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.submit_assessment, assessment)


async def validate(client: Client, internship_id: str, validation: Validation) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.validate, validation)


async def withdraw(client: Client, internship_id: str, withdrawal: Withdrawal) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.withdraw, withdrawal)


async def _update(client: Client, internship_id: str, update: Any, argument: Any) -> Receipt:
    """Send an update and return the workflow's receipt once Temporal has accepted it. An update
    that meets a run just as it continues as new is sent again to the next run: the submission id
    makes that safe."""
    handle = handle_for(client, internship_id)
    for attempt in range(3):
        try:
            receipt: Receipt = await handle.execute_update(update, argument)
            return receipt
        except WorkflowUpdateFailedError as failed:
            if attempt < 2 and await _continued_as_new(handle):
                continue
            cause = failed.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise OperationRejected(message) from None
        except RPCError as error:
            if attempt < 2 and await _continued_as_new(handle):
                continue
            raise _rejection(internship_id, error) from None
    raise AssertionError("unreachable")


async def _continued_as_new(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the internship goes on in a newer run, so a refused call can be sent again."""
    try:
        described = await handle.describe()
    except RPCError:
        return False
    first_run = described.raw_description.workflow_execution_info.first_run_id
    return described.status == WorkflowExecutionStatus.RUNNING and first_run != described.run_id


def _rejection(internship_id: str, error: RPCError) -> OperationRejected:
    if error.status == RPCStatusCode.NOT_FOUND:
        if "already completed" in error.message:
            return OperationRejected(f"internship {internship_id!r} has already ended")
        return InternshipNotFound(f"no internship {internship_id!r}: check the id")
    return OperationRejected(f"internship {internship_id!r}: {error.message}")
