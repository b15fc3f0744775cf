"""`make bench` never crashes on one benchmark: a part that raises, passes its time limit or
exits with a failure becomes a failed entry (why, what it measured so far) and the others run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bench.__main__ import in_process
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
