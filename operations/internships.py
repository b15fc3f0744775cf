"""Start internships and send their submissions to the running workflow as Temporal updates."""

from __future__ import annotations

import asyncio
import difflib
import functools
import zoneinfo
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol, TypeAlias

import asyncpg
import structlog
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from mail.badge import shipped_badge_images
from models import kinds
from models.activities import Accepted, AuditEvent
from models.ids import receiver_update_id
from models.plan import STORED_IMAGE, InternshipPlan
from models.state import InternshipInput, InternshipState
from models.status import InternshipStatus
from models.submissions import (
    Amendment,
    Approval,
    Assessment,
    ChangeRequest,
    CompanyFeedback,
    Extension,
    MilestoneReport,
    PaperSignature,
    PaperSignatureRequest,
    Pause,
    PlacementEvaluation,
    Receipt,
    Resume,
    SelfAssessment,
    Submission,
    Validation,
    Withdrawal,
)
from records.write import write_event
from runtime import search_attributes
from runtime.availability import TemporalUnreachable, unreachable
from runtime.settings import Settings
from workflows.internship import InternshipWorkflow, workflow_id_for

log = structlog.get_logger(__name__)

Records: TypeAlias = asyncpg.Pool | None
"""The receiver's database pool: given, the receiver writes the submission's audit row before it
answers (read-your-writes, and one workflow task per submission instead of a workflow task, an
activity and another workflow task); None leaves the writing to the workflow."""

WORKFLOW_TASK_TIMEOUT = timedelta(seconds=5)
"""Each internship's workflow task timeout, set when it starts (runs continued as new keep it):
how long Temporal waits for a worker that took a workflow task before handing it to another.
A person whose submission meets such a task waits this long (decision 0046; bench/stranded.py)."""

ROW_WRITE_TIMEOUT = 3.0
"""Seconds the receiver tries to write a submission's row; past it (or with PostgreSQL away), the
workflow writes it within workflows.trail.CONFIRM_AFTER."""


class OperationRejected(Exception):
    """The internship refused the request; the message says why and what to change."""


class InternshipNotFound(OperationRejected):
    pass


class FieldRefused(OperationRejected):
    """Refused for what the request's fields hold: the same request can never succeed as it is.
    `problems` are (field, message) pairs, each message naming its field and what to change; the
    first is `field`."""

    def __init__(self, message: str, field: str, *more: tuple[str, str]) -> None:
        self.problems: list[tuple[str, str]] = [(field, message), *more]
        super().__init__("; ".join(said for _, said in self.problems))
        self.field = field

    def under(self, prefix: str) -> FieldRefused:
        """The same refusal with each field under `prefix` (a plan inside an amendment)."""
        (field, message), *more = self.problems
        return type(self)(
            message, f"{prefix}.{field}", *((f"{prefix}.{f}", said) for f, said in more)
        )


class PlanRefused(FieldRefused):
    """The plan can never run as it is (whatever the internship's state): `field` names the part
    of the plan to change."""


class DifferentPlanRunning(OperationRejected):
    """Another plan already runs under this internship id."""


class InstitutionNotAllowed(OperationRejected):
    """The caller's key does not belong to the plan's institution (an operator key is limited to
    its institutions)."""


RecordedPlans: TypeAlias = Callable[[str], Awaitable[Sequence[InternshipPlan]]]
"""Every plan version the records hold for an internship id (amendments add versions)."""


class NameHolder(Protocol):
    """The records of institutions and companies, as a start consults them
    (`operations.organisations.NameBook`)."""

    def held(self, plan: InternshipPlan) -> AbstractAsyncContextManager[None]:
        """Check the plan's institution and company names against the records (PlanRefused
        when a recorded id has another name), record the ids seen for the first time, and hold
        them while the plan starts: kept when the block ends, given up when it raises."""
        ...

    async def with_kept_image(self, plan: InternshipPlan) -> InternshipPlan:
        """The plan with the school's own badge image (a data: URI) checked and kept in the
        records, named by its content's hash; PlanRefused naming badge.image if it may not be a
        badge image."""
        ...


