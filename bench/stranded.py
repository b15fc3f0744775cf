"""Benchmark the wait a person sees after a worker dies: the latency of a submission (an approval,
through the API's own call: the update and its row written before the answer) sent to an
internship whose workflow the worker that held it has just lost. Run:
`python -m bench.stranded [--rounds N] [--task-timeouts SECONDS ...] [--json FILE]`.

On an embedded stack with two workers, each round starts an internship, lets one approval in
(the workflow is then cached on one worker: its sticky queue), and once nothing is in flight
does one of these to the worker that holds it, then sends the next approval:

- `alive`: nothing (the baseline);
- `killed`: SIGKILL, and the approval sent at once. Temporal has not yet noticed that the dead
  worker's polls are gone and hands it the workflow task, which waits for the workflow task
  timeout before another worker replays the workflow cold;
- `killed_2s_before`: the same, the approval sent 2 s after the kill: the task waits on the dead
  worker's sticky queue for its schedule-to-start timeout (worker.py), or for the workflow task
  timeout if a dead poll still takes it;
- `vanished`: SIGSTOP (a host gone without closing its connections, or frozen). Temporal still
  sees its polls and hands it the workflow task, which waits for the workflow task timeout (the
  internship's, set at its start) before another worker gets it.

Each is measured for internships started with each workflow task timeout of --task-timeouts
(by default Temporal's 10 s, and the product's, `operations.internships.WORKFLOW_TASK_TIMEOUT`).
The signalled worker is killed after its round and both workers are started afresh for the next.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import shutil
import signal
import statistics
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from embedded.ports import throwaway_settings
from embedded.stack import EmbeddedStack
from models.plan import InternshipPlan
from models.submissions import Approval
from operations import internships as ops
from runtime.clients import connect_temporal
from tests.helpers import EXAMPLE_PLAN
from worker import STICKY_TIMEOUT

MODES = ("alive", "killed", "killed_2s_before", "vanished")
PRODUCT_TIMEOUT = ops.WORKFLOW_TASK_TIMEOUT.total_seconds()
SIGNALS = {
    "killed": signal.SIGKILL,
    "killed_2s_before": signal.SIGKILL,
    "vanished": signal.SIGSTOP,
}
DEAD_FOR = {"killed_2s_before": 2.0}
"""Seconds between the kill and the submission (part of the scenario, not a synchronisation)."""


async def _polling(client: Client, task_queue: str, pids: list[int], within: float = 120) -> None:
    """Return once every worker in `pids` polls the task queue for workflow tasks."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    deadline = time.monotonic() + within
    while True:
        pollers = (await client.workflow_service.describe_task_queue(request)).pollers
        polling = {int(p.identity.split("@", 1)[0]) for p in pollers if "@" in p.identity}
        if set(pids) <= polling:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {pids} do not poll after {within:.0f} s")
        await asyncio.sleep(0.1)


async def _holder(client: Client, workflow_id: str, within: float = 60) -> int:
    """The pid of the worker that ran the workflow's last task, once nothing is in flight (no
    activity, no workflow task)."""
    handle = client.get_workflow_handle(workflow_id)
    deadline = time.monotonic() + within
    while True:
        described = (await handle.describe()).raw_description
        if not described.pending_activities and not described.HasField("pending_workflow_task"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workflow_id} still busy after {within:.0f} s")
        await asyncio.sleep(0.05)
    identity = ""
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            identity = event.workflow_task_started_event_attributes.identity
    return int(identity.split("@", 1)[0])


async def measure(rounds: int, task_timeouts: list[float]) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="internflow-bench-stranded-"))
    settings = throwaway_settings(state)
    seconds = {timeout: {mode: list[float]() for mode in MODES} for timeout in task_timeouts}
    example = InternshipPlan.model_validate_json(EXAMPLE_PLAN.read_text())
    try:
        async with EmbeddedStack(settings, workers=2) as stack:
            client = await connect_temporal(settings)
            records = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
            assert records is not None
            try:
                await _polling(client, settings.task_queue, stack.worker_pids)
                for timeout in task_timeouts:
                    # Every way of starting an internship goes through ops.start_plan.
                    ops.WORKFLOW_TASK_TIMEOUT = timedelta(seconds=timeout)
                    for n, mode in itertools.product(range(rounds), MODES):
                        plan = example.retimed(
                            f"stranded-{timeout:g}-{mode}-{n}",
                            datetime.now().astimezone() + timedelta(days=1),
                        )
                        handle = await ops.start_internship(client, settings, plan)
                        iid = plan.internship_id
                        first = Approval(submission_id="a-intern", party="intern", plan_version=1)
                        await ops.approve(client, iid, first, records)
                        holder = await _holder(client, handle.id)
                        if mode in SIGNALS:
                            os.kill(holder, SIGNALS[mode])
                            await asyncio.sleep(DEAD_FOR.get(mode, 0.0))
                        then = time.monotonic()
                        tutor = Approval(submission_id="a-tutor", party="tutor", plan_version=1)
                        await ops.approve(client, iid, tutor, records)
                        seconds[timeout][mode].append(time.monotonic() - then)
                        if mode in SIGNALS:
                            os.kill(holder, signal.SIGKILL)
                            await stack.restart_worker()
                            await _polling(client, settings.task_queue, stack.worker_pids)
            finally:
                await records.close()
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return {
        "rounds": rounds,
        "sticky_schedule_to_start_seconds": STICKY_TIMEOUT.total_seconds(),
        "product_task_timeout_seconds": PRODUCT_TIMEOUT,
        "submission_latency_seconds": {
            f"{timeout:g}": {
                mode: {
                    "median": round(statistics.median(values), 2),
                    "max": round(max(values), 2),
                    "all": [round(v, 2) for v in values],
                }
                for mode, values in by_mode.items()
            }
            for timeout, by_mode in seconds.items()
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="internships per mode and timeout")
    parser.add_argument(
        "--task-timeouts",
        type=float,
        nargs="+",
        default=[10.0, PRODUCT_TIMEOUT] if PRODUCT_TIMEOUT != 10.0 else [10.0],
        help="the internships' workflow task timeouts to measure, seconds (default: Temporal's "
        "10 s and the product's)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.rounds, args.task_timeouts))
    figures["environment"] = {"python": platform.python_version(), "machine": platform.machine()}
    print(
        f"{'task timeout':<13} {'worker':<17} {'median s':>9} {'max s':>7}  ({args.rounds} rounds)"
    )
    for timeout, by_mode in figures["submission_latency_seconds"].items():
        for mode, values in by_mode.items():
            print(f"{timeout + ' s':<13} {mode:<17} {values['median']:>9.2f} {values['max']:>7.2f}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
