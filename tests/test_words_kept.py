"""Every word a person writes is readable without Temporal: one internship run to its badge on the
real parts (Temporal dev server with time skipping, PostgreSQL, the mail sink) where every kind
of text is written, and one withdrawn; then Temporal is stopped and each text is read back
through what people use: `internflow history` (at 80 columns and wide, and as JSON), the admin
API's history endpoint and the /admin internship page (escaped; in a 390 px wide browser the
page does not scroll sideways)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from markupsafe import escape
from playwright.async_api import async_playwright
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from embedded.temporal_server import temporal_binary
from models.plan import Party
from models.status import Phase
from models.submissions import (
    Amendment,
    Approval,
    Assessment,
    ChangeRequest,
    CompanyFeedback,
    Extension,
    MilestoneReport,
    Pause,
    Resume,
    Validation,
    Withdrawal,
)
from operations import internships as ops
from operations.access import create_api_key
from records.history_text import detail_fields
from runtime import search_attributes
from runtime.settings import Settings
from tests.conftest import TIME_SKIPPING_ARGS
from tests.helpers import (
    advance_to,
    clock_held,
    report_and_feedback,
    running_worker,
    sample_plan,
    wait_for_phase,
)

CHROMIUM = "/usr/bin/chromium"
LONG_WORD = "https://example.org/" + "unbreakable" * 15 + "?end"

CHANGE_REQUEST = "Please name the badge after the project.\nThis is [urgent] & <b>html</b> here."
AMENDMENT = "Badge renamed, as the tutor asked [ticket #12]."
APPROVALS: dict[Party, str] = {
    "intern": "Looks good to me.\nI start on Monday <3",
    "tutor": "Fine by the school; \"quotes\" & 'apostrophes' stay.",
    "mentor": "[bold]not bold[/bold] :warning: stays as typed",
}
REPORT = "Week one:\n- set up the dev environment\n- wrote the first [tests]\n\nAll good."
FEEDBACK = f"Punctual and curious.\nNeeds <i>more</i> code review: {LONG_WORD}"
PAUSE = "Illness: a doctor's note (Dr. Müller, ½ day) is [attached]."
EXTENSION = "The project needs two more weeks.\nAgreed with the company."
ASSESSMENTS: dict[Literal["mentor", "tutor"], str] = {
    "mentor": "Excellent teamwork.\n<script>alert(1)</script> was only a test string.",
    "tutor": "Good web skills; the [final] report was thorough.",
}
VALIDATION = "Every milestone met.\nThe badge is deserved."
WITHDRAWAL = "Moved abroad [family reasons].\nThanks to everyone."


def test_detail_fields_label_every_value_and_keep_texts_whole() -> None:
    detail = {
        "late": False,
        "comments": "Two\nlines",
        "attendance_hours": 32.0,
        "ratings": {"lo-web": "good", "lo-team": "excellent"},
        "milestone_id": "check-in",
        "comment": None,
        "later_key": [1, 2.5],
    }
    assert [(f.label, f.value) for f in detail_fields(detail)] == [
        ("milestone", "check-in"),
        ("ratings", "lo-web = good, lo-team = excellent"),
        ("hours", "32"),
        ("comments", "Two\nlines"),
        ("later key", "1, 2.5"),
    ]
    shown = detail_fields({"late": True, "share_in_badge": False, "decision": "fail"})
    assert [(f.label, f.value) for f in shown] == [
        ("decision", "fail"),
        ("shared in badge", "no"),
        ("late", "yes"),
    ]


@asynccontextmanager
async def own_temporal() -> AsyncIterator[
    tuple[WorkflowEnvironment, Callable[[], Awaitable[None]]]
]:
    """A Temporal dev server of this test only (the session's one must stay up for the others),
    and a way to stop it mid-test; stopped at the end whatever happens."""
    env = await WorkflowEnvironment.start_time_skipping_v2(
        dev_server_existing_path=temporal_binary(),
        dev_server_extra_args=TIME_SKIPPING_ARGS,
        namespace="internflow",
        search_attributes=search_attributes.ALL,
        data_converter=pydantic_data_converter,
    )
    stopped = False

    async def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            await env.shutdown()

    try:
        yield env, stop
    finally:
        await stop()


async def _written_internship(env: WorkflowEnvironment, settings: Settings) -> tuple[str, str]:
    """One internship where every kind of text is written, run to its badge, and one withdrawn
    during planning. Returns their ids."""
    client = env.client
    plan = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    iid = plan.internship_id
    with clock_held(env):
        handle = await ops.start_internship(client, settings, plan)
    await ops.request_changes(
        client,
        iid,
        ChangeRequest(submission_id="c-1", party="tutor", plan_version=1, comment=CHANGE_REQUEST),
    )
    v2 = plan.model_copy(
        update={"version": 2, "badge": plan.badge.model_copy(update={"name": "Web project"})}
    )
    await ops.amend(
        client,
        iid,
        Amendment(
            submission_id="m-2", plan=v2, concerns=("intern", "tutor", "mentor"), reason=AMENDMENT
        ),
    )
    for party, comment in APPROVALS.items():
        await ops.approve(
            client,
            iid,
            Approval(submission_id=f"a-{party}", party=party, plan_version=2, comment=comment),
        )
    await wait_for_phase(client, iid, Phase.AWAITING_START)
    new_end = plan.period.end + timedelta(days=7)
    await ops.extend(client, iid, Extension(submission_id="x-1", new_end=new_end, reason=EXTENSION))

    check_in = v2.milestone("check-in")
    assert check_in is not None
    await advance_to(env, handle, check_in.due - timedelta(hours=2))
    await ops.submit_report(
        client,
        iid,
        MilestoneReport(
            submission_id="r-check-in", milestone_id="check-in", summary=REPORT, share_in_badge=True
        ),
    )
    await ops.submit_feedback(
        client,
        iid,
        CompanyFeedback(
            submission_id="f-check-in",
            milestone_id="check-in",
            ratings={"lo-web": "good", "lo-team": "excellent"},
            attendance_hours=32,
            comments=FEEDBACK,
        ),
    )
    await ops.pause(client, iid, Pause(submission_id="p-1", reason=PAUSE))
    await ops.resume(client, iid, Resume(submission_id="p-1-end"))
    for milestone in v2.milestones[1:]:
        await advance_to(env, handle, milestone.due - timedelta(hours=2))
        await report_and_feedback(client, v2, milestone.id)
    await advance_to(env, handle, new_end + timedelta(hours=1))
    await wait_for_phase(client, iid, Phase.EVALUATION)
    for assessor, comment in ASSESSMENTS.items():
        await ops.submit_assessment(
            client,
            iid,
            Assessment(
                submission_id=f"s-{assessor}",
                assessor=assessor,
                levels={o.id: "good" for o in v2.learning_outcomes},
                comment=comment,
            ),
        )
    await ops.validate(
        client, iid, Validation(submission_id="v-1", decision="pass", reason=VALIDATION)
    )
    assert (await handle.result()).phase == Phase.COMPLETED

    other = sample_plan(datetime.now().astimezone() + timedelta(days=30))
    with clock_held(env):
        other_handle = await ops.start_internship(client, settings, other)
    await ops.withdraw(
        client, other.internship_id, Withdrawal(submission_id="w-1", reason=WITHDRAWAL)
    )
    assert (await other_handle.result()).phase == Phase.WITHDRAWN
    return iid, other.internship_id


#: (internship id, audit kind, label, value) of every text written above, and of a few other
#: fields, as a timeline row's `fields` must show them.
def _expected(ids: tuple[str, str]) -> list[tuple[str, str, str, str]]:
    done, withdrawn = ids
    return [
        (done, "change_request", "comment", CHANGE_REQUEST),
        (done, "amendment", "reason", AMENDMENT),
        *[(done, "approval", "comment", text) for text in APPROVALS.values()],
        (done, "extension", "reason", EXTENSION),
        (done, "milestone_report", "summary", REPORT),
        (done, "milestone_report", "shared in badge", "yes"),
        (done, "company_feedback", "comments", FEEDBACK),
        (done, "company_feedback", "hours", "32"),
        (done, "pause", "reason", PAUSE),
        *[(done, "assessment", "comment", text) for text in ASSESSMENTS.values()],
        (done, "validation", "decision", "pass"),
        (done, "validation", "reason", VALIDATION),
        (withdrawn, "withdrawal", "reason", WITHDRAWAL),
        (withdrawn, "phase", "reason", WITHDRAWAL),
    ]


async def _wait_recorded(pool: asyncpg.Pool, internship_id: str, kinds: set[str]) -> None:
    """Poll (with a deadline) until the audit trail holds every kind of step expected."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        rows = await pool.fetch(
            "SELECT DISTINCT kind FROM audit_events WHERE internship_id = $1", internship_id
        )
        missing = kinds - {r["kind"] for r in rows}
        if not missing:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{internship_id}: no {sorted(missing)} in the audit trail")
        await asyncio.sleep(0.1)