@dataclass(frozen=True)
class Started:
    handle: WorkflowHandle[InternshipWorkflow, Any]
    created: bool
    """False when the same plan was already running under the id: starting is idempotent."""


async def start_internship(
    client: Client,
    settings: Settings,
    plan: InternshipPlan,
    state: InternshipState | None = None,
    recorded_plans: RecordedPlans | None = None,
    names: NameHolder | None = None,
) -> WorkflowHandle[InternshipWorkflow, Any]:
    """Start the internship's workflow (see `start_plan` for what is refused)."""
    return (await start_plan(client, settings, plan, state, recorded_plans, names)).handle


async def start_plan(
    client: Client,
    settings: Settings,
    plan: InternshipPlan,
    state: InternshipState | None = None,
    recorded_plans: RecordedPlans | None = None,
    names: NameHolder | None = None,
) -> Started:
    """Start the internship's workflow; the one place every way of starting goes through.

    Refused before anything starts (so nothing is recorded or sent): a plan that `plan_problems`
    finds fault with (a badge image internflow does not ship, a time zone that is none); a plan
    whose agreement_deadline is not after now, since nobody could approve it in time; with
    `names` (the records of institutions and companies: every entry point passes them), a plan
    that gives a recorded institution or company id another name; a different plan than the one
    running under the id; an id that already ran to its end (ids are never reused). The same
    plan again returns the running internship (`created` False). "The same" is the plan the
    running workflow was started with (the start event of its history, decoded with the
    client's data converter), or any version `recorded_plans` holds for the id (after an
    amendment the current version is only there). A school's own badge image (a data: URI) is
    checked and kept first, through `names` (`NameHolder.with_kept_image`), and the plan that
    starts names it by its content's hash."""
    if names is not None:
        plan = await names.with_kept_image(plan)
    refuse_plan_problems(plan)
    deadline_passed = plan.agreement_deadline <= datetime.now(UTC)
    names_refused: PlanRefused | None = None
    if not deadline_passed:
        try:
            async with names.held(plan) if names is not None else nullcontext():
                handle = await _start(client, settings, plan, state)
            return Started(handle=handle, created=True)
        except WorkflowAlreadyStartedError:
            pass  # running, or ran to its end: which, and with what plan, is found below
        except PlanRefused as refused:
            # The names differ from the records. Refused, unless this very plan runs already
            # (it started before a rename): starting it again stays harmless.
            names_refused = refused
    running = await _running_plans(client, plan.internship_id)
    if running is not None and plan not in running and recorded_plans is not None:
        running = [*running, *await recorded_plans(plan.internship_id)]
    if running is not None and plan in running:
        return Started(handle=handle_for(client, plan.internship_id), created=False)
    if names_refused is not None:
        raise names_refused
    if running is None:
        if deadline_passed:
            raise _deadline_passed(plan)
        raise OperationRejected(
            f"internship {plan.internship_id!r} has already run: choose a new internship_id"
        )
    if deadline_passed:
        raise _deadline_passed(plan)
    raise _different_plan(plan, running)


