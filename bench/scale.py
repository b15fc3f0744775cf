"""Scale: many internships open at once, waiting between milestones, on one worker.

Every internship is opened as people open one: started through Temporal and approved by its three
parties (the workflow writes its records). Measures the start rate, the worker's resident memory
with all of them open, and what operators read: an internship's status and a search by phase and
company through the HTTP API (the stack's own API process, an operator key of the institution),
beside the same reads in PostgreSQL alone and, for comparison, the workflow's `status` query and
Temporal visibility. `--internships 1000` is a quick check. If a step fails, it says which and
what it had measured so far (bench/part.py; exit 1).

Opening 50,000 takes over an hour of a 2-core machine, so a run can be made in pieces: with
`--state DIR` the stack's state is kept in DIR, `--pause-after SECONDS` stops opening at the end of
the batch in progress once that long has passed (the stack stopped, the count saved in DIR), and
the same command again goes on from there. The opening rate is the internships opened over the
seconds spent opening, summed over the pieces; each piece is listed with its own rate.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from bench.cpu import CpuWatch
from bench.part import Progress, main_for
from cli.demo import EXAMPLE_PLAN
from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack
from models.plan import InternshipPlan
from models.status import Phase
from models.submissions import Approval
from operations import internships as ops
from operations.access import create_api_key
from records import read
from runtime.clients import connect_temporal
from runtime.settings import Settings

COMPANIES = 50
MARGIN = timedelta(minutes=2)
"""How long after it is started an internship's agreement deadline and start date come: time
for its three approvals, however loaded the machine (a start date cannot be guessed for all:
the opening rate varies fivefold with what else runs)."""
TARGET_READ_P99_MS = 10.0
"""What an operator's status or search may take at p99 through the HTTP API."""
SEARCH_LIMIT = 50
"""One page of the search, as the API's default."""
BATCH = 500
"""Internships opened together; a paused or stopped run goes on from the last whole batch."""
PROGRESS = "scale-progress.json"
"""In a kept state directory: the stack's ports and database URL, and how far the opening went."""
KEPT_SETTINGS = ("temporal_address", "temporal_ui_port", "database_url", "smtp_port", "api_port")


@functools.cache
def _example() -> InternshipPlan:
    """The example plan, read once (10,000 plans are made from it)."""
    return InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())


def waiting_plan(internship_id: str, company_id: str, start: datetime) -> InternshipPlan:
    """The example plan under a new id and host company, with its agreement deadline and start
    date both at `start`, so that once approved it waits weeks for its first milestone."""
    example = _example()
    data = example.model_dump()
    data["company"]["id"] = company_id
    data["agreement_deadline"] = example.period.start
    return InternshipPlan.model_validate(data).retimed(internship_id, start)


def scale_plan(index: int, start: datetime) -> InternshipPlan:
    """One of COMPANIES host companies' internships, starting at `start`."""
    return waiting_plan(f"scale-{index:05d}", f"company-{index % COMPANIES:03d}", start)


#: Words of a refusal a busy server gives and takes back (an update it dropped, a call past its
#: deadline): the call is sent again, under the same submission id.
TRANSIENT = ("aborted", "deadline exceeded", "timed out", "timeout", "unavailable")
TRANSIENT_STATUS = (
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.ABORTED,
)
ATTEMPTS = 5