async def _cli(settings: Settings, temporal_address: str, columns: int, *args: str) -> str:
    """`internflow ...` as a user runs it, with the terminal `columns` wide."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        *args,
        env={
            **os.environ,
            "COLUMNS": str(columns),
            "INTERNFLOW_STATE_DIR": str(settings.state_dir),
            "INTERNFLOW_TEMPORAL_ADDRESS": temporal_address,
            "INTERNFLOW_TEMPORAL_NAMESPACE": "internflow",
            "INTERNFLOW_DATABASE_URL": settings.database_url,
            "INTERNFLOW_LOG_LEVEL": "warning",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    output, errors = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 0, text + errors.decode()
    # Temporal is stopped here: the records answer, and stderr says so in one line (wrapped
    # to the terminal), with what they are as of.
    assert _unspaced(errors.decode()).startswith(_unspaced("note: Temporal is unreachable"))
    assert "asof" in _unspaced(errors.decode()), errors.decode()
    return text


def _unspaced(text: str) -> str:
    """The text without its spaces and line breaks (where a narrow table wraps or folds it)."""
    return "".join(text.split())


def _details_column(table: str) -> list[str]:
    """The lines of the right-hand column of `internflow history`'s table."""
    return [line.split("│")[2] for line in table.splitlines() if line.count("│") == 3]


