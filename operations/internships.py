"""Start internships and send their submissions to the running workflow as Temporal updates."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from models.plan import InternshipPlan
from models.status import InternshipStatus
from models.submissions import (
    Approval,
    Assessment,
    CompanyFeedback,
    MilestoneReport,
    Receipt,
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
    client: Client, settings: Settings, plan: InternshipPlan
) -> WorkflowHandle[InternshipWorkflow, Any]:
    """Start the internship's workflow. Starting a running internship again returns it; an
    internship id that already ran to its end is refused (ids are never reused)."""
    try:
        return await client.start_workflow(
            InternshipWorkflow.run,
            plan,
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
    try:
        return await handle_for(client, internship_id).query(InternshipWorkflow.status)
    except RPCError as error:
        raise _rejection(internship_id, error) from None


async def approve(client: Client, internship_id: str, approval: Approval) -> Receipt:
    return await _update(client, internship_id, InternshipWorkflow.approve, approval)


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
    """Send an update and return the workflow's receipt once Temporal has accepted it."""
    try:
        receipt: Receipt = await handle_for(client, internship_id).execute_update(update, argument)
        return receipt
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise OperationRejected(message) from None
    except RPCError as error:
        raise _rejection(internship_id, error) from None


def _rejection(internship_id: str, error: RPCError) -> OperationRejected:
    if error.status == RPCStatusCode.NOT_FOUND:
        if "already completed" in error.message:
            return OperationRejected(f"internship {internship_id!r} has already ended")
        return InternshipNotFound(f"no internship {internship_id!r}: check the id")
    return OperationRejected(f"internship {internship_id!r}: {error.message}")