async def _again(call: Callable[[], Awaitable[Any]]) -> None:
    """`call`, sent again (up to ATTEMPTS times) while a busy server drops it; starting and
    approving are idempotent, so a call that did arrive is harmless the second time."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            await call()
            return
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            if attempt == ATTEMPTS:
                raise
        except RPCError as error:
            if attempt == ATTEMPTS or error.status not in TRANSIENT_STATUS:
                raise
        except ops.OperationRejected as error:
            if attempt == ATTEMPTS or not any(word in str(error).lower() for word in TRANSIENT):
                raise
        await asyncio.sleep(attempt)


async def open_internship(client: Client, settings: Settings, plan: InternshipPlan) -> None:
    """Start the internship and approve it as its three parties."""
    await _again(functools.partial(ops.start_internship, client, settings, plan))
    for party in ("intern", "tutor", "mentor"):
        approval = Approval(submission_id=f"a-{party}", party=party, plan_version=1)
        await _again(functools.partial(ops.approve, client, plan.internship_id, approval))


async def timed(read: Callable[[str], Awaitable[Any]], arguments: list[str]) -> list[float]:
    """Milliseconds of each read, one after the other."""
    times = []
    for argument in arguments:
        started = time.perf_counter()
        await read(argument)
        times.append((time.perf_counter() - started) * 1000)
    return times


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))], 1)

    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p90_ms": at(0.90),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1], 1),
    }


def _load_progress(state: Path, count: int) -> dict[str, Any]:
    """What an earlier piece of this run saved in `state` (nothing for a new run)."""
    path = state / PROGRESS
    if not path.exists():
        return {}
    saved: dict[str, Any] = json.loads(path.read_text())
    if saved["internships"] != count:
        raise RuntimeError(
            f"{state} holds a run of {saved['internships']} internships; give "
            f"--internships {saved['internships']} or another --state"
        )
    return saved


def _save_progress(state: Path, saved: dict[str, Any]) -> None:
    path = state / PROGRESS
    path.write_text(json.dumps(saved, indent=2, default=str))
    path.chmod(0o600)  # it holds the benchmark database's generated password


async def run(
    count: int,
    concurrency: int,
    samples: int,
    cache: int | None,
    temporal_samples: int,
    progress: Progress,
    state_dir: Path | None = None,
    pause_after: float | None = None,
) -> dict[str, Any]:
    state = state_dir or Path(tempfile.mkdtemp(prefix="internflow-scale-"))
    state.mkdir(parents=True, exist_ok=True)
    saved = _load_progress(state, count)
    # The API's per-address rate limit would throttle this one-address load.
    overrides: dict[str, Any] = {"rate_limit_per_minute": 10**9, **saved.get("settings", {})}
    if cache:
        overrides["workflow_cache"] = cache
    settings = throwaway_settings(state, **overrides)
    if not saved:
        saved = {
            "internships": count,
            "settings": {name: getattr(settings, name) for name in KEPT_SETTINGS},
            "opened": 0,
            "pieces": [],
        }
        _save_progress(state, saved)  # removed with a temporary state, kept with --state
    result: dict[str, Any] = {"internships": count, "workflow_cache": settings.workflow_cache}
    progress.figures = result  # what is measured so far, as it is measured
    try:
        progress.step("starting the embedded stack (PostgreSQL, Temporal, worker, HTTP API)")
        async with EmbeddedStack(settings, start_api=True) as stack:
            progress.step(f"opening {count} internships (from {saved['opened']})")
            await _open_all(stack, settings, saved, concurrency, progress, pause_after)
            if saved["opened"] < count:
                progress.step("paused: stopping the embedded stack")
                result["paused"] = (
                    f"{saved['opened']} of {count} opened; the same command goes on from there"
                )
                return result
            progress.step("waiting for every internship to be in progress, then quiet")
            await _wait_all_started(stack, settings, count, result)
            progress.step("status and search through the HTTP API")
            await _reads_over_http(settings, count, samples, result)
            progress.step("status and search in PostgreSQL alone")
            await _reads_in_postgresql(settings, count, samples, result)
            progress.step("the list's query plans and the database's size")
            await _plans_and_size(settings, result)
            progress.step("status query and visibility search in Temporal")
            await _reads_in_temporal(settings, count, temporal_samples, result)
            progress.step("stopping the embedded stack")
    finally:
        if state_dir is None:
            shutil.rmtree(state, ignore_errors=True)
    for kind in ("status_http", "search_http"):
        result[f"{kind}_target_met"] = result[kind]["p99_ms"] <= TARGET_READ_P99_MS
    return result


def _summed(pieces: list[dict[str, Any]], key: str) -> dict[str, float]:
    total: dict[str, float] = {}
    for piece in pieces:
        for name, seconds in piece[key].items():
            total[name] = round(total.get(name, 0.0) + seconds, 1)
    return total


async def _open_all(
    stack: EmbeddedStack,
    settings: Settings,
    saved: dict[str, Any],
    concurrency: int,
    progress: Progress,
    pause_after: float | None,
) -> None:
    """Open the internships not opened yet, BATCH at a time, saving the count after each batch
    in `saved` (and its file); stop after the batch in progress once `pause_after` seconds have
    passed. The figures are over every piece so far."""
    result = progress.figures
    count = saved["internships"]
    client = await connect_temporal(settings)
    gate = asyncio.Semaphore(concurrency)
    last_start = datetime.fromisoformat(
        saved.get("last_start_date") or datetime.now().astimezone().isoformat()
    )

    async def one(index: int) -> None:
        nonlocal last_start
        async with gate:
            # Its own start date, MARGIN after it is started: once approved it starts and waits
            # weeks for its first milestone (the first ones start while the last are opened).
            start = datetime.now().astimezone() + MARGIN
            last_start = max(last_start, start)
            await open_internship(client, settings, scale_plan(index, start))

    piece = {
        "began": datetime.now().astimezone().isoformat(timespec="seconds"),
        "opened_from": saved["opened"],
        "opened_to": saved["opened"],
        "seconds": 0.0,
        "cpu_seconds": {},
    }
    pieces: list[dict[str, Any]] = saved["pieces"]
    if saved["opened"] < count:  # a run measured again on its kept state opens nothing
        pieces.append(piece)
    cpu = CpuWatch(stack)
    started = time.monotonic()
    for batch in range(saved["opened"], count, BATCH):
        async with asyncio.TaskGroup() as group:  # a failure cancels the rest of the batch
            for index in range(batch, min(count, batch + BATCH)):
                group.create_task(one(index))
        done = min(count, batch + BATCH)
        piece["opened_to"] = saved["opened"] = done
        piece["seconds"] = round(time.monotonic() - started, 1)
        piece["cpu_seconds"] = cpu.seconds()
        saved["last_start_date"] = last_start.isoformat()
        _save_progress(settings.state_dir, saved)
        progress.record(opened=done)
        print(f"  {done}/{count} started and approved", flush=True)
        if pause_after is not None and time.monotonic() - started >= pause_after:
            break
    for each in pieces:
        opened = each["opened_to"] - each["opened_from"]
        each["rate_per_second"] = round(opened / each["seconds"], 1) if each["seconds"] else 0
    seconds = sum(each["seconds"] for each in pieces)
    result["start_rate_per_second"] = round(saved["opened"] / seconds, 1) if seconds else 0
    result["start_seconds"] = round(seconds, 1)
    result["start_cpu_seconds"] = _summed(pieces, "cpu_seconds")
    result["start_pieces"] = pieces
    result["last_start_date"] = saved["last_start_date"]


async def _wait_all_started(
    stack: EmbeddedStack, settings: Settings, count: int, result: dict[str, Any]
) -> None:
    """Until every internship has reached its start date and is in progress (ten minutes at
    most past the last start date)."""
    start = datetime.fromisoformat(result["last_start_date"])
    await asyncio.sleep(max(0, (start - datetime.now().astimezone()).total_seconds()))
    cpu = CpuWatch(stack)
    woke = time.monotonic()
    conn = await asyncpg.connect(settings.database_url)
    try:
        open_now = 0
        while time.monotonic() - woke < 600:
            open_now = await conn.fetchval(
                "SELECT count(*) FROM internships WHERE phase = $1", Phase.IN_PROGRESS.value
            )
            result["in_progress"] = open_now
            if open_now >= count:
                break
            await asyncio.sleep(1)
        result["all_started_seconds"] = round(time.monotonic() - woke, 1)
        result["all_started_cpu_seconds"] = cpu.seconds()
        if open_now < count:
            raise RuntimeError(f"only {open_now} of {count} internships in progress after 10 min")
        result["quiet_after_seconds"] = await _wait_quiet(conn)
    finally:
        await conn.close()
    assert stack.worker_pid is not None
    result["worker_rss_mib"] = round(psutil.Process(stack.worker_pid).memory_info().rss / 2**20, 1)


async def _wait_quiet(conn: asyncpg.Connection, quiet: float = 5, within: float = 600) -> float:
    """Seconds until the workflows stop writing (no new record or e-mail for `quiet` seconds):
    the reads are then measured with every internship open and waiting, as most of them are."""
    began = time.monotonic()
    query = "SELECT (SELECT count(*) FROM audit_events) + (SELECT count(*) FROM notifications)"
    last, since = await conn.fetchval(query), time.monotonic()
    while time.monotonic() - since < quiet:
        if time.monotonic() - began > within:
            raise RuntimeError(f"the workflows kept writing records for {within:g} s")
        await asyncio.sleep(0.5)
        now = await conn.fetchval(query)
        if now != last:
            last, since = now, time.monotonic()
    return round(time.monotonic() - began, 1)


def _sample_ids(count: int, samples: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"scale-{rng.randrange(count):05d}" for _ in range(samples)]


def _sample_companies(samples: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [f"company-{rng.randrange(COMPANIES):03d}" for _ in range(samples)]


def _expected_page(count: int, company: str) -> int:
    """How many rows one search page for `company` must hold (all internships in progress)."""
    index = int(company.removeprefix("company-"))
    return min(SEARCH_LIMIT, len(range(index, count, COMPANIES)))


async def _reads_over_http(
    settings: Settings, count: int, samples: int, result: dict[str, Any]
) -> None:
    """An operator's status and search through the stack's API process, one request after
    another on a kept-alive connection (aiohttp: httpx costs the shared cores more per request);
    every answer is checked, so that an error page cannot pass for a fast read."""
    institution = _example().institution.id
    conn = await asyncpg.connect(settings.database_url)
    try:
        # Named by the time: a run measured again (on a kept state) adds a key of its own.
        name = f"scale-bench-{int(time.time())}"
        _, key = await create_api_key(conn, name, "operator", institutions=[institution])
    finally:
        await conn.close()
    base = f"http://{settings.api_host}:{settings.api_port}"
    async with aiohttp.ClientSession(
        base_url=base,
        headers={"Authorization": f"Bearer {key}"},
        connector=aiohttp.TCPConnector(limit=1),
        timeout=aiohttp.ClientTimeout(total=30),
    ) as http:

        async def status(internship_id: str) -> None:
            async with http.get(f"/api/internships/{internship_id}") as response:
                body = await response.json()
                if response.status != 200 or body.get("internship_id") != internship_id:
                    raise RuntimeError(f"status of {internship_id}: HTTP {response.status}")

        async def search(company: str) -> None:
            params = {"phase": "in_progress", "company": company, "limit": str(SEARCH_LIMIT)}
            async with http.get("/api/internships", params=params) as response:
                body = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"search for {company}: HTTP {response.status}")
                if len(body["items"]) != _expected_page(count, company):
                    raise RuntimeError(
                        f"search for {company}: {len(body['items'])} rows, expected "
                        f"{_expected_page(count, company)}"
                    )

        # Warm: the API's connection pool and its first statements.
        await timed(status, _sample_ids(count, 20, seed=1))
        await timed(search, _sample_companies(20, seed=2))
        result["load_average_before_reads"] = round(os.getloadavg()[0], 1)
        http_status = percentiles(await timed(status, _sample_ids(count, samples, 7)))
        result["status_http"] = http_status
        http_search = percentiles(await timed(search, _sample_companies(samples, 8)))
        result["search_http"] = http_search
    result["load_average_after_reads"] = round(os.getloadavg()[0], 1)
    result["read_target_p99_ms"] = TARGET_READ_P99_MS
    result["http_samples"] = samples


async def _reads_in_postgresql(
    settings: Settings, count: int, samples: int, result: dict[str, Any]
) -> None:
    """The reads the two endpoints make, on one connection, without HTTP or the API key check."""
    conn = await asyncpg.connect(settings.database_url)
    try:
        ids = _sample_ids(count, samples, 7)
        await timed(functools.partial(read.recorded_status, conn), ids[:20])
        result["status_postgresql"] = percentiles(
            await timed(functools.partial(read.recorded_status, conn), ids)
        )
        companies = _sample_companies(samples, 8)
        institution = [_example().institution.id]

        def search(company: str) -> Any:
            return read.list_internships(
                conn,
                phase=Phase.IN_PROGRESS,
                company_id=company,
                limit=SEARCH_LIMIT,
                institution_ids=institution,
            )

        await timed(search, companies[:20])
        result["search_postgresql"] = percentiles(await timed(search, companies))
    finally:
        await conn.close()


def _planned(institution: str) -> dict[str, dict[str, Any]]:
    """The list's filters as the API and the dashboard send them (an operator's key adds its
    institution), each to be read with the plan PostgreSQL chooses for it at this size."""
    return {
        "all": {},
        "phase": {"phase": Phase.IN_PROGRESS},
        "company": {"company_id": "company-007"},
        "company and phase": {"company_id": "company-007", "phase": Phase.IN_PROGRESS},
        "institution": {"institution_id": institution},
        "operator key": {"institution_ids": [institution]},
        "operator key, phase and company": {
            "institution_ids": [institution],
            "phase": Phase.IN_PROGRESS,
            "company_id": "company-007",
        },
        "overdue": {"overdue": True},
        "overdue and phase": {"overdue": True, "phase": Phase.IN_PROGRESS},
    }


def _scanned(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """The plan's nodes that read the internships table."""
    found = [plan] if plan.get("Relation Name") == "internships" else []
    for child in plan.get("Plans", []):
        found += _scanned(child)
    return found


