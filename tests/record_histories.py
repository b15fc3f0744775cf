"""Record the histories of representative internships into tests/histories/ for replay tests.

Run `.venv/bin/python -m tests.record_histories` after an intended change of workflow behaviour
(and keep the older files while internships started under them may still be running);
`.venv/bin/python -m tests.record_histories NAME...` records only those scenarios (a new one,
leaving the files recorded before as they are). It plays
the lifecycle tests' scenarios on a fresh time-skipping Temporal server, PostgreSQL and mail sink,
then saves every workflow run's event history as JSON.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from embedded.mail_sink import MailSink
from embedded.postgres import EmbeddedPostgres
from embedded.temporal_server import temporal_binary
from runtime import search_attributes
from runtime.clients import create_pool
from runtime.migrations import apply_migrations
from tests import (
    test_intern_voice,
    test_lifecycle,
    test_lifecycle_rules,
    test_mail,
    test_signers,
    test_status_notices,
)
from tests.conftest import FAST_POSTGRES, TIME_SKIPPING_ARGS, free_port, make_settings

HISTORIES = Path(__file__).resolve().parent / "histories"

SCENARIOS: dict[str, Callable[..., Awaitable[None]]] = {
    "completed": test_lifecycle.test_whole_internship_ends_with_one_verified_badge,
    "not-certified": test_lifecycle.test_failed_validation_is_refused_as_pass_and_ends_not_certified,  # noqa: E501
    "withdrawn": test_lifecycle.test_bad_submissions_are_refused_and_nothing_is_recorded,
    "missed-milestone": (
        test_lifecycle_rules.test_reminder_ladder_asks_reminds_escalates_and_marks_missed_on_plan_time
    ),
    "amended": test_lifecycle_rules.test_amendment_asks_again_only_whom_it_concerns_and_keeps_every_signature,  # noqa: E501
    "paused-extended": (
        test_lifecycle_rules.test_pause_moves_every_remaining_deadline_and_extension_moves_the_end
    ),
    "continued-as-new": (
        test_lifecycle_rules.test_long_history_continues_as_new_and_the_internship_still_completes
    ),
    "self-assessed": (
        test_intern_voice.test_a_shared_self_assessment_is_a_labelled_result_of_its_own_in_the_badge
    ),
    "guardian": test_signers.test_a_guardian_s_agreement_through_the_workflow,
    "fresh-run-for-start": (
        test_lifecycle_rules.test_an_agreed_internship_waits_for_its_start_in_a_fresh_run
    ),
    # The missed-milestone scenario again, with the overdue flag recorded by the workflow.
    "overdue-recorded": (
        test_lifecycle_rules.test_reminder_ladder_asks_reminds_escalates_and_marks_missed_on_plan_time
    ),
    "change-requested": test_mail.test_a_change_request_reaches_the_institution_with_its_comment,
    # An internship in progress continuing as new between milestones (decision 0048).
    "fresh-run-between-milestones": (
        test_lifecycle_rules.test_an_internship_in_progress_continues_as_new_between_milestones
    ),
    # The completed scenario again, its submissions stamped with their receipt and judged at it
    # (the receipt-time-decides patch, decision 0046).
    "receipt-time": test_lifecycle.test_whole_internship_ends_with_one_verified_badge,
    # Three runs of the status notice's workflow (suspension, reinstatement, revocation).
    "status-notice": (
        test_status_notices.test_a_revocation_is_told_to_the_intern_by_a_notice_of_its_own
    ),
}


async def record(names: list[str] | None = None) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="internflow-histories-"))
    postgres = EmbeddedPostgres(make_settings(work / "pg"), server_options=FAST_POSTGRES)
    await postgres.start()
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=TIME_SKIPPING_ARGS,
        namespace="internflow",
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
    )
    written: list[Path] = []
    try:
        for name, scenario in SCENARIOS.items():
            if names and name not in names:
                continue
            state = work / name
            with MailSink(state / "outbox", "127.0.0.1", free_port()) as sink:
                settings = make_settings(
                    state,
                    database_url=postgres.dsn,
                    database_owner_url=postgres.settings.database_owner_dsn,
                    smtp_port=sink.port,
                    task_queue=f"record-{uuid.uuid4().hex[:8]}",
                )
                await apply_migrations(settings.database_owner_dsn)
                pool = await create_pool(settings)
                try:
                    before = {w.run_id async for w in env.client.list_workflows()}
                    await scenario(env, settings, pool)
                finally:
                    await pool.close()
            runs: list[Any] = [w async for w in env.client.list_workflows()]
            new = sorted((w for w in runs if w.run_id not in before), key=lambda w: w.start_time)
            for index, run in enumerate(new):
                history = await env.client.get_workflow_handle(
                    run.id, run_id=run.run_id
                ).fetch_history()
                path = HISTORIES / f"{name}-{index}.json"
                path.write_text(_one_event_per_line(history.to_json()))
                written.append(path)
    finally:
        await env.shutdown()
        await postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    return written


def _one_event_per_line(history_json: str) -> str:
    """Compact JSON that still diffs well: one history event per line."""
    events = json.loads(history_json)["events"]
    lines = ",\n".join(json.dumps(event, separators=(",", ":")) for event in events)
    return '{"events":[\n' + lines + "\n]}\n"


def main() -> None:
    names = sys.argv[1:]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; choose from {sorted(SCENARIOS)}")
    HISTORIES.mkdir(exist_ok=True)
    for path in asyncio.run(record(names)):
        print(f"recorded {path.relative_to(HISTORIES.parent.parent)}")


if __name__ == "__main__":
    main()
