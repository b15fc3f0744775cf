"""Every recorded history replays against the current workflow code: an incompatible change fails.

The histories in tests/histories/ are written by `python -m tests.record_histories`: the
internship's, and the badge status notice's (`status-notice-*`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from runtime.clients import PYDANTIC
from workflows.internship import InternshipWorkflow
from workflows.notice import StatusNoticeWorkflow

pytestmark = pytest.mark.pure

HISTORIES = {
    path.stem: path.read_text()
    for path in sorted((Path(__file__).resolve().parent / "histories").glob("*.json"))
}


def test_there_are_recorded_histories_to_replay() -> None:
    assert len(HISTORIES) >= 7


@pytest.mark.parametrize("name", sorted(HISTORIES))
async def test_recorded_history_replays(name: str) -> None:
    history = WorkflowHistory.from_json(name, HISTORIES[name])
    replayer = Replayer(
        workflows=[InternshipWorkflow, StatusNoticeWorkflow], data_converter=PYDANTIC
    )
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{name}: {result.replay_failure}"