async def _plans_and_size(settings: Settings, result: dict[str, Any]) -> None:
    """EXPLAIN ANALYZE of one page (SEARCH_LIMIT rows) for each of the list's filters: the scans
    of the internships table (a sequential scan is what must not be there) and the rows they read;
    and the application database's size on disk."""
    institution = _example().institution.id
    conn = await asyncpg.connect(settings.database_url)
    try:
        plans: dict[str, Any] = {}
        for name, filters in _planned(institution).items():
            sql, args = read.list_query(**filters, limit=SEARCH_LIMIT)
            explained = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
            top = json.loads(explained)[0]
            scans = _scanned(top["Plan"])
            plans[name] = {
                "scans": sorted(
                    {f"{n['Node Type']} {n.get('Index Name', '')}".strip() for n in scans}
                ),
                "rows_read": int(
                    sum(
                        (n.get("Actual Rows", 0) + n.get("Rows Removed by Filter", 0))
                        * n.get("Actual Loops", 1)
                        for n in scans
                    )
                ),
                "ms": round(top["Execution Time"], 2),
            }
        result["list_query_plans"] = plans
        result["list_sequential_scans"] = sum(
            any(scan.startswith("Seq Scan") for scan in plan["scans"]) for plan in plans.values()
        )
        result["postgresql_mib"] = round(
            await conn.fetchval("SELECT pg_database_size(current_database())") / 2**20, 1
        )
    finally:
        await conn.close()


