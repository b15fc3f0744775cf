"""The scale benchmark made in pieces (bench/scale.py --state, --pause-after): a paused piece
keeps its stack's state and how far it opened, and the same call goes on from there on a restarted
stack, then measures every internship; the opening rate is over the pieces' opening seconds."""

from __future__ import annotations

import json
import stat
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench import scale
from bench.part import Progress

pytestmark = pytest.mark.slow

COUNT = 100  # two companies' worth per company: scale.COMPANIES is 50


def test_a_state_made_for_another_count_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / scale.PROGRESS).write_text(json.dumps({"internships": 500}))
    with pytest.raises(RuntimeError, match="--internships 500"):
        scale._load_progress(tmp_path, 1000)
    assert scale._load_progress(tmp_path / "new", 1000) == {}


async def test_a_paused_run_goes_on_where_it_stopped_and_then_measures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scale, "BATCH", 50)
    # Time for the approvals of a batch on a loaded test machine, and little more to wait.
    monkeypatch.setattr(scale, "MARGIN", timedelta(seconds=60))
    state = tmp_path / "scale"

    def measure(pause_after: float | None) -> Awaitable[dict[str, Any]]:
        return scale.run(COUNT, 16, 5, None, 0, Progress(), state, pause_after)

    first = await measure(pause_after=0)  # stops at the end of its first batch
    assert first["paused"].startswith(f"50 of {COUNT} opened")
    saved_file = state / scale.PROGRESS
    saved = json.loads(saved_file.read_text())
    assert saved["opened"] == 50
    assert stat.S_IMODE(saved_file.stat().st_mode) == 0o600  # it holds a database password
    assert "status_http" not in first

    second = await measure(pause_after=None)
    assert "paused" not in second
    pieces = second["start_pieces"]
    assert [(p["opened_from"], p["opened_to"]) for p in pieces] == [(0, 50), (50, COUNT)]
    opening = sum(p["seconds"] for p in pieces)
    assert second["start_seconds"] == round(opening, 1)
    assert second["start_rate_per_second"] == round(COUNT / opening, 1)
    # Every internship, of both pieces, reached its start on the restarted stack and was read.
    assert second["in_progress"] == COUNT
    assert second["status_http"]["p99_ms"] > 0 and second["search_http"]["p99_ms"] > 0
    assert json.loads(saved_file.read_text())["opened"] == COUNT

    # Measured again on the kept state: nothing more is opened, the pieces stay as they were.
    again = await measure(pause_after=None)
    assert [(p["opened_from"], p["opened_to"]) for p in again["start_pieces"]] == [
        (0, 50),
        (50, COUNT),
    ]
    assert again["in_progress"] == COUNT
