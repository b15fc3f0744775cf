"""`make bench` never crashes on one benchmark: a part that raises, passes its time limit or
exits with a failure becomes a failed entry (why, what it measured so far) and the others run."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import (
    BEGIN,
    DOCUMENT,
    END,
    RESULTS,
    in_process,
    markdown_table,
    with_table,
)
from bench.part import Progress, failures, run_parts

pytestmark = pytest.mark.pure


async def raises(progress: Progress) -> dict[str, Any]:
    progress.record(opened=10)
    progress.step("playing the internships")
    raise TimeoutError("bench-0007 did not reach in_progress")


async def hangs(progress: Progress) -> dict[str, Any]:
    progress.record(started_per_second=4.2)
    progress.step("waiting for every internship to start")
    await asyncio.sleep(3600)
    return {}


async def measures(progress: Progress) -> dict[str, Any]:
    progress.record(half=1)
    return {"per_minute": 118.0}


async def test_failing_parts_give_failed_entries_and_the_others_still_run() -> None:
    heard: list[str] = []
    results = await run_parts(
        {
            "raises": raises,
            "hangs": hangs,
            "no such module": in_process("bench.no_such_benchmark", []),
            "measures": measures,
        },
        time_limits={"hangs": 0.2},
        on_result=lambda name, entry: heard.append(name),
    )
    assert heard == ["raises", "hangs", "no such module", "measures"]
    assert results["raises"] == {
        "status": "failed",
        "part": "raises",
        "why": "TimeoutError: bench-0007 did not reach in_progress "
        "(during: playing the internships)",
        "measured_so_far": {"opened": 10},
    }
    assert results["hangs"]["status"] == "failed"
    assert results["hangs"]["why"] == (
        "did not finish within 0.2 s (during: waiting for every internship to start)"
    )
    assert results["hangs"]["measured_so_far"] == {"started_per_second": 4.2}
    assert results["no such module"]["status"] == "failed"
    assert "exited with 1" in results["no such module"]["why"]
    assert results["measures"]["status"] == "ok"
    assert results["measures"]["per_minute"] == 118.0
    assert set(failures(results)) == {"raises", "hangs", "no such module"}


#: A benchmark's process as it starts (`python -m bench.<name>`): its console logging, then a
#: mail sink in its own thread that stores one e-mail (its `mail_sink.stored` line is debug).
_LOGGING_PROCESS = """
import smtplib, sys
from pathlib import Path
import structlog
from bench.part import console_logging
from embedded.mail_sink import MailSink
from embedded.ports import free_port

console_logging()
port = free_port()
with MailSink(Path(sys.argv[1]), "127.0.0.1", port) as sink:
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        smtp.sendmail("a@example.org", ["b@example.org"], "Subject: x\\r\\n\\r\\nhello")
    assert len(sink.messages()) == 1
structlog.get_logger("bench").info("bench.done")
"""


@pytest.mark.parametrize("level", [None, "debug"])
async def test_a_benchmark_logs_info_by_default_and_debug_when_asked(
    level: str | None, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "INTERNFLOW_LOG_LEVEL"}
    if level is not None:
        env["INTERNFLOW_LOG_LEVEL"] = level  # what `python -m bench --debug` sets
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LOGGING_PROCESS,
        str(tmp_path / "outbox"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    text = output.decode()
    assert process.returncode == 0, text
    assert "bench.done" in text, text
    assert ("mail_sink.stored" in text) == (level == "debug"), text


def test_the_performance_document_shows_the_recorded_figures() -> None:
    """bench/README.md's table of figures against targets is the one bench/results.json makes:
    every run rewrites both, and a hand edit of either is caught here."""
    results = json.loads(RESULTS.read_text())["benchmarks"]
    document = DOCUMENT.read_text()
    assert BEGIN in document and END in document
    assert document == with_table(document, results)


def test_a_figure_is_checked_against_its_target() -> None:
    table = markdown_table(
        {
            "lifecycle": {"ratio_ours_to_bare": 0.94},
            "feedback": {"status": "failed", "measured_so_far": {}},
            "scale": {"internships": 50_000, "list_sequential_scans": 1},
        }
    )
    rows = {line.split(" | ")[1]: line for line in table.splitlines()[2:]}
    assert rows["ours / bare"].endswith("| 0.94 | >= 0.95 | **no** |")
    assert rows["internships open at once"].endswith("| 50000 | >= 50000 | yes |")
    assert rows["list filters read by Seq Scan"].endswith("| 1 | <= 0 | **no** |")
    assert rows["API / raw, paced"].endswith("| failed | <= 1.2 |  |")
    assert rows["build + sign a badge"].endswith("| not run | >= 1000 |  |")