async def _reads_in_temporal(
    settings: Settings, count: int, samples: int, result: dict[str, Any]
) -> None:
    """For comparison: the workflow's status query and a visibility search (no longer what the
    API reads)."""
    if samples <= 0:
        return
    client = await connect_temporal(settings)
    result["status_query"] = percentiles(
        await timed(functools.partial(ops.status, client), _sample_ids(count, samples, 7))
    )

    async def visibility(company: str) -> int:
        query = f"InternshipPhase = 'in_progress' AND CompanyId = '{company}'"
        return len([w async for w in client.list_workflows(query, page_size=1000)])

    result["search_temporal_visibility"] = percentiles(
        await timed(visibility, _sample_companies(samples, 8))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--internships", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--samples", type=int, default=1000, help="reads of each kind, HTTP and PostgreSQL"
    )
    parser.add_argument(
        "--temporal-samples",
        type=int,
        default=200,
        help="status queries and visibility searches, for comparison (0: skip them)",
    )
    parser.add_argument(
        "--workflow-cache",
        type=int,
        help="workflows the worker keeps in memory (default: INTERNFLOW_WORKFLOW_CACHE's); a "
        "status query on one outside the cache replays its history",
    )
    parser.add_argument(
        "--state",
        type=Path,
        help="keep the stack's state in this directory, so that a paused or stopped run goes on "
        "where it was when the same command is given again (default: a temporary one, removed)",
    )
    parser.add_argument(
        "--pause-after",
        type=float,
        help="with --state: after this many seconds of opening, finish the batch in progress, "
        "stop the stack and exit (the figures are measured once every internship is opened)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.pause_after is not None and args.state is None:
        parser.error("--pause-after needs --state (where the run is kept until it goes on)")
    if args.internships < COMPANIES or args.samples < 1:
        parser.error(f"--internships must be at least {COMPANIES} and --samples at least 1")
    main_for(
        "scale",
        lambda progress: run(
            args.internships,
            args.concurrency,
            args.samples,
            args.workflow_cache,
            args.temporal_samples,
            progress,
            args.state,
            args.pause_after,
        ),
        args.json,
    )


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