async def _start(
    client: Client, settings: Settings, plan: InternshipPlan, state: InternshipState | None
) -> WorkflowHandle[InternshipWorkflow, Any]:
    try:
        return await client.start_workflow(
            InternshipWorkflow.run,
            InternshipInput(plan=plan, state=state or InternshipState()),
            id=workflow_id_for(plan.internship_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
        )
    except RPCError as error:
        if unreachable(error):
            raise TemporalUnreachable() from None
        raise


def plan_problems(plan: InternshipPlan) -> list[tuple[str, str]]:
    """What makes a plan unable to run, whatever the records and the time: (field, message)
    pairs. Checked where a plan comes in (a start, a batch row, an amendment, a rehearsal), never
    when a plan is read back: the models are also decoded inside the workflow, from histories
    recorded before a rule existed, and a plan running there must keep decoding."""
    problems = []
    image = plan.badge.image
    if image is not None and image.startswith("data:"):
        problems.append(
            (
                "badge.image",
                "badge.image is an image given here, which only a start or an amendment through "
                "the API or the CLI keeps: start the plan there",
            )
        )
    elif image is not None and STORED_IMAGE.match(image) is None:
        shipped = shipped_badge_images()
        if image not in shipped:
            problems.append(
                (
                    "badge.image",
                    f"badge.image {image!r} is not an image internflow ships "
                    f"({', '.join(shipped)}): give your own image (a PNG or SVG file to the "
                    "CLI, a data: URI to the API), choose a shipped one, or leave it out for "
                    "a drawn one, and start again",
                )
            )
    zone_problem = time_zone_problem(plan.period.time_zone)
    if zone_problem is not None:
        problems.append(("period.time_zone", zone_problem))
    return problems


def refuse_plan_problems(plan: InternshipPlan) -> None:
    """PlanRefused naming every problem `plan_problems` finds."""
    problems = plan_problems(plan)
    if problems:
        (field, message), *more = problems
        raise PlanRefused(message, field, *more)


@functools.cache
def _time_zones() -> dict[str, str]:
    """The IANA time zones this machine knows, by their lowercase name."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


def time_zone_problem(name: str) -> str | None:
    """Why `name` is not a time zone the e-mails and pages can write dates in (with the closest
    known name as a suggestion), or None when it is one.

    This is a check at the door on purpose, not a validator of `Period`: a plan is also decoded
    inside the workflow, from recorded histories and running internships (a zone accepted before
    this check existed, or one a later tz database drops, must not stop a plan from decoding
    there), and the zone database is read from the file system, which workflow code may not do.
    A pattern on the field keeps the obvious garbage out of every decode; this keeps out names
    that look like zones and are none."""
    zones = _time_zones()
    if name in zones.values():
        return None
    if not zones:
        return (
            f"period.time_zone {name!r} cannot be checked: this machine has no time zone "
            "database (install the system's tzdata package)"
        )
    close = difflib.get_close_matches(name.lower(), list(zones), n=1, cutoff=0.6)
    if close:
        return f"period.time_zone {name!r} is not a time zone; did you mean {zones[close[0]]}?"
    return (
        f"period.time_zone {name!r} is not a time zone: give an IANA time zone name, such as "
        "Europe/Rome or America/New_York"
    )


def refuse_past_deadline(plan: InternshipPlan, now: datetime) -> None:
    """The start's rule on time, for a caller that checks a plan before starting it (a
    rehearsal): refused, with the start's message, when the agreement_deadline is not after now."""
    refuse_plan_problems(plan)
    if plan.agreement_deadline <= now:
        raise _deadline_passed(plan)


def _deadline_passed(plan: InternshipPlan) -> PlanRefused:
    return PlanRefused(
        f"agreement_deadline {plan.agreement_deadline.isoformat()} has already passed: nobody "
        "could approve the plan in time; choose a later agreement_deadline (and period) and "
        "start again",
        field="agreement_deadline",
    )


def _different_plan(plan: InternshipPlan, running: Sequence[InternshipPlan]) -> OperationRejected:
    current = max(running, key=lambda p: p.version)
    sections = sorted(current.changed_sections(plan))
    differs = f"; it differs in {', '.join(sections)}" if sections else ""
    iid = plan.internship_id
    return DifferentPlanRunning(
        f"a different plan (version {current.version}) is running under internship_id "
        f"{iid!r}{differs}: to change that internship, amend its plan while it is in planning "
        f"(POST /api/internships/{iid}/amendments with version {current.version + 1}), or start "
        "this plan under a new internship_id"
    )


