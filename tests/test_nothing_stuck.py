"""No input and no failing side effect wedges an internship: poison input is refused at the door,
and with a mail server that defers every message, a withdrawal still ends the internship within
seconds (through the HTTP API, on the real Temporal, PostgreSQL and an SMTP server)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from embedded.ports import free_port
from tests.helpers import eventually
from tests.test_api_harness import Api, api, detail, planned

__all__ = ["api"]


class _DeferEverything:
    """An SMTP server's answer to every recipient: try again later (a 4xx, for as long as the
    test runs). Counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        self.attempts += 1
        return "451 4.3.2 System not accepting network messages, try later"


class DeferringServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = _DeferEverything()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=port)


@pytest.fixture
def mail_sink(tmp_path: Path) -> Iterator[DeferringServer]:
    """Overrides the conftest sink for this module: the settings point at a server that defers
    every message."""
    server = DeferringServer(free_port())
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


async def _kinds(api: Api, internship_id: str) -> list[str]:
    rows = await api.pool.fetch(
        "SELECT kind FROM audit_events WHERE internship_id = $1 ORDER BY occurred_at, seq",
        internship_id,
    )
    return [r["kind"] for r in rows]


async def test_withdrawal_ends_an_internship_whose_every_email_is_deferred(
    api: Api, mail_sink: DeferringServer
) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201

    async def requests_retrying() -> bool:
        rows = await api.pool.fetch(
            "SELECT attempts, error FROM notifications WHERE internship_id = $1 "
            "AND kind = 'approval_request'",
            iid,
        )
        return len(rows) == 3 and all(r["attempts"] >= 2 for r in rows)

    await eventually(requests_retrying, "three approval requests deferred and retried")
    deferred = await api.pool.fetch("SELECT status, error FROM notifications")
    assert {(r["status"], "SMTP [451]" in r["error"]) for r in deferred} == {("sending", True)}
    # The internship is not stuck behind its e-mails: it is in planning and answers.
    status = await api.http.get(f"/api/internships/{iid}", headers=api.operator)
    assert status.status_code == 200 and status.json()["phase"] == "planning"

    withdrawn = await api.http.post(
        f"/api/internships/{iid}/withdrawal",
        json={"submission_id": "w-1", "reason": "the company closed its office"},
        headers=api.operator,
    )
    assert withdrawn.status_code == 200, withdrawn.text

    async def phase_withdrawn() -> bool:
        read = await api.http.get(f"/api/internships/{iid}", headers=api.operator)
        return bool(read.json()["phase"] == "withdrawn")

    await eventually(phase_withdrawn, "the read model says withdrawn", within=10)

    async def requests_dropped() -> bool:
        return (await _kinds(api, iid)).count("notification_dropped") == 3

    await eventually(requests_dropped, "the three approval requests dropped", within=10)
    kinds = await _kinds(api, iid)
    assert "withdrawal" in kinds and "notification_failed" not in kinds

    # The withdrawal e-mails to the intern and the mentor keep trying (bounded: a day), and
    # the mail server is still refusing: nothing was handed over. (Their rows appear with their
    # first attempt, which can come after the drops are recorded.)
    async def withdrawal_mails() -> list[tuple[str, str]]:
        rows = await api.pool.fetch(
            "SELECT recipient_role, status FROM notifications WHERE internship_id = $1 "
            "AND kind = 'withdrawal' ORDER BY recipient_role",
            iid,
        )
        return [(r["recipient_role"], r["status"]) for r in rows]

    async def both_tried() -> bool:
        return len(await withdrawal_mails()) == 2

    await eventually(both_tried, "both withdrawal e-mails tried", within=10)
    assert await withdrawal_mails() == [("intern", "sending"), ("mentor", "sending")]
    assert mail_sink.handler.attempts >= 6
    await api.client.get_workflow_handle(f"internship-{iid}").terminate("end of test")


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("name", "Eve Example\r\nBcc: someone@example.org", "body.intern.name"),
        ("name", "Eve\x00Example", "body.intern.name"),
        ("email", "eve@example.org\nBcc: x@y.org", "body.intern.email"),
        ("company", "Webwerk\u0085GmbH", "body.company.name"),
        # The bidirectional controls: invisible, an override shows another name than stored.
        ("name", "Eve \u202eelpmaxE", "body.intern.name"),
        ("name", "Eve \u2067Example\u2069", "body.intern.name"),
        ("company", "Webwerk\u200f GmbH", "body.company.name"),
    ],
)
async def test_control_characters_in_single_line_fields_are_refused_and_nothing_is_sent(
    api: Api, mail_sink: DeferringServer, field: str, value: str, path: str
) -> None:
    plan = planned()
    body = plan.model_dump(mode="json")
    if field == "company":
        body["company"]["name"] = value
    else:
        body["intern"][field] = value
    response = await api.http.post("/api/internships", json=body, headers=api.operator)
    assert response.status_code == 422, response.text
    problems = {p["field"]: p["message"] for p in response.json()["errors"]}
    assert path in problems, problems
    if field != "email":  # an address is refused by its own pattern first
        assert "one line without control characters" in problems[path]
        position = next(i for i, c in enumerate(value) if c in "\r\x00\x85\u202e\u2067\u200f")
        assert f"U+{ord(value[position]):04X}" in problems[path] or value[position] in "\r\x00"
        assert f"at position {position + 1}" in problems[path]
    assert value not in response.text  # the refusal does not echo the value back
    unknown = await api.http.get(f"/api/internships/{plan.internship_id}", headers=api.operator)
    assert unknown.status_code == 404 and "no internship" in detail(unknown)
    assert await api.recorded(plan.internship_id) == (0, 0)
    assert await api.pool.fetchval("SELECT count(*) FROM notifications") == 0
    assert mail_sink.handler.attempts == 0  # no message was even offered


async def test_multi_line_texts_keep_their_line_breaks(api: Api) -> None:
    plan = planned()
    iid = plan.internship_id
    assert (await api.start(plan)).status_code == 201
    comment = 'Line one.\r\nLine two, with a tab\tand a quote "x".'
    changed = await api.http.post(
        f"/api/internships/{iid}/change-requests",
        json={"submission_id": "c-1", "party": "tutor", "plan_version": 1, "comment": comment},
        headers=api.party(iid, "tutor", "approve"),
    )
    assert changed.status_code == 200, changed.text

    async def stored() -> bool:  # the receipt comes first; the row follows
        return bool(
            await api.pool.fetchval(
                "SELECT count(*) FROM submissions WHERE internship_id = $1", iid
            )
        )

    await eventually(stored, "the change request recorded")
    kept = await api.pool.fetchval(
        "SELECT payload->>'comment' FROM submissions WHERE internship_id = $1", iid
    )
    assert kept == comment
    nul = await api.http.post(
        f"/api/internships/{iid}/change-requests",
        json={"submission_id": "c-2", "party": "tutor", "plan_version": 1, "comment": "a\x00b"},
        headers=api.party(iid, "tutor", "approve"),
    )
    assert nul.status_code == 422
    assert "body.comment" in {p["field"] for p in nul.json()["errors"]}
    await api.client.get_workflow_handle(f"internship-{iid}").terminate("end of test")
