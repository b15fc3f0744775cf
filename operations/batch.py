"""Bulk start: many plans at once, from JSON or from spreadsheet rows over a template plan."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from temporalio.client import Client

from models.plan import InternshipPlan
from operations import internships as ops
from operations.internships import (
    FieldRefused,
    NameHolder,
    OperationRejected,
    RecordedPlans,
    Started,
)
from runtime.settings import Settings


class BatchError(ValueError):
    """The batch as a whole cannot be read (not a row of it): the message says why."""


class RowResult(BaseModel):
    """What happened to one row: started, already running, invalid or refused."""

    row: int
    internship_id: str | None
    status: Literal["started", "already_running", "invalid", "refused"]
    errors: list[str] = []


class BatchResult(BaseModel):
    started: int
    already_running: int
    failed: int
    rows: list[RowResult]


def _set_path(data: dict[str, Any], path: str, value: str) -> None:
    """Set `a.b.c` in nested dicts; an empty cell leaves the template's value."""
    if value == "":
        return
    parts = path.split(".")
    node = data
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            raise BatchError(f"column {path!r} does not name a field of the plan")
        node = child
    node[parts[-1]] = value


def rows_from_csv(text: str, template: InternshipPlan) -> list[dict[str, Any] | str]:
    """Each CSV row applied to the template plan: columns are dotted field paths
    (`internship_id`, `intern.name`, `intern.email`, `mentor.email`, `period.start`, ...). A row
    that does not fit becomes its error message."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames or "internship_id" not in reader.fieldnames:
        raise BatchError("the CSV needs a header row with at least an internship_id column")
    rows: list[dict[str, Any] | str] = []
    for record in reader:
        data = template.model_dump(mode="json")
        try:
            for column, value in record.items():
                if column is None:
                    raise BatchError("this row has more cells than the header has columns")
                _set_path(data, column.strip(), (value or "").strip())
        except BatchError as error:
            rows.append(str(error))
            continue
        rows.append(data)
    if not rows:
        raise BatchError("the CSV has no rows under its header")
    return rows


def rows_from_json(text: str) -> list[dict[str, Any] | str]:
    """A JSON list of plans, or {"template": plan, "rows": [{dotted path: value}, ...]}."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise BatchError(f"not JSON: {error.msg} (line {error.lineno})") from None
    if isinstance(value, dict) and "template" in value:
        try:
            template = InternshipPlan.model_validate(value["template"])
        except ValidationError as error:
            raise BatchError(f"the template is not a valid plan: {_messages(error)[0]}") from None
        out: list[dict[str, Any] | str] = []
        for row in value.get("rows") or []:
            data = template.model_dump(mode="json")
            try:
                if not isinstance(row, dict):
                    raise BatchError("a row is an object of field paths and values")
                for column, cell in row.items():
                    _set_path(data, str(column), str(cell))
            except BatchError as error:
                out.append(str(error))
                continue
            out.append(data)
        return out
    if isinstance(value, list):
        return [item if isinstance(item, dict) else "a plan is a JSON object" for item in value]
    raise BatchError("a batch is a JSON list of plans, or an object with template and rows")


def _messages(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in item['loc']) or '(plan)'}: {item['msg']}"
        for item in error.errors()
    ]


async def start_batch(
    client: Client,
    settings: Settings,
    rows: Iterable[dict[str, Any] | str],
    on_row: Any = None,
    recorded_plans: RecordedPlans | None = None,
    starter: Starter | None = None,
    names: NameHolder | None = None,
) -> BatchResult:
    """Start each row's plan; a bad row does not stop the others. `on_row(result)` is called
    after each row (the CLI's progress bar). A row is refused as a single start would be (see
    `operations.internships.start_plan`); `recorded_plans` lets a running internship's amended
    plan count as the same, and `names` checks and records its institution's and company's
    names. `starter` starts one plan instead of start_plan (the API's starts it as the caller's
    key may: a row for another institution is refused)."""

    async def start_plan(plan: InternshipPlan) -> Started:
        return await ops.start_plan(
            client, settings, plan, recorded_plans=recorded_plans, names=names
        )

    results: list[RowResult] = []
    first_row: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        raw_id = row.get("internship_id") if isinstance(row, dict) else None
        internship_id = raw_id.strip() if isinstance(raw_id, str) else None
        if internship_id is not None and internship_id in first_row:
            # Started once from this batch already: a second row with its id is a mistake in
            # the file (a copied line), never "already running".
            result = RowResult(
                row=number,
                internship_id=internship_id,
                status="invalid",
                errors=[
                    f"internship_id: duplicate id {internship_id!r} (row "
                    f"{first_row[internship_id]} has it already): give each row its own id"
                ],
            )
        else:
            if internship_id is not None:
                first_row[internship_id] = number
            result = await _start_row(number, row, starter or start_plan)
        results.append(result)
        if on_row is not None:
            on_row(result)
    return BatchResult(
        started=sum(r.status == "started" for r in results),
        already_running=sum(r.status == "already_running" for r in results),
        failed=sum(r.status in ("invalid", "refused") for r in results),
        rows=results,
    )


Starter = Callable[[InternshipPlan], Awaitable[Started]]
"""Starts one plan (OperationRejected when refused)."""


async def _start_row(number: int, row: dict[str, Any] | str, start: Starter) -> RowResult:
    if isinstance(row, str):
        return RowResult(row=number, internship_id=None, status="invalid", errors=[row])
    raw_id = row.get("internship_id")
    internship_id = raw_id if isinstance(raw_id, str) else None
    try:
        plan = InternshipPlan.model_validate(row)
    except ValidationError as error:
        return RowResult(
            row=number, internship_id=internship_id, status="invalid", errors=_messages(error)
        )
    try:
        started = await start(plan)
    except OperationRejected as error:
        said = (
            [message for _, message in error.problems]
            if isinstance(error, FieldRefused)
            else [str(error)]
        )
        return RowResult(
            row=number, internship_id=plan.internship_id, status="refused", errors=said
        )
    return RowResult(
        row=number,
        internship_id=plan.internship_id,
        status="started" if started.created else "already_running",
    )