async def _running_plans(client: Client, internship_id: str) -> list[InternshipPlan] | None:
    """The plans the running workflow's runs were started with (its first run's and, after a
    continue-as-new, its current run's, which carries the plan as amended); None if no workflow
    runs under the id."""
    try:
        described = await handle_for(client, internship_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise _rejection(internship_id, error) from None
    if described.status != WorkflowExecutionStatus.RUNNING:
        return None
    first_run = described.raw_description.workflow_execution_info.first_run_id
    runs = [described.run_id, *([first_run] if first_run and first_run != described.run_id else [])]
    inputs = [await _start_input(client, internship_id, run) for run in runs if run]
    plans = [start.plan for start in inputs if start is not None]
    return plans or None


async def _start_input(client: Client, internship_id: str, run_id: str) -> InternshipInput | None:
    """A run's input, from the first event of its history (WorkflowExecutionStarted); None when
    Temporal no longer keeps the run (a first run closed longer ago than the retention period)."""
    handle = client.get_workflow_handle(workflow_id_for(internship_id), run_id=run_id)
    try:
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            values = await client.data_converter.decode_wrapper(started.input, [InternshipInput])
            result: InternshipInput = values[0]
            return result
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise _rejection(internship_id, error) from None
    return None


async def recorded_plan_versions(
    conn: asyncpg.Connection | asyncpg.Pool, internship_id: str
) -> list[InternshipPlan]:
    """Every plan version the records hold for the internship (none before its first record)."""
    rows = await conn.fetch(
        "SELECT plan FROM plan_versions WHERE internship_id = $1 ORDER BY version", internship_id
    )
    return [InternshipPlan.model_validate_json(row["plan"]) for row in rows]


async def workflow_institution(client: Client, internship_id: str) -> str | None:
    """The institution of the internship's workflow as Temporal knows it (its search attribute,
    else its start input): for an internship started a moment ago that has no record yet. None
    when no workflow has this id."""
    try:
        described = await handle_for(client, internship_id).describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise _rejection(internship_id, error) from None
    found = described.typed_search_attributes.get(search_attributes.INSTITUTION_ID)
    if found:
        return found
    info = described.raw_description.workflow_execution_info
    start = await _start_input(client, internship_id, info.first_run_id or described.run_id)
    return start.plan.institution.id if start is not None else None


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


def update_for(model: type[Any]) -> Any:
    """The workflow's update that takes this kind of submission (the registry names it)."""
    return getattr(InternshipWorkflow, kinds.BY_MODEL[model].update)


async def send(
    client: Client, internship_id: str, submission: Any, records: Records = None
) -> Receipt:
    """Send any kind of submission (models/kinds.py) to the internship as its update, and
    return the workflow's receipt (see `_update`). The functions below are the same for one
    kind each, typed."""
    return await _update(client, internship_id, update_for(type(submission)), submission, records)


async def approve(
    client: Client, internship_id: str, approval: Approval, records: Records = None
) -> Receipt:
    return await send(client, internship_id, approval, records)


async def request_changes(
    client: Client, internship_id: str, request: ChangeRequest, records: Records = None
) -> Receipt:
    return await send(client, internship_id, request, records)


async def amend(
    client: Client,
    internship_id: str,
    amendment: Amendment,
    records: Records = None,
    names: NameHolder | None = None,
) -> Receipt:
    """Send a new plan version. Its plan is checked at the door as a start checks one
    (`plan_problems`; with `names`, its institution and company names against the records),
    each field named under `plan`; the workflow checks the rest."""
    try:
        if names is not None:
            kept = await names.with_kept_image(amendment.plan)
            amendment = amendment.model_copy(update={"plan": kept})
        refuse_plan_problems(amendment.plan)
        async with names.held(amendment.plan) if names is not None else nullcontext():
            receipt = await send(client, internship_id, amendment, records)
    except PlanRefused as refused:
        raise refused.under("plan") from None
    return receipt


async def record_paper_signature(
    client: Client, internship_id: str, paper: PaperSignature, records: Records = None
) -> Receipt:
    return await send(client, internship_id, paper, records)


async def sign_on_paper(
    client: Client,
    internship_id: str,
    request: PaperSignatureRequest,
    reader: asyncpg.Connection | asyncpg.Pool | None,
    records: Records = None,
    *,
    field: str = "signed_at",
    now: datetime | None = None,
) -> Receipt:
    """Record a signature given on paper as an operator asks for it: `signed_at` a date (local
    midnight in the plan's time zone) or a moment. Refused at the door, naming `field` (the CLI
    names its option), when it is in the future or on a day before the plan existed (its first
    version was recorded; read through `reader`, or from Temporal for an internship that has no
    record yet); the workflow checks the signer and the phase."""
    plan, since = await _plan_and_first_record(client, reader, internship_id)
    signed_at = paper_signed_at(
        request.signed_at, plan.period.time_zone, since, now or datetime.now(UTC), field
    )
    paper = PaperSignature(
        submission_id=request.submission_id,
        role=request.role,
        signed_at=signed_at,
        note=request.note,
    )
    return await record_paper_signature(client, internship_id, paper, records)


def paper_signed_at(
    signed: date | datetime, time_zone: str, since: datetime, now: datetime, field: str
) -> datetime:
    """When a paper was signed, as the workflow keeps it: a date is local midnight in the plan's
    time zone. FieldRefused (naming `field`) when that is after `now`, or on a day before `since`
    (the day the plan was first recorded, in the plan's zone). The day, not the moment: a paper
    carries a date, and one signed the morning the plan was typed in is not older than the
    plan."""
    zone = _zone(time_zone)
    today = now.astimezone(zone).date()
    first_day = since.astimezone(zone).date()
    if isinstance(signed, datetime):
        moment, day, written = signed, signed.astimezone(zone).date(), signed.isoformat()
        future = signed > now
    else:
        moment = datetime.combine(signed, time(), zone)
        day, written, future = signed, signed.isoformat(), signed > today
    if future:
        raise FieldRefused(
            f"{field} {written} is in the future (today is {today.isoformat()} in "
            f"{zone.key}): give the date the paper was signed",
            field,
        )
    if day < first_day:
        raise FieldRefused(
            f"{field} {written} is before this internship's plan existed (it was first "
            f"recorded on {first_day.isoformat()}, {zone.key}): give the date the paper was "
            f"signed, on or after {first_day.isoformat()}",
            field,
        )
    return moment


def _zone(name: str) -> zoneinfo.ZoneInfo:
    """The plan's time zone; UTC for a name that is none (a plan started before time zones were
    checked), as the e-mails and pages write such a plan's dates."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


async def _plan_and_first_record(
    client: Client, reader: asyncpg.Connection | asyncpg.Pool | None, internship_id: str
) -> tuple[InternshipPlan, datetime]:
    """The internship's current plan and when its first version was recorded: from the records,
    or, for an internship started a moment ago (or with the records away), from Temporal (the
    first run's start input and start time). InternshipNotFound for an unknown id."""
    if reader is not None:
        rows = await reader.fetch(
            "SELECT plan, recorded_at FROM plan_versions WHERE internship_id = $1 ORDER BY version",
            internship_id,
        )
        if rows:
            return InternshipPlan.model_validate_json(rows[-1]["plan"]), rows[0]["recorded_at"]
    try:
        described = await handle_for(client, internship_id).describe()
    except RPCError as error:
        raise _rejection(internship_id, error) from None
    started_at = described.start_time
    first_run = described.raw_description.workflow_execution_info.first_run_id
    if first_run and first_run != described.run_id:
        try:
            first = client.get_workflow_handle(workflow_id_for(internship_id), run_id=first_run)
            started_at = (await first.describe()).start_time
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise _rejection(internship_id, error) from None
    start = await _start_input(client, internship_id, described.run_id)
    if start is None:
        raise InternshipNotFound(f"no internship {internship_id!r}: check the id")
    return start.plan, started_at


async def pause(
    client: Client, internship_id: str, request: Pause, records: Records = None
) -> Receipt:
    return await send(client, internship_id, request, records)


async def resume(
    client: Client, internship_id: str, request: Resume, records: Records = None
) -> Receipt:
    return await send(client, internship_id, request, records)


async def extend(
    client: Client, internship_id: str, extension: Extension, records: Records = None
) -> Receipt:
    return await send(client, internship_id, extension, records)


async def submit_report(
    client: Client, internship_id: str, report: MilestoneReport, records: Records = None
) -> Receipt:
    return await send(client, internship_id, report, records)


async def submit_feedback(
    client: Client, internship_id: str, feedback: CompanyFeedback, records: Records = None
) -> Receipt:
    return await send(client, internship_id, feedback, records)


async def signal_feedback(client: Client, internship_id: str, feedback: CompanyFeedback) -> None:
    """Fire-and-forget feedback (a signal): duplicates are absorbed, invalid ones dropped."""
    try:
        await handle_for(client, internship_id).signal(
            InternshipWorkflow.company_feedback, received_now(feedback)
        )
    except RPCError as error:
        raise _rejection(internship_id, error) from None


async def submit_assessment(
    client: Client, internship_id: str, assessment: Assessment, records: Records = None
) -> Receipt:
    return await send(client, internship_id, assessment, records)


async def submit_self_assessment(
    client: Client, internship_id: str, assessment: SelfAssessment, records: Records = None
) -> Receipt:
    return await send(client, internship_id, assessment, records)


async def evaluate_placement(
    client: Client, internship_id: str, evaluation: PlacementEvaluation, records: Records = None
) -> Receipt:
    return await send(client, internship_id, evaluation, records)


async def validate(
    client: Client, internship_id: str, validation: Validation, records: Records = None
) -> Receipt:
    return await send(client, internship_id, validation, records)


async def withdraw(
    client: Client, internship_id: str, withdrawal: Withdrawal, records: Records = None
) -> Receipt:
    return await send(client, internship_id, withdrawal, records)


async def _update(
    client: Client, internship_id: str, update: Any, argument: Any, records: Records = None
) -> Receipt:
    """Send an update and return the workflow's receipt once Temporal has accepted it. An update
    that meets a run just as it continues as new is sent again to the next run: the submission id
    makes that safe."""
    handle = handle_for(client, internship_id)
    argument = received_now(argument)
    for attempt in range(3):
        try:
            if records is None:
                receipt: Receipt = await handle.execute_update(update, argument)
                return receipt
            accepted = await handle.execute_update(
                update,
                argument,
                id=receiver_update_id(argument.submission_id),
                result_type=Accepted,
            )
            if accepted.record is not None:
                await _write_row(records, accepted.record)
            return accepted.receipt()
        except WorkflowUpdateFailedError as failed:
            if attempt < 2 and await _continued_as_new(handle):
                continue
            cause = failed.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise OperationRejected(message) from None
        except RPCError as error:
            if not unreachable(error) and attempt < 2 and await _continued_as_new(handle):
                continue
            raise _rejection(internship_id, error) from None
    raise AssertionError("unreachable")


def received_now(submission: Any) -> Any:
    """The submission stamped with the moment this server received it (its own clock, in UTC),
    replacing any `received_at` the client sent: the workflow judges every rule about time at
    this moment (decision 0046). Stamped once per submission: a retry within this call sends the
    same moment."""
    if not isinstance(submission, Submission):
        return submission
    return submission.model_copy(update={"received_at": datetime.now(UTC)})


async def _write_row(records: asyncpg.Pool, event: AuditEvent) -> None:
    """Write an accepted submission's audit row (and the read model) before answering. The
    submission is durable in Temporal's history already and the workflow writes the row again
    later (idempotently), so a failure here only delays the row: it is logged, not raised."""
    try:
        async with asyncio.timeout(ROW_WRITE_TIMEOUT):
            async with records.acquire() as conn:
                await write_event(conn, event)  # a transaction only where it needs one
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
        log.warning(
            "submission row left to the workflow",
            internship_id=event.internship_id,
            kind=event.kind,
            error=type(error).__name__,
        )


async def _continued_as_new(handle: WorkflowHandle[Any, Any]) -> bool:
    """Whether the internship goes on in a newer run, so a refused call can be sent again."""
    try:
        described = await handle.describe()
    except RPCError:
        return False
    first_run = described.raw_description.workflow_execution_info.first_run_id
    return described.status == WorkflowExecutionStatus.RUNNING and first_run != described.run_id


def _rejection(internship_id: str, error: RPCError) -> OperationRejected | TemporalUnreachable:
    """What a refusal of Temporal means for the caller: an outage (try again), an unknown or
    ended internship, or the server's own reason."""
    if unreachable(error):
        return TemporalUnreachable()
    if error.status == RPCStatusCode.NOT_FOUND:
        if "already completed" in error.message:
            return OperationRejected(f"internship {internship_id!r} has already ended")
        return InternshipNotFound(f"no internship {internship_id!r}: check the id")
    return OperationRejected(f"internship {internship_id!r}: {error.message}")