def _field_values(entries: list[dict[str, Any]], kind: str, label: str) -> list[str]:
    return [
        field["value"]
        for entry in entries
        if entry["kind"] == kind
        for field in entry["fields"]
        if field["label"] == label
    ]


@pytest.mark.timeout(240)
async def test_every_text_is_read_back_in_full_with_temporal_stopped(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    async with own_temporal() as (env, stop_temporal):
        temporal_address = env.client.service_client.config.target_host
        async with running_worker(env.client, settings, pool):
            ids = await _written_internship(env, settings)
        await _wait_recorded(pool, ids[0], {"validation", "assessment", "pause", "extension"})
        await _wait_recorded(pool, ids[1], {"withdrawal", "phase"})
        await stop_temporal()
    with pytest.raises(RuntimeError):  # Temporal is really gone
        await asyncio.wait_for(Client.connect(temporal_address, namespace="internflow"), timeout=30)
    expected = _expected(ids)

    # (a) the CLI. Wide: every line of every text literally, a text's lines one under the other.
    for iid in ids:
        mine = [e for e in expected if e[0] == iid]
        wide = await _cli(settings, temporal_address, 400, "history", iid)
        lines = wide.splitlines()
        for _, _, label, text in mine:
            first, *rest = text.split("\n")
            starts = [i for i, line in enumerate(lines) if f" {label}: " in line and first in line]
            assert starts, f"{label}: {first!r} not in\n{wide}"
            for offset, part in enumerate(rest, start=1):
                assert part in lines[starts[0] + offset], (part, lines[starts[0] + offset])
        # 80 columns: nothing wider than the terminal, every text whole (wrapped, not cut).
        narrow = await _cli(settings, temporal_address, 80, "history", iid)
        assert max(len(line) for line in narrow.splitlines()) <= 80, narrow
        assert "…" not in narrow, narrow
        details = _unspaced(" ".join(_details_column(narrow)))
        for _, _, label, text in mine:
            assert _unspaced(f"{label}: {text}") in details, (label, text, narrow)
        # JSON: valid however narrow the terminal, with the texts and their labelled fields.
        dumped = json.loads(await _cli(settings, temporal_address, 40, "history", iid, "--json"))
        for _, kind, label, text in mine:
            assert text in _field_values(dumped, kind, label), (kind, label)
            if label not in ("shared in badge", "hours"):  # those two are shown, not typed
                assert any(text in e["detail"].values() for e in dumped if e["kind"] == kind)

    # (b) the admin API: the raw detail as before, and every text as a labelled field.
    app = create_app(settings, pool=pool)  # no Temporal client: nothing here may need one
    _, admin_key = await create_api_key(pool, "words-admin", "admin")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=settings.public_base_url, timeout=60
    ) as http:
        for iid in ids:
            answer = await http.get(
                f"/api/admin/internships/{iid}/history",
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            assert answer.status_code == 200, answer.text
            entries = answer.json()["entries"]
            assert entries and all({"detail", "key", "actor", "phase"} <= set(e) for e in entries)
            for _, kind, label, text in (e for e in expected if e[0] == iid):
                assert text in _field_values(entries, kind, label), (kind, label, text)
            if iid == ids[0]:
                [check_in] = [e for e in entries if e["key"] == "f-check-in"]
                labelled = {f["label"]: f["value"] for f in check_in["fields"]}
                assert sorted(labelled["ratings"].split(", ")) == [
                    "lo-team = excellent",
                    "lo-web = good",
                ]
                assert labelled["milestone"] == "check-in"
                [request] = [e for e in entries if e["kind"] == "change_request"]
                assert request["detail"]["comment"] == CHANGE_REQUEST

        # (c) the /admin page: each text escaped by the template, never as markup.
        signed_in = await http.post("/admin/login", data={"key": admin_key})
        assert signed_in.status_code == 303, signed_in.text
        pages = {}
        for iid in ids:
            page = await http.get(f"/admin/internships/{iid}")
            assert page.status_code == 200, page.text
            pages[iid] = page.text
            for _, _, label, text in (e for e in expected if e[0] == iid):
                shown = (
                    f'<span class="label">{escape(label)}:</span> '
                    f'<span class="text">{escape(text)}</span>'
                )
                assert shown in page.text, (label, text)
        assert "<b>html</b>" not in pages[ids[0]] and "&lt;b&gt;html&lt;/b&gt;" in pages[ids[0]]
        assert "<script>alert" not in pages[ids[0]]

    # In a browser, on a phone (390 px) and a laptop: the page does not scroll sideways, the
    # timeline fits its card, the long comment wraps and its line breaks show.
    measured = {}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            for width in (390, 1024):
                context = await browser.new_context(viewport={"width": width, "height": 844})
                page = await context.new_page()
                await page.set_content(pages[ids[0]])
                measured[width] = await page.evaluate(MEASURE)
                await context.close()
        finally:
            await browser.close()
    for width, found in measured.items():
        assert found["page"] <= width, (width, found)
        assert found["table"] <= found["card"], (width, found)
        assert found["long"] <= width, (width, found)
        assert found["whiteSpace"] == "pre-wrap", (width, found)
        assert found["rendered"] == FEEDBACK, (width, found)


#: Widths (px) on the /admin internship page, and the long comment as the browser shows it.
MEASURE = """() => {
    const table = document.querySelector("table.timeline");
    const texts = [...document.querySelectorAll(".timeline .field .text")];
    const long = texts.find(t => t.textContent.includes("unbreakableunbreakable"));
    return {
        page: document.documentElement.scrollWidth,
        table: table.scrollWidth,
        card: table.parentElement.clientWidth,
        long: long.getBoundingClientRect().right,
        whiteSpace: getComputedStyle(long).whiteSpace,
        rendered: long.innerText,
    };
}"""
